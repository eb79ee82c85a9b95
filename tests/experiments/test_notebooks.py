"""Executes the notebooks headless with their tiny settings (EBM_NOTEBOOK_TINY=1)."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "notebooks")


@pytest.mark.parametrize("name", ["mnist_ebm.ipynb", "rbm.ipynb", "samplers.ipynb", "toy2d.ipynb", "evaluation.ipynb",
                                  "jem.ipynb"])
def test_notebook_runs(name, tmp_path, monkeypatch):
    monkeypatch.setenv("EBM_NOTEBOOK_TINY", "1")
    nb = nbformat.read(os.path.join(NOTEBOOK_DIR, name), as_version=4)
    # Run from a copy of the folder layout so outputs land in tmp_path, not in the repo.
    run_dir = tmp_path / "experiments" / "notebooks"
    run_dir.mkdir(parents=True)
    os.symlink(os.path.abspath(os.path.join(NOTEBOOK_DIR, "..", "..", "tests")), tmp_path / "tests")
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(run_dir)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # mnist: generation, samples, histogram, edits; rbm: curves, filters, samples, weights;
    # samplers: scatter + 3 traces; toy2d: densities, scores; evaluation: histogram, edits, ROC,
    # samples and traces, inpainting, two landscapes; jem (tiny: no baseline): reliability, samples,
    # compositions, inpainting, denoising, sampled sevens
    assert len(images) >= {"toy2d.ipynb": 2, "evaluation.ipynb": 7, "jem.ipynb": 6}.get(name, 4)
    if name == "mnist_ebm.ipynb":
        assert os.path.exists(run_dir / "runs" / "notebook_tiny" / "metrics.json")
