"""Tests for lasem_jax.storage.results_io."""

import dataclasses
import json
import math
import os
import pathlib

import ml_collections
import numpy as np
import pytest

from lasem_jax.storage import results_io


def test_to_jsonable_converts_numpy_tuples_configdict_and_non_finite():
    config = ml_collections.ConfigDict({"lr": 1e-4, "layers": (1, 2), "nested": {"b": True}})
    obj = {
        "scalar_f": np.float32(0.5),
        "scalar_i": np.int64(3),
        "scalar_b": np.bool_(True),
        "array": np.array([[1.0, np.nan], [np.inf, -np.inf]]),
        "tuple": (1, (2, 3)),
        "config": config,
        "frozen": ml_collections.FrozenConfigDict(config),
        "nan": float("nan"),
        "inf": math.inf,
        "path": pathlib.Path("a/b"),
        np.int64(7): "numpy key",
    }
    out = results_io.to_jsonable(obj)
    assert out == {
        "scalar_f": 0.5,
        "scalar_i": 3,
        "scalar_b": True,
        "array": [[1.0, None], [None, None]],
        "tuple": [1, [2, 3]],
        "config": {"lr": 1e-4, "layers": [1, 2], "nested": {"b": True}},
        "frozen": {"lr": 1e-4, "layers": [1, 2], "nested": {"b": True}},
        "nan": None,
        "inf": None,
        "path": "a/b",
        7: "numpy key",
    }
    assert type(out["scalar_i"]) is int
    assert type(out[7]) is str
    json.dumps(out, allow_nan=False)


def test_to_jsonable_dataclass():
    @dataclasses.dataclass
    class Point:
        x: float
        y: np.ndarray

    assert results_io.to_jsonable(Point(1.5, np.array([1, 2]))) == {"x": 1.5, "y": [1, 2]}


def test_to_jsonable_rejects_unknown_types():
    with pytest.raises(TypeError, match="cannot convert"):
        results_io.to_jsonable({"fn": object()})


def test_write_json_atomic_writes_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "summary.json"
    results_io.write_json_atomic(target, {"acc": np.float64(0.25), "bad": np.nan})
    assert json.loads(target.read_text()) == {"acc": 0.25, "bad": None}
    results_io.write_json_atomic(str(target), {"acc": 0.5})
    assert json.loads(target.read_text()) == {"acc": 0.5}
    assert sorted(os.listdir(tmp_path)) == ["summary.json"]


def test_write_json_atomic_keeps_old_file_when_serialisation_fails(tmp_path):
    target = tmp_path / "summary.json"
    results_io.write_json_atomic(target, {"version": 1})
    with pytest.raises(TypeError):
        results_io.write_json_atomic(target, {"version": 2, "bad": object()})
    assert json.loads(target.read_text()) == {"version": 1}
    assert sorted(os.listdir(tmp_path)) == ["summary.json"]


def test_write_json_atomic_removes_temp_file_when_replace_fails(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    results_io.write_json_atomic(target, {"version": 1})

    def failing_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(results_io.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk on fire"):
        results_io.write_json_atomic(target, {"version": 2})
    assert json.loads(target.read_text()) == {"version": 1}
    assert sorted(os.listdir(tmp_path)) == ["summary.json"]


def test_write_json_atomic_creates_parent_directories(tmp_path):
    target = tmp_path / "a" / "b" / "out.json"
    results_io.write_json_atomic(target, [1, 2])
    assert json.loads(target.read_text()) == [1, 2]


def test_jsonl_round_trip(tmp_path):
    path = tmp_path / "log.jsonl"
    records = [
        {"task": 0, "epoch": 1, "val": [0.5], "test": np.array([0.25], np.float32)},
        {"task": 1, "epoch": 1, "val": [0.5, float("nan")], "test": (0.5, 0.75)},
    ]
    for record in records:
        results_io.append_jsonl(path, record)
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert "NaN" not in lines[1] and "null" in lines[1]
    assert results_io.read_jsonl(path) == [
        {"task": 0, "epoch": 1, "val": [0.5], "test": [0.25]},
        {"task": 1, "epoch": 1, "val": [0.5, None], "test": [0.5, 0.75]},
    ]


def test_append_jsonl_leaves_file_untouched_on_bad_record(tmp_path):
    path = tmp_path / "log.jsonl"
    results_io.append_jsonl(path, {"a": 1})
    with pytest.raises(TypeError):
        results_io.append_jsonl(path, {"a": object()})
    with pytest.raises(TypeError, match="must be a mapping"):
        results_io.append_jsonl(path, [1, 2])
    assert results_io.read_jsonl(path) == [{"a": 1}]


def test_read_jsonl_reports_truncated_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2, "b"\n')
    with pytest.raises(ValueError, match=r"log.jsonl:3: invalid JSON"):
        results_io.read_jsonl(path)


def test_read_jsonl_rejects_non_objects(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match=r"log.jsonl:1: expected a JSON object, got list"):
        results_io.read_jsonl(path)
