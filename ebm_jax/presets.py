"""The UvA tutorial's settings ("Deep Energy-Based Generative Models", Lippe, UvA DL course,
tutorial 8) as library objects, for the MNIST experiment, the benchmarks and notebooks.

    tutorial_sampler()     60 Langevin steps in the tutorial's order: noise 0.005, clamp to
                           [-1, 1], gradient clamped to 0.03, step 10, clamp
    tutorial_objective()   replay-buffer CD: buffer 8192 with 5 % fresh noise, real-data noise
                           0.005 clipped to [-1, 1], CD loss with alpha = 0.1
    tutorial_optimizer()   global-norm clip 0.1, then Adam(1e-4, b1=0, b2=0.999) with the
                           learning rate x0.97 per epoch (`tutorial_schedule`)
"""

from typing import Optional

import optax

from ebm_jax.samplers import langevin
from ebm_jax.samplers.loop import SamplerSpec
from ebm_jax.train import objectives
from ebm_jax.types import check

BOUNDS = (-1.0, 1.0)


def tutorial_sampler(num_steps: int = 60, step_size: float = 10.0, noise_scale: float = 0.005,
                     grad_clip: float = 0.03, chain_group: Optional[int] = None) -> SamplerSpec:
    """The tutorial's Langevin loop (`langevin`, `order="noise_first"`) on images in [-1, 1]."""
    return langevin.spec(num_steps, step_size, noise_scale, grad_clip, BOUNDS, "noise_first", chain_group)


def tutorial_objective(sampler: Optional[SamplerSpec] = None, buffer_capacity: int = 8192,
                       reinit_prob: float = 0.05, alpha: float = 0.1, real_noise: float = 0.005,
                       loss: str = "cd", margin: float = 1.0) -> objectives.Objective:
    """`objectives.replay_cd` as the tutorial configures it (`sampler` defaults to
    `tutorial_sampler()`)."""
    sampler = tutorial_sampler() if sampler is None else sampler
    return objectives.replay_cd(sampler, BOUNDS, buffer_capacity, reinit_prob, loss, alpha, margin, real_noise)


def tutorial_optimizer(steps_per_epoch: int, learning_rate: float = 1e-4, b1: float = 0.0, b2: float = 0.999,
                       clip_norm: float = 0.1, decay_per_epoch: float = 0.97) -> optax.GradientTransformation:
    """Global-norm clipping then Adam with the learning rate times `decay_per_epoch` each epoch
    (the tutorial: clip 0.1, Adam(1e-4, betas=(0.0, 0.999)), StepLR(1, gamma=0.97))."""
    schedule = tutorial_schedule(steps_per_epoch, learning_rate, decay_per_epoch)
    return optax.chain(optax.clip_by_global_norm(clip_norm), optax.adam(schedule, b1=b1, b2=b2))


def tutorial_schedule(steps_per_epoch: int, learning_rate: float = 1e-4, decay_per_epoch: float = 0.97):
    """step -> learning rate: `learning_rate * decay_per_epoch ** (step // steps_per_epoch)`."""
    check(int(steps_per_epoch) >= 1, f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    check(learning_rate > 0, f"learning_rate must be > 0, got {learning_rate}")
    return optax.exponential_decay(learning_rate, transition_steps=steps_per_epoch, decay_rate=decay_per_epoch,
                                   staircase=True)
