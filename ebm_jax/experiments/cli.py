"""Command-line flags derived from an experiment's config, so a new field is one edit.

A config is a frozen dataclass; a field's help text is its `metadata["help"]`
(`dataclasses.field(default=..., metadata={"help": ...})`, or `setting(default, help)`). A nested
dataclass field is a section: its fields become `--<section>-<field>` flags, and a section's
`name` field is the flag `--<section>` itself (`--sampler hmc --sampler-step-size 0.01`).

    parser = argparse.ArgumentParser(...)
    add_flags(parser, Config())
    config = apply_flags(Config(), parser.parse_args())
    flat = flatten(config)            # {"sampler.name": ..., ...}: JSON-able, for the resume check
"""

import argparse
import dataclasses
import math
import os
import sys
import typing
from typing import Any, Callable, Dict, Optional, Sequence


def setting(default, help: str, **kwargs):
    """A config field with its help text (and `choices=` if any)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for sequence defaults (the config is frozen)")
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


def add_flags(parser: argparse.ArgumentParser, config, prefix: str = "") -> None:
    """Adds a flag for every field of `config` (recursively for sections), each with its help
    text and default; values left unset parse to None (`apply_flags` keeps the config's)."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            add_flags(parser, value, f"{prefix}{field.name}-")
            continue
        flag = "--" + (prefix[:-1] if field.name == "name" and prefix else prefix + field.name).replace("_", "-")
        kind = _base_type(hints[field.name])
        # argparse %-formats help strings: a literal "%" (e.g. "1 %") must be doubled.
        help_text = f"{field.metadata.get('help', '')} (default: {_show(value)})".strip().replace("%", "%%")
        kwargs: Dict[str, Any] = dict(default=None, help=help_text, dest=_dest(prefix, field.name))
        if "choices" in field.metadata:
            kwargs["choices"] = field.metadata["choices"]
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif kind is tuple:
            parser.add_argument(flag, nargs="+", type=_tuple_item_type(hints[field.name]), **kwargs)
        else:
            parser.add_argument(flag, type=kind, **kwargs)


def apply_flags(config, args: argparse.Namespace, prefix: str = ""):
    """`config` with every flag that was given on the command line (a new frozen instance)."""
    changes = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            changes[field.name] = apply_flags(value, args, f"{prefix}{field.name}-")
            continue
        given = getattr(args, _dest(prefix, field.name), None)
        if given is not None:
            changes[field.name] = tuple(given) if isinstance(given, list) else given
    return dataclasses.replace(config, **changes)


def flatten(config, prefix: str = "") -> Dict[str, Any]:
    """`{"field": value, "section.field": value, ...}` with tuples as lists (JSON's view)."""
    flat = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            flat.update(flatten(value, f"{prefix}{field.name}."))
        else:
            flat[prefix + field.name] = list(value) if isinstance(value, tuple) else value
    return flat


def apply_flat(config, flat: Dict[str, Any], prefix: str = ""):
    """`config` with the values of a `flatten`ed dict (keys it does not know are ignored)."""
    changes = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            changes[field.name] = apply_flat(value, flat, f"{prefix}{field.name}.")
        elif prefix + field.name in flat:
            given = flat[prefix + field.name]
            changes[field.name] = tuple(given) if isinstance(given, list) else given
    return dataclasses.replace(config, **changes)


def changed_fields(config, reference) -> Dict[str, Any]:
    """The flattened fields where `config` differs from `reference`."""
    a, b = flatten(config), flatten(reference)
    return {k: v for k, v in a.items() if b.get(k) != v}


def default_workdir(base: str, config, reference, ignore=("data_dir",)) -> str:
    """`base`, plus `_field=value` for each setting where `config` differs from `reference`
    (the preset), so runs with other settings do not share a folder."""
    changed = {k: v for k, v in changed_fields(config, reference).items() if k not in ignore}
    suffix = "".join(f"_{k.replace('.', '-')}={_show(v) if not isinstance(v, list) else '-'.join(map(str, v))}"
                     for k, v in sorted(changed.items()))
    return base + suffix.replace(" ", "")


def check_ranges(config, at_least_one=(), positive=(), non_negative=(), below_one=()) -> None:
    """Raises ValueError naming the first field (dotted for sections: `sampler.num_steps`) that is
    a NaN or infinite float (any field), a `seed` outside [0, 2^32), or below 1 / not above 0 /
    below 0 / outside [0, 1) where listed; fields that are None are skipped."""
    flat = flatten(config)
    for name, value in flat.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
    seed = flat.get("seed")
    if seed is not None and not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2^32), got {seed}")
    for names, ok, rule in ((at_least_one, lambda v: v >= 1, ">= 1"), (positive, lambda v: v > 0, "> 0"),
                            (non_negative, lambda v: v >= 0, ">= 0"), (below_one, lambda v: 0 <= v < 1, "in [0, 1)")):
        for name in names:
            if flat[name] is not None and not ok(flat[name]):
                raise ValueError(f"{name} must be {rule}, got {flat[name]}")


def check_workdir(workdir: str) -> None:
    """ValueError naming `--workdir` if it is a file or cannot be created or written to (checked
    with a probe file before anything starts)."""
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ValueError(f"--workdir {workdir} is a file, not a folder")
    probe = os.path.join(workdir, f".write_probe.{os.getpid()}")  # one per process of a multi-process job
    try:
        os.makedirs(workdir, exist_ok=True)
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise ValueError(f"--workdir {workdir} cannot be written to: {e.strerror or e}") from None


def _dest(prefix, name):
    return (prefix + name).replace("-", "_")


def _base_type(hint):
    """int for `int` and `Optional[int]`, tuple for `Tuple[int, ...]`."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    return tuple if origin is tuple else hint


def _tuple_item_type(hint):
    if typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return typing.get_args(hint)[0]


def _show(value):
    return " ".join(map(str, value)) if isinstance(value, tuple) else value


def add_runtime_flags(parser: argparse.ArgumentParser) -> None:
    """`--compilation-cache DIR` and `--deterministic` (`ebm_jax.runtime`)."""
    parser.add_argument("--compilation-cache", default=None, metavar="DIR",
                        help="JAX's persistent compilation cache: a rerun loads its compiled steps (default: "
                             "$EBM_JAX_COMPILATION_CACHE, else ~/.cache/ebm_jax/xla; 'none': off)")
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic GPU kernels: the same bits on every run and exact resume on a GPU, "
                             "slower there; no change on a CPU (default: off)")


def add_distributed_flags(parser: argparse.ArgumentParser) -> None:
    """`--coordinator-address`, `--num-processes`, `--process-id` and `--distributed`: one run
    over several processes (`ebm_jax.parallel.initialize`)."""
    group = parser.add_argument_group(
        "several processes", "one run over several processes (hosts, or one per GPU) on JAX's distributed runtime; "
        "start the same command in each, with its own --process-id")
    group.add_argument("--coordinator-address", default=None, metavar="HOST:PORT",
                       help="process 0's address and a free port, the same in every process")
    group.add_argument("--num-processes", type=int, default=None, help="the number of processes of the run")
    group.add_argument("--process-id", type=int, default=None, help="this process's index, 0 to --num-processes - 1")
    group.add_argument("--distributed", action="store_true",
                       help="join the run JAX detects from its environment (SLURM, Open MPI, a TPU pod) instead of "
                            "the three flags above")


def distributed_settings(args: argparse.Namespace) -> Optional[Dict[str, Any]]:
    """The keyword arguments of `parallel.initialize` from `add_distributed_flags`' flags, None
    for a single-process run; ValueError on an incomplete or inconsistent set."""
    given = {"coordinator_address": args.coordinator_address, "num_processes": args.num_processes,
             "process_id": args.process_id}
    if args.distributed:
        if any(v is not None for v in given.values()):
            raise ValueError("--distributed detects the cluster: give it without --coordinator-address, "
                             "--num-processes and --process-id")
        return {}
    if all(v is None for v in given.values()):
        return None
    from ebm_jax import parallel  # imports JAX (without starting it)

    parallel.check_job(**given, name=lambda argument: f"--{argument.replace('_', '-')}")
    return given


def apply_runtime_flags(args: argparse.Namespace) -> None:
    """Applies `add_runtime_flags`' flags; call it before JAX starts its backends."""
    from ebm_jax import runtime  # imports JAX (without starting it)

    if args.deterministic:
        runtime.deterministic_ops()
    runtime.compilation_cache(args.compilation_cache)


def interrupted_message(error: KeyboardInterrupt, workdir: str) -> str:
    """What a command line prints on Ctrl-C or SIGTERM: the step saved (the fit loop puts it in
    the exception) and how to continue."""
    what = f" ({error})" if str(error) else ""
    return f"interrupted{what}: the state is in {workdir}/checkpoints; rerun with --resume to continue"


def run_experiment(argv: Optional[Sequence[str]], prog: str, description: str, default: Any, workdir_base: Callable,
                   load_train_and_evaluate: Callable, summary: Callable, workdir_ignore=("data_dir",)) -> int:
    """The shared command line of an experiment whose config has no presets (toy2d, rbm): the
    flags `--workdir`, `--resume`, `--no-progress` and one per config field; validation, the
    default workdir (`workdir_base(config)` plus the changed settings), the run, and clear exits
    (2 on bad settings or data, 130 on an interrupt, with the checkpoint to resume from).

    `load_train_and_evaluate()` imports and returns `train_and_evaluate(config, workdir, resume,
    progress)` (called after parsing, so `--help` does not import JAX); `summary(report,
    workdir)` is the line printed at the end."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--workdir", default=None,
                   help="output folder (default: under runs/, named by the settings that differ from the defaults)")
    p.add_argument("--resume", action="store_true", help="continue from the workdir's latest checkpoint (default: off)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: a progress bar)")
    add_runtime_flags(p)
    add_flags(p.add_argument_group("settings", "the config's fields"), default)
    args = p.parse_args(argv)
    config = apply_flags(default, args)
    try:
        config.validate()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    workdir = args.workdir or default_workdir(workdir_base(config), config, default, ignore=workdir_ignore)
    try:
        check_workdir(workdir)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    apply_runtime_flags(args)
    train_and_evaluate = load_train_and_evaluate()
    try:
        report = train_and_evaluate(config, workdir, resume=args.resume, progress=not args.no_progress)
    except (ValueError, FileNotFoundError, FileExistsError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(interrupted_message(e, workdir), file=sys.stderr)
        return 130
    print(summary(report, workdir))
    return 0
