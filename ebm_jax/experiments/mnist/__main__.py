"""python -m ebm_jax.experiments.mnist [--preset default|tutorial] [--workdir DIR] ..."""

import argparse
import dataclasses
import signal
import sys

from ebm_jax.experiments.mnist.config import PRESETS, get_config


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m ebm_jax.experiments.mnist", description=__doc__)
    p.add_argument("--preset", choices=PRESETS, default="default",
                   help="default: ~8 min on a 2-core CPU; tutorial: the tutorial's exact settings")
    p.add_argument("--workdir", default=None, help="output folder (default: runs/<dataset>_<preset>)")
    p.add_argument("--data-dir", default=None, help="folder with the four IDX files")
    p.add_argument("--dataset", choices=("mnist", "fashion_mnist"), default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--max-steps", type=int, default=None, help="cap on the total number of train steps")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--sampler", choices=("langevin", "mala", "hmc"), default=None,
                   help="sampler of the negatives (default: the tutorial's Langevin loop)")
    p.add_argument("--mcmc-steps", type=int, default=None, help="sampler steps per train step")
    p.add_argument("--step-size", type=float, default=None, help="Langevin step size")
    p.add_argument("--mala-step-size", type=float, default=None)
    p.add_argument("--hmc-step-size", type=float, default=None)
    p.add_argument("--hmc-leapfrog-steps", type=int, default=None)
    p.add_argument("--max-eval-images", type=int, default=None, help="cap on test images evaluated")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue from the workdir's latest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--cpu-devices", type=int, default=None,
                   help="on CPU, split the processor into this many JAX devices and each batch over "
                        "them (default: one per core; 1: a single device)")
    args = p.parse_args(argv)
    if args.cpu_devices is not None and args.cpu_devices < 1:
        p.error(f"--cpu-devices must be >= 1, got {args.cpu_devices}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    config = get_config(args.preset)
    overrides = {k: getattr(args, k) for k in ("data_dir", "dataset", "epochs", "max_steps", "batch_size",
                                                 "sampler", "mcmc_steps", "step_size", "mala_step_size",
                                                 "hmc_step_size", "hmc_leapfrog_steps", "max_eval_images", "seed")}
    config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    workdir = args.workdir or f"runs/{config.dataset}_{args.preset}"
    mesh = _device_mesh(args.cpu_devices)
    from ebm_jax.experiments.mnist.run import train_and_evaluate  # imports JAX: after arg parsing

    signal.signal(signal.SIGTERM, _interrupt)  # a scheduler's kill saves like Ctrl-C does
    try:
        report = train_and_evaluate(config, workdir, resume=args.resume, progress=not args.no_progress, mesh=mesh)
    except (ValueError, FileNotFoundError, FileExistsError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: the latest state is saved in {workdir}/checkpoints; "
              "rerun with --resume to continue", file=sys.stderr)
        return 130
    means = report["mean_energy"]
    print(f"done: {report['train_steps']} steps; mean energy test {means['test_images']:.3f}, "
          f"noise {means['uniform_noise']:.3f}, generated {means['generated_samples']:.3f}; "
          f"outputs in {workdir}")
    return 0


def _device_mesh(cpu_devices):
    """Splits the CPU into `cpu_devices` devices (default: one per core) and returns a data mesh
    over all devices, or None with one device. When JAX has already started in this process (a
    notebook, a test), the default keeps the devices it has."""
    import jax

    from ebm_jax import parallel

    try:
        parallel.split_cpu(cpu_devices)
    except RuntimeError:
        if cpu_devices is not None:
            raise
    return parallel.data_mesh() if len(jax.devices()) > 1 else None


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    sys.exit(main())
