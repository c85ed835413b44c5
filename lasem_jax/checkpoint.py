"""Crash-safe checkpoints: each written whole or not at all (`tree_io`); newest readable wins."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

from absl import logging

from lasem_jax import tree_io
from lasem_jax.errors import LoadError

_PARTIAL = ".partial"
Check = Callable[[Any, dict], None]


class _OtherConfig(Exception):
    """A readable checkpoint of another config (ends the search; not a damaged file)."""


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

    def restore_latest(self, check: Check | None = None) -> tuple[Any, dict] | None:
        """Restores the newest readable checkpoint.

        Args:
          check: called as `check(tree, meta)` on each loaded checkpoint; raises `LoadError`
            where the contents are not what the run expects (that checkpoint is skipped).

        Returns:
          `(tree, meta)`, or None if there is no checkpoint. Partial checkpoints, and unreadable
          ones while an older one is readable, are skipped with a warning.

        Raises:
          LoadError: there are checkpoints but none is readable (the newest one's problem is
            named, with the fix).
        """
        if os.path.isdir(self.directory):
            for name in sorted(os.listdir(self.directory)):
                if name.endswith(_PARTIAL):
                    logging.warning("Ignoring incomplete checkpoint %s.", name)
        problems = []
        for step in reversed(self.steps()):
            path = self._path(step)
            try:
                tree, meta = tree_io.load(path)
                if check is not None:
                    check(tree, meta)
                return tree, meta
            except LoadError as e:
                logging.warning("Ignoring unreadable checkpoint %s: %s", path, e)
                problems.append(e)
        if problems:
            raise LoadError(
                f"{self.directory} holds checkpoints but none is readable (the newest: "
                f"{problems[0]}); use --restart (restart=True) to discard them and train from "
                "scratch, or another workdir."
            )
        return None

    def restore_run(
        self, config_json: dict[str, Any], check: Check | None = None
    ) -> tuple[Any, dict] | None:
        """`restore_latest`, refusing a checkpoint of another config.

        Args:
          config_json: the run's config as JSON (`results_io.to_jsonable(config)`), compared
            with the `"config"` stored in each checkpoint's meta.
          check: as in `restore_latest`, called once the config matches.

        Raises:
          ValueError: the newest readable checkpoint belongs to a run with another config.
          LoadError: as in `restore_latest`.
        """

        def same_config(tree: Any, meta: dict) -> None:
            if meta.get("config") != config_json:
                raise _OtherConfig
            if check is not None:
                check(tree, meta)

        try:
            return self.restore_latest(same_config)
        except _OtherConfig:
            raise ValueError(
                f"{self.directory} holds checkpoints of a run with a different config; use "
                "--restart (restart=True) to discard them, or another workdir."
            ) from None

    def clear(self) -> None:
        """Deletes every checkpoint (for `--restart`)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def check_progress(meta: dict[str, Any], *, num_tasks: int, epochs: int) -> None:
    """Raises `LoadError` unless a checkpoint's progress fields are what the loops write.

    Args:
      meta: the checkpoint's JSON metadata.
      num_tasks: the run's number of tasks `T`.
      epochs: `config.train.epochs_per_task`.
    """
    bounds = {"task": (0, num_tasks - 1), "epoch": (0, epochs), "global_epoch": (0, 1 << 40)}
    for name, (low, high) in bounds.items():
        value = meta.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise LoadError(
                f"checkpoint field {name!r} is {value!r}, not an integer in [{low}, {high}]."
            )
    task = meta["task"]
    records, kept = meta.get("records"), meta.get("kept")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise LoadError("checkpoint field 'records' is not a list of records.")
    if (
        not isinstance(kept, list)
        or len(kept) != task
        or not all(isinstance(r, list) for r in kept)
    ):
        raise LoadError(f"checkpoint field 'kept' is not {task} rows of accuracies.")
    if not isinstance(meta.get("elapsed"), int | float) or isinstance(meta["elapsed"], bool):
        raise LoadError(f"checkpoint field 'elapsed' is {meta.get('elapsed')!r}, not a number.")
