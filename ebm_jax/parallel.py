"""Every core at work: a Mesh with a data axis, and sampler chains split over it.

Why: on a CPU, XLA runs one device's program op after op on one thread; only large matrix
products spread over the other cores. A sampler step of a small CNN is mostly small ops, so one
CPU device leaves the other cores mostly idle, while several XLA devices on the same CPU run their
programs side by side, one per core (measured in `experiments/benchmarks/README.md`).

What:
  split_cpu(n)          before JAX starts, exposes the host CPU as `n` XLA devices (default: the
                        cores this process may run on); GPUs are left as they are
  data_mesh(devices)    a 1-D `Mesh` over `devices` (default: all) with the axis `DATA_AXIS`
  check_data_mesh(mesh) raises unless `mesh` has that axis (the sharded steps call it)
`train.make_train_step(..., mesh=mesh)` splits its batch over the mesh with GSPMD (`jax.jit`
shardings) and its sampler chains with `samplers.sample(..., mesh=mesh)` (`shard_map`, the same
draws as one device); the gradient's mean over the batch is XLA's all-reduce.

Several processes (hosts, or one process per GPU) on JAX's distributed runtime: each process
runs the same program; `jax.devices()` lists every process's devices, so `data_mesh()` spans them
all and one jitted step is one program over the global mesh.
  initialize(address, n, id)   joins the job (`jax.distributed.initialize`; on CPU over gloo
                               collectives); with no arguments JAX detects SLURM, Open MPI or a
                               TPU pod itself
  process_rows(mesh, B)        the rows of a global batch of B that this process feeds
  global_batch(local, mesh)    one global batch from every process's own rows (each process
                               loads only its rows; nothing else crosses processes)
  host_local(tree)             a process-local copy of replicated arrays (for evaluation, saving)
  is_primary()                 process 0: the one that logs and writes files
  agree(values)                the largest of each value over processes (interrupts), and
                               broadcast_from_primary(values): process 0's values everywhere
                               (decisions every process must take alike)
With one process these are identities, so single-host code runs unchanged.
"""

import inspect
import os
from typing import Callable, Optional, Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"
SHUTDOWN_WAIT_S = 3600


def split_cpu(num_devices: Optional[int] = None) -> int:
    """Exposes the host CPU as `num_devices` XLA devices (default: the number of cores this
    process may use). Call it right after `import jax`, before any JAX computation: the device
    count is fixed when JAX's backends start. It sets the CPU backend's device count only: where
    JAX's default backend is a GPU, `jax.devices()` still lists the GPUs. Returns `num_devices`."""
    if num_devices is None:
        num_devices = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if int(num_devices) < 1:
        raise ValueError(f"num_devices must be >= 1, got {num_devices}")
    try:
        jax.config.update("jax_num_cpu_devices", int(num_devices))
    except RuntimeError as error:
        raise RuntimeError(
            "split_cpu must run before JAX starts its backends (before the first array or "
            "jax.devices() call); call it right after `import jax`"
        ) from error
    return int(num_devices)


def data_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
    """A 1-D mesh over `devices` (default: `jax.devices()`) with the axis `DATA_AXIS`."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("data_mesh needs at least one device")
    return Mesh(np.array(devices), (DATA_AXIS,))


def check_data_mesh(mesh: Mesh) -> None:
    """Raises `ValueError` unless `mesh` has an axis named `DATA_AXIS`."""
    if DATA_AXIS not in mesh.axis_names:
        raise ValueError(f"the mesh needs an axis named {DATA_AXIS!r}, got {mesh.axis_names}")


def initialize(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
               process_id: Optional[int] = None, cpu_devices: Optional[int] = None) -> None:
    """Joins a multi-process job on JAX's distributed runtime; call it right after `import jax`,
    in every process, before any JAX computation.

    Args:
      coordinator_address: "host:port" of process 0 (every process passes the same one);
        None with the others None: JAX's cluster auto-detection (SLURM, Open MPI, TPU pods).
      num_processes: the number of processes in the job.
      process_id: this process's index in [0, num_processes).
      cpu_devices: on a CPU, split it into this many devices per process (`split_cpu`).

    On a CPU backend the collectives go over gloo (TCP), so processes on one or several hosts
    can train together without a GPU."""
    check_job(coordinator_address, num_processes, process_id)
    if cpu_devices is not None:
        split_cpu(cpu_devices)
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except RuntimeError as error:
        raise RuntimeError("initialize must run before JAX starts its backends (before the first array or "
                           "jax.devices() call); call it right after `import jax`") from error
    # At exit every process waits for the others (JAX's shutdown barrier); process 0 may still be
    # writing its final report then, so the wait is longer than JAX's default 5 minutes.
    wait = {"shutdown_timeout_seconds": SHUTDOWN_WAIT_S} if "shutdown_timeout_seconds" in inspect.signature(
        jax.distributed.initialize).parameters else {}
    jax.distributed.initialize(coordinator_address, num_processes, process_id, **wait)


def check_job(coordinator_address: Optional[str], num_processes: Optional[int], process_id: Optional[int],
              name: Callable[[str], str] = lambda argument: argument) -> None:
    """ValueError unless the three are all None (JAX detects the cluster) or all given and
    consistent; `name(argument)` is how a message names an argument (e.g. as a flag)."""
    given = {"coordinator_address": coordinator_address, "num_processes": num_processes, "process_id": process_id}
    missing = [name(k) for k, v in given.items() if v is None]
    if 0 < len(missing) < len(given):
        raise ValueError(f"a run over several processes needs {', '.join(missing)} as well (or none of them, to "
                         "let JAX detect the cluster)")
    if missing:
        return
    if int(num_processes) < 1:
        raise ValueError(f"{name('num_processes')} must be >= 1, got {num_processes}")
    if not 0 <= int(process_id) < int(num_processes):
        raise ValueError(f"{name('process_id')} must be in [0, {num_processes}), got {process_id}")
    if ":" not in str(coordinator_address):
        raise ValueError(f"{name('coordinator_address')} must be HOST:PORT, got {coordinator_address!r}")


def is_primary() -> bool:
    """True in process 0, the process that logs, shows progress and writes files."""
    return jax.process_index() == 0


def process_rows(mesh: Mesh, batch_size: int) -> slice:
    """The rows `[start, stop)` of a global batch of `batch_size`, split over `mesh`'s data axis,
    that live on this process's devices (all of them with one process). ValueError unless they
    are one contiguous block (a mesh whose devices are ordered by process, as `data_mesh()` is)."""
    check_data_mesh(mesh)
    if batch_size % mesh.shape[DATA_AXIS]:
        raise ValueError(f"the batch size {batch_size} does not split over the {mesh.shape[DATA_AXIS]} devices "
                         "of the data axis")
    split = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    blocks = sorted({(index[0].start or 0, batch_size if index[0].stop is None else index[0].stop)
                     for index in split.addressable_devices_indices_map((batch_size,)).values()})
    if any(a[1] != b[0] for a, b in zip(blocks, blocks[1:])):
        raise ValueError(f"this process's rows of the batch are not contiguous: {blocks}; order the mesh's "
                         "devices by process (data_mesh() does)")
    return slice(blocks[0][0], blocks[-1][1])


def global_batch(local, mesh: Mesh):
    """The global batch whose rows `process_rows(mesh, B)` are `local` (a PyTree of arrays with
    this process's rows), split over `mesh`'s data axis: every process passes its own rows."""
    split = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(split, np.asarray(x)), local)


def host_local(tree):
    """`tree` with every array that spans other processes' devices replaced by this process's
    copy of it (on one local device); other leaves as they are. For replicated arrays (params,
    optimizer state, replay buffer), so evaluation and checkpoints read them without collectives.
    ValueError for an array split over processes (its rows are not all here)."""

    def local(leaf):
        if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
            return leaf
        if not leaf.is_fully_replicated:
            raise ValueError(f"an array of shape {leaf.shape} is split over processes; only replicated arrays "
                             "have a process-local copy")
        return leaf.addressable_data(0)

    return jax.tree.map(local, tree)


def agree(values: Sequence[int]) -> np.ndarray:
    """The elementwise largest of the integers `values` over all processes (e.g. whether any
    process received a signal); `values` itself with one process. Every process must call it at
    the same point of the program."""
    values = np.asarray(values, np.int32)
    if jax.process_count() == 1:
        return values
    return np.max(np.asarray(multihost_utils.process_allgather(values)), axis=0)


def broadcast_from_primary(values: Sequence[float]) -> np.ndarray:
    """Process 0's float64 `values`, bit for bit, in every process (e.g. the metrics that decide a
    save, so every process decides alike); `values` itself with one process."""
    values = np.ascontiguousarray(values, np.float64)
    if jax.process_count() == 1:
        return values
    words = np.asarray(multihost_utils.broadcast_one_to_all(values.view(np.uint32)))  # JAX's default: no float64
    return np.ascontiguousarray(words, np.uint32).view(np.float64)
