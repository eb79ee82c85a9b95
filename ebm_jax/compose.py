"""The energy algebra: new energies from old ones, for sampling, tempering, AIS and generation.

Every function takes and returns energy functions of ONE example (`energy_fn(x) -> []`, lower =
more likely, p(x) ∝ exp(-E(x))), so the result plugs into any sampler:

    conjunction(E_1, ..., E_n)      sum_i E_i                 p ∝ prod_i p_i          (AND)
    disjunction(E_1, ..., E_n)      -logsumexp_i(-E_i)         p ∝ sum_i exp(-E_i)     (OR)
    negation(E_1, E_2, w)           E_1 - w E_2               p ∝ p_1 / p_2^w         (AND NOT)
    difference(E, E_part)           -log(e^-E - e^-E_part)     p - p_part              (NOT, within one model)
    temper(E, T)                    E / T                     p ∝ p^(1/T)
    interpolate(E_0, E_1, beta)     (1 - beta) E_0 + beta E_1  the geometric path p_0^(1-b) p_1^b
    condition(E, y)                 x -> E(x, y)              a conditional energy at fixed y
    clamp(E, mask, observed)        x -> E(where(mask, observed, x))

These are the compositions of Du, Li & Mordatch (2020, "Compositional visual generation with
energy based models"). `difference` is the NOT within one joint model, p(x, y not in A) =
p(x) - p(x, y in A): a density wherever `E_part` is a part of `E` (exp(-E_part) < exp(-E), as a
classifier energy's E(x, y) is of its E(x)). `negation` of such a pair is not one: for a
classifier energy, E(x) - w E(x, y) falls as the logit of y rises once p(y | x) > w, so chains
near class y are pulled into it. The geometric path is the one of annealed importance sampling
(Neal 2001) and of tempering. `clamp` is inpainting: the entries where `mask` is True are held at
`observed`, so the energy does not depend on the sampler's values there (their gradient is zero)
and the free entries are distributed as p(x_free | x_observed); read a sample off with
`fill(mask, observed, x)`.

Extra arguments pass through unchanged: for an energy with latent units, `energy_fn(v, h)` is
the joint energy (`energies.rbm`), and `temper` / `interpolate` of it are the tempered joint and
the joint geometric path that block Gibbs (`samplers.gibbs`) samples.
"""

from typing import Any, Callable

import jax
import jax.numpy as jnp

from ebm_jax.types import ArrayTree, EnergyFn, check


def conjunction(*energy_fns: EnergyFn) -> EnergyFn:
    """AND: `x -> sum_i E_i(x)`, the product of the densities (unnormalised)."""
    check(len(energy_fns) >= 1, "conjunction needs at least one energy")
    return lambda x, *extra: sum(fn(x, *extra) for fn in energy_fns)


def disjunction(*energy_fns: EnergyFn) -> EnergyFn:
    """OR: `x -> -logsumexp_i(-E_i(x))`, the sum of the unnormalised densities exp(-E_i): each
    component keeps the weight its normaliser Z_i gives it (Z_i / sum_j Z_j)."""
    check(len(energy_fns) >= 1, "disjunction needs at least one energy")
    return lambda x, *extra: -jax.nn.logsumexp(jnp.stack([-fn(x, *extra) for fn in energy_fns]))


def negation(energy_fn: EnergyFn, other: EnergyFn, weight: float = 1.0) -> EnergyFn:
    """AND NOT: `x -> E(x) - weight * E_other(x)`, density p / p_other^weight. With `weight` < 1
    the result stays normalisable wherever E grows at least as fast as E_other."""
    check(lambda: weight >= 0, f"weight must be >= 0, got {weight}")
    return lambda x, *extra: energy_fn(x, *extra) - weight * other(x, *extra)


def difference(energy_fn: EnergyFn, part: EnergyFn) -> EnergyFn:
    """NOT within one model: `x -> -log(exp(-E(x)) - exp(-E_part(x)))`, the density p - p_part
    (e.g. `difference(E, condition(E, y))` of a classifier energy: p(x, label != y)). Needs
    E_part > E (the part's density below the whole's); computed as
    E - log(-expm1(min(E - E_part, -1e-6))), finite where p(part | x) rounds to 1."""
    def energy(x, *extra):
        whole = energy_fn(x, *extra)
        return whole - jnp.log(-jnp.expm1(jnp.minimum(whole - part(x, *extra), -1e-6)))

    return energy


def temper(energy_fn: EnergyFn, temperature: float) -> EnergyFn:
    """`x -> E(x) / temperature`: T > 1 flattens the density, T < 1 sharpens it (for a Gaussian,
    the variance is multiplied by T)."""
    check(lambda: temperature > 0, f"temperature must be > 0, got {temperature}")
    return lambda x, *extra: energy_fn(x, *extra) / temperature


def interpolate(energy_fn0: EnergyFn, energy_fn1: EnergyFn, beta) -> EnergyFn:
    """The geometric path `x -> (1 - beta) E_0(x) + beta E_1(x)`, beta in [0, 1] (may be traced:
    AIS and tempering scan over it)."""
    check(lambda: 0 <= beta <= 1, f"beta must be in [0, 1], got {beta}")
    return lambda x, *extra: (1.0 - beta) * energy_fn0(x, *extra) + beta * energy_fn1(x, *extra)


def condition(energy_fn: Callable[[ArrayTree, Any], jax.Array], y) -> EnergyFn:
    """`x -> E(x, y)`: a conditional energy (a class label, a noise level sigma) at a fixed `y`."""
    return lambda x: energy_fn(x, y)


def clamp(energy_fn: EnergyFn, mask, observed) -> EnergyFn:
    """Inpainting: `x -> E(fill(mask, observed, x))`; `mask` (bool, like one example or
    broadcastable to it) marks the observed entries."""
    return lambda x, *extra: energy_fn(fill(mask, observed, x), *extra)


def fill(mask, observed, x):
    """`where(mask, observed, x)`: a sample of a `clamp`ed energy with its observed entries set."""
    return jnp.where(mask, observed, x)
