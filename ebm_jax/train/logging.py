"""Metric and image logging: one JSON line per record in `metrics.jsonl` plus TensorBoard.

Appends, so a resumed run extends the same history. Host-side only: call it with values
already fetched from the device, outside any jitted code.
"""

import json
import os
from typing import Dict

import numpy as np


class MetricWriter:
    def __init__(self, workdir: str, tensorboard: bool = True):
        os.makedirs(workdir, exist_ok=True)
        self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

    def scalars(self, step: int, values: Dict[str, float], prefix: str = "") -> None:
        values = {f"{prefix}{k}": float(v) for k, v in values.items()}
        self._jsonl.write(json.dumps({"step": int(step), **values}) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(key, value, int(step))

    def image(self, step: int, tag: str, image: np.ndarray) -> None:
        """image: float `[H, W]` or `[H, W, C]` in [0, 1]."""
        if self._tb is not None:
            image = np.asarray(image, np.float32)
            image = image[None] if image.ndim == 2 else np.moveaxis(image, -1, 0)
            self._tb.add_image(tag, image, int(step))

    def close(self) -> None:
        self._jsonl.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics(workdir: str):
    """The records of `metrics.jsonl` as a list of dicts (for plots and tests)."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]
