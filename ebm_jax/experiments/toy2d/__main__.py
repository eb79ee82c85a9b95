"""python -m ebm_jax.experiments.toy2d [--objective cd|pcd|cdk|dsm|ssm|msdsm|nce] [--dataset ...] [any config flag]"""

import argparse
import json
import sys

from ebm_jax.experiments import cli
from ebm_jax.experiments.toy2d.config import Config


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m ebm_jax.experiments.toy2d", description=__doc__)
    p.add_argument("--workdir", default=None,
                   help="output folder (default: runs/toy2d/<dataset>_<objective>, plus the other settings changed)")
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
    workdir = args.workdir or cli.default_workdir(f"runs/toy2d/{config.dataset}_{config.objective}", config, Config(),
                                                  ignore=("dataset", "objective"))
    from ebm_jax.experiments.toy2d.run import train_and_evaluate  # imports JAX: after arg parsing

    try:
        metrics = train_and_evaluate(config, workdir, resume=args.resume, progress=not args.no_progress)
    except (ValueError, FileExistsError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: the latest state is saved in {workdir}/checkpoints; rerun with --resume to continue",
              file=sys.stderr)
        return 130
    shown = {k: v for k, v in metrics.items() if k not in ("config", "mode_shares", "mmd_kernel", "mode_rule")}
    print(json.dumps(shown, indent=1))
    print(f"outputs in {workdir}/ (metrics.json, landscape.png, metrics.jsonl, checkpoints/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
