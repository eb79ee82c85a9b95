"""`fit`: the host-side training loop every experiment runs.

    state, summary = fit(train_step, state, batch_fn, num_steps, workdir, hooks=..., ...)

Per step t (from the restored step on): `state, metrics = train_step(state, batch_fn(t))`. Around
it, on the host and never inside the jitted step:
  progress     a tqdm bar with the live loss (and energies, when the objective reports them)
  logging      every `log_every` steps the step's metrics go to `workdir/metrics.jsonl` and
               TensorBoard (`train/...`), with `extra_metrics(t)` (e.g. the learning rate)
  guard        a non-finite loss at a logged step raises `FloatingPointError`; that state is
               never checkpointed
  hooks        `Hook(fn, every)`: `fn(state, writer) -> {name: value}` after every `every` steps
               and after the last one, logged under the hook's prefix (`val/` by default); the
               tutorial's per-epoch callbacks are hooks
  checkpoints  orbax (`train.checkpoint`): `latest` every `checkpoint_every` steps and on the way
               out (the end, an exception, Ctrl-C or SIGTERM), `best` whenever the hook metric
               `best_metric` improves (higher is better)
  resume       `resume=True` continues from `latest`; `config` (a JSON-able dict of the run's
               settings) is saved as `workdir/config.json`, and a resumed run must agree with it
               on every field but those in `resume_may_change`
  interrupts   SIGTERM is turned into `KeyboardInterrupt` while the loop runs; either one saves
               the state of the last finished step and is re-raised

Exact resume needs `batch_fn(t)` to depend on t alone (`data.train_batch_indices` gives a
seeded permutation per epoch) and the step's randomness on the state alone (`fold_in(key, t)`):
then a resumed run reproduces an uninterrupted one bit for bit on CPU.
"""

import json
import os
import signal
import time
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import jax
import numpy as np
from tqdm.auto import tqdm

from ebm_jax.train.checkpoint import Checkpointer
from ebm_jax.train.logging import MetricWriter


class Hook(NamedTuple):
    """`fn(state, writer) -> {name: float}` run after every `every` steps and after the last step;
    the values are logged under `prefix`, and `fit(best_metric=name)` may select by one of them."""

    fn: Callable
    every: int
    prefix: str = "val/"


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
    extra_metrics: Optional[Callable[[int], Dict[str, float]]] = None,
    progress: bool = True,
    tensorboard: bool = True,
) -> Tuple[Any, Dict]:
    """Trains from `state` (or from `workdir`'s latest checkpoint with `resume`) to `num_steps`.

    Args:
      train_step: `(state, batch) -> (state, metrics)` (`make_train_step`); metrics hold `loss`.
      state: the initial state; also the template checkpoints are restored into.
      batch_fn: `t -> batch` for step t (0-based).
      num_steps: the total number of steps, counted from step 0.
      workdir: outputs: `metrics.jsonl`, `tensorboard/`, `checkpoints/{latest,best}`, `config.json`.
      hooks: evaluation hooks (`Hook`).
      log_every: log the train metrics (and check them for non-finite values) every this many steps.
      checkpoint_every: save `latest` every this many steps (None: only on the way out).
      best_metric: a hook metric's name (without prefix); `best` holds the state where it was
        highest.
      resume: continue from `latest` (starting afresh, with a note, when there is none). Without
        it, a workdir that holds a checkpoint is an error (`FileExistsError`).
      config: the run's settings, JSON-able; saved, and compared on resume.
      resume_may_change: fields of `config` a resumed run may change (e.g. the number of steps).
      place_state: applied to the initial or restored state (e.g. `shard_state(., mesh)`).
      extra_metrics: `t -> {name: value}` logged with the train metrics (e.g. the learning rate).
      progress: show a progress bar.
      tensorboard: also log to TensorBoard.

    Returns:
      `(state, summary)`: the final state and a dict with `start_step`, `steps`, `best`
      (the best metric's value), `interrupted` and `timing` (first step with compilation,
      seconds per later step without hooks and checkpoints, hook and checkpoint seconds).
    """
    if int(num_steps) < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    for hook in hooks:
        if int(hook.every) < 1:
            raise ValueError(f"a hook's `every` must be >= 1, got {hook.every}")
    os.makedirs(workdir, exist_ok=True)
    checkpoints = Checkpointer(os.path.join(workdir, "checkpoints"))
    try:
        state, best = _restore_or_start(checkpoints, state, workdir, resume, config, resume_may_change)
    except BaseException:
        checkpoints.close()
        raise
    if config is not None:
        write_json(os.path.join(workdir, "config.json"), config)
    state = place_state(state)
    writer = MetricWriter(workdir, tensorboard)
    start_step = int(state.step)
    timing = {"first_step_s": None, "hooks_and_checkpoints_s": 0.0}
    diverged, interrupted = False, False
    previous_handler = _sigterm_to_interrupt()
    bar = tqdm(total=int(num_steps), initial=start_step, disable=not progress, desc="train", unit="step")
    loop_start = time.perf_counter()
    try:
        for t in range(start_step, int(num_steps)):
            state, metrics = train_step(state, batch_fn(t))
            done = t + 1
            if t == start_step:  # includes compilation
                jax.block_until_ready(metrics)
                timing["first_step_s"] = time.perf_counter() - loop_start
            if done % log_every == 0 or done == num_steps:
                values = {k: float(v) for k, v in metrics.items()}  # the host sync, outside the step
                if not np.isfinite(values["loss"]):
                    diverged = True
                    raise FloatingPointError(
                        f"the loss became {values['loss']} at step {done}; the last checkpoint is from before "
                        "it (--resume restarts there); consider a smaller step size or learning rate")
                writer.scalars(done, dict(values, **(extra_metrics(t) if extra_metrics else {})), "train/")
                bar.set_postfix({k: f"{values[k]:.4g}" for k in ("loss", "energy_real", "energy_fake") if k in values})
            bar.update(1)
            due = [hook for hook in hooks if done % hook.every == 0 or done == num_steps]
            save = checkpoint_every is not None and done % checkpoint_every == 0
            if due or save:
                tic = time.perf_counter()
                best = _run_hooks(due, state, writer, checkpoints, best_metric, best)
                if save:
                    checkpoints.save("latest", state, {"best": _jsonable(best), "best_metric": best_metric})
                timing["hooks_and_checkpoints_s"] += time.perf_counter() - tic
        jax.block_until_ready(state)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        _restore_sigterm(previous_handler)
        bar.close()
        if not diverged and _usable(state) and int(state.step) > start_step:
            checkpoints.save("latest", state, {"best": _jsonable(best), "best_metric": best_metric,
                                               "interrupted": interrupted})
        writer.close()
        checkpoints.close()
    steps = int(state.step) - start_step
    loop_s = time.perf_counter() - loop_start
    train_s = loop_s - timing["hooks_and_checkpoints_s"]
    timing.update(loop_s=loop_s, seconds_per_step=(train_s - timing["first_step_s"]) / (steps - 1) if steps > 1 else None)
    return state, {"start_step": start_step, "steps": steps, "best": best, "interrupted": interrupted,
                   "timing": timing}


def _run_hooks(hooks, state, writer, checkpoints, best_metric, best):
    step = int(state.step)
    for hook in hooks:
        values = {k: float(v) for k, v in hook.fn(state, writer).items()}
        if values:
            writer.scalars(step, values, hook.prefix)
        if best_metric in values and (best is None or values[best_metric] > best):
            best = values[best_metric]
            checkpoints.save("best", state, {"best": best, "best_metric": best_metric})
    return best


def _restore_or_start(checkpoints, state, workdir, resume, config, resume_may_change):
    restored = checkpoints.restore("latest", state)
    if restored is None:
        if resume:
            print(f"--resume: no checkpoint in {workdir}/checkpoints yet; starting from scratch")
        return state, None
    if not resume:
        raise FileExistsError(
            f"{workdir} already holds a run (checkpoint at step {checkpoints.latest_step('latest')}); "
            "pass --resume to continue it or choose another --workdir")
    saved_path = os.path.join(workdir, "config.json")
    if config is not None and os.path.exists(saved_path):
        with open(saved_path) as f:
            saved = json.load(f)
        changed = sorted(k for k in set(saved) | set(config)
                         if k not in resume_may_change and _jsonable(saved.get(k)) != _jsonable(config.get(k)))
        if changed:
            raise ValueError(f"--resume with different settings than the saved run: {changed}")
    restored_state, meta = restored
    return restored_state, meta.get("best")


def _sigterm_to_interrupt():
    """While the loop runs, SIGTERM (a scheduler's kill) raises KeyboardInterrupt as Ctrl-C does."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        return signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        return None


def _restore_sigterm(previous_handler) -> None:
    if previous_handler is not None:
        signal.signal(signal.SIGTERM, previous_handler)


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
