"""The README's quickstart runs as written (on the test fixture instead of ../shared)."""

import os
import re

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def test_quickstart_runs(mnist_tiny_dir, capsys):
    text = open(README).read()
    block = re.search(r"## Quickstart.*?```python\n(.*?)```", text, re.S).group(1)
    assert len(block.strip().splitlines()) <= 16
    code = block.replace('"../shared/data/mnist"', repr(mnist_tiny_dir))
    exec(compile(code, "README quickstart", "exec"), {})
    printed = capsys.readouterr().out.split()
    assert printed[1:] == ["(16,", "28,", "28,", "1)", "(8,", "16,", "28,", "28,", "1)"]
    assert float(printed[0]) == float(printed[0])  # a number, not NaN


def test_objectives_snippet_runs():
    import jax

    text = open(README).read()
    block = re.search(r"## Objectives and the 2-D benchmark.*?```python\n(.*?)```", text, re.S).group(1)
    namespace = {"key": jax.random.key(0), "batch": jax.random.normal(jax.random.key(1), (64, 2))}
    exec(compile(block, "README objectives", "exec"), namespace)
    assert int(namespace["state"].step) == 1
    assert set(namespace["metrics"]) >= {"loss", "loss_grad_penalty", "grad_norm"}


def test_every_core_snippet_runs():
    """Run in a fresh process: `split_cpu` must come before JAX starts."""
    import subprocess
    import sys

    text = open(README).read()
    block = re.search(r"The same mesh is how ebm_jax uses every core.*?```python\n(.*?)```", text, re.S).group(1)
    code = block + "print(len(jax.devices()) == len(os.sched_getaffinity(0)), mesh.axis_names)\n"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    out = subprocess.run([sys.executable, "-c", "import os\n" + code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "('data',)"]
