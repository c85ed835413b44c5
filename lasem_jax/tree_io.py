"""Saves and loads any pytree of arrays and plain values with orbax, atomically, without a target.

A tree is split into a flat dict of arrays (written with orbax) and a JSON *skeleton* that
records the containers (dicts, lists, tuples, NamedTuples, None) and plain Python values, so a
tree whose structure is not known in advance (a growing DEN, the competing methods' states) is
restored exactly: same containers, same dtypes, same values.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from lasem_jax import results_io

ARRAYS = "arrays"
SKELETON = "tree.json"
_PARTIAL, _OLD = ".partial", ".old"


def _is_namedtuple(obj: Any) -> bool:
    return isinstance(obj, tuple) and hasattr(obj, "_fields")


def _encode(obj: Any, leaves: list[np.ndarray]) -> Any:
    """The JSON skeleton of `obj`; its arrays are appended to `leaves`."""
    if obj is None:
        return None
    if isinstance(obj, bool | int | float | str):
        return {"value": obj}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError(f"tree_io: dict keys must be strings, got {list(obj)}.")
        return {"dict": {k: _encode(v, leaves) for k, v in obj.items()}}
    if _is_namedtuple(obj):
        cls = type(obj)
        fields = {f: _encode(getattr(obj, f), leaves) for f in obj._fields}
        return {"namedtuple": f"{cls.__module__}:{cls.__qualname__}", "fields": fields}
    if isinstance(obj, list | tuple):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, leaves) for v in obj]}
    if isinstance(obj, np.ndarray | np.generic | jax.Array):
        leaves.append(np.asarray(jax.device_get(obj)))
        return {"array": len(leaves) - 1}
    raise TypeError(f"tree_io: cannot save a {type(obj).__module__}.{type(obj).__name__}.")


def _import(path: str) -> type:
    module, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _decode(node: Any, leaves: dict[str, np.ndarray]) -> Any:
    if node is None:
        return None
    if "value" in node:
        return node["value"]
    if "dict" in node:
        return {k: _decode(v, leaves) for k, v in node["dict"].items()}
    if "namedtuple" in node:
        fields = {f: _decode(v, leaves) for f, v in node["fields"].items()}
        return _import(node["namedtuple"])(**fields)
    if "list" in node:
        return [_decode(v, leaves) for v in node["list"]]
    if "tuple" in node:
        return tuple(_decode(v, leaves) for v in node["tuple"])
    return leaves[_leaf_name(node["array"])]


def _leaf_name(index: int) -> str:
    return f"leaf_{index:06d}"


def save(directory: str, tree: Any, meta: dict[str, Any] | None = None) -> None:
    """Writes `tree` (and JSON-able `meta`) to `directory`, replacing it whole or not at all.

    Everything is written into `<directory>.partial/` and renamed over `directory` once
    complete, so a reader never sees a half-written directory; an existing `directory` is moved
    aside first and deleted after the rename.

    Args:
      directory: the target directory.
      tree: nested dicts (string keys), lists, tuples, NamedTuples, None, Python scalars and
        arrays (NumPy or JAX).
      meta: extra JSON stored beside the skeleton (read back by `load`).
    """
    leaves: list[np.ndarray] = []
    skeleton = {"tree": _encode(tree, leaves), "meta": meta or {}}
    partial, old = directory + _PARTIAL, directory + _OLD
    for stale in (partial, old):
        shutil.rmtree(stale, ignore_errors=True)
    os.makedirs(partial)
    if leaves:
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(
            os.path.join(partial, ARRAYS), {_leaf_name(i): a for i, a in enumerate(leaves)}
        )
        checkpointer.wait_until_finished()
    results_io.write_json_atomic(os.path.join(partial, SKELETON), skeleton)
    if os.path.exists(directory):
        os.replace(directory, old)
    os.replace(partial, directory)
    with contextlib.suppress(OSError):
        shutil.rmtree(old)


def load(directory: str) -> tuple[Any, dict[str, Any]]:
    """Reads what `save` wrote: `(tree, meta)`, arrays as NumPy arrays of their saved dtype.

    Raises:
      FileNotFoundError: `directory` holds no complete saved tree.
    """
    path = os.path.join(directory, SKELETON)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{directory} holds no saved tree ({SKELETON} is missing).")
    with open(path, encoding="utf-8") as f:
        skeleton = json.load(f)
    arrays_dir = os.path.join(directory, ARRAYS)
    leaves = ocp.StandardCheckpointer().restore(arrays_dir) if os.path.isdir(arrays_dir) else {}
    leaves = {k: np.asarray(v) for k, v in leaves.items()}
    return _decode(skeleton["tree"], leaves), skeleton["meta"]
