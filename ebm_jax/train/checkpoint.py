"""Verified checkpoints of any train state with orbax: `latest/` (the newest `keep` saves) and
`best/` (the state where a metric peaked).

    save(which, state, meta)     refuses a state with a non-finite float (`NonFiniteStateError`);
                                 stores each leaf's shape, dtype and SHA-256 of its bytes (the
                                 manifest) in the checkpoint's meta
    restore(template)            the newest checkpoint, of either kind, that reads back and
                                 matches its manifest; a damaged one (a flipped byte, a truncated
                                 or missing file) is named, moved to `damaged/`, and the next
                                 newest is tried; None when there is none, `CheckpointError` when
                                 every one is damaged, `StructureMismatch` (nothing moved) when an
                                 intact one holds a state of other leaves or shapes

orbax checks its own metadata, not the array data, so the checksums are what catch a damaged
array.
orbax writes each checkpoint into a temporary folder and renames it when complete, so a run killed
mid-write leaves the previous checkpoint readable; the temporary folders such a kill leaves
behind are removed when a `Checkpointer` opens the folder. Typed PRNG keys are stored as their
raw uint32 data and re-wrapped on restore.

With several processes (`ebm_jax.parallel`) every process makes the same calls: orbax writes a
replicated state once and reads it back into each process; the checksums are of each process's
own copy; process 0 alone moves and deletes folders, the others wait for it.
"""

import glob
import hashlib
import os
import shutil
import sys
from typing import Dict, List, Optional, Tuple

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from ebm_jax import parallel

KINDS = ("latest", "best")


class CheckpointError(ValueError):
    """Every checkpoint in the folder is damaged."""


class StructureMismatch(ValueError):
    """The checkpoint is intact but holds a differently shaped state than the one asked for."""


class NonFiniteStateError(FloatingPointError):
    """A state with NaN or inf in a float leaf: never written."""


class Checkpointer:
    def __init__(self, directory: str, keep: int = 2):
        """`directory`: the run's `checkpoints/`; `keep`: how many `latest` saves are kept (the
        older ones are what a damaged newest one falls back to)."""
        self.directory = os.path.abspath(directory)
        self.removed_partial = _remove_partial_writes(self.directory) if parallel.is_primary() else []
        _wait_for_primary("ebm_jax_checkpoints_open")
        self._managers = {
            name: ocp.CheckpointManager(
                os.path.join(self.directory, name),
                options=ocp.CheckpointManagerOptions(max_to_keep=keep if name == "latest" else 1,
                                                     enable_async_checkpointing=False))
            for name in KINDS
        }

    def save(self, which: str, state, meta: dict) -> None:
        """Saves `state` (and JSON-able `meta`) as `which` ("latest" or "best") at its step, with
        the checksum of every leaf; `NonFiniteStateError` (nothing written) if a float leaf holds
        NaN or inf."""
        manager = self._managers[which]
        step = int(state.step)
        if manager.latest_step() == step:
            return  # already saved at this step (e.g. end of epoch == end of run)
        storable = _to_storable(state)
        leaves = manifest(parallel.host_local(storable))  # raises on a non-finite leaf
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(storable), meta=ocp.args.JsonSave(dict(meta, leaves=leaves))
        )
        manager.save(step, args=args)
        manager.wait_until_finished()

    def steps(self, which: str) -> List[int]:
        """The steps of the complete `which` checkpoints, oldest first."""
        return sorted(self._managers[which].all_steps())

    def latest_step(self, which: str) -> Optional[int]:
        """The step of the newest complete `which` checkpoint, None if there is none."""
        return self._managers[which].latest_step()

    def restore(self, template, kinds: Tuple[str, ...] = KINDS) -> Optional[Tuple[object, Dict, str, int]]:
        """`(state, meta, which, step)` of the newest intact checkpoint among `kinds` (at one
        step, `latest` before `best`), shaped and typed as `template` (a NamedTuple with an
        `rng_key` field); None if there is no checkpoint. Damaged ones are reported, moved to
        `damaged/` and skipped; `CheckpointError` if all are damaged."""
        candidates = sorted(((step, -kinds.index(which), which) for which in kinds for step in self.steps(which)),
                            reverse=True)
        damaged = []
        for step, _, which in candidates:
            try:
                state, meta = self.read(which, step, template)
            except StructureMismatch as e:
                raise StructureMismatch(f"checkpoint {os.path.join(self.directory, which, str(step))} holds a state "
                                        f"this run does not build (another objective, model or version of "
                                        f"ebm_jax?): {e}") from None
            except Exception as e:  # orbax / tensorstore errors on missing or truncated files, checksums
                reason = _short(e)
                _quiet_closed_loops()
                where = os.path.join(self.directory, which, str(step))
                moved_to = self._quarantine(which, step)
                if parallel.is_primary():
                    print(f"checkpoint {where} is damaged ({reason}); moved to {moved_to}")
                damaged.append(where)
                continue
            if damaged and parallel.is_primary():
                print(f"restoring the newest intact checkpoint instead: {which} at step {step}")
            return state, meta, which, step
        if damaged:
            raise CheckpointError(f"every checkpoint is damaged: {', '.join(damaged)}; start afresh in a new workdir")
        return None

    def read(self, which: str, step: int, template):
        """`(state, meta)` of the `which` checkpoint at `step`, verified against the leaf manifest
        saved with it. `StructureMismatch` (the checkpoint is fine, this run's state differs) or
        another exception (the checkpoint is damaged)."""
        manager = self._managers[which]
        meta = dict(manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta)
        expected = meta.pop("leaves", None)
        storable = _to_storable(template)
        if expected is not None:
            _check_structure(expected, manifest(storable, check_finite=False, hash_data=False))
        args = ocp.args.Composite(state=ocp.args.StandardRestore(storable))
        try:
            restored = manager.restore(step, args=args).state
        except ValueError as e:
            if expected is None:  # written before manifests: a mismatch or damage, it cannot tell which
                raise StructureMismatch(f"it does not read into this run's state ({_short(e)})") from e
            raise
        if expected is not None:
            found = manifest(parallel.host_local(restored), check_finite=False)
            bad = [path for path in expected if found[path]["sha256"] != expected[path]["sha256"]]
            if bad:
                raise ValueError(f"the data of {', '.join(bad)} do not match the checksums saved with it")
        return _from_storable(restored, type(template)), meta

    def _quarantine(self, which: str, step: int) -> str:
        """Moves a damaged checkpoint out of the manager's folder (so it is neither restored nor
        counted again) into `damaged/<which>-<step>`; returns where it went (process 0 moves it,
        the others wait for it)."""
        source = os.path.join(self.directory, which, str(step))
        target = os.path.join(self.directory, "damaged", f"{which}-{step}")
        suffix = 1
        while os.path.exists(target):
            target, suffix = os.path.join(self.directory, "damaged", f"{which}-{step}.{suffix}"), suffix + 1
        if parallel.is_primary():
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.move(source, target)
        _wait_for_primary(f"ebm_jax_quarantine_{which}_{step}")
        self._managers[which].reload()
        return target

    def close(self) -> None:
        for manager in self._managers.values():
            manager.close()


def manifest(tree, check_finite: bool = True, hash_data: bool = True) -> Dict[str, Dict]:
    """`{leaf path: {"shape", "dtype", "sha256"}}` of a PyTree of arrays (fetched to the host; the
    hash of its bytes only with `hash_data`); with `check_finite`, `NonFiniteStateError` naming
    the first float leaf with NaN or inf."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        name = jax.tree_util.keystr(path)
        if not hash_data:
            out[name] = {"shape": list(np.shape(leaf)), "dtype": str(np.dtype(leaf.dtype))}
            continue
        array = np.asarray(jax.device_get(leaf))
        if check_finite and np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
            raise NonFiniteStateError(f"{name} holds NaN or inf")
        out[name] = {"shape": list(array.shape), "dtype": str(array.dtype),
                     "sha256": hashlib.sha256(array.tobytes()).hexdigest()}
    return out


def _check_structure(saved: Dict[str, Dict], built: Dict[str, Dict]) -> None:
    """`StructureMismatch` naming the leaves whose presence, shape or dtype differ."""
    missing, extra = sorted(set(saved) - set(built)), sorted(set(built) - set(saved))
    differ = [f"{p} {saved[p]['dtype']}{saved[p]['shape']} vs {built[p]['dtype']}{built[p]['shape']}"
              for p in sorted(set(saved) & set(built))
              if (saved[p]["shape"], saved[p]["dtype"]) != (built[p]["shape"], built[p]["dtype"])]
    if missing or extra or differ:
        parts = ([f"only in the checkpoint: {', '.join(missing)}"] if missing else []) + \
                ([f"only in this run: {', '.join(extra)}"] if extra else []) + \
                ([f"saved vs built: {'; '.join(differ)}"] if differ else [])
        raise StructureMismatch("; ".join(parts))


def restore_state(directory: str, which: str, template):
    """The state of the newest intact `which` checkpoint under `directory` (a fit workdir's
    `checkpoints/`), shaped as `template`; FileNotFoundError when there is none. For reading a
    finished run back, outside the fit loop."""
    checkpoints = Checkpointer(directory)
    try:
        restored = checkpoints.restore(template, kinds=(which,))
    finally:
        checkpoints.close()
    if restored is None:
        raise FileNotFoundError(f"no {which!r} checkpoint in {directory}")
    return restored[0]


def _wait_for_primary(name: str) -> None:
    """With several processes, a barrier: every process waits until all have reached `name`."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def _quiet_closed_loops() -> None:
    """A failed orbax read leaves callbacks that later find their asyncio loop closed and print a
    traceback each ("Event loop is closed"), dozens at exit. After the first damaged checkpoint,
    those errors (and only those) are dropped for the rest of the process."""
    previous = sys.unraisablehook
    if getattr(previous, "_drops_closed_loops", False):
        return

    def hook(unraisable):
        error = unraisable.exc_value
        if not (isinstance(error, RuntimeError) and "Event loop is closed" in str(error)):
            previous(unraisable)

    hook._drops_closed_loops = True
    sys.unraisablehook = hook


def _short(error: Exception, limit: int = 300) -> str:
    """The first line of an error, without tensorstore's JSON spec, at most `limit` characters."""
    text = str(error).strip().splitlines()[0].split(" [tensorstore_spec")[0] if str(error).strip() else ""
    text = text or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _remove_partial_writes(directory: str) -> List[str]:
    """Deletes orbax's temporary folders (`*.orbax-checkpoint-tmp*`) that a killed save left."""
    partial = glob.glob(os.path.join(directory, "*", "*.orbax-checkpoint-tmp*"))
    for path in partial:
        shutil.rmtree(path, ignore_errors=True)
    return partial


def _to_storable(state):
    return state._replace(rng_key=jax.random.key_data(state.rng_key))


def _from_storable(stored, state_type):
    if isinstance(stored, dict):  # orbax may hand back a dict for NamedTuples
        stored = state_type(**stored)
    return stored._replace(rng_key=jax.random.wrap_key_data(stored.rng_key))
