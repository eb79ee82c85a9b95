"""python -m ebm_jax.experiments.rbm [--objective cd1|cd25|pcd|pt] [--dbn 500 500] [any config flag]"""

import sys

from ebm_jax.experiments import cli
from ebm_jax.experiments.rbm.config import Config


def _train_and_evaluate():
    from ebm_jax.experiments.rbm.run import train_and_evaluate  # imports JAX: after arg parsing

    return train_and_evaluate


def _summary(report, workdir) -> str:
    ll = report["log_likelihood"]
    return (f"done: {report['train_steps']} steps; AIS log Z = {ll['log_z']:.2f} +- {ll['log_z_std_error']:.2f}; "
            f"average log p(v): test {ll['test']:.2f}, train {ll['train']:.2f} nats (+- {ll['log_z_std_error']:.2f}); "
            f"outputs in {workdir}")


def main(argv=None) -> int:
    return cli.run_experiment(argv, "python -m ebm_jax.experiments.rbm", __doc__, Config(),
                              lambda c: f"runs/rbm/{c.dataset}_{c.objective}", _train_and_evaluate, _summary,
                              workdir_ignore=("data_dir", "dataset", "objective"))


if __name__ == "__main__":
    sys.exit(main())
