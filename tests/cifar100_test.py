"""Tests of the CIFAR-100 lifelong tasks (docs/protocol.md §5.1) on synthetic and tfds mock data."""

from __future__ import annotations

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from lasem_jax.data import cifar100, make_tasks
from lasem_jax.data.tfds_source import load_split_arrays

_TRAIN_PER_CLASS, _TEST_PER_CLASS = 500, 100


def _synthetic(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose channels 0/1 encode a unique id = class * per_class + index (shuffled)."""
    ids = np.arange(100 * per_class)
    x = np.empty((ids.size, 32, 32, 3), np.uint8)
    x[..., 0] = (ids // 256)[:, None, None]
    x[..., 1] = (ids % 256)[:, None, None]
    x[..., 2] = np.random.default_rng(seed).integers(0, 256, (ids.size, 32, 32), dtype=np.uint8)
    order = np.random.default_rng(seed).permutation(ids.size)
    return x[order], (ids // per_class)[order]


@pytest.fixture(scope="module")
def arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"train": _synthetic(_TRAIN_PER_CLASS, 0), "test": _synthetic(_TEST_PER_CLASS, 1)}


@pytest.fixture
def fake_source(monkeypatch, arrays):
    monkeypatch.setattr(cifar100, "load_split_arrays", lambda name, split, data_dir: arrays[split])


@pytest.fixture
def raw_pixels(monkeypatch, fake_source):
    """Disables standardisation so the encoded ids can be decoded."""
    monkeypatch.setattr(cifar100, "standardize", lambda x, stats_from=None: x.astype(np.float32))


def _config(**overrides) -> ml_collections.ConfigDict:
    fields = {"name": "cifar100", "num_tasks": 10, "classes_per_task": 10, "data_percent": 4}
    fields.update(overrides)
    return ml_collections.ConfigDict(fields)


def _ids(x: np.ndarray) -> np.ndarray:
    pixels = np.rint(x[:, 0, 0, :2] * 255).astype(np.int64)
    return pixels[:, 0] * 256 + pixels[:, 1]


def test_sizes_labels_and_classes(raw_pixels):
    tasks = cifar100.make_cifar100_tasks(_config(), seed=0)
    lists = cifar100.cifar100_task_classes(10)
    assert len(tasks) == 10 and lists[0] == [4, 1, 54, 9, 0, 5, 6, 3, 12, 8]
    assert sorted(c for row in lists for c in row) == list(range(100))
    train_ids, valid_ids = set(), set()
    for task, classes in zip(tasks, lists, strict=True):
        assert (task.num_train, task.x_val.shape[0], task.x_test.shape[0]) == (170, 30, 1000)
        assert task.image_shape == (32, 32, 3) and task.num_classes == 10
        for split, per_class, size in (("train", 17, 500), ("val", 3, 500), ("test", 100, 100)):
            y = getattr(task, f"y_{split}")
            assert np.bincount(y, minlength=10).tolist() == [per_class] * 10
            ids = _ids(getattr(task, f"x_{split}"))
            assert np.array_equal(ids // size, np.asarray(classes)[y])  # label = list position
            assert np.unique(ids).size == ids.size
        train_ids |= set(_ids(task.x_train).tolist())
        valid_ids |= set(_ids(task.x_val).tolist())
    assert not train_ids & valid_ids


def test_validation_pool_is_83_and_training_pool_416():
    labels = np.repeat(np.arange(100), 500)
    train_pool, valid_pool = cifar100._split_pools(labels, 0)
    assert {len(v) for v in valid_pool.values()} == {83}
    assert {len(v) for v in train_pool.values()} == {416}
    pool = np.concatenate([*train_pool.values(), *valid_pool.values()])
    assert np.unique(pool).size == pool.size and np.all(labels[train_pool[7]] == 7)


def test_other_percent_and_overlapping_lists(raw_pixels):
    tasks = cifar100.make_cifar100_tasks(_config(data_percent=2, num_tasks=20), seed=3)
    assert len(tasks) == 20 and (tasks[0].num_train, tasks[0].x_val.shape[0]) == (80, 20)
    lists = cifar100.cifar100_task_classes(20)
    shared = sorted(set(lists[0]) & set(lists[1]))
    assert shared  # consecutive tasks share classes and then the same images (as the reference)
    for c in shared:
        a = _ids(tasks[0].x_train)[tasks[0].y_train == lists[0].index(c)]
        b = _ids(tasks[1].x_train)[tasks[1].y_train == lists[1].index(c)]
        assert set(a.tolist()) == set(b.tolist())
    assert cifar100.cifar100_task_classes(40)[:20] == lists


def test_seed_determinism(raw_pixels):
    a = cifar100.make_cifar100_tasks(_config(), seed=5)
    b = cifar100.make_cifar100_tasks(_config(), seed=5)
    c = cifar100.make_cifar100_tasks(_config(), seed=6)
    for split in ("train", "val", "test"):
        assert np.array_equal(getattr(a[0], f"x_{split}"), getattr(b[0], f"x_{split}"))
        assert np.array_equal(getattr(a[0], f"y_{split}"), getattr(b[0], f"y_{split}"))
    assert set(_ids(a[0].x_train).tolist()) != set(_ids(c[0].x_train).tolist())


def test_per_split_standardisation(fake_source):
    task = make_tasks(_config(), seed=0)[0]
    for split in ("train", "val", "test"):
        x = getattr(task, f"x_{split}").astype(np.float64)
        np.testing.assert_allclose(x.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
        np.testing.assert_allclose(x.std(axis=(0, 1, 2)), 1.0, atol=1e-4)


def test_train_stats_standardisation(fake_source):
    task = cifar100.make_cifar100_tasks(_config(standardize="train_stats"), seed=0)[0]
    np.testing.assert_allclose(task.x_train.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    assert np.abs(task.x_val.astype(np.float64).mean(axis=(0, 1, 2))).max() > 1e-3


def test_standardize_floors_std():
    x = np.full((2, 4, 4, 3), 0.5, np.float32)
    assert np.all(cifar100.standardize(x) == 0.0)
    y = np.random.default_rng(0).random((4, 4, 4, 3)).astype(np.float32)
    ref = y[:2]
    expected = (y - ref.mean(axis=(0, 1, 2))) / ref.std(axis=(0, 1, 2))
    np.testing.assert_allclose(cifar100.standardize(y, ref), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"data_percent": 3}, r"data_percent must be one of \[2, 4, 6, 8, 10, 100\]"),
        ({"num_tasks": 7}, r"num_tasks must be one of \(10, 20, 40\)"),
        ({"classes_per_task": 5}, "classes_per_task must be 10"),
        ({"standardize": "global"}, "standardize must be one of"),
    ],
)
def test_invalid_settings(fake_source, overrides, match):
    with pytest.raises(ValueError, match=match):
        cifar100.make_cifar100_tasks(_config(**overrides), seed=0)


def test_through_tfds_data_source_mock():
    with tfds.testing.mock_data(num_examples=5000, policy=tfds.testing.MockPolicy.USE_CODE):
        x, y = load_split_arrays("cifar100", "train", data_dir=None)
        assert x.shape == (5000, 32, 32, 3) and x.dtype == np.uint8
        assert y.shape == (5000,) and 0 <= y.min() and y.max() <= 99
        assert np.bincount(y, minlength=100).min() >= 20  # every class can fill 17 + 3
        tasks = make_tasks(_config(), seed=0)
    assert len(tasks) == 10
    assert all((t.num_train, t.x_val.shape[0]) == (170, 30) for t in tasks)
    assert all(t.y_test.max() <= 9 for t in tasks)


def test_not_prepared_error(tmp_path):
    with pytest.raises(ValueError) as info:
        make_tasks(_config(data_dir=str(tmp_path)), seed=0)
    message = str(info.value)
    assert "'cifar100'" in message and str(tmp_path) in message
    assert f"tfds build cifar100 --data_dir={tmp_path}" in message
    assert "pip install tensorflow-cpu" in message and "--manual_dir=" in message


def test_task_data_does_not_depend_on_the_other_tasks(monkeypatch, raw_pixels):
    """Task t's arrays depend only on the seed, t and its classes (a shorter list is a prefix)."""
    full = cifar100.cifar100_task_classes(20)
    monkeypatch.setattr(cifar100, "cifar100_task_classes", lambda num_tasks: full[:num_tasks])
    short = cifar100.make_cifar100_tasks(_config(num_tasks=2), seed=4)
    long = cifar100.make_cifar100_tasks(_config(num_tasks=5), seed=4)
    assert len(short) == 2 and len(long) == 5
    for a, b in zip(short, long[:2], strict=True):
        assert a.name == b.name
        for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
