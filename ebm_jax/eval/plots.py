"""Figures: image grids, generation over sampler steps, energy histograms, training curves,
reliability diagrams of classifiers, and the energy landscape of a 2-D model (contours of E, the
field -grad E, samples on top).

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


def save_reliability_diagram(path: str, reliabilities: Dict[str, Dict]) -> None:
    """One panel per model: accuracy against confidence per bin (bars, the diagonal = perfect
    calibration) with the bin counts' share beneath; `reliabilities` maps a name to
    `eval.calibration.reliability(...)` (arrays or lists)."""
    fig = Figure(figsize=(3.6 * len(reliabilities), 3.8))
    axes = np.atleast_1d(fig.subplots(1, len(reliabilities)))
    for ax, (name, r) in zip(axes, reliabilities.items()):
        edges, count = np.asarray(r["edges"]), np.asarray(r["count"])
        width = np.diff(edges)
        ece = float(np.sum(count / count.sum() * np.abs(np.asarray(r["accuracy"]) - np.asarray(r["confidence"]))))
        ax.bar(edges[:-1], r["accuracy"], width, align="edge", edgecolor="black", alpha=0.7, label="accuracy")
        ax.bar(edges[:-1], count / count.sum(), width, align="edge", color="gray", alpha=0.4, label="share of inputs")
        ax.plot([0, 1], [0, 1], ls="--", c="red", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence max_y p(y | x)")
        ax.set_title(f"{name}: ECE {ece:.4f}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("accuracy in the bin")
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


def save_energy_landscape(path: str, batch_energy_fn, half_width: float, samples=None, n: int = 120,
                          arrows: int = 20, title: str = "") -> None:
    """A 2-D model's landscape on [-half_width, half_width]^2: filled contours of E(x) (clipped to
    its 1st-99th percentile so the basins show), the field -grad E(x) on an `arrows` x `arrows`
    grid (arrow length proportional to |grad E|, longest scaled to a cell), and `samples [N, 2]`.
    `batch_energy_fn`: `[n, 2] -> [n]`."""
    import jax
    import jax.numpy as jnp

    axis = np.linspace(-half_width, half_width, n)
    xx, yy = np.meshgrid(axis, axis)
    points = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], -1), jnp.float32)
    energies = np.asarray(jax.jit(batch_energy_fn)(points)).reshape(n, n)
    low, high = np.percentile(energies, [1, 99])
    coarse = np.linspace(-half_width, half_width, arrows)
    cx, cy = np.meshgrid(coarse, coarse)
    at = jnp.asarray(np.stack([cx.ravel(), cy.ravel()], -1), jnp.float32)
    grads = np.asarray(jax.jit(jax.grad(lambda x: jnp.sum(batch_energy_fn(x))))(at)).reshape(arrows, arrows, 2)
    scale = (coarse[1] - coarse[0]) / max(float(np.abs(grads).max()), 1e-12)
    fig = Figure(figsize=(5.6, 4.8))
    ax = fig.subplots()
    filled = ax.contourf(xx, yy, np.clip(energies, low, high), levels=30, cmap="viridis_r")
    fig.colorbar(filled, ax=ax, label="E(x) (clipped to its 1-99th percentile)")
    ax.quiver(cx, cy, -grads[..., 0] * scale, -grads[..., 1] * scale, angles="xy", scale_units="xy", scale=1,
              color="white", alpha=0.8, width=0.003)
    if samples is not None:
        s = np.asarray(samples)
        ax.scatter(s[:, 0], s[:, 1], s=1.0, c="red", alpha=0.5, linewidths=0)
    ax.set_xlim(-half_width, half_width)
    ax.set_ylim(-half_width, half_width)
    ax.set_aspect("equal")
    ax.set_title(title or "energy, -grad E and samples", fontsize=9)
    fig.savefig(path, dpi=100, bbox_inches="tight")
