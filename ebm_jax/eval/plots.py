"""Figures: image grids, generation over sampler steps, energy histograms, training curves.

Images are `[N, H, W, 1]` in [-1, 1]. Figures are built as `matplotlib.figure.Figure` objects
and written to files, never through pyplot, so no display is needed and the caller's pyplot
backend (a notebook's inline one, say) is left alone.
"""

from typing import Dict, Optional, Sequence

import numpy as np
from matplotlib.figure import Figure


def image_grid(images: np.ndarray, ncol: int = 8, pad: int = 2) -> np.ndarray:
    """`[N, H, W, 1]` in [-1, 1] -> one `[H', W']` image in [0, 1] (a white-bordered grid)."""
    images = (np.clip(np.asarray(images, np.float32)[..., 0], -1, 1) + 1) / 2
    n, h, w = images.shape
    nrow = -(-n // ncol)
    grid = np.ones((nrow * (h + pad) + pad, ncol * (w + pad) + pad), np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, ncol)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    return grid


def save_image_grid(path: str, images: np.ndarray, ncol: int = 8, title: Optional[str] = None) -> np.ndarray:
    grid = image_grid(images, ncol)
    fig = Figure(figsize=(grid.shape[1] / 40 + 0.4, grid.shape[0] / 40 + (0.8 if title else 0.4)))
    ax = fig.subplots()
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return grid


def save_generation_steps(path: str, trace: np.ndarray, steps: Sequence[int]) -> np.ndarray:
    """trace `[S, C, H, W, 1]` (S snapshots of C chains): one row per chain, columns = steps."""
    trace = np.asarray(trace)
    snapshots, chains = trace.shape[:2]
    grid = image_grid(np.swapaxes(trace, 0, 1).reshape(-1, *trace.shape[2:]), ncol=snapshots)
    fig = Figure(figsize=(1.1 * snapshots + 0.5, 1.1 * chains + 0.6))
    ax = fig.subplots()
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    cell = grid.shape[1] / snapshots
    ax.set_xticks([cell * (i + 0.5) for i in range(snapshots)], [str(s) for s in steps], fontsize=8)
    ax.set_yticks([])
    ax.set_xlabel("sampler step")
    ax.set_title("Generation from uniform noise (one chain per row)", fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return grid


def save_energy_histogram(path: str, energies: Dict[str, np.ndarray], bins: int = 60) -> None:
    """Overlaid, density-normalised histograms of each group's energies."""
    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.subplots()
    values = np.concatenate([np.asarray(v) for v in energies.values()])
    edges = np.linspace(values.min(), values.max(), bins + 1)
    for name, e in energies.items():
        ax.hist(np.asarray(e), bins=edges, alpha=0.5, density=True, label=f"{name} (n={len(e)}, mean {np.mean(e):.3g})")
    ax.set_xlabel("energy E(x) (lower = more likely)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def save_training_curves(path: str, records: Sequence[dict], keys: Sequence[Sequence[str]]) -> None:
    """One panel per group of metric names, each plotted against `step` where present."""
    fig = Figure(figsize=(4.2 * len(keys), 3.2))
    axes = fig.subplots(1, len(keys), squeeze=False)
    for ax, group in zip(axes[0], keys):
        for key in group:
            points = [(r["step"], r[key]) for r in records if key in r]
            if points:
                ax.plot(*zip(*points), label=key, lw=1)
        ax.set_xlabel("train step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
