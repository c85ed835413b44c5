"""Saves and loads pytrees as orbax arrays plus a JSON skeleton; loading runs no code a file names.

A tree is split into a flat dict of arrays (written with orbax) and a JSON *skeleton* that
records the containers (dicts, lists, tuples, NamedTuples, None) and plain Python values, so a
tree whose structure is not known in advance (a growing DEN, the competing methods' states) is
restored exactly: same containers, same dtypes, same values.

Files are data. A NamedTuple is stored under a name registered with `register_namedtuple` (the
library's training, prior, optimizer and method states are registered by the modules that define
them), never as an import path, and loading looks names up in that registry: it never imports a
module or calls anything a file names. Skeletons written before registered names existed (no
`"format"` field) name their types by `module:qualname`; those load through `LEGACY_NAMES`, a
fixed table of exactly the paths such files use. Everything else in a file is checked before it
is used (node kinds, field names, array indices, shapes and dtypes, nesting depth), and every
problem raises `LoadError` naming the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from typing import Any

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp

from lasem_jax.errors import LoadError, MissingFileError
from lasem_jax.storage import results_io

ARRAYS = "arrays"
SKELETON = "tree.json"
FORMAT = 2
MAX_DEPTH = 64
_PARTIAL, _OLD = ".partial", ".old"
_DTYPES = frozenset(
    ["bool", "float16", "bfloat16", "float32", "float64"]
    + [f"{s}int{b}" for s in ("", "u") for b in (8, 16, 32, 64)]
)

_NAMED: dict[str, type] = {}
LEGACY_NAMES: dict[str, str] = {
    "lasem_jax.steps:TrainState": "lasem_jax.TrainState",
    "lasem_jax.em:PriorState": "lasem_jax.PriorState",
    "lasem_jax.baselines.darts:DartsState": "lasem_jax.DartsState",
    "optax._src.base:EmptyState": "optax.EmptyState",
    "optax._src.transform:ScaleByRmsState": "optax.ScaleByRmsState",
    "optax.schedules._inject:InjectStatefulHyperparamsState": (
        "optax.InjectStatefulHyperparamsState"
    ),
}
"""`module:qualname` of the NamedTuples that files written before `FORMAT` 2 name -> their
registered names. A fixed table: a path not in it is refused, never imported."""


def register_namedtuple(name: str, cls: type) -> None:
    """Lets trees holding `cls` (a NamedTuple class) be saved and loaded, under `name`.

    Args:
      name: the stable name written to files (e.g. `"lasem_jax.TrainState"`); keep it when the
        class moves to another module.
      cls: the NamedTuple class.

    Raises:
      ValueError: `cls` is not a NamedTuple class, or `name` is registered to another class.
    """
    if not (isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")):
        raise ValueError(f"register_namedtuple({name!r}, ...): {cls!r} is not a NamedTuple class.")
    if _NAMED.get(name, cls) is not cls:
        raise ValueError(f"NamedTuple name {name!r} is already registered to {_NAMED[name]!r}.")
    _NAMED[name] = cls


for _cls in (
    optax.EmptyState,
    optax.ScaleByRmsState,
    optax.InjectStatefulHyperparamsState,
    optax.ScaleByAdamState,
    optax.TraceState,
    optax.ScaleByScheduleState,
):
    register_namedtuple(f"optax.{_cls.__name__}", _cls)


def _name_of(cls: type) -> str:
    for name, registered in _NAMED.items():
        if registered is cls:
            return name
    raise TypeError(
        f"tree_io: cannot save a {cls.__module__}.{cls.__qualname__}: register it first with "
        "lasem_jax.storage.tree_io.register_namedtuple(name, cls)."
    )


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
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        fields = {f: _encode(getattr(obj, f), leaves) for f in obj._fields}
        return {"namedtuple": _name_of(type(obj)), "fields": fields}
    if isinstance(obj, list | tuple):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, leaves) for v in obj]}
    if isinstance(obj, np.ndarray | np.generic | jax.Array):
        leaf = np.asarray(jax.device_get(obj))
        leaves.append(leaf)
        return {"array": len(leaves) - 1, "shape": list(leaf.shape), "dtype": str(leaf.dtype)}
    raise TypeError(f"tree_io: cannot save a {type(obj).__module__}.{type(obj).__name__}.")


class _Decoder:
    """Turns a skeleton back into a tree, refusing anything that is not plain data."""

    def __init__(self, path: str, leaves: dict[str, np.ndarray], legacy: bool) -> None:
        self.path, self.leaves, self.legacy = path, leaves, legacy

    def fail(self, where: str, problem: str) -> LoadError:
        return LoadError(f"{self.path}: {where or 'the tree'}: {problem}")

    def node_kind(self, node: Any, where: str) -> str:
        if not isinstance(node, dict):
            raise self.fail(where, f"expected a node (an object), got {type(node).__name__}.")
        kinds = [k for k in ("value", "dict", "namedtuple", "list", "tuple", "array") if k in node]
        allowed = {"namedtuple": {"fields"}, "array": {"shape", "dtype"}}
        if len(kinds) != 1 or not set(node) - {kinds[0]} <= allowed.get(kinds[0], set()):
            raise self.fail(where, f"not a node of this format (keys {sorted(node)}).")
        return kinds[0]

    def decode(self, node: Any, where: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(where, f"nested deeper than {MAX_DEPTH} levels.")
        if node is None:
            return None
        kind = self.node_kind(node, where)
        body = node[kind]
        if kind == "value":
            if not isinstance(body, bool | int | float | str):
                raise self.fail(where, f"a value must be a number, bool or string, not {body!r}.")
            return body
        if kind == "array":
            return self.array(node, where)
        if kind in ("list", "tuple"):
            if not isinstance(body, list):
                raise self.fail(where, f"a {kind} node holds a JSON list.")
            items = [self.decode(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(body)]
            return items if kind == "list" else tuple(items)
        fields = body if kind == "dict" else node.get("fields")
        if not isinstance(fields, dict):
            raise self.fail(where, f"a {kind} node holds a JSON object of children.")
        values = {k: self.decode(v, f"{where}/{k}", depth + 1) for k, v in fields.items()}
        return values if kind == "dict" else self.namedtuple(body, values, where)

    def namedtuple(self, name: Any, values: dict[str, Any], where: str) -> Any:
        if self.legacy and isinstance(name, str):
            name = LEGACY_NAMES.get(name, name)
        cls = _NAMED.get(name) if isinstance(name, str) else None
        if cls is None:
            raise self.fail(
                where,
                f"type {name!r} is not a registered NamedTuple (registered: "
                f"{', '.join(sorted(_NAMED))}); nothing was imported.",
            )
        if set(values) != set(cls._fields):
            raise self.fail(where, f"{name} has fields {list(cls._fields)}, got {list(values)}.")
        return cls(**values)

    def array(self, node: dict, where: str) -> np.ndarray:
        index = node["array"]
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 10**6:
            raise self.fail(where, f"array index {index!r} is not an index of this format.")
        leaf = self.leaves.get(_leaf_name(index))
        if leaf is None:
            raise self.fail(where, f"array {index} is missing from {ARRAYS}/.")
        if str(leaf.dtype) not in _DTYPES:
            raise self.fail(where, f"array {index} has dtype {leaf.dtype}, not a numeric dtype.")
        if not self.legacy:
            shape, dtype = node.get("shape"), node.get("dtype")
            if shape != list(leaf.shape) or dtype != str(leaf.dtype):
                raise self.fail(
                    where,
                    f"array {index} is {leaf.dtype}{list(leaf.shape)}, the skeleton says "
                    f"{dtype}{shape}.",
                )
        return leaf


def _leaf_name(index: int) -> str:
    return f"leaf_{index:06d}"


def save(directory: str, tree: Any, meta: dict[str, Any] | None = None) -> None:
    """Writes `tree` (and JSON-able `meta`) to `directory`, replacing it whole or not at all.

    Everything is written into `<directory>.partial/` and renamed over `directory` once
    complete, so a reader never sees a half-written directory; an existing `directory` is moved
    aside first and deleted after the rename.

    Args:
      directory: the target directory.
      tree: nested dicts (string keys), lists, tuples, registered NamedTuples, None, Python
        scalars and arrays (NumPy or JAX).
      meta: extra JSON stored beside the skeleton (read back by `load`).

    Raises:
      TypeError: the tree holds something else (e.g. an unregistered NamedTuple).
    """
    leaves: list[np.ndarray] = []
    skeleton = {"format": FORMAT, "tree": _encode(tree, leaves), "meta": meta or {}}
    partial, old = directory + _PARTIAL, directory + _OLD
    for stale in (partial, old):
        shutil.rmtree(stale, ignore_errors=True)
    os.makedirs(partial)
    if leaves:
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(
            os.path.abspath(os.path.join(partial, ARRAYS)),
            {_leaf_name(i): a for i, a in enumerate(leaves)},
        )
        checkpointer.wait_until_finished()
    results_io.write_json_atomic(os.path.join(partial, SKELETON), skeleton)
    if os.path.exists(directory):
        os.replace(directory, old)
    os.replace(partial, directory)
    with contextlib.suppress(OSError):
        shutil.rmtree(old)


def _read_skeleton(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            skeleton = json.load(f)
    except (ValueError, RecursionError) as e:
        raise LoadError(f"{path} is not valid JSON (truncated or edited?): {e}") from None
    except OSError as e:
        raise LoadError(f"{path} could not be read: {e}") from None
    if not isinstance(skeleton, dict) or not {"tree", "meta"} <= set(skeleton):
        raise LoadError(f"{path} is not a saved tree (no 'tree' and 'meta').")
    version = skeleton.get("format", 1)
    if version not in (1, FORMAT) or isinstance(version, bool):
        raise LoadError(
            f"{path} has format {version!r}; this lasem_jax reads formats 1 and {FORMAT} "
            "(a newer lasem_jax wrote it?)."
        )
    if not isinstance(skeleton["meta"], dict):
        raise LoadError(f"{path}: 'meta' must be a JSON object.")
    return skeleton


def _read_arrays(arrays_dir: str) -> dict[str, np.ndarray]:
    if not os.path.isdir(arrays_dir):
        return {}
    try:
        leaves = ocp.StandardCheckpointer().restore(os.path.abspath(arrays_dir))
        if not isinstance(leaves, dict):
            raise TypeError(f"a {type(leaves).__name__}, not a dict of arrays")
        return {str(k): np.asarray(v) for k, v in leaves.items()}
    except Exception as e:  # orbax and tensorstore raise many types for damaged files
        raise LoadError(f"{arrays_dir} could not be read: {type(e).__name__}: {e}") from None


def load(directory: str) -> tuple[Any, dict[str, Any]]:
    """Reads what `save` wrote: `(tree, meta)`, arrays as NumPy arrays of their saved dtype.

    Raises:
      MissingFileError: `directory` holds no complete saved tree (a `LoadError` and a
        `FileNotFoundError`).
      LoadError: the files are malformed, name an unregistered type, miss an array or
        disagree about an array's shape or dtype, or have an unknown format.
    """
    path = os.path.join(directory, SKELETON)
    if not os.path.isfile(path):
        raise MissingFileError(f"{directory} holds no saved tree ({SKELETON} is missing).")
    skeleton = _read_skeleton(path)
    leaves = _read_arrays(os.path.join(directory, ARRAYS))
    legacy = skeleton.get("format", 1) == 1
    tree = _Decoder(path, leaves, legacy).decode(skeleton["tree"], "", 0)
    return tree, skeleton["meta"]


def check_like(tree: Any, template: Any, what: str) -> None:
    """Raises `LoadError` unless `tree` has `template`'s structure, shapes and dtypes.

    Args:
      tree: a loaded tree (NumPy leaves).
      template: the expected tree, leaves with `.shape` and `.dtype` (e.g. from
        `jax.eval_shape`).
      what: names the tree in the error (file and part).
    """
    got, want = jax.tree_util.tree_structure(tree), jax.tree_util.tree_structure(template)
    if got != want:
        raise LoadError(f"{what} does not have the structure its config implies: {got} != {want}.")
    pairs = zip(jax.tree_util.tree_leaves_with_path(tree), jax.tree.leaves(template), strict=True)
    for (key, leaf), expected in pairs:
        shape, dtype = np.shape(leaf), np.asarray(leaf).dtype
        if shape != tuple(expected.shape) or dtype != expected.dtype:
            raise LoadError(
                f"{what}{jax.tree_util.keystr(key)} is {dtype}{list(shape)}; its config implies "
                f"{expected.dtype}{list(expected.shape)}."
            )
