import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax.losses import contrastive_divergence


def test_contrastive_divergence_value():
    e_real = jnp.array([-1.0, 0.5, 0.0])
    e_fake = jnp.array([2.0, 1.0, -0.5])
    loss, m = contrastive_divergence(e_real, e_fake, alpha=0.1)
    cd = np.mean([-1.0, 0.5, 0.0]) - np.mean([2.0, 1.0, -0.5])
    reg = 0.1 * np.mean(np.array([1.0, 0.25, 0.0]) + np.array([4.0, 1.0, 0.25]))
    np.testing.assert_allclose(m["loss_cd"], cd, rtol=1e-6)
    np.testing.assert_allclose(m["loss_reg"], reg, rtol=1e-6)
    np.testing.assert_allclose(loss, cd + reg, rtol=1e-6)


def test_tutorial_sign_equivalence():
    """With scores s = -E (the tutorial's output), the tutorial's formula gives the same loss."""
    real_out, fake_out = jnp.array([0.3, -0.2]), jnp.array([-1.0, 0.4])
    tutorial = 0.1 * jnp.mean(real_out**2 + fake_out**2) + (fake_out.mean() - real_out.mean())
    ours, _ = contrastive_divergence(-real_out, -fake_out, alpha=0.1)
    np.testing.assert_allclose(ours, tutorial, rtol=1e-6)


def test_gradients_push_real_down_fake_up():
    e_real, e_fake = jnp.zeros(4), jnp.zeros(4)
    g_real, g_fake = jax.grad(lambda r, f: contrastive_divergence(r, f)[0], argnums=(0, 1))(e_real, e_fake)
    np.testing.assert_allclose(g_real, 0.25)  # lowering E(real) lowers the loss
    np.testing.assert_allclose(g_fake, -0.25)
