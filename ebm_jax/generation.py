"""Steered generation: samplers over `compose` energies (Du, Li & Mordatch 2020; Grathwohl et
al. 2020), for any energy of ONE example and any `SamplerSpec`.

    from_noise(rng_key, spec, energy_fn, num, shape)   chains from Uniform(bounds) under any
                                                       (composed, conditioned) energy
    inpaint(rng_key, spec, energy_fn, images, mask)    each image's entries where `mask` is True
                                                       are held (`compose.clamp`); the others start
                                                       from noise (or a given image) and are
                                                       sampled from p(x_free | x_observed)
    denoise(energy_fn, images, num_steps, step_size)   gradient descent on E from each image,
                                                       x <- clip(x - step_size * grad E(x)): a
                                                       noiseless Langevin run towards a nearby mode
    psnr(clean, estimate, peak_to_peak)                10 log10(range^2 / MSE) per image, in dB

With a classifier energy (`energies.ClassifierEnergy`, `per_example(model.apply, variables)` =
`(x, y) -> E(x, y)`, and `(x) -> E(x)`), `compose.condition(energy_fn, y)` is class y,
`compose.disjunction` of two classes is "either", `compose.difference(E, condition(E, y))` is
"anything but y" (the density p(x, label != y)), and `compose.conjunction` adds constraints; all
of them go through `from_noise`.
"""

from typing import Optional, Sequence, Tuple

import jax
import jax.numpy as jnp

from ebm_jax import compose
from ebm_jax.samplers import langevin
from ebm_jax.samplers.loop import SamplerSpec, sample, uniform_starts
from ebm_jax.types import EnergyFn, check


def from_noise(rng_key: jax.Array, spec: SamplerSpec, energy_fn: EnergyFn, num: int, shape: Sequence[int],
               bounds: Tuple[float, float] = (-1.0, 1.0)) -> jax.Array:
    """`[num, *shape]`: `spec.num_steps` steps of `num` chains started from Uniform(bounds),
    clipped to `bounds` (unbounded samplers may leave them)."""
    key_starts, key_run = jax.random.split(rng_key)
    final, _, _ = sample(key_run, spec, energy_fn, uniform_starts(key_starts, num, shape, bounds))
    return jnp.clip(final.position, *bounds)


def inpaint(rng_key: jax.Array, spec: SamplerSpec, energy_fn: EnergyFn, images: jax.Array, mask: jax.Array,
            bounds: Tuple[float, float] = (-1.0, 1.0), start: Optional[jax.Array] = None) -> jax.Array:
    """`[N, ...]` completions of `images [N, ...]`: where `mask` (bool, one example's shape) is
    True the image's values are kept exactly; the rest starts from `start` (one example's shape,
    e.g. the training images' mean; None: Uniform(bounds) noise) and runs `spec.num_steps` steps
    under `compose.clamp(energy_fn, mask, image)`, one chain per image."""
    mask = jnp.asarray(mask, bool)
    check(mask.shape == images.shape[1:], f"mask must have one example's shape {images.shape[1:]}, got {mask.shape}")

    def one(key, image):
        key_start, key_run = jax.random.split(key)
        free = uniform_starts(key_start, 1, image.shape, bounds) if start is None else jnp.asarray(start)[None]
        start_ = compose.fill(mask, image, free)
        final, _, _ = sample(key_run, spec, compose.clamp(energy_fn, mask, image), start_)
        return compose.fill(mask, image, jnp.clip(final.position[0], *bounds))

    return jax.vmap(one)(jax.random.split(rng_key, images.shape[0]), images)


def denoise(energy_fn: EnergyFn, images: jax.Array, num_steps: int, step_size: float,
            bounds: Tuple[float, float] = (-1.0, 1.0)) -> jax.Array:
    """`[N, ...]`: `num_steps` steps of x <- clip(x - step_size * grad E(x), bounds) from each
    image (Langevin without noise, so deterministic; the key is unused)."""
    spec = langevin.spec(num_steps, step_size, noise_scale=0.0, bounds=bounds)
    final, _, _ = sample(jax.random.key(0), spec, energy_fn, images)
    return final.position


def psnr(clean: jax.Array, estimate: jax.Array, peak_to_peak: float = 2.0) -> jax.Array:
    """Peak signal-to-noise ratio `[N]` in dB of each `estimate` against its `clean` image
    (`peak_to_peak`: the value range, 2 for images in [-1, 1])."""
    mse = jnp.mean(jnp.square(clean - estimate).reshape(clean.shape[0], -1), axis=-1)
    return 10.0 * jnp.log10(peak_to_peak**2 / mse)
