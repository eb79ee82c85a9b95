"""MCMC samplers with one contract (the BlackJAX shape).

Each sampler module has a `State` and an `Info` NamedTuple, `init(position, energy_fn)` and
`build_kernel(...) -> kernel(rng_key, state, energy_fn, **params) -> (state, info)`, where
`energy_fn` maps ONE example (any PyTree) to a scalar energy. A convenience function per sampler
(`langevin.langevin`, `mala.mala`, `hmc.hmc`) returns an `(init, step)` pair with the energy and
parameters closed over; a `spec` per sampler (`langevin.spec`, `mala.spec`, `hmc.spec`,
`gibbs.spec`, and `tempering.spec` around any of them) is a `SamplerSpec` (init, kernel, params,
number of steps) that `sample` runs over many chains (generation from noise included, with
`uniform_starts`). `run_chains` is the `lax.scan` under it.

    langevin     unadjusted Langevin: the tutorial's loop and the textbook form
    mala         Metropolis-adjusted Langevin
    hmc          HMC (leapfrog in `integrators`, diagonal mass matrix, divergence flag)
    adaptation   dual-averaging step-size adaptation (a pure warm-up)
    annealed     annealed Langevin over noise levels, for E(x, sigma)
    gibbs        block Gibbs for energies with binary latent units (RBMs), `energy_fn(v, h)`
    tempering    replica exchange over temperatures, wrapping any kernel above
    ais          annealed importance sampling: log Z with its standard error
    diagnostics  acceptance, multi-chain ESS, split R-hat, trace plots
"""

from ebm_jax.samplers import adaptation, ais, annealed, diagnostics, gibbs, hmc, integrators, langevin, mala, tempering
from ebm_jax.samplers.gibbs import GibbsInfo, GibbsState
from ebm_jax.samplers.hmc import HMCInfo, HMCState
from ebm_jax.samplers.langevin import LangevinInfo, LangevinState
from ebm_jax.samplers.loop import SamplerSpec, run_chain, run_chains, sample, uniform_starts
from ebm_jax.samplers.mala import MALAInfo, MALAState
from ebm_jax.samplers.tempering import TemperingInfo, TemperingState

__all__ = [
    "GibbsInfo", "GibbsState", "HMCInfo", "HMCState", "LangevinInfo", "LangevinState", "MALAInfo", "MALAState",
    "TemperingInfo", "TemperingState", "adaptation", "ais", "annealed", "diagnostics", "gibbs", "hmc",
    "integrators", "langevin", "mala", "run_chain", "run_chains", "sample", "SamplerSpec", "tempering",
    "uniform_starts",
]
