import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_jax import buffers


def _filled(capacity=64, shape=(3,), value=0.5, initial_size=64):
    buf = buffers.init(jax.random.key(0), capacity, shape, initial_size)
    return buf._replace(samples=jnp.full_like(buf.samples, value))


def test_reinit_share_is_binomial():
    """Fresh rows per batch ~ Binomial(128, 0.05). Over 400 batches: the total count within 4
    standard errors of its mean, and the dispersion of per-batch counts within 4 standard
    deviations of a chi-square with 400 degrees of freedom (normal approximation)."""
    n, p, m = 128, 0.05, 400
    buf = _filled()
    keys = jax.random.split(jax.random.key(1), m)
    starts, fresh = jax.vmap(lambda k: buffers.sample(k, buf, n, p))(keys)
    counts = np.asarray(fresh.sum(axis=1), np.float64)
    total_sd = np.sqrt(m * n * p * (1 - p))
    assert abs(counts.sum() - m * n * p) < 4 * total_sd
    dispersion = np.sum((counts - n * p) ** 2) / (n * p * (1 - p))
    assert abs(dispersion - m) < 4 * np.sqrt(2 * m)
    # Fresh rows are uniform noise, the others are exactly the stored value.
    starts, fresh = np.asarray(starts), np.asarray(fresh)
    assert np.all(starts[~fresh] == 0.5)
    assert np.all(starts[fresh] != 0.5) and np.all(np.abs(starts[fresh]) <= 1.0)


def test_sample_only_from_filled_slots():
    buf = buffers.init(jax.random.key(0), 100, (2,), initial_size=10)
    marked = buf.samples.at[:10].set(7.0)  # filled slots hold 7; the rest, noise in [-1, 1]
    buf = buf._replace(samples=marked)
    starts, fresh = buffers.sample(jax.random.key(1), buf, 1000, reinit_prob=0.0)
    assert not np.asarray(fresh).any()
    assert np.all(np.asarray(starts) == 7.0)


def test_push_ring_and_capacity():
    buf = buffers.init(jax.random.key(0), 10, (1,), initial_size=4)
    assert int(buf.size) == 4 and int(buf.cursor) == 4
    buf = buffers.push(buf, jnp.full((4, 1), 1.0))
    assert int(buf.size) == 8 and int(buf.cursor) == 8
    np.testing.assert_array_equal(buf.samples[4:8, 0], 1.0)
    buf = buffers.push(buf, jnp.full((4, 1), 2.0))  # wraps: slots 8, 9, 0, 1
    assert int(buf.size) == 10 and int(buf.cursor) == 2
    np.testing.assert_array_equal(buf.samples[[8, 9, 0, 1], 0], 2.0)
    np.testing.assert_array_equal(buf.samples[4:8, 0], 1.0)  # the newer ones survive
    buf = buffers.push(buf, jnp.full((10, 1), 3.0))
    assert int(buf.size) == 10 and int(buf.cursor) == 2
    np.testing.assert_array_equal(buf.samples[:, 0], 3.0)


def test_push_is_jittable_and_checks():
    buf = buffers.init(jax.random.key(0), 8, (2,), initial_size=2)
    out = jax.jit(buffers.push)(buf, jnp.ones((3, 2)))
    assert out.samples.shape == (8, 2) and int(out.size) == 5
    with pytest.raises(ValueError, match="capacity"):
        buffers.push(buf, jnp.ones((9, 2)))
    with pytest.raises(ValueError, match="initial_size"):
        buffers.init(jax.random.key(0), 8, (2,), initial_size=9)


def test_newest_follows_the_ring():
    buf = buffers.init(jax.random.key(0), 5, (1,), initial_size=1)
    for value in (1.0, 2.0, 3.0):  # 1 + 2 + 2 + 2 = 7 pushes into 5 slots: wraps
        buf = buffers.push(buf, jnp.full((2, 1), value))
    np.testing.assert_array_equal(buffers.newest(buf, 4)[:, 0], [2.0, 2.0, 3.0, 3.0])


def test_class_rings_read_and_write_only_their_class():
    """Three classes of capacity 4, each started with 1 noise example. Class c's filled slots are
    marked c + 10; chains of label c start only from them; a push of labels [2, 0, 2, 2]
    takes class 2's next slots in batch order (wrapping onto the oldest once full) and class 0's
    next one, and leaves class 1 alone."""
    buf = buffers.init_by_class(jax.random.key(0), 3, 4, (2,), initial_size=1)
    assert buf.samples.shape == (3, 4, 2) and buf.size.tolist() == [1, 1, 1] and buf.cursor.tolist() == [1, 1, 1]
    buf = buf._replace(samples=buf.samples.at[:, 0].set(jnp.arange(10.0, 13.0)[:, None]))
    labels = jnp.array([0, 1, 2, 2, 1, 0, 0, 2] * 50)
    starts, fresh = buffers.sample_by_class(jax.random.key(1), buf, labels, reinit_prob=0.0)
    assert not np.asarray(fresh).any()
    np.testing.assert_array_equal(np.asarray(starts)[:, 0], np.asarray(labels) + 10.0)
    out = buffers.push_by_class(buf, jnp.array([2, 0, 2, 2]), jnp.arange(4.0)[:, None] * jnp.ones((1, 2)))
    assert out.size.tolist() == [2, 1, 4] and out.cursor.tolist() == [2, 1, 0]
    np.testing.assert_array_equal(np.asarray(out.samples)[2, :, 0], [12.0, 0.0, 2.0, 3.0])
    out = buffers.push_by_class(out, jnp.array([2, 2]), jnp.array([[7.0, 7.0], [8.0, 8.0]]))  # wraps: the oldest go
    np.testing.assert_array_equal(np.asarray(out.samples)[2, :, 0], [7.0, 8.0, 2.0, 3.0])
    assert out.size.tolist() == [2, 1, 4] and out.cursor.tolist() == [2, 1, 2]
    np.testing.assert_array_equal(np.asarray(out.samples)[0, :2, 0], [10.0, 1.0])
    np.testing.assert_array_equal(np.asarray(out.samples)[1], np.asarray(buf.samples)[1])
    # with reinit_prob 1, every start is fresh uniform noise
    starts, fresh = buffers.sample_by_class(jax.random.key(2), out, labels, reinit_prob=1.0)
    assert np.asarray(fresh).all() and np.all(np.abs(np.asarray(starts)) <= 1.0)
    with pytest.raises(ValueError, match="capacity"):
        buffers.push_by_class(buf, jnp.zeros(5, jnp.int32), jnp.zeros((5, 2)))
