"""Writes the final state of an MNIST experiment run into the package as a pretrained model
(`ebm_jax/pretrained/<name>.npz`, loaded by `ebm_jax.pretrained.load(name)`).

    python experiments/export_pretrained.py --workdir runs/tutorial --name mnist_tutorial

Stores with the weights the run's settings (config.json), data, step count, the checkpoint it
came from and the headline numbers of its metrics.json (mean energies, the edits, the OOD AUROC
and FPR@95 of -E, the sample-quality rows).
"""

import argparse
import json
import os

import jax
import numpy as np

from ebm_jax import pretrained
from ebm_jax.experiments.mnist.run import restore_params


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True, help="a finished run of python -m ebm_jax.experiments.mnist")
    p.add_argument("--name", choices=pretrained.NAMES, default="mnist_tutorial")
    p.add_argument("--checkpoint", choices=("latest", "best"), default="latest",
                   help="latest = the state its metrics.json describes")
    args = p.parse_args()
    with open(os.path.join(args.workdir, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(args.workdir, "metrics.json")) as f:
        metrics = json.load(f)
    model, variables = restore_params(args.workdir, args.checkpoint)
    variables = jax.tree_util.tree_map(np.asarray, variables)
    num_params = int(sum(np.size(v) for v in jax.tree_util.tree_leaves(variables)))
    ood = metrics.get("ood", {}).get("neg_energy", {})
    info = {
        "config": config,
        "data": metrics["data"],
        "train_steps": metrics["train_steps"],
        "checkpoint": args.checkpoint,
        "num_params": num_params,
        "results": {
            "mean_energy": metrics["mean_energy"],
            "edits_of_test_images": metrics["edits_of_test_images"],
            "one_test_image": metrics.get("one_test_image"),
            "ood_neg_energy": {k: {"auroc": v["auroc"], "fpr_at_95_tpr": v["fpr_at_95_tpr"]} for k, v in ood.items()},
            "sample_quality": metrics.get("sample_quality", {}).get("scores"),
        },
    }
    path = pretrained.weights_path(args.name)
    pretrained.save_npz(path, variables, info)
    print(f"{num_params} parameters of {model.__class__.__name__} ({args.checkpoint}, step {metrics['train_steps']}) "
          f"-> {path} ({os.path.getsize(path) / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
