"""JSON / JSON-lines result files: conversion to JSON types, atomic writes and appends."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import pathlib
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

PathLike = str | os.PathLike


def to_jsonable(obj: Any) -> Any:
    """Recursively converts ``obj`` into plain JSON types.

    Conversions: numpy scalars -> Python scalars; numpy (and ``__array__``, e.g. JAX) arrays ->
    nested lists; tuples, lists, sets -> lists (sets sorted when possible); mappings -> dicts
    (non-string keys other than int/float/bool/None become ``str(key)``), a frozen run config
    (``core.frozen.Frozen``) included; other objects with a ``to_dict()`` method (a launcher's
    ``ConfigDict`` / ``FrozenConfigDict``) -> ``.to_dict()``; dataclass instances -> dicts of their
    fields; ``pathlib.Path`` -> str; NaN and +-inf floats -> ``None``.

    Args:
        obj: Any nesting of the types above.

    Returns:
        An object that ``json.dumps(..., allow_nan=False)`` accepts.

    Raises:
        TypeError: If ``obj`` contains a value of an unsupported type.
    """
    if obj is None or isinstance(obj, str | bool | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, Mapping):
        return {_json_key(key): to_jsonable(value) for key, value in obj.items()}
    if callable(getattr(obj, "to_dict", None)):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, list | tuple):
        return [to_jsonable(item) for item in obj]
    if isinstance(obj, set | frozenset):
        try:
            items = sorted(obj)
        except TypeError:
            items = list(obj)
        return [to_jsonable(item) for item in items]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, pathlib.PurePath):
        return str(obj)
    if hasattr(obj, "__array__"):
        return to_jsonable(np.asarray(obj))
    raise TypeError(f"to_jsonable: cannot convert a {type(obj).__module__}.{type(obj).__name__}.")


def _json_key(key: Any) -> str | int | float | bool | None:
    if isinstance(key, np.generic):
        key = key.item()
    if key is None or isinstance(key, str | bool | int):
        return key
    if isinstance(key, float):
        return key if math.isfinite(key) else str(key)
    return str(key)


def _dumps(obj: Any, **kwargs: Any) -> str:
    return json.dumps(to_jsonable(obj), allow_nan=False, **kwargs)


def write_json_atomic(path: PathLike, obj: Any) -> None:
    """Writes ``obj`` as indented JSON to ``path`` so that ``path`` is never half-written.

    The object is serialised first (nothing touches the disk if that fails), written to a
    temporary file in the same directory, flushed and fsync-ed, then moved over ``path`` with
    ``os.replace`` (atomic on POSIX and Windows). The temporary file is removed on any failure.
    Missing parent directories are created. An existing file keeps its permission bits.

    Args:
        path: Target file.
        obj: Anything ``to_jsonable`` accepts.
    """
    write_bytes_atomic(path, (_dumps(obj, indent=2) + "\n").encode("utf-8"))


def write_jsonl_atomic(path: PathLike, records: Sequence[Mapping[str, Any]]) -> None:
    """Replaces ``path`` atomically by one JSON line per record (e.g. when a run resumes)."""
    text = "".join(_dumps(r, separators=(",", ":")) + "\n" for r in records)
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: PathLike, data: bytes) -> None:
    """Writes ``data`` to a temporary file beside ``path``, fsyncs it and renames it over.

    ``path`` is never seen half-written; an existing file keeps its permission bits.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp_path = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        raise
    _fsync_directory(directory)


def fsync_file(path: PathLike) -> None:
    """Flushes ``path``'s written data to disk (e.g. appended lines a checkpoint counts on)."""
    fd = os.open(os.fspath(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: str) -> None:
    """Best effort: persists the directory entry of a rename (not supported everywhere)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def append_jsonl(path: PathLike, record: Mapping[str, Any]) -> None:
    """Appends ``record`` to ``path`` as one JSON line and flushes it.

    The line is serialised before the file is opened, so a record that cannot be converted
    leaves the file untouched. Missing parent directories are created.

    Args:
        path: The ``.jsonl`` file (created if missing).
        record: A mapping (or an object with ``to_dict()``) of anything ``to_jsonable`` accepts.

    Raises:
        TypeError: If ``record`` is not a mapping or contains an unsupported type.
    """
    if not isinstance(record, Mapping) and not callable(getattr(record, "to_dict", None)):
        raise TypeError(f"append_jsonl: record must be a mapping, got {type(record).__name__}.")
    line = _dumps(record, separators=(",", ":")) + "\n"
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()


def read_jsonl(path: PathLike, limit: int | None = None) -> list[dict[str, Any]]:
    """Reads a JSON-lines file written by ``append_jsonl``.

    Blank lines are skipped.

    Args:
        path: The ``.jsonl`` file.
        limit: If given, read only the first ``limit`` records; the lines after them are not
            read (a line a crash cut short there does not matter).

    Returns:
        The records, in file order.

    Raises:
        ValueError: If a line is not valid JSON (e.g. a line truncated by a crash) or is not a
            JSON object; the message gives the file and line number.
    """
    records: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if limit is not None and len(records) >= limit:
                break
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{os.fspath(path)}:{line_number}: invalid JSON ({exc.msg}); the line may have "
                    "been truncated by an interrupted write."
                ) from exc
            if not isinstance(record, dict):
                raise ValueError(
                    f"{os.fspath(path)}:{line_number}: expected a JSON object, got "
                    f"{type(record).__name__}."
                )
            records.append(record)
    return records
