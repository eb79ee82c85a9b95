"""`fit` over two processes on JAX's distributed runtime (localhost, gloo collectives, two CPU
devices each), against one process on one device. The processes run `multiprocess_fit.py`."""

import fcntl
import json
import os
import sys

import numpy as np

SCRIPT = os.path.join(os.path.dirname(__file__), "multiprocess_fit.py")


def _run(run_processes, num_processes, workdir, steps, *options):
    """Runs the processes of one run; their return codes and stderr."""
    command = [sys.executable, SCRIPT, "--num-processes", str(num_processes), "--port", "PORT", "--workdir",
               str(workdir), "--steps", str(steps), *options]
    codes, _, errors = run_processes(command, num_processes)
    return codes, errors


def _params(workdir, num_processes, process_id):
    return np.load(os.path.join(workdir, f"params_{num_processes}_{process_id}.npy"))


def _metrics(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_two_processes_train_as_one_and_resume_exactly(tmp_path, run_processes):
    one, two, resumed = tmp_path / "one", tmp_path / "two", tmp_path / "resumed"
    codes, errors = _run(run_processes, 1, one, 10)
    assert codes == [0], errors
    codes, errors = _run(run_processes, 2, two, 10)
    assert codes == [0, 0], errors

    # Every process ends with the same (replicated) params; one process on one device gets them
    # up to float reassociation: the gradient's mean over 4 devices is summed in another order, a
    # few float32 ulps per step (about 1e-7 here) that 10 Adam steps of at most 1e-2 carry on.
    np.testing.assert_array_equal(_params(two, 2, 0), _params(two, 2, 1))
    reference = _params(one, 1, 0)
    np.testing.assert_allclose(_params(two, 2, 0), reference, rtol=0, atol=1e-5 * max(1.0, np.abs(reference).max()))
    # Metrics are logged once (by process 0), at the steps one process logs them.
    rows_one, rows_two = _metrics(one), _metrics(two)
    assert [(r["step"], sorted(r)) for r in rows_two] == [(r["step"], sorted(r)) for r in rows_one]
    for a, b in zip(rows_one, rows_two):
        np.testing.assert_allclose([b[k] for k in a if k != "step"], [a[k] for k in a if k != "step"],
                                   rtol=1e-4, atol=1e-5)

    # SIGTERM to process 1 after step 4: both processes stop at the next logged step (6), save
    # it together, and two processes resume from it to the uninterrupted run's bits.
    codes, errors = _run(run_processes, 2, resumed, 10, "--signal-at", "4")
    assert codes == [130, 130], errors
    assert all("signal 15 at step 6" in e for e in errors), errors
    assert sorted(os.listdir(resumed / "checkpoints" / "latest"), key=int) == ["3", "6"]
    # As if killed between the two saves of an improving step: `latest` at 6 names itself the
    # best, `best` lags; the resumed processes write `best` at 6 together (from the placed state).
    meta_path = resumed / "checkpoints" / "latest" / "6" / "meta" / "metadata"
    meta = json.loads(meta_path.read_text())
    assert meta["best_step"] != 6
    meta_path.write_text(json.dumps(dict(meta, best_step=6, best=1e9)))
    codes, errors = _run(run_processes, 2, resumed, 10)
    assert codes == [0, 0], errors
    assert os.listdir(resumed / "checkpoints" / "best") == ["6"]
    for process_id in (0, 1):
        np.testing.assert_array_equal(_params(resumed, 2, process_id), _params(two, 2, 0))
    assert _metrics(resumed) == rows_two


def test_a_locked_workdir_stops_every_process(tmp_path, run_processes):
    """Process 0 cannot lock the workdir (another run holds it): both processes exit with the
    reason instead of process 1 waiting for process 0 in a collective."""
    tmp_path.mkdir(exist_ok=True)
    with open(tmp_path / ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 1 on the test")
        held.flush()
        codes, errors = _run(run_processes, 2, tmp_path, 4)
    assert codes == [2, 2], errors
    assert "is in use by a running job (pid 1 on the test)" in errors[0]
    assert "process 0 could not lock" in errors[1]


def test_a_divergence_in_one_process_rolls_all_back(tmp_path, run_processes):
    """Process 1's rows of batch 4 blow up: the step's metrics (one all-reduced value) are NaN in
    every process, and both roll back to the checkpoint of step 3 together and finish."""
    codes, errors = _run(run_processes, 2, tmp_path, 8, "--blow-up-at", "4")
    assert codes == [0, 0], errors
    events = [r for r in _metrics(tmp_path) if "event/rollback" in r]
    assert events == [{"step": 3, "event/rollback": 1.0, "event/diverged_at_step": 6.0, "event/learning_rate_scale": 0.5}]
    np.testing.assert_array_equal(_params(tmp_path, 2, 0), _params(tmp_path, 2, 1))
