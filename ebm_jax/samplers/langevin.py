"""Unadjusted Langevin dynamics (SGLD without minibatch noise), BlackJAX-shaped.

One kernel, two orderings of the same two moves, a gradient move and a noise move:

* `"grad_first"`, the textbook form (Roberts & Tweedie 1996; Welling & Teh 2011):
      x' = clip(x - step_size * clip_g(grad E(x)) + noise_scale * z),   z ~ N(0, I)
  With `noise_scale = sqrt(2 * step_size)` (the default) and `step_size = eps / 2` this is
  x' = x - (eps/2) grad E(x) + sqrt(eps) z, whose stationary law tends to exp(-E) as eps -> 0.

* `"noise_first"`, the UvA tutorial's loop, reproduced move for move (per step):
      x = clip(x + noise_scale * z)                 noise_scale = 0.005
      g = clip(grad E(x), -grad_clip, grad_clip)    grad_clip = 0.03
      x = clip(x - step_size * g)                   step_size = 10
  Here noise and step size are decoupled (it is not a discretised diffusion; the tutorial
  treats it as a heuristic sampler for training).

`clip` is `jnp.clip(., *bounds)` when `bounds` is given, the identity otherwise; `clip_g`
clips each gradient coordinate to [-grad_clip, grad_clip] when `grad_clip` is given.

The kernel evaluates one energy gradient per step and caches nothing: the state is just the
position. The energy at the point where the gradient was taken is reported in `LangevinInfo`
(for "grad_first" that is E(x) before the move; for "noise_first", E at the noised point).
The kernel carries its split form: `kernel.draw(rng_key, state)` makes the step's draw z (it
depends on the key and the shapes only) and `kernel.move(z, state, energy_fn, **params)` does
the rest, so the runner (`samplers.sample`) can make a block of steps' draws ahead of the moves.

Noise draws: z is `jax.random.normal(key, shape)` from the step's key, always in threefry's
original bit layout (`jax.threefry_partitionable(False)`), whatever the process-wide
`jax_threefry_partitionable` says: every chain draws from its own key, so the partitionable
layout (one draw split over devices) would buy nothing, and the original one is cheaper on CPU
(`experiments/benchmarks/README.md`). The draws are another stream than a plain
`jax.random.normal(key, shape)` under the default setting, and just as Gaussian.
"""

from typing import Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from ebm_jax.samplers.loop import SamplerSpec
from ebm_jax.types import ArrayTree, EnergyFn, SamplingAlgorithm, check

ORDERS = ("grad_first", "noise_first")


class LangevinState(NamedTuple):
    """position: a PyTree, one example (vmap for chains)."""

    position: ArrayTree


class LangevinInfo(NamedTuple):
    """energy: E where the gradient was taken, `[]`; grad_norm: L2 norm of the raw gradient."""

    energy: jax.Array
    grad_norm: jax.Array


def init(position: ArrayTree, energy_fn: Optional[EnergyFn] = None) -> LangevinState:
    """Starts a chain at `position`. `energy_fn` is accepted for the common sampler contract."""
    del energy_fn
    return LangevinState(position)


def build_kernel(order: str = "grad_first") -> Callable:
    """Returns `kernel(rng_key, state, energy_fn, step_size, noise_scale=None, grad_clip=None,
    bounds=None) -> (state, info)`, i.e. `build_move(order)` applied to `draw(rng_key, state)`;
    the two are its attributes `kernel.move` and `kernel.draw` (the runner's draws made ahead).

    step_size: multiplies the (clipped) gradient; must be > 0.
    noise_scale: standard deviation of the Gaussian move; `None` means sqrt(2 * step_size).
    grad_clip: clip each gradient coordinate to [-grad_clip, grad_clip]; `None`: no clipping.
    bounds: `(low, high)` to clamp the position after each move; `None`: unbounded.
    """
    move = build_move(order)

    def kernel(rng_key: jax.Array, state: LangevinState, *args, **kwargs) -> Tuple[LangevinState, LangevinInfo]:
        return move(draw(rng_key, state), state, *args, **kwargs)

    kernel.draw, kernel.move = draw, move
    return kernel


def draw(rng_key: jax.Array, state: LangevinState) -> ArrayTree:
    """The step's standard-normal draw z, a PyTree shaped like the position: leaf i is
    `jax.random.normal(split(rng_key, leaves)[i], shape)` in threefry's original bit layout
    ("Noise draws" above). It depends on the key and the shapes only, so a loop can make many
    steps' draws ahead of the moves (`run_chains(..., draw=draw)`)."""
    leaves, treedef = jax.tree.flatten(state.position)
    keys = jax.random.split(rng_key, len(leaves))
    with jax.threefry_partitionable(False):  # see the module docstring, "Noise draws"
        noise = [jax.random.normal(key, leaf.shape, leaf.dtype) for key, leaf in zip(keys, leaves)]
    return jax.tree.unflatten(treedef, noise)


def build_move(order: str = "grad_first") -> Callable:
    """Returns `move(noise, state, energy_fn, step_size, noise_scale=None, grad_clip=None,
    bounds=None) -> (state, info)`: the kernel's step with its draw z = `noise` given (from
    `draw`), parameters as in `build_kernel`."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")

    def move(
        noise: ArrayTree,
        state: LangevinState,
        energy_fn: EnergyFn,
        step_size: float,
        noise_scale: Optional[float] = None,
        grad_clip: Optional[float] = None,
        bounds: Optional[Tuple[float, float]] = None,
    ) -> Tuple[LangevinState, LangevinInfo]:
        scale = jnp.sqrt(2.0 * step_size) if noise_scale is None else noise_scale
        clamp = _clamp_fn(bounds)
        add_noise = lambda x: jax.tree.map(lambda xi, zi: xi + scale * zi, x, noise)
        x = state.position
        if order == "noise_first":
            x = clamp(add_noise(x))
            energy, grad = jax.value_and_grad(energy_fn)(x)
            x = clamp(_gradient_move(x, grad, step_size, grad_clip))
        else:
            energy, grad = jax.value_and_grad(energy_fn)(x)
            x = clamp(add_noise(_gradient_move(x, grad, step_size, grad_clip)))
        return LangevinState(x), LangevinInfo(energy, _tree_norm(grad))

    return move


def langevin(
    energy_fn: EnergyFn,
    step_size: float,
    noise_scale: Optional[float] = None,
    grad_clip: Optional[float] = None,
    bounds: Optional[Tuple[float, float]] = None,
    order: str = "grad_first",
) -> SamplingAlgorithm:
    """Convenience `(init, step)` pair with the energy and hyper-parameters closed over."""
    check_params(step_size, noise_scale, grad_clip, bounds)
    kernel = build_kernel(order)

    def step(rng_key, state):
        return kernel(rng_key, state, energy_fn, step_size, noise_scale, grad_clip, bounds)

    return SamplingAlgorithm(lambda position: init(position, energy_fn), step)


def spec(
    num_steps: int,
    step_size: float,
    noise_scale: Optional[float] = None,
    grad_clip: Optional[float] = None,
    bounds: Optional[Tuple[float, float]] = None,
    order: str = "grad_first",
    chain_group: Optional[int] = None,
) -> SamplerSpec:
    """`num_steps` Langevin steps with these parameters, for `samplers.sample` and the training
    objectives (parameters as in `build_kernel`; `chain_group` as in `SamplerSpec`)."""
    check_params(step_size, noise_scale, grad_clip, bounds)
    check(int(num_steps) >= 1, f"num_steps must be >= 1, got {num_steps}")
    params = dict(step_size=step_size, noise_scale=noise_scale, grad_clip=grad_clip, bounds=bounds)
    return SamplerSpec(init, build_kernel(order), params, int(num_steps), chain_group)


def check_params(step_size, noise_scale=None, grad_clip=None, bounds=None) -> None:
    """Raises `ValueError` on nonsense hyper-parameters; traced values (a sampler built inside
    `jit`) pass unchecked."""
    check(lambda: step_size > 0, f"step_size must be > 0, got {step_size}")
    check(lambda: noise_scale is None or noise_scale >= 0, f"noise_scale must be >= 0, got {noise_scale}")
    check(lambda: grad_clip is None or grad_clip > 0, f"grad_clip must be > 0, got {grad_clip}")
    check(lambda: bounds is None or bounds[0] < bounds[1], f"bounds must be (low, high) with low < high, got {bounds}")


def _gradient_move(x, grad, step_size, grad_clip):
    if grad_clip is not None:
        grad = jax.tree.map(lambda g: jnp.clip(g, -grad_clip, grad_clip), grad)
    return jax.tree.map(lambda xi, gi: xi - step_size * gi, x, grad)


def _clamp_fn(bounds):
    if bounds is None:
        return lambda x: x
    low, high = bounds
    return lambda x: jax.tree.map(lambda leaf: jnp.clip(leaf, low, high), x)


def _tree_norm(tree) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(tree)))
