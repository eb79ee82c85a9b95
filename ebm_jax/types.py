"""Types shared across ebm_jax.

* `EnergyFn`: maps ONE example (any PyTree of arrays) to a scalar energy; lower = more likely.
* `SamplingAlgorithm`: the `(init, step)` pair every sampler's convenience constructor returns
  (the BlackJAX shape): `state = init(position)`, `state, info = step(rng_key, state)`.
"""

from typing import Any, Callable, NamedTuple

import jax

ArrayTree = Any
EnergyFn = Callable[[ArrayTree], jax.Array]


class SamplingAlgorithm(NamedTuple):
    """`init(position) -> state` and `step(rng_key, state) -> (state, info)`."""

    init: Callable
    step: Callable
