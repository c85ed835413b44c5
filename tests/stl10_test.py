"""Tests of the STL-10 lifelong tasks (docs/protocol.md §5.3) on synthetic and tfds mock data."""

from __future__ import annotations

import json
import os

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from lasem_jax.data import make_tasks, stl10
from lasem_jax.data.tfds_source import load_split_arrays


def _synthetic(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 images whose channels 0/1 encode id = class * per_class + index; channel 2 = 128."""
    ids = np.arange(10 * per_class)
    x = np.empty((ids.size, 8, 8, 3), np.uint8)
    x[..., 0] = (ids // 256)[:, None, None]
    x[..., 1] = (ids % 256)[:, None, None]
    x[..., 2] = 128
    order = np.random.default_rng(seed).permutation(ids.size)
    return x[order], (ids // per_class)[order]


_ARRAYS = {"train": _synthetic(500, 0), "test": _synthetic(800, 1)}


@pytest.fixture
def fake_source(monkeypatch):
    monkeypatch.setattr(stl10, "load_split_arrays", lambda name, split, data_dir: _ARRAYS[split])


def _config(**overrides) -> ml_collections.ConfigDict:
    fields = {
        "name": "stl10",
        "num_tasks": 20,
        "classes_per_task": 3,
        "data_percent": 25,
        "valid_ratio": 0.15,
        "data_dir": "",
        "design_file": "",
    }
    fields.update(overrides)
    return ml_collections.ConfigDict(fields)


def _design(seed: int = 0, **overrides) -> list[dict]:
    settings = {"num_tasks": 20, "classes_per_task": 3, "data_percent": 25, "valid_ratio": 0.15}
    settings.update(overrides)
    return stl10.design_from_seed(seed, **settings)


def _ids(x: np.ndarray) -> np.ndarray:
    pixels = np.rint((x[:, 0, 0, :2] + 0.5) * 255).astype(np.int64)
    return pixels[:, 0] * 256 + pixels[:, 1]


def test_design_from_seed():
    design = _design(0)
    assert len(design) == 20
    assert len({tuple(sorted(d["classes"])) for d in design}) == 20
    for d in design:
        assert len(set(d["classes"])) == 3 and all(0 <= c < 10 for c in d["classes"])
        assert d["noise_mean"] in (-0.05, -0.025, 0.0, 0.025) and d["noise_std"] in (0.0, 0.025)
        assert d["channel_perm"] is None or sorted(d["channel_perm"]) == [0, 1, 2]
        assert d["channel_perm"] != [0, 1, 2]
        for tr, va in zip(d["train_indices"], d["valid_indices"], strict=True):
            assert (len(tr), len(va)) == (106, 19) and not set(tr) & set(va)
    assert _design(0) == design and _design(1) != design
    small = _design(0, num_tasks=15, classes_per_task=5, data_percent=10, valid_ratio=0.5)
    assert {(len(d["train_indices"][0]), len(d["valid_indices"][0])) for d in small} == {(25, 25)}
    assert stl10.split_sizes(25, 0.15) == (125, 19) and stl10.split_sizes(10, 0.5) == (50, 25)


def test_design_json_round_trip(tmp_path):
    design = _design(3)
    path = str(tmp_path / "sub" / "design.json")
    stl10.save_design(path, design)
    assert stl10.load_design(path) == design
    assert json.loads(json.dumps(design)) == design


def test_tasks_sizes_classes_and_range(fake_source, tmp_path):
    design = _design(0)
    for d in design:
        d.update(noise_mean=0.0, noise_std=0.0, channel_perm=None)
    stl10.save_design(str(tmp_path / "clean.json"), design)
    tasks = stl10.make_stl10_tasks(_config(design_file=str(tmp_path / "clean.json")), seed=0)
    assert len(tasks) == 20
    for task, d in zip(tasks, design, strict=True):
        assert (task.num_train, task.x_val.shape[0], task.x_test.shape[0]) == (318, 57, 2400)
        assert task.num_classes == 3 and task.y_train.max() == 2
        for split, per_class in (("train", 500), ("val", 500), ("test", 800)):
            ids = _ids(getattr(task, f"x_{split}"))
            labels = getattr(task, f"y_{split}")
            assert np.array_equal(ids // per_class, np.asarray(d["classes"])[labels])
        train_ids, val_ids = set(_ids(task.x_train).tolist()), set(_ids(task.x_val).tolist())
        assert len(train_ids) == 318 and not train_ids & val_ids
        assert task.x_train.min() >= -0.5 and task.x_train.max() <= 0.5


def test_noise_mean_shift_is_exact_and_clipped():
    x = np.linspace(-0.5, 0.5, 2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    d = {"noise_mean": 0.025, "noise_std": 0.0, "channel_perm": None}
    out = stl10.apply_noise_and_perm(x, d, np.random.default_rng(0))
    np.testing.assert_allclose(out, np.minimum(x + 0.025, 0.5), atol=1e-7)
    assert out.max() == 0.5


def test_gaussian_noise_statistics():
    x = np.zeros((50, 16, 16, 3), np.float32)
    d = {"noise_mean": -0.05, "noise_std": 0.025, "channel_perm": None}
    out = stl10.apply_noise_and_perm(x, d, np.random.default_rng(0))
    assert abs(out.mean() + 0.05) < 1e-3 and abs(out.std() - 0.025) < 1e-3


def test_channel_permutation_after_clipping():
    x = np.zeros((1, 2, 2, 3), np.float32)
    x[..., 0], x[..., 1], x[..., 2] = 0.49, 0.1, -0.2
    d = {"noise_mean": 0.025, "noise_std": 0.0, "channel_perm": [2, 0, 1]}
    out = stl10.apply_noise_and_perm(x, d, np.random.default_rng(0))
    np.testing.assert_allclose(out[0, 0, 0], [-0.175, 0.5, 0.125], atol=1e-6)


def test_seed_determinism_and_workdir(fake_source, tmp_path):
    config = _config(num_tasks=3)
    a = make_tasks(config, seed=4, workdir=str(tmp_path))
    b = stl10.make_stl10_tasks(config, seed=4)
    c = stl10.make_stl10_tasks(config, seed=5)
    assert all(np.array_equal(s.x_test, t.x_test) for s, t in zip(a, b, strict=True))
    assert all(np.array_equal(s.y_train, t.y_train) for s, t in zip(a, b, strict=True))
    assert [t.name for t in a] != [t.name for t in c]
    path = os.path.join(tmp_path, stl10.DESIGN_FILENAME)
    assert stl10.load_design(path) == _design(4, num_tasks=3)
    # The saved design is reused by another seed; only the noise sample changes.
    d = stl10.make_stl10_tasks(_config(num_tasks=3, design_file=path), seed=9)
    assert [t.name for t in d] == [t.name for t in a]


def test_through_tfds_data_source_mock(tmp_path):
    # Mock labels are random, so the design only uses the first 50 images of each class.
    design = _design(0, num_tasks=2, classes_per_task=5, data_percent=10, valid_ratio=0.5)
    for d in design:
        d["train_indices"] = [list(range(25, 50))] * 5
        d["valid_indices"] = [list(range(25))] * 5
    stl10.save_design(str(tmp_path / "design.json"), design)
    config = _config(num_tasks=2, classes_per_task=5, design_file=str(tmp_path / "design.json"))
    with tfds.testing.mock_data(num_examples=1000, policy=tfds.testing.MockPolicy.USE_CODE):
        x, y = load_split_arrays("stl10", "train", data_dir=None)
        assert x.shape == (1000, 96, 96, 3) and x.dtype == np.uint8 and y.max() <= 9
        assert np.bincount(y, minlength=10).min() >= 50
        tasks = make_tasks(config, seed=0)
    assert [(t.num_train, t.x_val.shape[0]) for t in tasks] == [(125, 125)] * 2
    assert tasks[0].image_shape == (96, 96, 3) and tasks[0].num_classes == 5


def test_not_prepared_error(tmp_path):
    with pytest.raises(ValueError) as info:
        make_tasks(_config(data_dir=str(tmp_path)), seed=0)
    message = str(info.value)
    assert "'stl10'" in message and str(tmp_path) in message
    assert f"tfds build stl10 --data_dir={tmp_path}" in message and "--manual_dir=" in message


def test_first_tasks_do_not_depend_on_num_tasks(fake_source):
    """A 2-task scenario is exactly the first 2 tasks of the 5-task one with the same seed."""
    assert _design(3, num_tasks=2) == _design(3, num_tasks=5)[:2]
    short = stl10.make_stl10_tasks(_config(num_tasks=2), seed=3)
    long = stl10.make_stl10_tasks(_config(num_tasks=5), seed=3)
    for a, b in zip(short, long[:2], strict=True):
        assert a.name == b.name
        for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_design_file_prefix_and_mismatch(fake_source, tmp_path):
    path = str(tmp_path / "design.json")
    stl10.save_design(path, _design(2, num_tasks=4))
    tasks = stl10.make_stl10_tasks(_config(num_tasks=2, design_file=path), seed=2)
    assert [t.name for t in tasks] == [
        t.name for t in stl10.make_stl10_tasks(_config(num_tasks=2), seed=2)
    ]
    with pytest.raises(ValueError, match=r"holds 4 tasks but data\.num_tasks=5"):
        stl10.make_stl10_tasks(_config(num_tasks=5, design_file=path), seed=2)
    with pytest.raises(ValueError, match=r"\[3\] classes per task but data\.classes_per_task=5"):
        stl10.make_stl10_tasks(_config(num_tasks=2, classes_per_task=5, design_file=path), seed=2)
