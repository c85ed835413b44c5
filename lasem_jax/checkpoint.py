"""Crash-safe checkpoints with orbax: written whole or not at all, newest readable one wins."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from typing import Any

import orbax.checkpoint as ocp
from absl import logging

from lasem_jax import results_io

_PARTIAL = ".partial"


class CheckpointStore:
    """Numbered checkpoints in one directory, each an orbax pytree plus a JSON of metadata.

    A checkpoint is written into `<step>.partial/` and renamed to `<step>/` only once both the
    arrays and `meta.json` are on disk; a directory rename is atomic, so a process killed
    mid-write leaves a `.partial` directory that is never taken for a checkpoint.

    Attributes:
      directory: where the checkpoints live.
      keep: how many complete checkpoints to keep (older ones are deleted after each save).
    """

    def __init__(self, directory: str, *, keep: int = 2) -> None:
        if keep < 1:
            raise ValueError(f"config.train.keep_checkpoints must be >= 1, got {keep}.")
        self.directory, self.keep = directory, keep
        self._checkpointer = ocp.StandardCheckpointer()

    def _path(self, step: int) -> str:
        return os.path.join(self.directory, f"{step:010d}")

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints, oldest first."""
        if not os.path.isdir(self.directory):
            return []
        names = [n for n in os.listdir(self.directory) if n.isdigit()]
        return sorted(int(n) for n in names)

    def save(self, step: int, tree: Any, meta: dict[str, Any]) -> None:
        """Writes checkpoint `step` (arrays `tree`, JSON-able `meta`) and prunes old ones."""
        final, partial = self._path(step), self._path(step) + _PARTIAL
        for stale in (partial, final):
            shutil.rmtree(stale, ignore_errors=True)
        os.makedirs(partial)
        self._checkpointer.save(os.path.join(partial, "arrays"), tree)
        self._checkpointer.wait_until_finished()
        results_io.write_json_atomic(os.path.join(partial, "meta.json"), meta)
        os.replace(partial, final)
        for old in self.steps()[: -self.keep]:
            shutil.rmtree(self._path(old), ignore_errors=True)

    def restore_latest(self, target_fn: Callable[[dict], Any]) -> tuple[Any, dict] | None:
        """Restores the newest readable checkpoint.

        Args:
          target_fn: builds, from a checkpoint's metadata, a pytree with the structure of its
            arrays (orbax restores into that structure).

        Returns:
          `(tree, meta)`, or None if there is no readable checkpoint. Partial and unreadable
          checkpoints are skipped with a warning.
        """
        if os.path.isdir(self.directory):
            for name in sorted(os.listdir(self.directory)):
                if name.endswith(_PARTIAL):
                    logging.warning("Ignoring incomplete checkpoint %s.", name)
        for step in reversed(self.steps()):
            path = self._path(step)
            try:
                with open(os.path.join(path, "meta.json")) as f:
                    meta = json.load(f)
                tree = self._checkpointer.restore(os.path.join(path, "arrays"), target_fn(meta))
            except Exception as e:
                logging.warning("Ignoring unreadable checkpoint %s: %s", path, e)
                continue
            return tree, meta
        return None

    def clear(self) -> None:
        """Deletes every checkpoint (for `--restart`)."""
        shutil.rmtree(self.directory, ignore_errors=True)
