"""python -m ebm_jax.experiments.jem [--dataset mnist|fashion_mnist] [any config flag]"""

import sys

from ebm_jax.experiments import cli
from ebm_jax.experiments.jem.config import Config


def _train_and_evaluate():
    from ebm_jax.experiments.jem.run import train_and_evaluate  # imports JAX: after arg parsing

    return train_and_evaluate


def _summary(report, workdir) -> str:
    """The side-by-side table's main rows (metrics.json has them all)."""
    lines = [f"{'':>44s}" + "".join(f"{name:>15s}" for name in report["models"])]
    main_rows = ("test_accuracy", "ece", "fashion_mnist", "/mnist", "uniform_noise", "samples")
    for row, values in report["table"].items():
        if not any(key in row for key in main_rows) or row.startswith("fpr"):
            continue
        lines.append(f"{row:>44s}" + "".join(f"{values.get(name, float('nan')):15.4f}" for name in report["models"]))
    return "\n".join(lines) + f"\noutputs in {workdir}/ (metrics.json, reliability.png, <model>/samples.png)"


def main(argv=None) -> int:
    return cli.run_experiment(argv, "python -m ebm_jax.experiments.jem", __doc__, Config(),
                              lambda c: f"runs/jem/{c.dataset}", _train_and_evaluate, _summary,
                              workdir_ignore=("data_dir", "ood_data_dir", "dataset"))


if __name__ == "__main__":
    sys.exit(main())
