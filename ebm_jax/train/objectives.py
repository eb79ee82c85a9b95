"""Objectives: a loss plus where its samples come from, pluggable into one train step.

An `Objective` is three pure functions (energies here are BATCHED, `[B, ...] -> [B]`, or
`(x [B, ...], sigma [B]) -> [B]` when `noise_conditional`):

    init(rng_key, batch)                                  -> (objective_params, objective_state)
    prepare(rng_key, energy_fn, objective_state, batch)   -> (negatives, objective_state)
    loss(rng_key, energy_fn, objective_params, negatives, batch) -> (loss, metrics)

`prepare` runs with the params frozen (the negative phase: MCMC, noise draws); `loss` is what
gets differentiated. `objective_params` are learned with the model (NCE's log Z); the
`objective_state` is carried between steps (a replay buffer, persistent chains, or nothing).

    replay_cd       chains start from a replay buffer (5 % fresh noise): the tutorial's PCD
    persistent_cd   a fixed set of persistent chains, all advanced every step (Tieleman 2008)
    cd_k            k sampler steps from the data batch itself (Hinton 2002)
    dsm, ssm, msdsm score matching (single sigma, sliced, multi-scale with E(x, sigma))
    nce             noise-contrastive estimation with a learned log Z
    regularised     adds alpha * mean E(real)^2 and a gradient penalty to any of them

The contrastive ones take `loss="cd"` (CD + alpha L2) or `loss="hinge"` (with `margin`).
"""

from typing import Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from ebm_jax import buffers, losses, parallel
from ebm_jax.samplers import langevin
from ebm_jax.samplers.loop import run_chains


class Objective(NamedTuple):
    init: Callable
    prepare: Callable
    loss: Callable
    noise_conditional: bool = False
    reference_sigma: Optional[float] = None  # the sigma at which a noise-conditional E is "the model"


class ChainSampler(NamedTuple):
    """A sampler of the common contract and how long to run it: `init(position, energy_fn)`,
    `kernel(rng_key, state, energy_fn, **params)`, `num_steps` per train step.

    `draw`: optional `draw(rng_key, state) -> draws`; when given, `kernel` is the matching move,
    `kernel(draws, state, energy_fn, **params)`, and the draws are made a block of steps ahead
    (`samplers.loop`; e.g. `langevin.draw` with `langevin.build_move(...)`).
    `chain_group`: optional; run each device's chains in groups of at most this many, one group
    after another (`run_chains(..., chain_group=)`: the same numbers; on a CPU, groups of 64
    images kept the tutorial CNN's activations in cache, see `experiments/benchmarks/`)."""

    init: Callable
    kernel: Callable
    params: dict
    num_steps: int
    draw: Optional[Callable] = None
    chain_group: Optional[int] = None


def langevin_sampler(
    step_size: float,
    num_steps: int,
    noise_scale: Optional[float] = None,
    grad_clip: Optional[float] = None,
    bounds: Optional[Tuple[float, float]] = None,
) -> ChainSampler:
    """Textbook (grad-first) Langevin; noise sqrt(2 step_size) unless `noise_scale` is given."""
    langevin.check_params(step_size, noise_scale, grad_clip, bounds)
    if int(num_steps) < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    params = dict(step_size=step_size, noise_scale=noise_scale, grad_clip=grad_clip, bounds=bounds)
    return ChainSampler(langevin.init, langevin.build_move("grad_first"), params, int(num_steps), langevin.draw)


def run_sampler(rng_key, sampler: ChainSampler, energy_fn: Callable, starts: jax.Array, mesh=None):
    """Runs `sampler.num_steps` steps from `starts [n, ...]` under a batched `energy_fn`;
    returns `(positions [n, ...], infos [steps, n, ...])` with the positions' gradients stopped.
    With a `mesh` (axis `parallel.DATA_AXIS`), each device runs its slice of the chains
    (`parallel.shard_chains`), drawing the same numbers as one device would."""
    axis_name = None if mesh is None else parallel.DATA_AXIS

    def run(key, starts):
        energy_one = lambda x: energy_fn(x[None])[0]
        chains = jax.vmap(lambda x: sampler.init(x, energy_one))(starts)
        step = lambda first, state: sampler.kernel(first, state, energy_one, **sampler.params)
        final, _, infos = run_chains(key, step, chains, sampler.num_steps, axis_name=axis_name, draw=sampler.draw,
                                     chain_group=sampler.chain_group)
        return jax.lax.stop_gradient(final.position), infos

    return run(rng_key, starts) if mesh is None else parallel.shard_chains(run, mesh)(rng_key, starts)


def _no_params_state(rng_key, batch):
    return {}, ()


def _contrastive_loss(loss: str, alpha: float, margin: float) -> Callable:
    if loss not in ("cd", "hinge"):
        raise ValueError(f"loss must be 'cd' or 'hinge', got {loss!r}")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")

    def loss_fn(rng_key, energy_fn, objective_params, fake, batch):
        energies = energy_fn(jnp.concatenate([batch, fake]))
        real_e, fake_e = energies[: batch.shape[0]], energies[batch.shape[0]:]
        if loss == "cd":
            return losses.contrastive_divergence(real_e, fake_e, alpha)
        return losses.hinge_contrastive(real_e, fake_e, margin, alpha)

    return loss_fn


def replay_cd(
    sampler: ChainSampler,
    bounds: Tuple[float, float],
    buffer_capacity: int = 8192,
    reinit_prob: float = 0.05,
    loss: str = "cd",
    alpha: float = 0.1,
    margin: float = 1.0,
) -> Objective:
    """The tutorial's CD: chain starts from a replay buffer with `reinit_prob` fresh uniform noise
    on `bounds`, the sampled negatives pushed back. State: `ReplayBuffer`."""
    if not 0.0 <= reinit_prob <= 1.0:
        raise ValueError(f"reinit_prob must be in [0, 1], got {reinit_prob}")

    def init(rng_key, batch):
        return {}, buffers.init(rng_key, buffer_capacity, batch.shape[1:], batch.shape[0], bounds, batch.dtype)

    def prepare(rng_key, energy_fn, buffer, batch):
        key_buffer, key_mcmc = jax.random.split(rng_key)
        starts, _ = buffers.sample(key_buffer, buffer, batch.shape[0], reinit_prob, bounds)
        fake, _ = run_sampler(key_mcmc, sampler, energy_fn, starts)
        fake = jnp.clip(fake, *bounds)
        return fake, buffers.push(buffer, fake)

    return Objective(init, prepare, _contrastive_loss(loss, alpha, margin))


def persistent_cd(
    sampler: ChainSampler,
    num_chains: int,
    bounds: Tuple[float, float],
    loss: str = "cd",
    alpha: float = 0.1,
    margin: float = 1.0,
) -> Objective:
    """PCD with `num_chains` persistent chains (uniform noise on `bounds` at the start), every
    chain advanced `sampler.num_steps` steps per train step and never reset. State: `[n, ...]`."""
    if int(num_chains) < 1:
        raise ValueError(f"num_chains must be >= 1, got {num_chains}")

    def init(rng_key, batch):
        low, high = bounds
        shape = (int(num_chains),) + batch.shape[1:]
        return {}, jax.random.uniform(rng_key, shape, batch.dtype, minval=low, maxval=high)

    def prepare(rng_key, energy_fn, chains, batch):
        chains, _ = run_sampler(rng_key, sampler, energy_fn, chains)
        chains = jnp.clip(chains, *bounds)
        return chains, chains

    return Objective(init, prepare, _contrastive_loss(loss, alpha, margin))


def cd_k(sampler: ChainSampler, loss: str = "cd", alpha: float = 0.1, margin: float = 1.0) -> Objective:
    """CD-k: `sampler.num_steps` (= k) steps started at the data batch. No state."""

    def prepare(rng_key, energy_fn, state, batch):
        fake, _ = run_sampler(rng_key, sampler, energy_fn, batch)
        return fake, state

    return Objective(_no_params_state, prepare, _contrastive_loss(loss, alpha, margin))


def _no_negatives(rng_key, energy_fn, state, batch):
    return (), state


def dsm(sigma: float) -> Objective:
    """Denoising score matching at one noise level `sigma`."""
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")

    def loss(rng_key, energy_fn, objective_params, negatives, batch):
        return losses.denoising_score_matching(rng_key, energy_fn, batch, sigma)

    return Objective(_no_params_state, _no_negatives, loss)


def ssm(num_projections: int = 1, variance_reduced: bool = False) -> Objective:
    """Sliced score matching with `num_projections` Gaussian directions per example."""

    def loss(rng_key, energy_fn, objective_params, negatives, batch):
        return losses.sliced_score_matching(rng_key, energy_fn, batch, num_projections, variance_reduced)

    return Objective(_no_params_state, _no_negatives, loss)


def msdsm(sigmas) -> Objective:
    """Multi-scale DSM for a noise-conditional energy E(x, sigma); `sigmas` decreasing."""
    sigmas = tuple(float(s) for s in sigmas)
    if not sigmas or min(sigmas) <= 0 or any(a <= b for a, b in zip(sigmas, sigmas[1:])):
        raise ValueError(f"sigmas must be positive and strictly decreasing, got {sigmas}")

    def loss(rng_key, energy_fn, objective_params, negatives, batch):
        return losses.multiscale_dsm(rng_key, energy_fn, batch, jnp.asarray(sigmas))

    return Objective(_no_params_state, _no_negatives, loss, noise_conditional=True, reference_sigma=sigmas[-1])


def nce(noise: losses.NoiseDistribution, nu: int = 1) -> Objective:
    """NCE against `noise` (e.g. `losses.fitted_gaussian(train_data)`), `nu` noise samples per
    data sample; learns `objective_params["log_z"]`."""
    if int(nu) < 1:
        raise ValueError(f"nu must be >= 1, got {nu}")

    def init(rng_key, batch):
        return {"log_z": jnp.zeros((), batch.dtype)}, ()

    def prepare(rng_key, energy_fn, state, batch):
        return noise.sample(rng_key, int(nu) * batch.shape[0]).astype(batch.dtype), state

    def loss(rng_key, energy_fn, objective_params, noise_batch, batch):
        energies = energy_fn(jnp.concatenate([batch, noise_batch]))
        n = batch.shape[0]
        return losses.noise_contrastive_estimation(
            energies[:n], energies[n:], noise.log_prob(batch), noise.log_prob(noise_batch), objective_params["log_z"]
        )

    return Objective(init, prepare, loss)


def reference_energy(objective: Objective, energy_fn: Callable) -> Callable:
    """The batched energy `[B, ...] -> [B]` that the objective's model stands for: `energy_fn`
    itself, or E(., reference_sigma) for a noise-conditional one."""
    if not objective.noise_conditional:
        return energy_fn
    sigma = objective.reference_sigma
    return lambda x: energy_fn(x, jnp.full((x.shape[0],), sigma, x.dtype))


def regularised(objective: Objective, energy_l2: float = 0.0, grad_penalty: float = 0.0) -> Objective:
    """Adds `energy_l2 * mean E(real)^2 + grad_penalty * mean ||grad_x E(real)||^2` (at the data,
    through `reference_energy`) to any objective's loss."""
    if energy_l2 < 0 or grad_penalty < 0:
        raise ValueError(f"regulariser weights must be >= 0, got {energy_l2}, {grad_penalty}")

    def loss(rng_key, energy_fn, objective_params, negatives, batch):
        value, metrics = objective.loss(rng_key, energy_fn, objective_params, negatives, batch)
        model = reference_energy(objective, energy_fn)
        extra = {}
        if energy_l2 > 0:
            extra["loss_energy_l2"] = energy_l2 * jnp.mean(jnp.square(model(batch)))
        if grad_penalty > 0:
            extra["loss_grad_penalty"] = grad_penalty * losses.gradient_penalty(model, batch)
        value = value + sum(extra.values())
        return value, dict(metrics, **extra, loss=value)

    return objective._replace(loss=loss)
