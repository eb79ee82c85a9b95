"""Time to the first train step with and without JAX's persistent compilation cache.

    python experiments/benchmarks/compilation_cache.py --data-dir ../shared/data/mnist [--repeats 2]

Runs the MNIST experiment (default preset, 20 steps, small evaluation) as a user would, in fresh
processes: once with the cache off, then twice with a new cache folder (the first fills it, the
second loads from it), `--repeats` times. Prints, per run, the first train step including its
compilation (the fit loop's `first_step_incl_compile_s` in metrics.json) and the command's wall
time.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def one_run(data_dir: str, workdir: str, cache: str) -> dict:
    command = [sys.executable, "-m", "ebm_jax.experiments.mnist", "--data-dir", data_dir, "--workdir", workdir,
               "--max-steps", "20", "--max-eval-images", "500", "--quality-samples", "0", "--no-ood-benchmark",
               "--generation-steps", "16", "--generation-snapshots", "4", "--no-progress",
               "--compilation-cache", cache]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - start
    with open(os.path.join(workdir, "metrics.json")) as f:
        first = json.load(f)["timing"]["first_step_incl_compile_s"]
    return {"first_step_s": first, "wall_s": wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    rows = []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            cache = os.path.join(tmp, "cache")
            for label, cache_arg in (("cache off", "none"), ("cold cache", cache), ("warm cache", cache)):
                result = one_run(args.data_dir, os.path.join(tmp, label.replace(" ", "_")), cache_arg)
                rows.append((repeat, label, result))
                print(f"repeat {repeat}: {label:>10s}: first train step {result['first_step_s']:6.2f} s, "
                      f"command {result['wall_s']:6.1f} s", flush=True)
    for label in ("cache off", "cold cache", "warm cache"):
        firsts = [r["first_step_s"] for _, l, r in rows if l == label]
        walls = [r["wall_s"] for _, l, r in rows if l == label]
        print(f"{label:>10s}: first step {min(firsts):.2f}-{max(firsts):.2f} s, command {min(walls):.1f}-{max(walls):.1f} s "
              f"over {len(firsts)} runs")


if __name__ == "__main__":
    main()
