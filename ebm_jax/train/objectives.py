"""Objectives: a loss plus where its samples come from, pluggable into the one train step.

An `Objective` is three pure functions (energies here are BATCHED, `batch_energy_fn(x [B, ...])
-> [B]`, or `(x [B, ...], sigma [B]) -> [B]` when `noise_conditional`):

    init(rng_key, batch)                                     -> (objective_params, objective_state)
    prepare(rng_key, batch_energy_fn, objective_state, batch, mesh)
                                                             -> (prepared, objective_state, metrics)
    loss(rng_key, batch_energy_fn, objective_params, prepared, batch) -> (loss, metrics)

`prepare` runs with the params frozen (the negative phase: MCMC, noise draws); `prepared` is what
the loss needs of it (e.g. `(real, fake)`); `loss` is what gets differentiated.
`objective_params` are learned with the model (NCE's log Z); the `objective_state` is carried
between steps (a replay buffer, persistent chains, or nothing). `mesh` (None or a `Mesh` with a
`data` axis) is where the step runs: the samplers split their chains over it.

    replay_cd       chains start from a replay buffer (5 % fresh noise): the UvA tutorial's CD
    persistent_cd   a fixed set of persistent chains, all advanced every step (Tieleman 2008)
    persistent_pt   persistent replica-exchange chains (parallel tempering negatives)
    cd_k            k sampler steps from the data batch itself (Hinton 2002)
    dsm, ssm, msdsm score matching (single sigma, sliced, multi-scale with E(x, sigma))
    nce             noise-contrastive estimation with a learned log Z
    jem             JEM on labelled batches: cross-entropy of p(y | x), replay CD on E(x), optionally
                    CD on E(x, y) with class-conditional chains (the p(x | y) term)
    regularised     adds alpha * mean E(real)^2 and a gradient penalty to any of them

The contrastive ones take a `SamplerSpec` (`langevin.spec`, `mala.spec`, `hmc.spec`) and
`loss="cd"` (CD + alpha L2) or `loss="hinge"` (with `margin`); their metrics include the
sampler's mean acceptance when it has one (`sampler_acceptance`).

RBMs train with the same objectives and `samplers.gibbs.spec` as the sampler (`alpha=0`): the CD
loss on free energies, mean F(data) - mean F(negatives), has the gradient <v h>_data - <v h>_model
with h's conditional means, the classic update (Hinton 2002); `cd_k` is CD-k, `persistent_cd`
PCD, `persistent_pt` PT negatives.
"""

from typing import Callable, Mapping, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from ebm_jax import buffers, losses
from ebm_jax.energies.convert import per_example
from ebm_jax.samplers import tempering
from ebm_jax.samplers.loop import SamplerSpec, sample
from ebm_jax.types import check, examples


class Objective(NamedTuple):
    init: Callable
    prepare: Callable
    loss: Callable
    noise_conditional: bool = False
    reference_sigma: Optional[float] = None  # the sigma at which a noise-conditional E is "the model"


def run_negatives(rng_key, sampler: SamplerSpec, batch_energy_fn: Callable, starts: jax.Array, mesh=None):
    """`sampler.num_steps` steps from `starts [n, ...]` under a batched energy: `(positions [n,
    ...] with gradients stopped, metrics)`; metrics hold the mean acceptance of a Metropolis
    sampler. With a `mesh`, each device runs its slice of the chains (`samplers.sample`)."""
    final, _, infos = sample(rng_key, sampler, per_example(batch_energy_fn), starts, mesh=mesh)
    return jax.lax.stop_gradient(final.position), _sampler_metrics(infos)


def _sampler_metrics(infos) -> dict:
    """`sampler_acceptance`, the mean acceptance, for a Metropolis sampler's infos; else nothing."""
    return {"sampler_acceptance": jnp.mean(infos.acceptance_rate)} if hasattr(infos, "acceptance_rate") else {}


def _uniform_chains(rng_key, shape, bounds, dtype):
    """Chain starts `shape` drawn from Uniform(bounds)."""
    return jax.random.uniform(rng_key, shape, dtype, minval=bounds[0], maxval=bounds[1])


def _no_params_state(rng_key, batch):
    return {}, ()


def _contrastive_loss(loss: str, alpha: float, margin: float) -> Callable:
    """The loss of `prepared = (real, fake)`. Two energy calls rather than one on the
    concatenation: per-example energies are the same, and on a mesh a concatenation of two split
    batches would be re-split (an all-to-all)."""
    check(loss in ("cd", "hinge"), f"loss must be 'cd' or 'hinge', got {loss!r}")
    check(lambda: alpha >= 0, f"alpha must be >= 0, got {alpha}")

    def loss_fn(rng_key, batch_energy_fn, objective_params, prepared, batch):
        real, fake = prepared
        real_e, fake_e = batch_energy_fn(real), batch_energy_fn(fake)
        if loss == "cd":
            return losses.contrastive_divergence(real_e, fake_e, alpha)
        return losses.hinge_contrastive(real_e, fake_e, margin, alpha)

    return loss_fn


def replay_cd(
    sampler: SamplerSpec,
    bounds: Tuple[float, float],
    buffer_capacity: int = 8192,
    reinit_prob: float = 0.05,
    loss: str = "cd",
    alpha: float = 0.1,
    margin: float = 1.0,
    real_noise: float = 0.0,
) -> Objective:
    """CD with a replay buffer (Du & Mordatch 2019; the UvA tutorial's algorithm).

    Per step (keys split from the step's key as key_real, key_buffer, key_mcmc):
      real    clip(batch + real_noise * N(0, I), bounds) (the batch itself when real_noise = 0)
      starts  drawn from the buffer, each row fresh Uniform(bounds) noise with prob. `reinit_prob`
      fake    `sampler` run from the starts, clipped to `bounds`; pushed into the buffer
      loss    `loss` of E(real) against E(fake)
    The buffer starts with `batch_size` noise examples. State: `ReplayBuffer`. Metrics add
    `fresh_fraction`, the share of chains started from fresh noise.
    """
    check(lambda: 0.0 <= reinit_prob <= 1.0, f"reinit_prob must be in [0, 1], got {reinit_prob}")
    check(lambda: real_noise >= 0, f"real_noise must be >= 0, got {real_noise}")
    check(lambda: bounds[0] < bounds[1], f"bounds must be (low, high) with low < high, got {bounds}")

    def init(rng_key, batch):
        check(batch.shape[0] <= buffer_capacity,
              f"batch_size={batch.shape[0]} exceeds buffer_capacity={buffer_capacity}")
        return {}, buffers.init(rng_key, buffer_capacity, batch.shape[1:], batch.shape[0], bounds, batch.dtype)

    def prepare(rng_key, batch_energy_fn, buffer, batch, mesh=None):
        key_real, key_buffer, key_mcmc = jax.random.split(rng_key, 3)
        real = _noisy(key_real, batch, real_noise, bounds)
        starts, is_fresh = buffers.sample(key_buffer, buffer, batch.shape[0], reinit_prob, bounds)
        fake, metrics = run_negatives(key_mcmc, sampler, batch_energy_fn, starts, mesh)
        fake = jnp.clip(fake, *bounds)  # a no-op for bounded Langevin; keeps MALA / HMC in range
        metrics["fresh_fraction"] = jnp.mean(is_fresh.astype(jnp.float32))
        return (real, fake), buffers.push(buffer, fake), metrics

    return Objective(init, prepare, _contrastive_loss(loss, alpha, margin))


def _noisy(rng_key, x, scale, bounds):
    """`clip(x + scale * N(0, I), bounds)`; `x` itself when scale = 0."""
    if not scale:
        return x
    return jnp.clip(x + scale * jax.random.normal(rng_key, x.shape, x.dtype), *bounds)


def jem(
    sampler: SamplerSpec,
    bounds: Tuple[float, float],
    buffer_capacity: int = 10_000,
    reinit_prob: float = 0.05,
    px_weight: float = 1.0,
    alpha: float = 0.0,
    real_noise: float = 0.0,
    pxy_weight: float = 0.0,
    num_classes: Optional[int] = None,
) -> Objective:
    """JEM (Grathwohl et al. 2020) on labelled batches `{"x": [B, ...], "y": [B]}`, for a
    conditional energy with E(x) and E(x, y) (`energies.ClassifierEnergy`):

        loss = mean[E(x, y) - E(x)]                           cross-entropy, -log p(y | x)
             + px_weight * ([mean E(x) - mean E(x_fake)]       the log p(x) term: CD
                            + alpha * mean(E(x)^2 + E(x_fake)^2))   (the L2 stabiliser)
             + pxy_weight * ([mean E(x, y) - mean E(x_fake_y, y)]   the log p(x | y) term: CD
                             + alpha * mean(E(x, y)^2 + E(x_fake_y, y)^2))   with class chains

    x is the batch with `real_noise` Gaussian noise (JEM's data noise, 0.03 for images), clipped
    to `bounds`; x_fake comes from `replay_cd`'s buffer and `sampler` (JEM: 20 SGLD steps of size
    1 and noise 0.01, `langevin.spec(20, 1.0, 0.01)`; buffer 10,000, 5 % fresh noise). x_fake_y
    are chains of the batch's labels, each run under E(., y_i) from class y_i's ring of a
    class-conditional buffer (`buffers.init_by_class`: `num_classes` rings of
    buffer_capacity // num_classes, JEM's conditional buffer), pushed back into it.
    `px_weight = pxy_weight = 0` is the classifier alone (cross-entropy, no sampling).
    State: `{"px": ReplayBuffer}` and / or `{"pxy": ReplayBuffer}` (class axis first), for the
    terms that are on. Metrics add `loss_ce` and `p_label` (the mean p(y | x) of the true labels),
    the p(x) term's CD metrics and the p(x | y) term's with a `pxy_` prefix.
    """
    check(lambda: px_weight >= 0, f"px_weight must be >= 0, got {px_weight}")
    check(lambda: pxy_weight >= 0, f"pxy_weight must be >= 0, got {pxy_weight}")
    check(not pxy_weight or (num_classes is not None and int(num_classes) >= 1),
          f"the p(x | y) term needs num_classes >= 1, got {num_classes}")
    px = replay_cd(sampler, bounds, buffer_capacity, reinit_prob, "cd", alpha, real_noise=real_noise)
    ring = buffer_capacity // int(num_classes) if pxy_weight else 0

    def init(rng_key, batch):
        check(isinstance(batch, Mapping) and "y" in batch, "jem trains on labelled batches {'x': ..., 'y': ...}")
        x = examples(batch)
        state = {}
        if px_weight:
            state["px"] = px.init(rng_key, x)[1]
        if pxy_weight:
            check(x.shape[0] <= ring, f"batch_size={x.shape[0]} exceeds the per-class buffer "
                                      f"buffer_capacity // num_classes = {ring}")
            state["pxy"] = buffers.init_by_class(jax.random.fold_in(rng_key, 1), num_classes, ring, x.shape[1:],
                                                 x.shape[0], bounds, x.dtype)
        return {}, state

    def prepare(rng_key, batch_energy_fn, state, batch, mesh=None):
        metrics = {}
        if px_weight:
            (real, fake), buffer, metrics = px.prepare(rng_key, batch_energy_fn, state["px"], batch["x"], mesh)
            state = dict(state, px=buffer)
        else:
            real, fake = _noisy(jax.random.split(rng_key, 3)[0], batch["x"], real_noise, bounds), None
        fake_y = None
        if pxy_weight:
            key_buffer, key_mcmc = jax.random.split(jax.random.fold_in(rng_key, 1))
            starts, is_fresh = buffers.sample_by_class(key_buffer, state["pxy"], batch["y"], reinit_prob, bounds)
            fake_y, pxy_metrics = _class_negatives(key_mcmc, sampler, batch_energy_fn, starts, batch["y"])
            fake_y = jnp.clip(fake_y, *bounds)
            state = dict(state, pxy=buffers.push_by_class(state["pxy"], batch["y"], fake_y))
            metrics.update({f"pxy_{k}": v for k, v in pxy_metrics.items()},
                           pxy_fresh_fraction=jnp.mean(is_fresh.astype(jnp.float32)))
        return (real, fake, fake_y), state, metrics

    def loss(rng_key, batch_energy_fn, objective_params, prepared, batch):
        real, fake, fake_y = prepared
        energy_x, energy_xy = batch_energy_fn(real), batch_energy_fn(real, batch["y"])
        loss_ce = jnp.mean(energy_xy - energy_x)
        value = loss_ce
        metrics = {"loss_ce": loss_ce, "p_label": jnp.mean(jnp.exp(energy_x - energy_xy)),
                   "energy_real": jnp.mean(energy_x)}
        if px_weight:
            loss_px, px_metrics = losses.contrastive_divergence(energy_x, batch_energy_fn(fake), alpha)
            value = value + px_weight * loss_px
            metrics.update(px_metrics)
        if pxy_weight:
            loss_pxy, pxy_metrics = losses.contrastive_divergence(energy_xy, batch_energy_fn(fake_y, batch["y"]), alpha)
            value = value + pxy_weight * loss_pxy
            metrics.update({f"pxy_{k}": v for k, v in pxy_metrics.items()})
        return value, dict(metrics, loss=value)

    return Objective(init, prepare, loss)


def _class_negatives(rng_key, sampler: SamplerSpec, batch_energy_fn: Callable, starts: jax.Array, labels: jax.Array):
    """`sampler.num_steps` steps of chain i under E(., labels[i]) from `starts[i]`: `(positions
    with gradients stopped, metrics)`. One single-chain run per label, vmapped (under a sharded
    step the partitioner splits the vmapped chains with the batch)."""
    energy_fn = per_example(batch_energy_fn)  # (x, y) -> E(x, y)

    def one(key, start, y):
        final, _, infos = sample(key, sampler, lambda x: energy_fn(x, y), start[None])
        return final.position[0], infos

    fake, infos = jax.vmap(one)(jax.random.split(rng_key, labels.shape[0]), starts, labels)
    return jax.lax.stop_gradient(fake), _sampler_metrics(infos)


def persistent_cd(
    sampler: SamplerSpec,
    num_chains: int,
    bounds: Tuple[float, float],
    loss: str = "cd",
    alpha: float = 0.1,
    margin: float = 1.0,
) -> Objective:
    """PCD with `num_chains` persistent chains (uniform noise on `bounds` at the start), every
    chain advanced `sampler.num_steps` steps per train step and never reset. State: `[n, ...]`."""
    check(int(num_chains) >= 1, f"num_chains must be >= 1, got {num_chains}")

    def init(rng_key, batch):
        return {}, _uniform_chains(rng_key, (int(num_chains),) + batch.shape[1:], bounds, batch.dtype)

    def prepare(rng_key, batch_energy_fn, chains, batch, mesh=None):
        chains, metrics = run_negatives(rng_key, sampler, batch_energy_fn, chains, mesh)
        chains = jnp.clip(chains, *bounds)
        return (batch, chains), chains, metrics

    return Objective(init, prepare, _contrastive_loss(loss, alpha, margin))


def persistent_pt(
    sampler: SamplerSpec,
    betas,
    num_chains: int,
    bounds: Tuple[float, float],
    loss: str = "cd",
    alpha: float = 0.1,
    margin: float = 1.0,
) -> Objective:
    """PCD whose persistent chains are replica-exchange chains (`samplers.tempering` around
    `sampler`, inverse temperatures `betas [K]`, beta_0 = 1): the negatives are the beta = 1
    replicas (Desjardins et al. 2010, for RBMs with `gibbs.spec`). Every train step runs
    `sampler.num_steps` steps of the K replicas of each chain, swaps included. State:
    `(positions [n, K, ...], steps [])`, the step count keeping the even / odd swap pairs
    alternating across train steps. Metrics add `swap_acceptance` (mean over tried pairs)."""
    check(int(num_chains) >= 1, f"num_chains must be >= 1, got {num_chains}")
    betas = jnp.asarray(betas, jnp.float32)
    check(lambda: bool(betas[0] == 1), f"betas must start at 1 (the model), got {betas}")

    def init(rng_key, batch):
        chains = _uniform_chains(rng_key, (int(num_chains), betas.shape[0]) + batch.shape[1:], bounds, batch.dtype)
        return {}, (chains, jnp.zeros((), jnp.int32))

    def prepare(rng_key, batch_energy_fn, state, batch, mesh=None):
        chains, steps = state
        spec = tempering.spec(sampler, betas, step=steps)
        final, _, infos = sample(rng_key, spec, per_example(batch_energy_fn), chains, mesh=mesh)
        chains = jax.lax.stop_gradient(jnp.clip(final.replicas.position, *bounds))
        tried = jnp.sum(infos.swap_proposed)
        metrics = {"swap_acceptance": jnp.sum(infos.swap_acceptance) / jnp.maximum(tried, 1)}
        return (batch, chains[:, 0]), (chains, steps + spec.num_steps), metrics

    return Objective(init, prepare, _contrastive_loss(loss, alpha, margin))


def cd_k(sampler: SamplerSpec, loss: str = "cd", alpha: float = 0.1, margin: float = 1.0) -> Objective:
    """CD-k: `sampler.num_steps` (= k) steps started at the data batch. No state."""

    def prepare(rng_key, batch_energy_fn, state, batch, mesh=None):
        fake, metrics = run_negatives(rng_key, sampler, batch_energy_fn, batch, mesh)
        return (batch, fake), state, metrics

    return Objective(_no_params_state, prepare, _contrastive_loss(loss, alpha, margin))


def _no_negatives(rng_key, batch_energy_fn, state, batch, mesh=None):
    return (), state, {}


def dsm(sigma: float) -> Objective:
    """Denoising score matching at one noise level `sigma`."""
    check(lambda: sigma > 0, f"sigma must be > 0, got {sigma}")

    def loss(rng_key, batch_energy_fn, objective_params, prepared, batch):
        return losses.denoising_score_matching(rng_key, batch_energy_fn, batch, sigma)

    return Objective(_no_params_state, _no_negatives, loss)


def ssm(num_projections: int = 1, variance_reduced: bool = False) -> Objective:
    """Sliced score matching with `num_projections` Gaussian directions per example."""

    def loss(rng_key, batch_energy_fn, objective_params, prepared, batch):
        return losses.sliced_score_matching(rng_key, batch_energy_fn, batch, num_projections, variance_reduced)

    return Objective(_no_params_state, _no_negatives, loss)


def msdsm(sigmas) -> Objective:
    """Multi-scale DSM for a noise-conditional energy E(x, sigma); `sigmas` decreasing."""
    sigmas = tuple(float(s) for s in sigmas)
    check(sigmas and min(sigmas) > 0 and all(a > b for a, b in zip(sigmas, sigmas[1:])),
          f"sigmas must be positive and strictly decreasing, got {sigmas}")

    def loss(rng_key, batch_energy_fn, objective_params, prepared, batch):
        return losses.multiscale_dsm(rng_key, batch_energy_fn, batch, jnp.asarray(sigmas))

    return Objective(_no_params_state, _no_negatives, loss, noise_conditional=True, reference_sigma=sigmas[-1])


def nce(noise: losses.NoiseDistribution, nu: int = 1) -> Objective:
    """NCE against `noise` (e.g. `losses.fitted_gaussian(train_data)`), `nu` noise samples per
    data sample; learns `objective_params["log_z"]`."""
    check(int(nu) >= 1, f"nu must be >= 1, got {nu}")

    def init(rng_key, batch):
        return {"log_z": jnp.zeros((), batch.dtype)}, ()

    def prepare(rng_key, batch_energy_fn, state, batch, mesh=None):
        return noise.sample(rng_key, int(nu) * batch.shape[0]).astype(batch.dtype), state, {}

    def loss(rng_key, batch_energy_fn, objective_params, noise_batch, batch):
        return losses.noise_contrastive_estimation(
            batch_energy_fn(batch), batch_energy_fn(noise_batch), noise.log_prob(batch),
            noise.log_prob(noise_batch), objective_params["log_z"])

    return Objective(init, prepare, loss)


def reference_energy(objective: Objective, batch_energy_fn: Callable) -> Callable:
    """The batched energy `[B, ...] -> [B]` that the objective's model stands for:
    `batch_energy_fn` itself, or E(., reference_sigma) for a noise-conditional one."""
    if not objective.noise_conditional:
        return batch_energy_fn
    sigma = objective.reference_sigma
    return lambda x: batch_energy_fn(x, jnp.full((x.shape[0],), sigma, x.dtype))


def regularised(objective: Objective, energy_l2: float = 0.0, grad_penalty: float = 0.0) -> Objective:
    """Adds `energy_l2 * mean E(real)^2 + grad_penalty * mean ||grad_x E(real)||^2` (at the data,
    through `reference_energy`) to any objective's loss."""
    check(lambda: energy_l2 >= 0 and grad_penalty >= 0,
          f"regulariser weights must be >= 0, got {energy_l2}, {grad_penalty}")

    def loss(rng_key, batch_energy_fn, objective_params, prepared, batch):
        value, metrics = objective.loss(rng_key, batch_energy_fn, objective_params, prepared, batch)
        model = reference_energy(objective, batch_energy_fn)
        extra = {}
        if energy_l2 > 0:
            extra["loss_energy_l2"] = energy_l2 * jnp.mean(jnp.square(model(batch)))
        if grad_penalty > 0:
            extra["loss_grad_penalty"] = grad_penalty * losses.gradient_penalty(model, batch)
        value = value + sum(extra.values())
        return value, dict(metrics, **extra, loss=value)

    return objective._replace(loss=loss)
