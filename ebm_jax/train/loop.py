"""`fit`: the host-side training loop every experiment runs.

    state, summary = fit(train_step, state, batch_fn, num_steps, workdir, hooks=..., ...)

Per step t (from the restored step on): `state, metrics = train_step(state, batch_fn(t))`. Around
it, on the host and never inside the jitted step:
  inputs       each batch is checked before its step (`types.check_batch`: a float, finite,
               non-empty array, within `batch_bounds` when given)
  progress     a tqdm bar with the live loss (and energies, when the objective reports them)
  logging      every `log_every` steps the step's metrics go to `workdir/metrics.jsonl` and
               TensorBoard (`train/...`), with `extra_metrics(t)` (e.g. the learning rate) and,
               after a rollback, `learning_rate_scale`
  divergence   at a logged step: a non-finite metric; an energy (`energy_real`, `energy_fake`)
               above `runaway` times the median of its recent magnitudes, floored at 1 (so
               above `runaway` itself before there is a history); the two equal to the last
               bit at two logged steps in a row (a network collapsed to a constant); and at a
               save: a non-finite leaf anywhere in the state. Without
               `rollback` the run stops with `FloatingPointError`; with `Rollback(make_step)` it
               goes back to the newest intact checkpoint (the initial state if there is none),
               multiplies the learning rate by `factor` (`make_step(scale)` builds the step),
               logs `event/rollback` and continues, up to `max_rollbacks` times. A state with a
               NaN or inf is never written, so never `best`.
  hooks        `Hook(fn, every)`: `fn(state, writer) -> {name: value}` after every `every` steps
               and after the last one, logged under the hook's prefix (`val/` by default); the
               tutorial's per-epoch callbacks are hooks
  checkpoints  verified orbax checkpoints (`train.checkpoint`): `latest` every
               `checkpoint_every` steps, whenever `best_metric` improves and on the way out (the
               end, an error, Ctrl-C or SIGTERM); `best` where the hook metric `best_metric` was
               highest, written after `latest` at the same step (whose meta names it), so a
               kill between the two is repaired on resume
  one run      a workdir is locked while a run uses it (`workdir/.lock`); a second run there is
               refused naming the process that holds it
  resume       `resume=True` continues from the newest intact checkpoint (a damaged one is
               named and skipped); rows of `metrics.jsonl` after that step, and a torn last
               line, are dropped. `config` (a JSON-able dict of the run's settings) is saved as
               `workdir/config.json`; a resumed run must agree with it on every field but those
               in `resume_may_change`
  interrupts   SIGTERM and Ctrl-C are held while a step (and its hooks) runs: the step
               finishes, its state is saved as `latest`, and `KeyboardInterrupt` is raised
               naming the step (a second Ctrl-C raises at once)

Several processes (`parallel.initialize`, a mesh over all their devices): every process runs
`fit` with the same arguments; `batch_fn(t)` returns this process's rows of the global batch
(`parallel.process_rows`) and `place_batch` joins them (`parallel.global_batch`). Process 0 holds
the lock, logs, shows progress and writes the config; every process takes part in each
checkpoint (orbax writes the replicated state once). Decisions that every process must take
alike (divergence, a better hook metric) use process 0's values; a signal to any process stops
all of them at the next logged step. Hooks get a process-local copy of the state
(`parallel.host_local`).

Exact resume needs `batch_fn(t)` to depend on t alone (`data.train_batch_indices` gives a
seeded permutation per epoch) and the step's randomness on the state alone (`fold_in(key, t)`):
then a resumed run reproduces an uninterrupted one bit for bit on CPU.
"""

import fcntl
import json
import os
import signal
import socket
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import jax
import numpy as np
from tqdm.auto import tqdm

from ebm_jax import parallel
from ebm_jax.train.checkpoint import Checkpointer, NonFiniteStateError
from ebm_jax.train.logging import MetricWriter, truncate_metrics
from ebm_jax.types import check_batch

ENERGY_METRICS = ("energy_real", "energy_fake")
_HISTORY = 20        # logged steps of energy history the runaway test compares against


class Hook(NamedTuple):
    """`fn(state, writer) -> {name: float}` run after every `every` steps and after the last step;
    the values are logged under `prefix`, and `fit(best_metric=name)` may select by one of them."""

    fn: Callable
    every: int
    prefix: str = "val/"


class Rollback(NamedTuple):
    """What `fit` does on divergence: back to the newest intact checkpoint, the learning rate
    times `factor`, at most `max_rollbacks` times. `make_step(scale)` returns the train step with
    the learning rate (and anything else the experiment scales) multiplied by `scale`."""

    make_step: Callable[[float], Callable]
    factor: float = 0.5
    max_rollbacks: int = 3


def fit(
    train_step: Callable,
    state,
    batch_fn: Callable[[int], Any],
    num_steps: int,
    workdir: str,
    *,
    hooks: Sequence[Hook] = (),
    log_every: int = 10,
    checkpoint_every: Optional[int] = None,
    best_metric: Optional[str] = None,
    resume: bool = False,
    config: Optional[Dict] = None,
    resume_may_change: Sequence[str] = (),
    place_state: Callable = lambda state: state,
    place_batch: Optional[Callable] = None,
    extra_metrics: Optional[Callable[[int], Dict[str, float]]] = None,
    rollback: Optional[Rollback] = None,
    runaway: float = 1e3,
    batch_bounds: Optional[Tuple[float, float]] = None,
    progress: bool = True,
    tensorboard: bool = True,
) -> Tuple[Any, Dict]:
    """Trains from `state` (or from `workdir`'s newest intact checkpoint with `resume`) to
    `num_steps`.

    Args:
      train_step: `(state, batch) -> (state, metrics)` (`make_train_step`); metrics hold `loss`.
      state: the initial state; also the template checkpoints are restored into.
      batch_fn: `t -> batch` for step t (0-based).
      num_steps: the total number of steps, counted from step 0.
      workdir: outputs: `metrics.jsonl`, `tensorboard/`, `checkpoints/{latest,best}`, `config.json`.
      hooks: evaluation hooks (`Hook`).
      log_every: log the train metrics (and check them for divergence) every this many steps.
      checkpoint_every: save `latest` every this many steps (None: only on the way out and when
        `best_metric` improves).
      best_metric: a hook metric's name (without prefix); `best` holds the state where it was
        highest.
      resume: continue from the newest checkpoint (starting afresh, with a note, when there is
        none). Without it, a workdir that holds a checkpoint is an error (`FileExistsError`).
      config: the run's settings, JSON-able; saved, and compared on resume (a `data` entry, e.g.
        `data.fingerprint(...)`, makes a resume with other training data an error).
      resume_may_change: fields of `config` a resumed run may change (e.g. the number of steps).
      place_state: applied to the initial or restored state (e.g. `shard_state(., mesh)`).
      place_batch: applied to each batch after its check, before its step; with several
        processes it joins their rows (`parallel.global_batch(., mesh)`) and is required.
      extra_metrics: `t -> {name: value}` logged with the train metrics (e.g. the learning rate).
      rollback: roll back and continue on divergence (`Rollback`); None: stop with
        `FloatingPointError`.
      runaway: an energy metric this many times its recent median magnitude (at least 1) is a
        divergence.
      batch_bounds: the data's range; every batch is checked on the host before its step
        (`types.check_batch`: float, finite, non-empty, within these bounds when given).
      progress: show a progress bar.
      tensorboard: also log to TensorBoard.

    Returns:
      `(state, summary)`: the final state and a dict with `start_step`, `steps`, `best`
      (the best metric's value), `interrupted`, `rollbacks`, `learning_rate_scale` (the
      learning-rate factor after them) and `timing` (first step with compilation, seconds per
      later step without hooks and checkpoints, hook and checkpoint seconds).
    """
    if int(num_steps) < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if int(log_every) < 1:
        raise ValueError(f"log_every must be >= 1, got {log_every}")
    if checkpoint_every is not None and int(checkpoint_every) < 1:
        raise ValueError(f"checkpoint_every must be >= 1 or None, got {checkpoint_every}")
    if not runaway > 1:
        raise ValueError(f"runaway must be > 1, got {runaway}")
    if rollback is not None and not (0 < rollback.factor < 1 and int(rollback.max_rollbacks) >= 0):
        raise ValueError(f"rollback needs 0 < factor < 1 and max_rollbacks >= 0, got {rollback}")
    for hook in hooks:
        if int(hook.every) < 1:
            raise ValueError(f"a hook's `every` must be >= 1, got {hook.every}")
    primary, several = parallel.is_primary(), jax.process_count() > 1
    if place_batch is None:
        if several:
            raise ValueError("with several processes, batch_fn returns this process's rows and place_batch joins "
                             "them: pass place_batch=lambda b: parallel.global_batch(b, mesh)")
        place_batch = lambda batch: batch  # noqa: E731
    os.makedirs(workdir, exist_ok=True)
    lock = _lock_together(workdir)
    checkpoints = None
    try:
        checkpoints = Checkpointer(os.path.join(workdir, "checkpoints"))
        template = _copy(state)  # a rollback without a checkpoint returns here
        state, best, scale, best_behind = _restore_or_start(checkpoints, state, workdir, resume, config,
                                                            resume_may_change)
        if scale != 1.0:
            if rollback is None:
                raise ValueError(f"this run rolled back to a learning rate x {scale}; resume it with rollback on")
            train_step = rollback.make_step(scale)
    except BaseException:
        if checkpoints is not None:
            checkpoints.close()
        _unlock(lock)
        raise
    if config is not None and primary:
        write_json(os.path.join(workdir, "config.json"), config)
    state = place_state(state)
    if best_behind is not None:  # killed between the two saves of an improving step: `best` lags `latest`
        checkpoints.save("best", state, best_behind)  # placed first: orbax saves global arrays
        if primary:
            print(f"best checkpoint brought up to step {int(state.step)}, where {best_behind['best_metric']} = "
                  f"{best_behind['best']}")
    writer = MetricWriter(workdir, tensorboard) if primary else _NoWriter()
    start_step = int(state.step)
    timing = {"first_step_s": None, "hooks_and_checkpoints_s": 0.0}
    run = _Run(checkpoints, writer, best_metric, best, scale)
    interrupts = _Interrupts()
    stop = None  # the signal every process acts on
    bar = tqdm(total=int(num_steps), initial=start_step, disable=not (progress and primary), desc="train",
               unit="step")
    loop_start = time.perf_counter()
    diverged, t = False, start_step
    try:
        interrupts.start()
        while t < int(num_steps):
            batch = batch_fn(t)
            check_batch(batch, batch_bounds)
            state, metrics = train_step(state, place_batch(batch))
            done = t + 1
            if timing["first_step_s"] is None:  # includes compilation
                jax.block_until_ready(metrics)
                timing["first_step_s"] = time.perf_counter() - loop_start
            problem = None
            logged = done % log_every == 0 or done == num_steps
            if not several:
                stop = interrupts.signal
            elif logged:  # a signal to any process stops them all at the same step
                stop = int(parallel.agree([interrupts.signal or 0])[0]) or None
            if logged:
                values = _primary_values(parallel.host_local(metrics))  # the host sync, outside the step
                problem = run.divergence(values, runaway)
                if problem is None:
                    extra = dict(extra_metrics(t) if extra_metrics else {},
                                 **({"learning_rate_scale": run.scale} if run.scale != 1.0 else {}))
                    writer.scalars(done, dict(values, **extra), "train/")
                    bar.set_postfix({k: f"{values[k]:.4g}" for k in ("loss",) + ENERGY_METRICS if k in values})
            if problem is None:
                due = [hook for hook in hooks if done % hook.every == 0 or done == num_steps]
                save = (checkpoint_every is not None and done % checkpoint_every == 0) or bool(stop)
                if due or save:
                    tic = time.perf_counter()
                    problem = run.hooks_and_saves(due, state, save)
                    timing["hooks_and_checkpoints_s"] += time.perf_counter() - tic
            if problem is not None:
                if rollback is None or run.rollbacks >= rollback.max_rollbacks:
                    diverged = True
                    raise FloatingPointError(run.give_up_message(problem, done, rollback))
                state = place_state(run.roll_back(problem, done, template, rollback.factor))
                train_step = rollback.make_step(run.scale)
                t = int(state.step)
                bar.reset(total=int(num_steps))
                bar.update(t)
                continue
            bar.update(1)
            t = done
            if stop:
                raise KeyboardInterrupt(f"signal {stop} at step {done}; the state of that step is saved")
        jax.block_until_ready(state)
    except KeyboardInterrupt:
        run.interrupted = True
        raise
    finally:
        interrupts.stop()
        bar.close()
        if not diverged and _usable(state) and int(state.step) > start_step:
            try:
                run.save_latest(state)
            except NonFiniteStateError as e:
                print(f"the final state was not saved: {e}")
        writer.close()
        checkpoints.close()
        _unlock(lock)
    steps = int(state.step) - start_step
    loop_s = time.perf_counter() - loop_start
    train_s = loop_s - timing["hooks_and_checkpoints_s"]
    timing.update(loop_s=loop_s, seconds_per_step=(train_s - timing["first_step_s"]) / (steps - 1) if steps > 1 else None)
    return state, {"start_step": start_step, "steps": steps, "best": run.best, "interrupted": run.interrupted,
                   "rollbacks": run.rollbacks, "learning_rate_scale": run.scale, "timing": timing}


class _Run:
    """The loop's bookkeeping: the best metric, the energy history, saves and rollbacks."""

    def __init__(self, checkpoints: Checkpointer, writer: MetricWriter, best_metric, best, scale):
        self.checkpoints, self.writer, self.best_metric = checkpoints, writer, best_metric
        self.best, self.best_step, self.scale = best, None, scale
        self.rollbacks, self.interrupted, self.constant_before = 0, False, False
        self.history: Dict[str, List[float]] = {}

    def divergence(self, values: Dict[str, float], runaway: float) -> Optional[str]:
        """A reason string if the logged metrics say training diverged, else None (and the
        energies join the history, which a rollback keeps)."""
        bad = sorted(k for k, v in values.items() if not np.isfinite(v))
        if bad:
            return f"{', '.join(f'{k} = {values[k]}' for k in bad)}"
        for key in ENERGY_METRICS:
            if key in values:
                limit = runaway * max(1.0, float(np.median(np.abs(self.history.get(key, [1.0])))))
                if abs(values[key]) > limit:
                    return f"{key} = {values[key]:.4g}, beyond {runaway:g} x its recent magnitude ({limit:.4g})"
        constant = all(k in values for k in ENERGY_METRICS) and values["energy_real"] == values["energy_fake"]
        if constant and self.constant_before:
            return ("the energy of data equals that of samples to the last bit at two logged steps in a row: the "
                    "network's output no longer depends on its input (collapsed to a constant)")
        self.constant_before = constant
        for key in ENERGY_METRICS:
            if key in values:
                self.history[key] = (self.history.get(key, []) + [values[key]])[-_HISTORY:]
        return None

    def hooks_and_saves(self, hooks, state, save: bool) -> Optional[str]:
        """Runs the due hooks; saves `latest` (when `save` or the best metric improved), then
        `best`, unless the last logged energies were equal (a collapse suspected). A reason string
        if the state holds NaN or inf (nothing is saved), else None."""
        step = int(state.step)
        improved = False
        local = parallel.host_local(state)
        for hook in hooks:
            values = _primary_values(hook.fn(local, self.writer))
            if values:
                self.writer.scalars(step, values, hook.prefix)
            if self.best_metric in values and (self.best is None or values[self.best_metric] > self.best):
                self.best, self.best_step, improved = values[self.best_metric], step, True
        if self.constant_before:  # a collapse suspected at the last log: no checkpoint to roll back to
            return None
        try:
            if save or improved:
                self.save_latest(state)
            if improved:
                self.checkpoints.save("best", state, {"best": self.best, "best_metric": self.best_metric})
        except NonFiniteStateError as e:
            return f"the state holds NaN or inf ({e})"
        return None

    def save_latest(self, state) -> None:
        self.checkpoints.save("latest", state, {"best": self.best, "best_step": self.best_step,
                                                "best_metric": self.best_metric, "learning_rate_scale": self.scale})

    def roll_back(self, problem: str, step: int, template, factor: float):
        """The newest intact checkpoint's state (`template` if there is none), with the learning
        rate scale times `factor`; the rollback is printed and logged."""
        restored = self.checkpoints.restore(template)
        state, meta = (_copy(template), {}) if restored is None else restored[:2]
        self.best = meta.get("best")
        self.best_step = meta.get("best_step")
        self.rollbacks += 1
        self.scale *= factor
        self.constant_before = False
        back_to = int(state.step)
        self.writer.truncate(back_to)
        self.writer.scalars(back_to, {"rollback": self.rollbacks, "diverged_at_step": step,
                                      "learning_rate_scale": self.scale}, "event/")
        if parallel.is_primary():
            print(f"training diverged at step {step} ({problem}); rolled back to step {back_to}, learning rate x "
                  f"{self.scale:g} (rollback {self.rollbacks})")
        return state

    def give_up_message(self, problem: str, step: int, rollback: Optional[Rollback]) -> str:
        newest = max([s for which in ("latest", "best") for s in self.checkpoints.steps(which)], default=None)
        where = (f"the newest checkpoint is from step {newest}, before it (--resume restarts there)"
                 if newest is not None else "no checkpoint was written")
        tried = f" after {self.rollbacks} rollbacks (learning rate x {self.scale:g})" if rollback is not None else ""
        return (f"training diverged at step {step}{tried}: {problem}; {where}; try a smaller learning rate "
                "(--learning-rate) or sampler step size")


def _restore_or_start(checkpoints, state, workdir, resume, config, resume_may_change):
    """`(state, best, learning_rate_scale, best_behind)` of the newest intact checkpoint, or of the
    start; `best_behind` is the meta to save the state as `best` with when `latest` names its
    step the best but `best` lags (a kill between the two saves), else None."""
    if not resume and (checkpoints.steps("latest") or checkpoints.steps("best")):
        raise FileExistsError(
            f"{workdir} already holds a run (checkpoint at step {checkpoints.latest_step('latest')}); "
            "pass --resume to continue it or choose another --workdir")
    if resume:
        _check_config(workdir, config, resume_may_change)
    restored = checkpoints.restore(state) if resume else None
    primary = parallel.is_primary()
    if restored is None:
        if resume and primary:
            print(f"--resume: no checkpoint in {workdir}/checkpoints yet; starting from scratch")
        if primary:
            truncate_metrics(workdir, 0)  # rows of a run killed before its first checkpoint
        return state, None, 1.0, None
    restored_state, meta, which, step = restored
    if primary:
        truncate_metrics(workdir, step)
    best_behind = None
    if which == "latest" and meta.get("best_step") == step and checkpoints.latest_step("best") != step:
        best_behind = {"best": meta.get("best"), "best_metric": meta.get("best_metric")}
    return restored_state, meta.get("best"), float(meta.get("learning_rate_scale", 1.0)), best_behind


def _check_config(workdir, config, resume_may_change):
    saved_path = os.path.join(workdir, "config.json")
    if config is None or not os.path.exists(saved_path):
        return
    with open(saved_path) as f:
        saved = json.load(f)
    may_change = set(resume_may_change) | ({"data"} if "data" not in saved else set())  # runs saved before it
    changed = sorted(k for k in set(saved) | set(config)
                     if k not in may_change and _jsonable(saved.get(k)) != _jsonable(config.get(k)))
    if "data" in changed:
        raise ValueError(f"--resume with other training data than the saved run's: {saved.get('data')} then, "
                         f"{config.get('data')} now")
    if changed:
        raise ValueError(f"--resume with different settings than the saved run: {changed}")


def _primary_values(values: Dict[str, Any]) -> Dict[str, float]:
    """`{name: float}` of process 0's values (every process's own with one process), so every
    process takes the same decisions from them."""
    names = sorted(values)
    return dict(zip(names, map(float, parallel.broadcast_from_primary([float(values[k]) for k in names]))))


def _lock_together(workdir: str):
    """Process 0 locks `workdir` (`_lock`); with several processes, every process then learns
    whether it could, so all of them raise when it could not (instead of waiting for it in the
    first collective). Returns the lock (None in the other processes)."""
    error, lock = None, None
    try:
        lock = _lock(workdir) if parallel.is_primary() else None
    except BaseException as e:
        error = e
    if jax.process_count() > 1 and int(parallel.agree([error is not None])[0]) and error is None:
        raise FileExistsError(f"process 0 could not lock {workdir}; its output says why")
    if error is not None:
        raise error
    return lock


class _NoWriter:
    """The metric writer of the processes other than 0: logs nothing."""

    def scalars(self, *args, **kwargs): pass

    def image(self, *args, **kwargs): pass

    def truncate(self, *args, **kwargs): pass

    def close(self): pass


def _lock(workdir: str):
    """An exclusive lock on `workdir/.lock` (released when the process ends, however it ends);
    FileExistsError naming the holder if another run has it."""
    handle = open(os.path.join(workdir, ".lock"), "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise FileExistsError(f"{workdir} is in use by a running job ({holder}); wait for it to end or choose "
                              "another --workdir") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
    handle.flush()
    return handle


def _unlock(handle) -> None:
    if handle is None:
        return
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()


class _Interrupts:
    """While the loop runs, SIGTERM and SIGINT (Ctrl-C) only set `signal`; the loop saves and
    raises between steps. A second SIGINT raises KeyboardInterrupt at once."""

    def __init__(self):
        self.signal, self._previous = None, {}

    def start(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                return

    def _handle(self, signum, frame):
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt("second Ctrl-C")
        self.signal = signum

    def stop(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


def _copy(state):
    """A copy of the state's arrays (the step donates what it is given)."""
    return jax.tree.map(lambda leaf: leaf.copy() if isinstance(leaf, jax.Array) else leaf, state)


def _usable(state) -> bool:
    """False if the state's buffers were donated to a step that did not finish."""
    return not any(getattr(leaf, "is_deleted", lambda: False)() for leaf in jax.tree.leaves(state))


def _jsonable(value):
    """JSON's view of a value (tuples become lists), so a saved config compares to a live one."""
    return json.loads(json.dumps(value, default=str))


def write_json(path: str, obj) -> None:
    """Writes `obj` as indented JSON, atomically (a temporary file renamed into place)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=str)
    os.replace(tmp, path)
