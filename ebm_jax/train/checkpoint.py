"""Checkpoints of any train state with orbax: `latest/` (every save) and `best/` (by a metric).

orbax writes each checkpoint into a temporary folder and renames it when complete, so a run
killed mid-write leaves the previous checkpoint readable (`latest_step` ignores partial ones).
Typed PRNG keys are stored as their raw uint32 data and re-wrapped on restore.
"""

import os
from typing import Optional

import jax
import orbax.checkpoint as ocp



class Checkpointer:
    def __init__(self, directory: str):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False)
        self._managers = {
            name: ocp.CheckpointManager(os.path.join(self.directory, name), options=options)
            for name in ("latest", "best")
        }

    def save(self, which: str, state, meta: dict) -> None:
        """Saves `state` (and JSON-able `meta`) as `which` ("latest" or "best") at its step."""
        manager = self._managers[which]
        step = int(state.step)
        if manager.latest_step() == step:
            return  # already saved at this step (e.g. end of epoch == end of run)
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(_to_storable(state)), meta=ocp.args.JsonSave(meta)
        )
        manager.save(step, args=args)
        manager.wait_until_finished()

    def latest_step(self, which: str) -> Optional[int]:
        """The step of the newest complete `which` checkpoint, None if there is none."""
        return self._managers[which].latest_step()

    def restore(self, which: str, template):
        """The newest complete `which` checkpoint as `(state, meta)`, the state shaped and typed as
        `template` (a NamedTuple with an `rng_key` field), or None if there is none."""
        manager = self._managers[which]
        step = manager.latest_step()
        if step is None:
            return None
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(_to_storable(template)), meta=ocp.args.JsonRestore()
        )
        restored = manager.restore(step, args=args)
        return _from_storable(restored.state, type(template)), dict(restored.meta)

    def close(self) -> None:
        for manager in self._managers.values():
            manager.close()


def restore_state(directory: str, which: str, template):
    """The state of the newest complete `which` checkpoint under `directory` (a fit workdir's
    `checkpoints/`), shaped as `template`; FileNotFoundError when there is none. For reading a
    finished run back, outside the fit loop."""
    checkpoints = Checkpointer(directory)
    try:
        restored = checkpoints.restore(which, template)
    finally:
        checkpoints.close()
    if restored is None:
        raise FileNotFoundError(f"no {which!r} checkpoint in {directory}")
    return restored[0]


def _to_storable(state):
    return state._replace(rng_key=jax.random.key_data(state.rng_key))


def _from_storable(stored, state_type):
    if isinstance(stored, dict):  # orbax may hand back a dict for NamedTuples
        stored = state_type(**stored)
    return stored._replace(rng_key=jax.random.wrap_key_data(stored.rng_key))
