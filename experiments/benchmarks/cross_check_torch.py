"""Proves that ebm_jax's TutorialCNN + Langevin loop and the PyTorch reference compute the same
thing: identical weights copied across, noise switched off.

    python experiments/benchmarks/cross_check_torch.py      # needs the `bench` extra (torch)

Weight mapping (PyTorch -> Flax): conv kernels OIHW -> HWIO; the first Dense layer's input
order differs because PyTorch flattens NCHW (c, h, w) and we flatten NHWC (h, w, c), so its
weight columns are permuted; dense weights are transposed. The PyTorch network returns -E.
Checks: energies agree to 1e-5 and five noise-free sampler steps (step 10, gradient clamp
0.03, clamps to [-1, 1]) to 1e-4, on 64 random images and 64 real-looking ones. Exit code 1 if
a check fails. Prints one JSON line.
"""

import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from torch_reference import TutorialCNN as TorchCNN  # noqa: E402
from torch_reference import langevin as torch_langevin  # noqa: E402

from ebm_jax import presets  # noqa: E402
from ebm_jax.energies import TutorialCNN, per_example  # noqa: E402
from ebm_jax.samplers import langevin, run_chains  # noqa: E402


def torch_to_flax(torch_model: TorchCNN, features: int = 32):
    """Flax params of `TutorialCNN(features)` holding the PyTorch model's weights."""
    layers = [m for m in torch_model.net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    params = {}
    for i, conv in enumerate(layers[:4]):
        params[f"Conv_{i}"] = {"kernel": conv.weight.detach().numpy().transpose(2, 3, 1, 0),
                               "bias": conv.bias.detach().numpy()}
    dense0, dense1 = layers[4], layers[5]
    c, h, w = 2 * features, 2, 2
    # Column j of the torch weight reads NCHW-flat index (c, h, w); reorder to NHWC-flat (h, w, c).
    w0 = dense0.weight.detach().numpy().reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(-1, c * h * w)
    params["Dense_0"] = {"kernel": w0.T, "bias": dense0.bias.detach().numpy()}
    params["Dense_1"] = {"kernel": dense1.weight.detach().numpy().T, "bias": dense1.bias.detach().numpy()}
    return {"params": jax.tree.map(jnp.asarray, params)}


def main() -> int:
    torch.manual_seed(0)
    torch_model = TorchCNN()
    # Give the network some size: random weights scaled so energies are O(1) and gradients vary.
    with torch.no_grad():
        for p in torch_model.parameters():
            p.mul_(3.0)
    params = torch_to_flax(torch_model)
    model = TutorialCNN()
    rng = np.random.default_rng(0)
    noise = rng.uniform(-1, 1, size=(64, 28, 28, 1)).astype(np.float32)
    blobs = np.clip(rng.normal(size=(64, 28, 28, 1)).cumsum(1).cumsum(2) / 20, -1, 1).astype(np.float32)
    images = np.concatenate([noise, blobs])  # NHWC
    nchw = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())

    e_torch = -torch_model(nchw).detach().numpy()
    e_jax = np.asarray(model.apply(params, jnp.asarray(images)))
    energy_diff = float(np.max(np.abs(e_torch - e_jax)))

    x_torch = torch_langevin(torch_model, nchw, steps=5, add_noise=False).numpy().transpose(0, 2, 3, 1)
    kernel = langevin.build_kernel("noise_first")
    sampler_params = dict(presets.tutorial_sampler().params, noise_scale=0.0)
    energy_fn = per_example(model.apply, params)
    step = lambda k, s: kernel(k, s, energy_fn, **sampler_params)
    final, _, _ = run_chains(jax.random.key(0), step, langevin.LangevinState(jnp.asarray(images)), 5)
    sampler_diff = float(np.max(np.abs(x_torch - np.asarray(final.position))))
    moved = float(np.max(np.abs(x_torch - images)))

    ok = energy_diff < 1e-5 and sampler_diff < 1e-4 and moved > 0.1
    print(json.dumps({"energy_max_abs_diff": energy_diff, "energy_scale": float(np.abs(e_jax).max()),
                      "sampler_5_steps_max_abs_diff": sampler_diff, "sampler_max_move": moved, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
