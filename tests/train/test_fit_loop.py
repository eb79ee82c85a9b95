"""The fit loop's guarantees on a tiny replay-CD model of 2-D points: damaged checkpoints are
caught and skipped, an interrupt saves the step it lands in, divergence rolls back and never
writes a non-finite state, a torn metrics line and a kill between the two saves do not block a
resume. Exactness is bit for bit (CPU)."""

import json
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ebm_jax.energies import MLPEnergy
from ebm_jax.samplers import langevin
from ebm_jax.train import Hook, Rollback, create_train_state, fit, make_train_step, objectives
from ebm_jax.train.checkpoint import Checkpointer, CheckpointError, NonFiniteStateError, StructureMismatch, manifest
from ebm_jax.train.logging import read_metrics
from ebm_jax.types import check_batch

BOUNDS = (-3.0, 3.0)
MODEL = MLPEnergy((8, 8))
OBJECTIVE = objectives.replay_cd(langevin.spec(2, 0.01, bounds=BOUNDS), BOUNDS, 64, alpha=0.1)
OPTIMIZER = optax.adam(1e-2)
DATA = np.asarray(jax.random.normal(jax.random.key(0), (40, 16, 2)), np.float32)


def batch(t):
    return DATA[t % len(DATA)]


def fresh_state():
    return create_train_state(jax.random.key(1), MODEL, OBJECTIVE, OPTIMIZER, DATA[0])


def make_step(scale=1.0):
    return make_train_step(MODEL.apply, OBJECTIVE, OPTIMIZER, learning_rate_scale=scale)


def run(workdir, num_steps, resume=False, **kwargs):
    kwargs.setdefault("checkpoint_every", 5)
    kwargs.setdefault("log_every", 1)
    return fit(kwargs.pop("train_step", None) or make_step(), fresh_state(), kwargs.pop("batch_fn", batch), num_steps,
               str(workdir), resume=resume, progress=False, tensorboard=False, **kwargs)


def leaves(state):
    return [np.asarray(x) for x in jax.tree.leaves(state._replace(rng_key=jax.random.key_data(state.rng_key)))]


def assert_same(a, b):
    assert int(a.step) == int(b.step)
    for x, y in zip(leaves(a), leaves(b)):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted 20-step run every other one must reproduce."""
    return run(tmp_path_factory.mktemp("straight"), 20)[0]


def _data_files(checkpoint):
    """The files holding array data in an orbax checkpoint folder (`.../d/<hash>`)."""
    found = [os.path.join(d, f) for d, _, files in os.walk(os.path.join(checkpoint, "state")) for f in files]
    return sorted(f for f in found if os.path.basename(os.path.dirname(f)) == "d")


def test_a_flipped_byte_in_the_newest_checkpoint_is_named_and_skipped(tmp_path, straight, capsys):
    workdir = tmp_path / "run"
    run(workdir, 20)
    latest = workdir / "checkpoints" / "latest"
    assert sorted(os.listdir(latest)) == ["15", "20"]        # the newest two are kept
    for target in _data_files(str(latest / "20")):           # one flipped bit in each array-data file
        data = bytearray(open(target, "rb").read())
        data[len(data) // 2] ^= 0x40
        open(target, "wb").write(bytes(data))
    state, summary = run(workdir, 20, resume=True)
    out = capsys.readouterr().out
    assert f"{latest / '20'} is damaged" in out and "step 15" in out
    assert summary["start_step"] == 15 and sorted(os.listdir(workdir / "checkpoints" / "damaged")) == ["latest-20"]
    assert_same(state, straight)                              # steps 16-20 redone, the same bits


def test_array_data_that_differ_from_the_checksums_are_caught(tmp_path, straight, capsys):
    """What orbax does not check: the arrays read back fine but hold other values. Simulated by
    changing the checksum saved for one leaf (the data files keep theirs): the restore names the
    leaf and falls back."""
    workdir = tmp_path / "run"
    run(workdir, 20)
    meta_file = workdir / "checkpoints" / "latest" / "20" / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    leaf = ".params['energy']['Dense_0']['kernel']"
    meta["leaves"][leaf]["sha256"] = "0" * 64
    meta_file.write_text(json.dumps(meta))
    state, summary = run(workdir, 20, resume=True)
    out = capsys.readouterr().out
    assert f"the data of {leaf} do not match the checksums saved with it" in out
    assert summary["start_step"] == 15
    assert_same(state, straight)


def test_a_missing_data_file_falls_back_and_all_damaged_is_an_error(tmp_path, straight, capsys):
    workdir = tmp_path / "run"
    run(workdir, 20)
    for f in _data_files(str(workdir / "checkpoints" / "latest" / "20")):
        os.remove(f)
    state, summary = run(workdir, 20, resume=True)            # 20 is damaged: back to 15, redo 16-20
    assert summary["start_step"] == 15 and "damaged" in capsys.readouterr().out
    assert_same(state, straight)
    for step in ("15", "20"):                                 # now both saves lose their data
        for f in _data_files(str(workdir / "checkpoints" / "latest" / step)):
            os.remove(f)
    with pytest.raises(CheckpointError, match="every checkpoint is damaged"):
        run(workdir, 20, resume=True)


def test_sigterm_mid_step_saves_that_step_and_resume_is_exact(tmp_path, straight):
    """The signal lands while step 8 is being set up (in `batch_fn`): step 8 finishes, its state
    is saved as `latest` (not the step-5 checkpoint), and the run stops with KeyboardInterrupt."""
    workdir = tmp_path / "run"

    def signalling(t):
        if t == 7:
            os.kill(os.getpid(), signal.SIGTERM)
        return batch(t)

    with pytest.raises(KeyboardInterrupt, match="at step 8"):
        run(workdir, 20, batch_fn=signalling)
    checkpoints = Checkpointer(str(workdir / "checkpoints"))
    assert checkpoints.latest_step("latest") == 8
    checkpoints.close()
    assert signal.getsignal(signal.SIGTERM) is not None      # the loop put the old handler back
    state, summary = run(workdir, 20, resume=True)
    assert summary["start_step"] == 8
    assert_same(state, straight)


def _nan_after(step_limit, scales):
    """`make_step(scale)` whose steps put NaN into the params after `step_limit` while `scale`
    is in `scales` (a learning rate that diverges), and are the normal step otherwise."""
    def make(scale=1.0):
        step = make_step(scale)
        if scale not in scales:
            return step

        def diverging(state, b):
            state, metrics = step(state, b)
            poison = jnp.where(state.step > step_limit, jnp.nan, 0.0)
            return state._replace(params=jax.tree.map(lambda p: p + poison, state.params)), metrics

        return diverging

    return make


def test_divergence_rolls_back_lowers_the_learning_rate_and_never_writes_nan(tmp_path, capsys):
    """NaN params from step 13 on (the loss of a step is that of the pre-update params, so it
    stays finite one step longer): caught at step 14 (its loss) and never saved; back to the
    step-10 checkpoint with the learning rate halved, then on to the end."""
    workdir = tmp_path / "run"
    make = _nan_after(12, scales=(1.0,))
    state, summary = run(workdir, 20, train_step=make(1.0), rollback=Rollback(make, factor=0.5, max_rollbacks=2))
    assert summary["rollbacks"] == 1 and summary["learning_rate_scale"] == 0.5 and int(state.step) == 20
    assert "diverged at step 14" in capsys.readouterr().out
    checkpoints = Checkpointer(str(workdir / "checkpoints"))
    for step in checkpoints.steps("latest"):
        restored = checkpoints.read("latest", step, fresh_state())[0]
        manifest(restored._replace(rng_key=jax.random.key_data(restored.rng_key)))  # raises on NaN / inf
    checkpoints.close()
    rows = read_metrics(str(workdir))
    events = [r for r in rows if "event/rollback" in r]
    assert events == [{"step": 10, "event/rollback": 1.0, "event/diverged_at_step": 14.0,
                       "event/learning_rate_scale": 0.5}]
    steps = [r["step"] for r in rows if "train/loss" in r]
    assert steps == list(range(1, 21))                        # the diverged branch's rows are gone
    # the reduced learning rate is part of the run: a resume keeps it
    _, summary = run(workdir, 22, resume=True, train_step=make(1.0), rollback=Rollback(make))
    assert summary["learning_rate_scale"] == 0.5


def test_divergence_gives_up_with_a_fix_the_user_can_apply(tmp_path):
    workdir = tmp_path / "run"
    make = _nan_after(7, scales=(1.0, 0.5, 0.25))
    with pytest.raises(FloatingPointError, match=r"after 2 rollbacks .*--learning-rate"):
        run(workdir, 20, train_step=make(1.0), rollback=Rollback(make, max_rollbacks=2))
    checkpoints = Checkpointer(str(workdir / "checkpoints"))
    assert checkpoints.steps("latest") == [5]
    checkpoints.close()
    with pytest.raises(FloatingPointError, match="newest checkpoint is from step 5"):
        run(tmp_path / "no_rollback", 20, train_step=make(1.0))


def test_a_nan_update_on_a_checkpoint_step_is_not_written(tmp_path):
    """NaN params after step 10 with a finite loss at step 10 itself: the save at step 10 finds
    them, nothing is written, and the run stops naming the leaf."""
    workdir = tmp_path / "run"
    make = _nan_after(9, scales=(1.0,))
    with pytest.raises(FloatingPointError, match="NaN or inf"):
        run(workdir, 20, train_step=make(1.0))
    checkpoints = Checkpointer(str(workdir / "checkpoints"))
    assert checkpoints.steps("latest") == [5]
    with pytest.raises(NonFiniteStateError, match="params"):
        checkpoints.save("latest", fresh_state()._replace(params=jax.tree.map(lambda p: p * jnp.nan,
                                                                             fresh_state().params)), {})
    checkpoints.close()


def test_runaway_energies_count_as_divergence(tmp_path):
    """Finite but exploding energies (x 1e6 from step 12): beyond runaway x their median."""
    step = make_step()

    def exploding(state, b):
        state, metrics = step(state, b)
        return state, dict(metrics, energy_real=metrics["energy_real"] * jnp.where(state.step >= 12, 1e6, 1.0))

    with pytest.raises(FloatingPointError, match=r"at step 12.*energy_real = "):
        run(tmp_path / "run", 20, train_step=exploding)


def test_a_collapse_to_a_constant_is_divergence_and_never_saved(tmp_path, capsys):
    """From step 10 on, data and samples get the same energy to the last bit (what a network
    whose output no longer depends on its input reports). Logged every 5 steps: the first sign
    at step 10 holds back that step's checkpoint, the second at 15 rolls back to step 5."""
    def make(scale=1.0):
        step = make_step(scale)
        if scale != 1.0:
            return step

        def collapsing(state, b):
            state, metrics = step(state, b)
            fake = jnp.where(state.step >= 10, metrics["energy_real"], metrics["energy_fake"])
            return state, dict(metrics, energy_fake=fake)

        return collapsing

    _, summary = run(tmp_path / "run", 20, train_step=make(), rollback=Rollback(make), log_every=5)
    out = capsys.readouterr().out
    assert "diverged at step 15" in out and "collapsed to a constant" in out and "rolled back to step 5" in out
    assert summary["rollbacks"] == 1


def test_a_first_logged_energy_beyond_runaway_is_divergence(tmp_path):
    """Before any history the limit is `runaway` itself."""
    step = make_step()
    huge = lambda state, b: (lambda out: (out[0], dict(out[1], energy_fake=out[1]["energy_fake"] - 1e5)))(step(state, b))
    with pytest.raises(FloatingPointError, match=r"at step 1: energy_fake = .*beyond 1000 x"):
        run(tmp_path / "run", 5, train_step=huge)
    run(tmp_path / "ok", 5, train_step=huge, runaway=1e6)


def test_a_torn_metrics_line_and_rows_after_the_checkpoint_do_not_block_resume(tmp_path, straight, capsys):
    workdir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run(workdir, 20, batch_fn=lambda t: (_ for _ in ()).throw(KeyboardInterrupt()) if t == 12 else batch(t))
    with open(workdir / "metrics.jsonl", "a") as f:
        f.write('{"step": 13, "train/loss": 0.1}\n{"step": 14, "train/lo')   # a row past the save, a torn one
    state, _ = run(workdir, 20, resume=True)
    assert "dropped 1 line" in capsys.readouterr().out
    assert_same(state, straight)
    steps = [r["step"] for r in read_metrics(str(workdir))]
    assert steps == list(range(1, 21))
    with open(workdir / "metrics.jsonl") as f:
        assert all(json.loads(line) for line in f)


def test_best_is_repaired_after_a_kill_between_the_two_saves(tmp_path, capsys):
    """The metric rises every 5 steps, so each of those steps saves `latest` then `best`. Removing
    `best`'s newest save is what a kill between the two leaves; a resume puts it back."""
    workdir = tmp_path / "run"
    hook = Hook(lambda state, writer: {"score": float(state.step)}, 5)
    run(workdir, 10, hooks=[hook], best_metric="score", checkpoint_every=None)
    best = workdir / "checkpoints" / "best"
    assert os.listdir(best) == ["10"]
    os.rename(best / "10", tmp_path / "removed")
    _, summary = run(workdir, 10, resume=True, hooks=[hook], best_metric="score", checkpoint_every=None)
    assert "best checkpoint brought up to step 10" in capsys.readouterr().out
    assert os.listdir(best) == ["10"] and summary["best"] == 10.0


def test_leftover_partial_writes_are_removed(tmp_path):
    partial = tmp_path / "checkpoints" / "latest" / "7.orbax-checkpoint-tmp-1234"
    partial.mkdir(parents=True)
    (partial / "junk").write_text("x")
    checkpoints = Checkpointer(str(tmp_path / "checkpoints"))
    assert not partial.exists() and checkpoints.removed_partial == [str(partial)]
    checkpoints.close()


def test_a_state_of_another_shape_is_a_clear_error_and_nothing_is_moved(tmp_path):
    workdir = tmp_path / "run"
    run(workdir, 5)
    other = create_train_state(jax.random.key(1), MLPEnergy((8, 4)), OBJECTIVE, OPTIMIZER, DATA[0])
    checkpoints = Checkpointer(str(workdir / "checkpoints"))
    with pytest.raises(StructureMismatch, match=r"holds a state this run does not build.*Dense_1.*\[8, 8\] vs float32\[8, 4\]"):
        checkpoints.restore(other)
    assert checkpoints.steps("latest") == [5] and not (workdir / "checkpoints" / "damaged").exists()
    checkpoints.close()


def test_bad_batches_are_clear_errors_before_any_step(tmp_path):
    images = np.zeros((4, 2, 2, 1), np.float32)
    cases = [
        (images.astype(np.uint8), "uint8: a float array is expected"),
        (np.where(np.arange(16).reshape(images.shape) == 3, np.nan, images), "1 NaN or infinite"),
        (images + 1.5, "outside the data range"),
        (images[:0], "at least one example"),
        ({"x": images, "y": np.zeros(3, np.int32)}, "one leading size"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            check_batch(bad, (-1.0, 1.0))
    check_batch({"x": images, "y": np.zeros(4, np.int32)}, (-1.0, 1.0))
    check_batch(jnp.asarray(images) + 5.0)  # device arrays: dtype and shape only, nothing fetched
    poisoned = lambda t: np.full_like(batch(t), np.nan) if t == 3 else batch(t)
    with pytest.raises(ValueError, match="NaN"):
        run(tmp_path / "run", 10, batch_fn=poisoned)
    checkpoints = Checkpointer(str(tmp_path / "run" / "checkpoints"))
    assert checkpoints.steps("latest") == [3]                 # the three good steps are kept
    checkpoints.close()


def test_one_run_per_workdir_and_resume_refuses_other_data(tmp_path):
    from ebm_jax.train.loop import _lock, _unlock

    workdir = tmp_path / "run"
    workdir.mkdir()
    held = _lock(str(workdir))                     # as a live run in another process holds it
    with pytest.raises(FileExistsError, match=rf"in use by a running job \(pid {os.getpid()} on "):
        run(workdir, 5)
    _unlock(held)
    run(workdir, 5, config={"lr": 1, "data": "5000x28x28 sha256:aaaa"})
    with pytest.raises(ValueError, match="other training data"):
        run(workdir, 10, resume=True, config={"lr": 1, "data": "5000x28x28 sha256:bbbb"})
    with pytest.raises(ValueError, match=r"different settings than the saved run: \['lr'\]"):
        run(workdir, 10, resume=True, config={"lr": 2, "data": "5000x28x28 sha256:aaaa"})
    _, summary = run(workdir, 10, resume=True, config={"lr": 1, "data": "5000x28x28 sha256:aaaa"})
    assert summary["start_step"] == 5
