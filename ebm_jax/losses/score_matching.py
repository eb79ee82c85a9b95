"""Score matching: fit s(x) = -grad_x E(x) to the data's score without sampling from the model.

    denoising_score_matching     x~ = x + sigma z:  0.5 E ||grad E(x~) - z / sigma||^2
                                 (Vincent 2011). Its minimiser is the score of the data convolved
                                 with N(0, sigma^2 I): for Gaussian data, covariance Sigma + sigma^2 I.
    multiscale_dsm               sigma_i drawn from a ladder per example, noise-conditional E(x, sigma),
                                 each term weighted by sigma_i^2 (Song & Ermon 2019):
                                 0.5 E ||sigma grad E(x~, sigma) - z||^2
    sliced_score_matching        v ~ N(0, I):  E[ v^T grad s(x) v + 0.5 (v^T s(x))^2 ]  (Song et al.
                                 2019), Hessian-vector products by `jax.jvp` of the input gradient;
                                 `variance_reduced=True` uses 0.5 ||s(x)||^2 for the second term.
    exact_score_matching         tr(grad s(x)) + 0.5 ||s(x)||^2 with the full Hessian (Hyvaerinen
                                 2005): the reference for tests, O(d) backward passes per example.

`energy_fn` is BATCHED, `[B, ...] -> [B]` (or `(x [B, ...], sigma [B]) -> [B]`) with examples
independent, so one backward pass of sum_i E(x_i) gives every per-example gradient.
Every loss returns `(loss [], metrics)`.
"""

from typing import Callable

import jax
import jax.numpy as jnp

from ebm_jax.losses.regularisers import input_grad


def _per_example_sq_norm(v: jax.Array) -> jax.Array:
    return jnp.sum(jnp.square(v.reshape(v.shape[0], -1)), axis=-1)


def denoising_score_matching(rng_key: jax.Array, energy_fn: Callable, x: jax.Array, sigma: float):
    """Single-sigma DSM on a batch `x [B, ...]`. Returns `(loss, metrics)`."""
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    z = jax.random.normal(rng_key, x.shape, x.dtype)
    grads = input_grad(energy_fn, x + sigma * z)
    loss = 0.5 * jnp.mean(_per_example_sq_norm(grads - z / sigma))
    return loss, dict(loss=loss, loss_sm=loss)


def multiscale_dsm(rng_key: jax.Array, energy_fn: Callable, x: jax.Array, sigmas: jax.Array):
    """Noise-conditional DSM: `energy_fn(x [B, ...], sigma [B]) -> [B]`, one sigma per example
    drawn uniformly from `sigmas [L]`, the sigma^2-weighted sum (every level's term is O(1))."""
    sigmas = jnp.asarray(sigmas, x.dtype)
    key_level, key_noise = jax.random.split(rng_key)
    sigma = jax.random.choice(key_level, sigmas, (x.shape[0],))
    sigma_b = sigma.reshape((-1,) + (1,) * (x.ndim - 1))
    z = jax.random.normal(key_noise, x.shape, x.dtype)
    grads = jax.grad(lambda y: jnp.sum(energy_fn(y, sigma)))(x + sigma_b * z)
    loss = 0.5 * jnp.mean(_per_example_sq_norm(sigma_b * grads - z))
    return loss, dict(loss=loss, loss_sm=loss)


def sliced_score_matching(
    rng_key: jax.Array,
    energy_fn: Callable,
    x: jax.Array,
    num_projections: int = 1,
    variance_reduced: bool = False,
):
    """SSM with `num_projections` Gaussian directions per example. Never forms a Hessian: each
    projection costs one forward-over-reverse product H v."""
    if int(num_projections) < 1:
        raise ValueError(f"num_projections must be >= 1, got {num_projections}")

    def grad_fn(y):
        return input_grad(energy_fn, y)

    def one_projection(v):
        grads, hvp = jax.jvp(grad_fn, (x,), (v,))  # grad E(x), H v  (per example)
        flat = lambda a: a.reshape(a.shape[0], -1)
        curvature = -jnp.sum(flat(v) * flat(hvp), axis=-1)  # v^T grad s v, with s = -grad E
        if variance_reduced:
            fit = 0.5 * _per_example_sq_norm(grads)
        else:
            fit = 0.5 * jnp.square(jnp.sum(flat(v) * flat(grads), axis=-1))
        return curvature + fit

    vs = jax.random.normal(rng_key, (int(num_projections),) + x.shape, x.dtype)
    per_example = jnp.mean(jax.lax.map(one_projection, vs), axis=0)
    loss = jnp.mean(per_example)
    return loss, dict(loss=loss, loss_sm=loss)


def exact_score_matching(energy_fn: Callable, x: jax.Array):
    """Hyvaerinen's loss with the full Hessian, per example: `(loss, per_example [B])`."""

    def single(xi):
        e = lambda y: energy_fn(y[None])[0]
        hessian = jax.hessian(e)(xi).reshape(xi.size, xi.size)
        return -jnp.trace(hessian) + 0.5 * jnp.sum(jnp.square(jax.grad(e)(xi)))

    per_example = jax.vmap(single)(x)
    return jnp.mean(per_example), per_example
