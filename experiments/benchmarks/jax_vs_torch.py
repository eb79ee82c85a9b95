"""ebm_jax vs the tutorial's loop in PyTorch (eager and torch.compile), one run, alternating A B A B, medians.

    pip install -e ".[bench]"
    python experiments/benchmarks/jax_vs_torch.py [--repeats 5] [--chains 128 256 512 1024] [--cpu-devices N]
                                                  [--chain-group N]
                                                  [--torch-device cpu|cuda] [--no-torch-compile]
                                                  [--torch-compile-mode default|reduce-overhead|max-autotune]

`ebm_jax` runs with the CPU split into `--cpu-devices` XLA devices (default: the cores this
process may use; `ebm_jax.parallel.split_cpu`) and the batch and sampler chains split over a
Mesh of them (`make_train_step(..., mesh=...)`); with more than one device `ebm_jax_1_device`,
the same code on one device, runs beside it. PyTorch runs eagerly with its default threads, on
`--torch-device` (default: CUDA when PyTorch sees a GPU, so on a GPU machine both run there);
`pytorch_compiled` is the same loop with `torch.compile` (`torch_reference.Trainer(compiled=True)`:
each Langevin step and the loss compiled; its compilation is reported apart, as ebm_jax's is).

Measures, for every implementation (the same CNN, sampler settings, buffer, loss, optimizer),
alternating them (A B C A B C ...):
  langevin_step    one Langevin step on a batch of 128 (ms; the median of a 60-step run / 60)
  sample_60        samples per second for 60 steps on 128 chains
  train_step       steps per second of the full train step (compile time reported apart)
  generate_256     256 steps from noise for 128 chains (s)
  chains_sweep     samples per second for 60 steps at each --chains (ebm_jax runs each device's
                   chains `--chain-group` at a time: 64 on a CPU by default, all at once on a GPU)
  (each of these also carries `host_steal_pct`, the share of the host's CPU time taken by the
  hypervisor for other guests while it ran (Linux; None elsewhere), and
  `paired_ratio_vs_pytorch` (and `_vs_pytorch_compiled`), the median over rounds of that
  PyTorch's time / this one's)
  peak_rss         max resident set size of a fresh process running 3 train steps (MiB), with
                   the same process's imports alone reported beside it; on a GPU also the
                   accelerator's peak memory in that process (peak_device)
Prints one JSON line per measurement and a markdown table at the end.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import jax
import numpy as np
import torch
from jax.sharding import NamedSharding, PartitionSpec

sys.path.insert(0, os.path.dirname(__file__))
import torch_reference  # noqa: E402

from ebm_jax import parallel, presets  # noqa: E402
from ebm_jax.energies import TutorialCNN, per_example  # noqa: E402
from ebm_jax.samplers import sample  # noqa: E402
from ebm_jax.train import create_train_state, make_train_step, shard_state  # noqa: E402


class JaxImpl:
    def __init__(self, name, mesh=None, chain_group=None):
        """`mesh`: a data-axis Mesh to split the batch and the chains over; None: one device.
        `chain_group`: the sampler, in the train step too, runs each device's chains this many at
        a time (`ChainSampler.chain_group`; 64 chains per device at batch 128 on 2 devices: no
        effect there)."""
        self.name, self.mesh, self.chain_group = name, mesh, chain_group
        self.model = TutorialCNN()
        self.optimizer = presets.tutorial_optimizer(steps_per_epoch=469)
        objective = presets.tutorial_objective(presets.tutorial_sampler(chain_group=chain_group))
        batch = jax.numpy.zeros((128, 28, 28, 1))
        state = create_train_state(jax.random.key(0), self.model, objective, self.optimizer, batch)
        self.state = state if mesh is None else shard_state(state, mesh)
        self.step_fn = make_train_step(self.model.apply, objective, self.optimizer, mesh=mesh)
        model = self.model

        def run(key, model_params, x, num_steps):  # as the train step runs it: draws made ahead
            spec = presets.tutorial_sampler(num_steps, chain_group=chain_group)
            energy_fn = per_example(model.apply, {"params": model_params["energy"]})
            return sample(key, spec, energy_fn, x, mesh=mesh)[0].position

        self.sample = jax.jit(run, static_argnums=3)
        self.key = jax.random.key(1)

    def images(self, n):
        x = jax.random.uniform(jax.random.key(n), (n, 28, 28, 1), minval=-1, maxval=1)
        return x if self.mesh is None else jax.device_put(x, NamedSharding(self.mesh, PartitionSpec(parallel.DATA_AXIS)))

    def run_sampler(self, x, steps):
        return jax.block_until_ready(self.sample(self.key, self.state.params, x, steps))

    def train(self, batch):
        self.state, metrics = self.step_fn(self.state, batch)
        return jax.block_until_ready(metrics)


class TorchImpl:
    def __init__(self, device, compiled=False, compile_mode="default"):
        self.name = "pytorch_compiled" if compiled else "pytorch"
        self.device, self.compiled, self.compile_mode = device, compiled, compile_mode
        self.trainer = torch_reference.Trainer(device=device, compiled=compiled, compile_mode=compile_mode)

    def images(self, n):
        return torch.rand(n, 1, 28, 28, device=self.device) * 2 - 1

    def run_sampler(self, x, steps):
        x = self.trainer.sampler(x, steps)
        if self.device == "cuda":
            torch.cuda.synchronize()  # CUDA kernels run asynchronously; time them to the end
        return x

    def train(self, batch):
        return self.trainer.step(batch)


def cpu_times():
    """The host's aggregate CPU time counters (`/proc/stat`'s first line), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def steal_percent(before, after):
    """Share of the CPU time between two `cpu_times()` readings that the hypervisor gave to other
    guests (the 8th counter, `steal`): how contended the host was while a measurement ran."""
    if before is None or after is None or len(before) < 8:
        return None
    delta = [b - a for a, b in zip(before, after)]
    return 100.0 * delta[7] / max(sum(delta[:8]), 1)


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return float(np.median(times))


def _jax_probe(num_devices, chain_group):
    return ("import jax\n"
            "from ebm_jax import parallel\n"
            "from ebm_jax.energies import TutorialCNN\n"
            "from ebm_jax import presets\n"
            "from ebm_jax.train import create_train_state, make_train_step, shard_state\n"
            f"parallel.split_cpu({num_devices})\n"
            f"mesh = parallel.data_mesh() if {num_devices} > 1 else None\n"
            "model, opt = TutorialCNN(), presets.tutorial_optimizer(469)\n"
            f"objective = presets.tutorial_objective(presets.tutorial_sampler(chain_group={chain_group}))\n"
            "batch = jax.random.uniform(jax.random.key(1), (128, 28, 28, 1), minval=-1, maxval=1)\n"
            "state = create_train_state(jax.random.key(0), model, objective, opt, batch)\n"
            "state = state if mesh is None else shard_state(state, mesh)\n"
            "step = make_train_step(model.apply, objective, opt, mesh=mesh)\n"
            "for _ in range(3):\n    state, m = step(state, batch)\n"
            "jax.block_until_ready(m)\n"
            "if jax.default_backend() != 'cpu':\n"
            "    print('device_peak_mib', jax.devices()[0].memory_stats()['peak_bytes_in_use'] / 2**20)\n")


def _torch_probe(device, compiled, compile_mode):
    # Each subprocess imports only its own framework, so the peak belongs to that implementation.
    return ("import sys, torch\n"
            f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
            "import torch_reference\n"
            f"trainer = torch_reference.Trainer(device={device!r}, compiled={compiled!r}, "
            f"compile_mode={compile_mode!r})\n"
            f"batch = torch.rand(128, 1, 28, 28, device={device!r}) * 2 - 1\n"
            "for _ in range(3):\n    trainer.step(batch)\n"
            + ("print('device_peak_mib', torch.cuda.max_memory_allocated() / 2**20)\n" if device == "cuda" else ""))


def peak_memory(impl):
    """Max RSS (MiB) of a fresh process doing 3 train steps, and of the same process's imports
    alone; the difference is the memory the work itself adds. On a GPU also the accelerator's
    own peak (MiB; None on CPU): `[rss, rss_imports_only, device_peak]`."""
    if isinstance(impl, TorchImpl):
        code = _torch_probe(impl.device, impl.compiled, impl.compile_mode)
    else:
        code = _jax_probe(1 if impl.mesh is None else impl.mesh.size, impl.chain_group)
    imports = "\n".join(line for line in code.splitlines() if line.startswith(("import", "from", "sys.path")))
    # VmHWM: the peak RSS of this address space (ru_maxrss would carry the parent's size across exec).
    report = "print([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0] / 1024)\n"
    values, device_peak = [], None
    for body in (code, imports + "\n"):
        out = subprocess.run([sys.executable, "-c", body + report], capture_output=True, text=True, timeout=900)
        lines = out.stdout.strip().splitlines()
        if not lines:
            raise RuntimeError(f"memory probe for {impl.name} failed:\n{out.stderr[-2000:]}")
        values.append(float(lines[-1]))
        device_peak = next((float(l.split()[1]) for l in lines if l.startswith("device_peak_mib")), device_peak)
    return values + [device_peak]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--chains", type=int, nargs="+", default=[128, 256, 512, 1024])
    p.add_argument("--cpu-devices", type=int, default=None,
                   help="XLA devices to split the CPU into (default: the cores this process may use)")
    p.add_argument("--chain-group", type=int, default=None,
                   help="ebm_jax's sampler runs each device's chains this many at a time (default: 64 "
                        "on a CPU, where it keeps the activations in cache; all at once on a GPU)")
    p.add_argument("--torch-device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu",
                   help="where the PyTorch reference runs (default: cuda when PyTorch sees a GPU)")
    p.add_argument("--no-torch-compile", action="store_true",
                   help="leave out the torch.compile version of the PyTorch loop (default: run it)")
    p.add_argument("--torch-compile-mode", choices=("default", "reduce-overhead", "max-autotune"), default="default",
                   help="torch.compile's mode (reduce-overhead: CUDA graphs on a GPU; default: default)")
    args = p.parse_args()
    parallel.split_cpu(args.cpu_devices)  # only the CPU backend's device count; a GPU stays one device
    num_devices = len(jax.devices())
    for n in args.chains:
        if n % num_devices:
            p.error(f"--chains {n} is not divisible by the {num_devices} devices")
    context = dict(jax=jax.__version__, torch=torch.__version__, device=str(jax.devices()[0]),
                   jax_devices=len(jax.devices()), torch_device=args.torch_device, torch_threads=torch.get_num_threads(),
                   machine=platform.machine(), cpus=os.cpu_count(),
                   torch_compile_mode=None if args.no_torch_compile else args.torch_compile_mode)
    chain_group = args.chain_group
    if chain_group is None and jax.default_backend() == "cpu":
        chain_group = 64
    context["chain_group"] = chain_group
    impls = [JaxImpl("ebm_jax", parallel.data_mesh(), chain_group)]
    if len(jax.devices()) > 1:
        impls.append(JaxImpl("ebm_jax_1_device", chain_group=chain_group))
    impls.append(TorchImpl(args.torch_device))
    if not args.no_torch_compile:
        impls.append(TorchImpl(args.torch_device, compiled=True, compile_mode=args.torch_compile_mode))
    torch_names = [impl.name for impl in impls if isinstance(impl, TorchImpl)]
    results = {impl.name: {} for impl in impls}

    def record(impl, what, value, **extra):
        results[impl.name][what] = value
        print(json.dumps(dict(context, impl=impl.name, what=what, value=value, **extra)), flush=True)

    # Compilation / warm-up, reported apart.
    for impl in impls:
        tic = time.perf_counter()
        impl.train(impl.images(128))
        record(impl, "train_step_first_call_s", time.perf_counter() - tic)
        impl.run_sampler(impl.images(128), 60)
        impl.run_sampler(impl.images(128), 256)
        for n in args.chains:
            impl.run_sampler(impl.images(n), 60)

    paired, steals = {}, {}

    def alternate(what, make_fn, transform):
        per_impl = {impl.name: [] for impl in impls}
        before = cpu_times()
        for _ in range(args.repeats):
            for impl in impls:  # A B A B ...
                per_impl[impl.name].append(timed(make_fn(impl), 1))
        steal = steals[what] = steal_percent(before, cpu_times())
        for impl in impls:
            times = np.array(per_impl[impl.name])
            # Per round, PyTorch's time over this implementation's (> 1: this one is faster): the
            # rounds ran back to back, so their ratios see the same state of the machine.
            ratios = {}
            for torch_name in torch_names:
                paired[(impl.name, what, torch_name)] = float(np.median(np.array(per_impl[torch_name]) / times))
                ratios[f"paired_ratio_vs_{torch_name}"] = paired[(impl.name, what, torch_name)]
            record(impl, what, transform(float(np.median(times))), host_steal_pct=steal, **ratios)

    batch = {impl.name: impl.images(128) for impl in impls}
    alternate("langevin_step_ms", lambda impl: (lambda: impl.run_sampler(batch[impl.name], 60)), lambda s: 1e3 * s / 60)
    alternate("sample_60_per_s", lambda impl: (lambda: impl.run_sampler(batch[impl.name], 60)), lambda s: 128 / s)
    alternate("train_steps_per_s", lambda impl: (lambda: impl.train(batch[impl.name])), lambda s: 1 / s)
    alternate("generate_256_s", lambda impl: (lambda: impl.run_sampler(batch[impl.name], 256)), lambda s: s)
    for n in args.chains:
        xs = {impl.name: impl.images(n) for impl in impls}
        alternate(f"chains_{n}_samples_per_s", lambda impl: (lambda: impl.run_sampler(xs[impl.name], 60)), lambda s, n=n: n / s)
    for impl in impls:
        total, imports_only, device_peak = peak_memory(impl)
        record(impl, "peak_rss_mib_3_train_steps", total, imports_only_mib=imports_only)
        if device_peak is not None:
            record(impl, "peak_device_mib_3_train_steps", device_peak)

    jax_names = [impl.name for impl in impls if not isinstance(impl, TorchImpl)]
    labels = {"pytorch": "PyTorch eager", "pytorch_compiled": "torch.compile"}
    pairs = [(j, t) for t in torch_names for j in jax_names]
    print()
    print("| measurement | " + " | ".join(jax_names + [labels[t] for t in torch_names]) + " | "
          + " | ".join(f"{j} / {labels[t]}" for j, t in pairs) + " |")
    print("|---" * (1 + len(jax_names) + len(torch_names) + len(pairs)) + "|")
    for what in results["pytorch"]:
        higher_better = what.endswith("per_s")  # otherwise lower is better (time, memory)
        values = [results[name].get(what, float("nan")) for name in jax_names + torch_names]
        ratios = [(results[j][what] / results[t][what]) if higher_better else (results[t][what] / results[j][what])
                  for j, t in pairs if what in results[j] and what in results[t]]
        print(f"| {what} | " + " | ".join(f"{v:.4g}" for v in values) + " | "
              + " | ".join(f"{r:.2f}" for r in ratios) + " |")
    print()
    print("Paired ratios (median over rounds of PyTorch's time / ebm_jax's time in the same round),")
    print("and the host's CPU steal while each measurement ran:")
    for what, steal in steals.items():
        shown = "n/a" if steal is None else f"{steal:.1f} %"
        print(f"  {what}: " + ", ".join(f"{j} vs {labels[t]} {paired[(j, what, t)]:.2f}" for j, t in pairs)
              + f"; steal {shown}")


if __name__ == "__main__":
    main()
