"""Crash-safe checkpoints written off the training thread; newest readable wins.

Each checkpoint is written whole or not at all (`tree_io`). It holds what a run needs that does
not grow with its epochs: the per-epoch records stay in the run's append-only `metrics.jsonl`,
and a checkpoint stores how many of them the run had (`saved_records` reads them back).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import numpy as np
from absl import logging

from lasem_jax import interrupt
from lasem_jax.errors import LoadError
from lasem_jax.storage import results_io, tree_io

_PARTIAL = ".partial"
_RESTART = "use --restart (restart=True) to discard the checkpoints and train from scratch"
Check = Callable[[Any, dict], None]


class _OtherConfig(Exception):
    """A readable checkpoint of another config (ends the search; not a damaged file)."""


class CheckpointStore:
    """Numbered checkpoints in one directory, each a `tree_io` directory (arrays + JSON).

    A checkpoint is written into `<step>.partial/` and renamed to `<step>/` only once complete;
    a directory rename is atomic, so a process killed mid-write leaves a `.partial` directory
    that is never taken for a checkpoint. The saved tree's structure is stored with it, so any
    method's state (growing networks included) is restored without a template.

    `save_async` writes in a background thread, one write at a time; `wait` (or the
    `background_writes` block around a training loop) waits for it and re-raises its error.

    Attributes:
      directory: where the checkpoints live.
      keep: how many complete checkpoints to keep (older ones are deleted after each save).
    """

    def __init__(self, directory: str, *, keep: int = 2) -> None:
        if keep < 1:
            raise ValueError(f"config.train.keep_checkpoints must be >= 1, got {keep}.")
        self.directory, self.keep = directory, keep
        self._writer: threading.Thread | None = None
        self._error: BaseException | None = None

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

    def save_async(
        self, step: int, tree: Any, meta: dict[str, Any], *, depends_on: Sequence[str] = ()
    ) -> None:
        """`save` in a background thread; returns once `tree` and `meta` are copied.

        The copies (`host_copy` of the arrays, `meta` as plain JSON) are taken here, so the
        caller may go on updating, donating or reusing them at once. At most one write is in
        flight: this first waits for the previous one.

        Args:
          step: the checkpoint's number.
          tree: the pytree to save (arrays on any device).
          meta: JSON-able metadata.
          depends_on: files the checkpoint counts on (e.g. `metrics.jsonl`, whose first records
            it stands for); fsynced before the checkpoint is written.

        Raises:
          BaseException: the previous write's error (this checkpoint is then not written).
        """
        self.wait()
        snapshot, meta = host_copy(tree), results_io.to_jsonable(meta)

        def write() -> None:
            try:
                for path in depends_on:
                    results_io.fsync_file(path)
                self.save(step, snapshot, meta)
            except BaseException as e:  # Re-raised by `wait` in the training thread.
                self._error = e

        self._writer = threading.Thread(target=write, name=f"checkpoint-{step}")
        self._writer.start()

    def wait(self) -> None:
        """Blocks until the background write (if any) is complete; re-raises its error."""
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        error, self._error = self._error, None
        if error is not None:
            raise error

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
        self, config_json: dict[str, Any], defaults: dict[str, Any], check: Check | None = None
    ) -> tuple[Any, dict] | None:
        """`restore_latest`, refusing a checkpoint of another config.

        Args:
          config_json: the run's config as JSON (`results_io.to_jsonable(config)`), compared
            with the `"config"` stored in each checkpoint's meta; a field that one lacks
            (written before the field existed) counts as its value in `defaults`.
          defaults: the default config as JSON (`config.defaults.default_json()`).
          check: as in `restore_latest`, called once the config matches.

        Raises:
          ValueError: the newest readable checkpoint belongs to a run with another config.
          LoadError: as in `restore_latest`.
        """

        def same_config(tree: Any, meta: dict) -> None:
            if not _same_config(meta.get("config"), config_json, defaults):
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


def _same_config(saved: Any, current: Any, default: Any) -> bool:
    """Whether `saved` is `current`, where a field `saved` lacks counts as its `default`."""
    if not (isinstance(saved, dict) and isinstance(current, dict)):
        return saved == current
    default = default if isinstance(default, dict) else {}
    for key in saved.keys() | current.keys():
        if key not in current or (key not in saved and key not in default):
            return False
        if key not in saved:
            if current[key] != default[key]:
                return False
        elif not _same_config(saved[key], current[key], default.get(key)):
            return False
    return True


def host_copy(tree: Any) -> Any:
    """`tree` with every array copied into host memory that nothing else refers to.

    Containers keep their kind and order (`tree_io` saves them as they are). A plain
    `jax.device_get` may return views of device buffers (on CPU), which a later donated or
    reused buffer would change under a background write.
    """
    for leaf in jax.tree.leaves(tree):
        if isinstance(leaf, jax.Array):
            leaf.copy_to_host_async()
    return _copy(tree)


def _copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _copy(value) for key, value in node.items()}
    if isinstance(node, tuple) and hasattr(node, "_fields"):
        return type(node)(*(_copy(value) for value in node))
    if isinstance(node, list | tuple):
        return type(node)(_copy(value) for value in node)
    if isinstance(node, np.ndarray | np.generic | jax.Array):
        return np.array(jax.device_get(node))
    return node


@contextlib.contextmanager
def background_writes(store: CheckpointStore | None) -> Iterator[None]:
    """Waits for `store`'s last background write when the block ends, however it ends.

    Around a training loop: when the loop ends or raises `interrupt.Stopped`, its last
    checkpoint is complete (a write error is raised then); when another exception ends it, a
    write error is logged and that exception goes on.

    Args:
      store: the run's store, or None (no checkpoints).
    """
    if store is None:
        yield
        return
    try:
        yield
    except interrupt.Stopped:
        store.wait()
        raise
    except BaseException:
        try:
            store.wait()
        except Exception as e:
            logging.warning("The last checkpoint write failed: %s: %s", type(e).__name__, e)
        raise
    store.wait()


def check_progress(meta: dict[str, Any], *, num_tasks: int, epochs: int) -> None:
    """Raises `LoadError` unless a checkpoint's progress fields are what the loops write.

    Args:
      meta: the checkpoint's JSON metadata: `num_records`, or the `records` themselves where
        an earlier version wrote it.
      num_tasks: the run's number of tasks `T`.
      epochs: `config.train.epochs_per_task`.
    """
    bounds = {"task": (0, num_tasks - 1), "epoch": (0, epochs), "global_epoch": (0, 1 << 40)}
    if "records" not in meta:
        bounds["num_records"] = (0, 1 << 40)
    for name, (low, high) in bounds.items():
        value = meta.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise LoadError(
                f"checkpoint field {name!r} is {value!r}, not an integer in [{low}, {high}]."
            )
    task, records, kept = meta["task"], meta.get("records", []), meta.get("kept")
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


def saved_records(meta: dict[str, Any], metrics_path: str) -> list[dict[str, Any]]:
    """The per-epoch records of the run a checkpoint saved (its meta checked by `check_progress`).

    A checkpoint stores their number, `num_records`; they are the first that many records of
    the run's append-only `metrics_path` (lines after them are not read). A checkpoint of an
    earlier version holds the records themselves (`records`): those are returned.

    Args:
      meta: the checkpoint's JSON metadata.
      metrics_path: the run's `metrics.jsonl`.

    Raises:
      LoadError: `metrics_path` is missing, holds fewer records, one of them does not parse or
        is not an epoch record, or the last is not the checkpoint's epoch; the message names
        the file, the problem and the fix.
    """
    if "records" in meta:
        return meta["records"]
    count, task, global_epoch = meta["num_records"], meta["task"], meta["global_epoch"]
    try:
        records = results_io.read_jsonl(metrics_path, limit=count)
    except FileNotFoundError:
        problem = f"{metrics_path} is missing"
    except (OSError, ValueError) as e:
        problem = str(e).rstrip(".")
    else:
        problem = _records_problem(records, count, task, global_epoch)
        if problem is None:
            return records
        problem = f"{metrics_path}: {problem}"
    raise LoadError(
        f"{problem}; the checkpoint of global epoch {global_epoch} needs the first {count} "
        f"records of that file. Restore the file, or {_RESTART}."
    )


def _records_problem(records: list[dict], count: int, task: int, global_epoch: int) -> str | None:
    """What is wrong with the records read for a checkpoint, or None."""
    if len(records) < count:
        return f"it holds {len(records)} records, fewer than {count}"
    for i, record in enumerate(records):
        for name in ("task", "global_epoch"):
            value = record.get(name)
            if not isinstance(value, int) or isinstance(value, bool):
                return f"record {i + 1} has {name} {value!r}, not an integer"
    last = records[-1] if records else {"task": task, "global_epoch": global_epoch}
    if (last["task"], last["global_epoch"]) != (task, global_epoch):
        return (
            f"record {count} is of task {last['task']}, global epoch {last['global_epoch']}, not "
            f"the checkpoint's task {task}, global epoch {global_epoch} (another run's file?)"
        )
    return None
