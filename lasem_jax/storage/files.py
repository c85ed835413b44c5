"""The names of the files and folders a run keeps in its workdir (one place for all of them)."""

from __future__ import annotations

import os

METRICS = "metrics.jsonl"  # one JSON record per epoch, appended as the run goes
RESULTS = "results.json"  # the finished run's results, written last and atomically
MODEL = "model"  # the trained model (`lasem_jax.load_trained`)
CHECKPOINTS = "checkpoints"  # resumable checkpoints
LOCK = ".lock"  # held by the process training in the workdir


def path(workdir: str, name: str) -> str:
    """`workdir/name` for one of this module's names."""
    return os.path.join(workdir, name)
