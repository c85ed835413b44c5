"""Crash-safe checkpoints: each written whole or not at all (`tree_io`); newest readable wins."""

from __future__ import annotations

import os
import shutil
from typing import Any

from absl import logging

from lasem_jax import tree_io

_PARTIAL = ".partial"


class CheckpointStore:
    """Numbered checkpoints in one directory, each a `tree_io` directory (arrays + JSON).

    A checkpoint is written into `<step>.partial/` and renamed to `<step>/` only once complete;
    a directory rename is atomic, so a process killed mid-write leaves a `.partial` directory
    that is never taken for a checkpoint. The saved tree's structure is stored with it, so any
    method's state (growing networks included) is restored without a template.

    Attributes:
      directory: where the checkpoints live.
      keep: how many complete checkpoints to keep (older ones are deleted after each save).
    """

    def __init__(self, directory: str, *, keep: int = 2) -> None:
        if keep < 1:
            raise ValueError(f"config.train.keep_checkpoints must be >= 1, got {keep}.")
        self.directory, self.keep = directory, keep

    def _path(self, step: int) -> str:
        return os.path.join(self.directory, f"{step:010d}")

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints, oldest first."""
        if not os.path.isdir(self.directory):
            return []
        names = [n for n in os.listdir(self.directory) if n.isdigit()]
        return sorted(int(n) for n in names)

    def save(self, step: int, tree: Any, meta: dict[str, Any]) -> None:
        """Writes checkpoint `step` (a pytree `tree`, JSON-able `meta`); prunes old ones."""
        tree_io.save(self._path(step), tree, meta)
        for old in self.steps()[: -self.keep]:
            shutil.rmtree(self._path(old), ignore_errors=True)

    def restore_latest(self) -> tuple[Any, dict] | None:
        """Restores the newest readable checkpoint.

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
                return tree_io.load(path)
            except Exception as e:
                logging.warning("Ignoring unreadable checkpoint %s: %s", path, e)
        return None

    def restore_run(self, config_json: dict[str, Any]) -> tuple[Any, dict] | None:
        """`restore_latest`, refusing a checkpoint of another config.

        Args:
          config_json: the run's config as JSON (`results_io.to_jsonable(config)`), compared
            with the `"config"` stored in each checkpoint's meta.

        Raises:
          ValueError: the newest readable checkpoint belongs to a run with another config.
        """
        restored = self.restore_latest()
        if restored is not None and restored[1].get("config") != config_json:
            raise ValueError(
                f"{self.directory} holds checkpoints of a run with a different config; use "
                "--restart (restart=True) to discard them, or another workdir."
            )
        return restored

    def clear(self) -> None:
        """Deletes every checkpoint (for `--restart`)."""
        shutil.rmtree(self.directory, ignore_errors=True)
