"""Every Python block of the README runs as written, each in a fresh process (in a temporary
folder, with the MNIST path pointed at the test fixture), and prints what it says it prints."""

import os
import re
import subprocess
import sys

import pytest

README = os.path.join(os.path.dirname(__file__), "..", "README.md")
FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "mnist_tiny")
BLOCKS = re.findall(r"```python\n(.*?)```", open(README).read(), re.S)


def _run(code, cwd):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.split()


def test_the_readme_has_its_blocks():
    assert len(BLOCKS) == 7


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_block_runs(index, tmp_path):
    block = BLOCKS[index].replace('"../shared/data/mnist"', repr(FIXTURE))
    if "parallel.split_cpu()" in block:  # the every-core block: check what it sets up
        block += "print(len(jax.devices()) == len(__import__('os').sched_getaffinity(0)), mesh.axis_names)\n"
    printed = _run(block, tmp_path)
    if "presets.tutorial_objective()" in block:  # the quickstart
        assert len(BLOCKS[index].strip().splitlines()) <= 18
        assert printed[1:] == ["(16,", "28,", "28,", "1)", "(8,", "16,", "28,", "28,", "1)"]
        assert float(printed[0]) == float(printed[0])  # a number, not NaN
    elif "hmc.spec" in block:
        assert printed == ["(1000,", "64,", "2)", "True", "True"]
    elif "rbm_ais_log_z" in block:
        assert printed == ["True", "True"]
    elif "pretrained.load" in block:
        assert printed == ["(4,)", "True", "2340"]
    elif "compose.conjunction" in block:
        assert printed == ["0.5"]
    elif "ej.fit" in block:
        # the first run notes that there is nothing to resume yet; a second resumes at step 50
        assert printed[-4:] == ["50", "['grad_norm',", "'loss',", "'loss_grad_penalty']"]
        assert _run(block, tmp_path)[-4:] == printed[-4:]
    else:
        assert printed == ["True", "('data',)"]
