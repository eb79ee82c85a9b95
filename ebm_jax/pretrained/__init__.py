"""Trained energies that ship with the package: `(model, params) = load(name)`.

    from ebm_jax import pretrained
    model, params = pretrained.load("mnist_tutorial")
    energies = model.apply(params, x)   # x: [B, 28, 28, 1] in [-1, 1] -> [B], lower = more likely

"mnist_tutorial": the UvA tutorial's CNN (`energies.TutorialCNN`, features 32: 76,993
parameters) trained with the tutorial's settings (replay-buffer CD with 60 Langevin steps,
`presets`), the final state of the reproduction run described in the README; `info(name)` gives
the run's settings, data, step count and headline numbers, stored with the weights.

Weights are `.npz` files beside this module: the variables flattened to "a/b/c" keys plus the JSON
`info` (`save_npz` / `read_npz`; the fixed feature classifiers of `eval.classifier` use the same
format). `experiments/export_pretrained.py` writes them from an experiment's workdir.
"""

import json
import os
from typing import Dict, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ebm_jax.energies import CourseCNN, TutorialCNN

WEIGHTS_DIR = os.path.dirname(__file__)
NAMES = ("mnist_tutorial",)


def save_npz(path: str, variables, info: Dict) -> None:
    """Writes `variables` (a nested dict of arrays, flattened as 'a/b/c' keys) and `info` (JSON)
    to one compressed `.npz` file."""
    flat = {"/".join(k.key for k in keys): np.asarray(v) for keys, v in jax.tree_util.tree_flatten_with_path(variables)[0]}
    np.savez_compressed(path, __info__=np.frombuffer(json.dumps(info).encode(), np.uint8), **flat)


def read_npz(path: str) -> Tuple[Dict, Dict]:
    """`(variables, info)` from a file written by `save_npz`."""
    with np.load(path) as f:
        info = json.loads(f["__info__"].tobytes().decode())
        variables: Dict = {}
        for key in f.files:
            if key == "__info__":
                continue
            node = variables
            *parents, leaf = key.split("/")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = jnp.asarray(f[key])
    return variables, info


def weights_path(name: str) -> str:
    if name not in NAMES:
        raise ValueError(f"no pretrained model named {name!r}; there are {NAMES}")
    return os.path.join(WEIGHTS_DIR, f"{name}.npz")


def info(name: str) -> Dict:
    """What is stored about `name`'s training run (settings, data, steps, results)."""
    return read_npz(weights_path(name))[1]


def load(name: str = "mnist_tutorial") -> Tuple[nn.Module, Dict]:
    """`(model, params)` of a shipped energy: `model.apply(params, x)` gives the energies `[B]` of
    images `x` `[B, 28, 28, 1]` in [-1, 1]."""
    variables, meta = read_npz(weights_path(name))
    model = TutorialCNN(features=meta["config"]["features"]) if meta["config"]["model"] == "tutorial_cnn" else CourseCNN()
    return model, variables
