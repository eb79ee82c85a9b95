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
        self._workdir = workdir
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

    def truncate(self, step: int) -> None:
        """Drops the `metrics.jsonl` records after `step` (`truncate_metrics`) and goes on appending."""
        self._jsonl.close()
        truncate_metrics(self._workdir, step)
        self._jsonl = open(os.path.join(self._workdir, "metrics.jsonl"), "a")

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
    """The records of `metrics.jsonl` as a list of dicts (for plots and tests); a line that does
    not parse (cut off by a crash) is skipped."""
    return _parse(os.path.join(workdir, "metrics.jsonl"))[0]


def truncate_metrics(workdir: str, step: int) -> None:
    """Keeps the records of `metrics.jsonl` up to `step` (a resumed or rolled-back run writes the
    later ones again) and drops lines that do not parse, saying so; rewrites the file atomically."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return
    records, torn = _parse(path)
    kept = [r for r in records if r.get("step", 0) <= step]
    if torn:
        print(f"{path}: dropped {torn} line(s) that do not parse (cut off by a crash?)")
    if len(kept) == len(records) and not torn:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in kept)
    os.replace(tmp, path)


def _parse(path: str):
    """`(records, number of lines that do not parse)`."""
    records, torn = [], 0
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                torn += 1
    return records, torn
