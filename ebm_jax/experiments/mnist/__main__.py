"""python -m ebm_jax.experiments.mnist [--preset default|tutorial] [--workdir DIR] [any config flag]"""

import argparse
import sys

from ebm_jax.experiments import cli
from ebm_jax.experiments.mnist.config import PRESETS, Config, get_config


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m ebm_jax.experiments.mnist", description=__doc__)
    p.add_argument("--preset", choices=PRESETS, default="default",
                   help="default: 1,000 steps, minutes on a 2-core CPU; tutorial: the tutorial's exact settings")
    p.add_argument("--workdir", default=None,
                   help="output folder (default: runs/<dataset>_<preset>, plus the settings that differ from the preset)")
    p.add_argument("--resume", action="store_true", help="continue from the workdir's latest checkpoint (default: off)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: a progress bar)")
    p.add_argument("--cpu-devices", type=int, default=None,
                   help="on CPU, split the processor into this many JAX devices and each batch over them "
                        "(default: one per core; 1: a single device)")
    cli.add_runtime_flags(p)
    cli.add_distributed_flags(p)
    cli.add_flags(p.add_argument_group("settings", "the config's fields, over the preset's values; the defaults "
                                         "shown are the tutorial's (--preset default sets --max-steps 1000)"), Config())
    args = p.parse_args(argv)
    if args.cpu_devices is not None and args.cpu_devices < 1:
        p.error(f"--cpu-devices must be >= 1, got {args.cpu_devices}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    preset = get_config(args.preset)
    config = cli.apply_flags(preset, args)
    workdir = args.workdir or cli.default_workdir(f"runs/{config.dataset}_{args.preset}", config, preset)
    try:
        config.validate()
        distributed = cli.distributed_settings(args)
        cli.check_workdir(workdir)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cli.apply_runtime_flags(args)
    mesh = _device_mesh(args.cpu_devices, distributed)
    from ebm_jax.experiments.mnist.run import train_and_evaluate  # imports JAX: after arg parsing

    try:
        report = train_and_evaluate(config, workdir, resume=args.resume, progress=not args.no_progress, mesh=mesh)
    except (ValueError, FileNotFoundError, FileExistsError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(cli.interrupted_message(e, workdir), file=sys.stderr)
        return 130
    if report is None:  # a process other than 0 of a multi-process run: process 0 reports
        return 0
    means = report["mean_energy"]
    print(f"done: {report['train_steps']} steps; mean energy test {means['test_images']:.3f}, "
          f"noise {means['uniform_noise']:.3f}, generated {means['generated_samples']:.3f}; "
          f"outputs in {workdir}")
    return 0


def _device_mesh(cpu_devices, distributed=None):
    """Splits the CPU into `cpu_devices` devices (default: one per core), joins the multi-process
    run `distributed` (`parallel.initialize`'s arguments) if given, and returns a data mesh over
    all devices, or None with one device. When JAX has already started in this process (a
    notebook, a test), the default keeps the devices it has."""
    import jax

    from ebm_jax import parallel

    try:
        parallel.split_cpu(cpu_devices)
    except RuntimeError:
        if cpu_devices is not None or distributed is not None:
            raise
    if distributed is not None:
        parallel.initialize(**distributed)
        return parallel.data_mesh()
    return parallel.data_mesh() if len(jax.devices()) > 1 else None


if __name__ == "__main__":
    sys.exit(main())
