"""python -m ebm_jax.experiments.toy2d [--objective cd|pcd|cdk|dsm|ssm|msdsm|nce] [--dataset ...]"""

import argparse
import json
import sys

from ebm_jax.experiments.toy2d.config import DATASETS, OBJECTIVES, get_config


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m ebm_jax.experiments.toy2d", description=__doc__)
    p.add_argument("--objective", choices=OBJECTIVES, default="dsm")
    p.add_argument("--dataset", choices=DATASETS, default="eight_gaussians")
    p.add_argument("--workdir", default=None, help="output folder (default: runs/toy2d/<dataset>_<objective>)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--contrastive-loss", choices=("cd", "hinge"), default=None, help="cd / pcd / cdk only")
    p.add_argument("--alpha", type=float, default=None, help="L2 energy term of the CD loss (default 0.1)")
    p.add_argument("--mcmc-steps", type=int, default=None)
    p.add_argument("--energy-l2", type=float, default=None)
    p.add_argument("--grad-penalty", type=float, default=None)
    p.add_argument("--eval-steps", type=int, default=None)
    p.add_argument("--num-eval-samples", type=int, default=None)
    p.add_argument("--grid-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    names = ("objective", "dataset", "steps", "batch_size", "learning_rate", "contrastive_loss", "alpha", "mcmc_steps",
             "energy_l2", "grad_penalty", "eval_steps", "num_eval_samples", "grid_size", "seed")
    try:
        config = get_config(**{k: getattr(args, k) for k in names if getattr(args, k) is not None})
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    workdir = args.workdir or f"runs/toy2d/{config.dataset}_{config.objective}"
    from ebm_jax.experiments.toy2d.run import train_and_evaluate  # imports JAX: after arg parsing

    try:
        metrics = train_and_evaluate(config, workdir, progress=not args.no_progress)
    except FloatingPointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    shown = {k: v for k, v in metrics.items() if k not in ("config", "mode_shares", "mmd_kernel", "mode_rule")}
    print(json.dumps(shown, indent=1))
    print(f"outputs in {workdir}/ (metrics.json, landscape.png, train_log.jsonl)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
