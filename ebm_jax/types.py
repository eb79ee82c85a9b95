"""Types shared across ebm_jax.

* `EnergyFn`: maps ONE example (any PyTree of arrays) to a scalar energy; lower = more likely.
* `SamplingAlgorithm`: the `(init, step)` pair every sampler's convenience constructor returns
  (the BlackJAX shape): `state = init(position)`, `state, info = step(rng_key, state)`.
* A training batch is the examples `x [B, ...]` themselves, or, with labels, the dict
  `{"x": [B, ...], "y": [B] integers}` (JEM, class-conditional models); `examples(batch)` is its
  `x` either way. `check_batch(batch, bounds)` checks one on the host before a step (the fit
  loop does): float, finite, non-empty, within the data's range.
"""

from typing import Any, Callable, Mapping, NamedTuple, Optional, Tuple, Union

import jax
import numpy as np

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


def check_batch(batch, bounds: Optional[Tuple[float, float]] = None) -> None:
    """ValueError unless `examples(batch)` is a non-empty float array, every leaf has the same
    leading size, and (for host arrays; device arrays are not fetched) its values are finite and,
    with `bounds`, within them (images: `data.to_float_images` maps uint8 to [-1, 1])."""
    x = examples(batch)
    if not np.issubdtype(np.dtype(x.dtype), np.floating):
        raise ValueError(f"the batch's examples are {np.dtype(x.dtype)}: a float array is expected "
                         "(uint8 images: data.to_float_images maps them to [-1, 1])")
    sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in jax.tree.leaves(batch)}
    if len(sizes) != 1 or sizes.pop() < 1:
        raise ValueError(f"a batch needs at least one example and one leading size for every leaf, got shapes "
                         f"{[np.shape(leaf) for leaf in jax.tree.leaves(batch)]}")
    if isinstance(x, jax.Array):
        return
    if not np.all(np.isfinite(x)):
        raise ValueError(f"the batch holds {int(np.sum(~np.isfinite(x)))} NaN or infinite values")
    if bounds is not None and (float(np.min(x)) < bounds[0] or float(np.max(x)) > bounds[1]):
        raise ValueError(f"the batch's values span [{float(np.min(x)):.4g}, {float(np.max(x)):.4g}], outside the "
                         f"data range {tuple(bounds)} (images: data.to_float_images maps uint8 to [-1, 1])")
