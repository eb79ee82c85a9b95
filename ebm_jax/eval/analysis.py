"""The tutorial's out-of-distribution analysis, over whole splits instead of one image.

The tutorial compares the model's output on random noise, training images and a single test
image before and after three edits (Gaussian noise sigma = 0.3, a flip of both image axes, and the
digit shrunk to half size in the bottom-right quadrant of an empty canvas). Here every number is a
mean over all the images given, reported as energies (lower = more likely under the model);
`ebm_jax.eval.ood` turns the same sets into detection metrics.
"""

from typing import Callable, Dict

import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax.data.batching import padded_batches


def dataset_energies(apply_fn: Callable, params, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Energies `[N]` of `images` `[N, ...]`, in fixed-size batches (one compilation)."""
    energy = jax.jit(apply_fn)
    out = [np.asarray(energy(params, jnp.asarray(batch)))[valid] for batch, valid in padded_batches(images, batch_size)]
    return np.concatenate(out)


def noisy(rng_key: jax.Array, images: np.ndarray, sigma: float = 0.3) -> np.ndarray:
    """`clip(x + sigma * N(0, I), -1, 1)`."""
    noise = np.asarray(jax.random.normal(rng_key, images.shape, jnp.float32))
    return np.clip(images + sigma * noise, -1.0, 1.0).astype(np.float32)


def flipped(images: np.ndarray) -> np.ndarray:
    """Both spatial axes reversed (the tutorial's `flip(dims=(2, 3))` on NCHW), `[N, H, W, C]`."""
    return np.ascontiguousarray(images[:, ::-1, ::-1, :])


def shrunk(images: np.ndarray) -> np.ndarray:
    """Every second pixel (the tutorial's nearest-neighbour resize to half size), pasted in the
    bottom-right quadrant of a background (-1) canvas of the same size, `[N, H, W, C]`."""
    n, h, w, c = images.shape
    out = np.full_like(images, -1.0)
    small = images[:, ::2, ::2, :]
    out[:, h - small.shape[1]:, w - small.shape[2]:, :] = small
    return out


def ood_analysis(
    apply_fn: Callable,
    params,
    rng_key: jax.Array,
    train_images: np.ndarray,
    test_images: np.ndarray,
    num_noise_images: int = 1024,
    batch_size: int = 256,
) -> Dict:
    """Mean energies of noise, train and test images, and of the edited test images.

    Returns a JSON-able dict; for each edit: mean energy before and after, the mean change and
    the share of images whose energy went up; and under "one_test_image" the tutorial's single
    example (the first test image, index 0) before and after each edit.
    """
    key_noise, key_edit = jax.random.split(rng_key)
    shape = test_images.shape[1:]
    noise = np.asarray(jax.random.uniform(key_noise, (num_noise_images, *shape), minval=-1.0, maxval=1.0))
    energy = lambda x: dataset_energies(apply_fn, params, x, batch_size)
    e_test = energy(test_images)
    report = {
        "mean_energy": {
            "uniform_noise": float(energy(noise).mean()),
            "train_images": float(energy(train_images).mean()),
            "test_images": float(e_test.mean()),
        },
        "num_images": {"noise": int(num_noise_images), "train": len(train_images), "test": len(test_images)},
        "edits_of_test_images": {},
    }
    edits = {
        "noisy_sigma_0.3": noisy(key_edit, test_images, 0.3),
        "flipped": flipped(test_images),
        "shrunk": shrunk(test_images),
    }
    one = {"test_index": 0, "energy": float(e_test[0])}
    for name, edited in edits.items():
        e_after = energy(edited)
        report["edits_of_test_images"][name] = {
            "mean_energy_before": float(e_test.mean()),
            "mean_energy_after": float(e_after.mean()),
            "mean_change": float((e_after - e_test).mean()),
            "share_higher_after": float((e_after > e_test).mean()),
        }
        one[f"energy_{name}"] = float(e_after[0])
    report["one_test_image"] = one
    return report
