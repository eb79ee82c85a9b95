"""Energy functions as pure Flax Linen modules.

Sign convention (stated once, used everywhere in ebm_jax): every module returns the
energy E(x), a scalar per example, with LOWER energy meaning MORE likely, p(x) ∝ exp(-E(x)).
The UvA tutorial's network returns -E (a "score"); our modules return E, so the tutorial's
score is `-model.apply(params, x)`.

Modules take a batch `[B, H, W, C]` and return `[B]`. Samplers want a function of ONE example;
`ebm_jax.energies.per_example(model.apply, params)` builds it.
"""

from ebm_jax.energies import analytic
from ebm_jax.energies.cnn import CourseCNN, TutorialCNN, per_example

__all__ = ["CourseCNN", "TutorialCNN", "analytic", "per_example"]
