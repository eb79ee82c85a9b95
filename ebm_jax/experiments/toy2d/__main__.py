"""python -m ebm_jax.experiments.toy2d [--objective cd|pcd|cdk|dsm|ssm|msdsm|nce] [--dataset ...] [any config flag]"""

import json
import sys

from ebm_jax.experiments import cli
from ebm_jax.experiments.toy2d.config import Config


def _train_and_evaluate():
    from ebm_jax.experiments.toy2d.run import train_and_evaluate  # imports JAX: after arg parsing

    return train_and_evaluate


def _summary(metrics, workdir) -> str:
    shown = {k: v for k, v in metrics.items() if k not in ("config", "mode_shares", "mmd_kernel", "mode_rule")}
    return (json.dumps(shown, indent=1)
            + f"\noutputs in {workdir}/ (metrics.json, energy_landscape.png, landscape.png, metrics.jsonl, checkpoints/)")


def main(argv=None) -> int:
    return cli.run_experiment(argv, "python -m ebm_jax.experiments.toy2d", __doc__, Config(),
                              lambda c: f"runs/toy2d/{c.dataset}_{c.objective}", _train_and_evaluate, _summary,
                              workdir_ignore=("data_dir", "dataset", "objective"))


if __name__ == "__main__":
    sys.exit(main())
