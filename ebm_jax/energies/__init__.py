"""Energy functions as pure Flax Linen modules.

Sign convention (stated once, used everywhere in ebm_jax): every module returns the
energy E(x), a scalar per example, with LOWER energy meaning MORE likely, p(x) ∝ exp(-E(x)).
The UvA tutorial's network returns -E (a "score"); our modules return E, so the tutorial's
score is `-model.apply(params, x)`.

    TutorialCNN, CourseCNN   the tutorial's MNIST CNN                         [B, 28, 28, 1] -> [B]
    ConvAct                  conv + bias + elementwise activation as one layer (nn.Conv's params)
    ResNetEnergy             GroupNorm + Swish + spectral norm (state in `batch_stats`)
    MLPEnergy                low-dimensional data, optionally E(x, sigma)      [B, d] -> [B]
    ClassifierEnergy         JEM: a logits module [B, ...] -> [B, K] (the networks above with
                             `outputs=K`) read as E(x), E(x, y) and p(y | x)
    BernoulliRBM             RBM: F(v) [B, V] -> [B], the joint E(v, h) given h [B, H] (`rbm`)
    GaussianBernoulliRBM     the same for real-valued v
    dbn                      deep belief nets: a stack of RBMs, greedy training data, sampling
    analytic                 closed-form energies of ONE example, for tests

Modules take a batch and return `[B]`. Samplers want a function of ONE example;
`per_example(model.apply, variables)` builds it and `batched` goes back (`convert`).
"""

from ebm_jax.energies import analytic, dbn, rbm
from ebm_jax.energies.classifier import ClassifierEnergy
from ebm_jax.energies.cnn import ConvAct, CourseCNN, TutorialCNN
from ebm_jax.energies.convert import batched, per_example
from ebm_jax.energies.mlp import MLPEnergy
from ebm_jax.energies.rbm import BernoulliRBM, GaussianBernoulliRBM
from ebm_jax.energies.resnet import ResNetEnergy, spectral_update

__all__ = ["BernoulliRBM", "ClassifierEnergy", "ConvAct", "GaussianBernoulliRBM", "dbn", "rbm", "CourseCNN", "MLPEnergy", "ResNetEnergy", "TutorialCNN", "analytic", "batched", "per_example",
           "spectral_update"]
