"""python -m ebm_jax.experiments.rbm [--objective cd1|cd25|pcd|pt] [--dbn 500 500] [any config flag]"""

import argparse
import sys

from ebm_jax.experiments import cli
from ebm_jax.experiments.rbm.config import Config


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m ebm_jax.experiments.rbm", description=__doc__)
    p.add_argument("--workdir", default=None,
                   help="output folder (default: runs/rbm/<dataset>_<objective>, plus the other settings changed)")
    p.add_argument("--resume", action="store_true", help="continue from the workdir's latest checkpoint (default: off)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: a progress bar)")
    cli.add_flags(p.add_argument_group("settings", "the config's fields"), Config())
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    config = cli.apply_flags(Config(), args)
    try:
        config.validate()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    workdir = args.workdir or cli.default_workdir(f"runs/rbm/{config.dataset}_{config.objective}", config, Config(),
                                                  ignore=("data_dir", "dataset", "objective"))
    from ebm_jax.experiments.rbm.run import train_and_evaluate  # imports JAX: after arg parsing

    try:
        report = train_and_evaluate(config, workdir, resume=args.resume, progress=not args.no_progress)
    except (ValueError, FileNotFoundError, FileExistsError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: the latest state is saved in {workdir}/checkpoints; rerun with --resume to continue",
              file=sys.stderr)
        return 130
    ll = report["log_likelihood"]
    print(f"done: {report['train_steps']} steps; AIS log Z = {ll['log_z']:.2f} +- {ll['log_z_std_error']:.2f}; "
          f"average log p(v): test {ll['test']:.2f}, train {ll['train']:.2f} nats (+- {ll['log_z_std_error']:.2f}); "
          f"outputs in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
