"""Types shared across ebm_jax.

* `EnergyFn`: maps ONE example (any PyTree of arrays) to a scalar energy; lower = more likely.
* `SamplingAlgorithm`: the `(init, step)` pair every sampler's convenience constructor returns
  (the BlackJAX shape): `state = init(position)`, `state, info = step(rng_key, state)`.
* A training batch is the examples `x [B, ...]` themselves, or, with labels, the dict
  `{"x": [B, ...], "y": [B] integers}` (JEM, class-conditional models); `examples(batch)` is its
  `x` either way.
"""

from typing import Any, Callable, Mapping, NamedTuple, Union

import jax

ArrayTree = Any
EnergyFn = Callable[[ArrayTree], jax.Array]


class SamplingAlgorithm(NamedTuple):
    """`init(position) -> state` and `step(rng_key, state) -> (state, info)`."""

    init: Callable
    step: Callable


def check(condition: Union[bool, Callable[[], Any]], message: str) -> None:
    """Raises `ValueError(message)` when `condition` (a bool, or a thunk returning one) is False.
    A condition on traced values (a sampler or objective built inside `jit`) cannot be decided
    while tracing and passes: concrete values are checked, traced ones let through."""
    try:
        ok = bool(condition() if callable(condition) else condition)
    except jax.errors.ConcretizationTypeError:
        return
    if not ok:
        raise ValueError(message)


def examples(batch) -> jax.Array:
    """The examples `x [B, ...]` of a batch: the batch itself, or `batch["x"]` of a labelled one."""
    if isinstance(batch, Mapping):
        if "x" not in batch:
            raise ValueError(f"a labelled batch is a dict with 'x' (and 'y'), got keys {sorted(batch)}")
        return batch["x"]
    return batch
