"""MCMC samplers with one contract (see `../shared/STYLE.md`, the BlackJAX shape).

Each sampler module has a `State` and an `Info` NamedTuple, `init(position, energy_fn)` and
`build_kernel(...) -> kernel(rng_key, state, energy_fn, **params) -> (state, info)`, where
`energy_fn` maps ONE example to a scalar. `loop.run_chains` runs many chains with `lax.scan`.
"""

from ebm_jax.samplers import langevin
from ebm_jax.samplers.langevin import LangevinInfo, LangevinState
from ebm_jax.samplers.loop import run_chain, run_chains

__all__ = ["langevin", "LangevinInfo", "LangevinState", "run_chain", "run_chains"]
