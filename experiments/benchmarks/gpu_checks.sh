#!/bin/bash
# Every GPU measurement of issue 21 in one pass, each under its own timeout, for a session that
# is lent a GPU (at most 10.5 minutes of timeouts; the device budget is 15 minutes, start included).
#
#     bash experiments/benchmarks/gpu_checks.sh [OUT]      # logs in OUT (default: $OUT, else gpu_logs)
#
#  1. versions and the device                                   versions.txt
#  2. ebm_jax vs PyTorch eager vs torch.compile (CUDA graphs)   jax_vs_torch.log
#     at 128, 1,024 and 8,192 chains
#  3. XLA's memory accounting per chain                         memory.log
#  4. where the time goes at 8,192 chains (profile)             profile_8192.log
#  5. the cost of deterministic GPU kernels (train step)        train_step_default.log, train_step_deterministic.log
#  6. the test suite's train, sampler and experiment tests      pytest.log
#     (the suite turns deterministic kernels on: tests/conftest.py)
# A step that runs out of time leaves what it printed so far; the next one still runs.
# The device image has JAX, flax, optax, orbax and PyTorch but not tensorboardX (pure Python):
# copy it beside the repository first and carry that folder,
#     mkdir -p .gpu_vendor && cp -r .venv/lib/python3.11/site-packages/tensorboardX .gpu_vendor/
# (`.gpu_vendor/` is git-ignored); the repository itself is put on PYTHONPATH.
OUT=${1:-${OUT:-gpu_logs}}
mkdir -p "$OUT"
export PYTHONPATH="$PWD:$PWD/.gpu_vendor${PYTHONPATH:+:$PYTHONPATH}"
export EBM_JAX_COMPILATION_CACHE=none
{ date -u; nvidia-smi; python -c "import jax, jaxlib, flax, optax, torch; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, 'flax', flax.__version__, 'optax', optax.__version__, 'torch', torch.__version__); print(jax.devices())"; } > "$OUT/versions.txt" 2>&1
timeout 240 python experiments/benchmarks/jax_vs_torch.py --repeats 3 --chains 128 1024 8192 \
    --torch-compile-mode reduce-overhead > "$OUT/jax_vs_torch.log" 2>&1
timeout 60 python experiments/benchmarks/memory.py --chains 128 1024 8192 > "$OUT/memory.log" 2>&1
timeout 60 python experiments/benchmarks/profile_langevin.py --chains 8192 --repeats 2 --top 20 \
    --trace-dir "$OUT/trace" > "$OUT/profile_8192.log" 2>&1
rm -rf "$OUT/trace"
timeout 60 python experiments/benchmarks/train_step.py --repeats 10 > "$OUT/train_step_default.log" 2>&1
XLA_FLAGS=--xla_gpu_deterministic_ops=true timeout 60 python experiments/benchmarks/train_step.py --repeats 10 \
    > "$OUT/train_step_deterministic.log" 2>&1
timeout 150 python -m pytest -q -x -n 0 tests/train/test_train_step.py tests/train/test_fit_loop.py tests/samplers \
    > "$OUT/pytest.log" 2>&1
echo "done $(date -u)" >> "$OUT/versions.txt"
