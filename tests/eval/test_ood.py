"""OOD metrics against hand-computed cases and scikit-learn (a test-only dependency)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from ebm_jax.energies import ClassifierEnergy, MLPEnergy
from ebm_jax.eval import ood


def test_hand_computed_case():
    """in = [3, 2, 2], out = [2, 1]: pairs (in > out) 4, ties 2 of 6 -> AUROC 5/6.
    Thresholds 3, 2, 1: TPR 1/3, 1, 1; FPR 0, 1/2, 1."""
    scores_in, scores_out = [3.0, 2.0, 2.0], [2.0, 1.0]
    assert ood.auroc(scores_in, scores_out) == pytest.approx(5 / 6)
    fpr, tpr, thresholds = ood.roc_points(scores_in, scores_out)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 1, 1])
    np.testing.assert_allclose(thresholds[1:], [3, 2, 1])
    assert ood.fpr_at_tpr(scores_in, scores_out, 0.95) == pytest.approx(0.5)
    assert ood.fpr_at_tpr(scores_in, scores_out, 0.3) == pytest.approx(0.0)
    # precision at the thresholds: 1/1, 3/4, 3/5 -> AP_in = 1/3 * 1 + 2/3 * 3/4 = 5/6
    assert ood.aupr_in(scores_in, scores_out) == pytest.approx(5 / 6)
    # out as positives, scores negated: thresholds -1, -2 (one out, two in tied with it), -3:
    # out-recall 1/2, 1, 1; precision 1, 2/4, 2/5 -> AP_out = 1/2 * 1 + 1/2 * 1/2
    assert ood.aupr_out(scores_in, scores_out) == pytest.approx(0.75)
    # min over thresholds of (1 - TPR)/2 + FPR/2: 0.5, 1/3, 1/4, 1/2 -> 1/4
    assert ood.detection_error(scores_in, scores_out) == pytest.approx(0.25)


def test_separated_and_identical_scores():
    assert ood.auroc([2.0, 3.0], [0.0, 1.0]) == 1.0
    assert ood.fpr_at_tpr([2.0, 3.0], [0.0, 1.0]) == 0.0
    assert ood.detection_error([2.0, 3.0], [0.0, 1.0]) == 0.0
    assert ood.auroc([1.0, 1.0], [1.0]) == 0.5
    assert ood.fpr_at_tpr([1.0, 1.0], [1.0]) == 1.0


@pytest.mark.parametrize("seed", range(3))
def test_matches_scikit_learn_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores_in = np.round(rng.normal(1.0, 1.0, 400), 1)  # rounding makes many ties
    scores_out = np.round(rng.normal(0.0, 1.0, 300), 1)
    labels = np.r_[np.ones(400), np.zeros(300)]
    scores = np.r_[scores_in, scores_out]
    assert ood.auroc(scores_in, scores_out) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert ood.aupr_in(scores_in, scores_out) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    assert ood.aupr_out(scores_in, scores_out) == pytest.approx(average_precision_score(1 - labels, -scores), abs=1e-12)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    assert ood.fpr_at_tpr(scores_in, scores_out, 0.95) == pytest.approx(fpr[np.argmax(tpr >= 0.95)], abs=1e-12)
    assert ood.detection_error(scores_in, scores_out) == pytest.approx(np.min(0.5 * (1 - tpr) + 0.5 * fpr), abs=1e-12)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="1-D"):
        ood.auroc(np.zeros((2, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="non-empty"):
        ood.auroc([], [1.0])
    with pytest.raises(ValueError, match="finite"):
        ood.auroc([np.nan], [1.0])
    with pytest.raises(ValueError, match="tpr"):
        ood.fpr_at_tpr([1.0], [0.0], 1.5)


def test_energy_scores():
    """E(x) = |x|^2 / 2 per example: -E and -|grad E| = -|x|, batched with padding."""
    apply_fn = lambda variables, x: 0.5 * jnp.sum(x**2, axis=(1, 2, 3))
    images = np.random.default_rng(0).normal(size=(5, 2, 2, 1)).astype(np.float32)
    norms = np.sqrt((images**2).reshape(5, -1).sum(1))
    np.testing.assert_allclose(ood.negative_energy(apply_fn, None, images, batch_size=2), -0.5 * norms**2, rtol=1e-5)
    np.testing.assert_allclose(ood.negative_grad_norm(apply_fn, None, images, batch_size=2), -norms, rtol=1e-5)
    table = ood.ood_table(-norms[:3], {"far": -norms[3:] - 10})
    assert set(table["far"]) == set(ood.METRICS) and table["far"]["auroc"] == 1.0


def test_max_probability_score_of_a_classifier_energy():
    model = ClassifierEnergy(MLPEnergy(features=(8,), outputs=3))
    x = jax.random.normal(jax.random.key(0), (5, 2))
    v = model.init(jax.random.key(1), x)
    score = ood.max_probability_score(model.apply)(v, x)
    np.testing.assert_allclose(score, jnp.max(jax.nn.softmax(model.apply(v, x, method="logits"), -1), -1), rtol=1e-6)
