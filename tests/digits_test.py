"""Tests for lasem_jax.data.digits."""

import collections
import json

import numpy as np
import pytest
from sklearn.datasets import load_digits

from lasem_jax.data import make_digits_tasks
from lasem_jax.data.design import TRANSFORMS
from lasem_jax.data.digits import describe_digits_design
from lasem_jax.task import Task, validate_tasks

_DIGITS = load_digits()
_RAW = (_DIGITS.images / 16.0).astype(np.float32)  # [1797, 8, 8] in [0, 1]
_PER_CLASS = int(np.bincount(_DIGITS.target).min())  # every class is cut to this size
_EXPECTED_TRANSFORM = {
    "identity": lambda x: x,
    "rot90": lambda x: np.rot90(x, 1, axes=(1, 2)),
    "rot180": lambda x: np.rot90(x, 2, axes=(1, 2)),
    "rot270": lambda x: np.rot90(x, 3, axes=(1, 2)),
    "hflip": lambda x: x[:, :, ::-1],
    "invert": lambda x: 1.0 - x,
}


def _find(predicate, num_tasks=5, seeds=range(300)):
    """Returns (seed, task index, spec) of the first drawn task that satisfies predicate."""
    for seed in seeds:
        for spec in describe_digits_design(seed, num_tasks, 3):
            if predicate(spec):
                return seed, spec["task"], spec
    raise AssertionError("no design found")


def _all_images_by_label(task):
    x = np.concatenate([task.x_train, task.x_val, task.x_test])[..., 0]
    y = np.concatenate([task.y_train, task.y_val, task.y_test])
    return x, y


def _assert_class_sample(actual, expected):
    """Checks a class contributes _PER_CLASS of its own images, none twice."""
    assert len(actual) == _PER_CLASS
    flat = np.asarray(expected, np.float32).reshape(len(expected), -1)
    available = collections.Counter(row.tobytes() for row in flat)
    for row in np.asarray(actual, np.float32).reshape(len(actual), -1):
        assert available[row.tobytes()] > 0, "an image that is not one of the class's images"
        available[row.tobytes()] -= 1


def _sorted_rows(images):
    flat = np.asarray(images, np.float32).reshape(len(images), -1)
    return flat[np.lexsort(flat.T[::-1])]


def test_shapes_dtypes_and_label_ranges():
    tasks = make_digits_tasks(seed=0)
    assert len(tasks) == 5
    validate_tasks(tasks)
    for task in tasks:
        assert isinstance(task, Task)
        assert task.image_shape == (8, 8, 1)
        assert task.num_classes == 3
        for split in ("train", "val", "test"):
            x, y = getattr(task, f"x_{split}"), getattr(task, f"y_{split}")
            assert x.dtype == np.float32 and y.dtype == np.int32
            assert x.ndim == 4 and x.shape[0] == y.shape[0] > 0
            assert x.min() >= 0.0 and x.max() <= 1.0
            assert set(np.unique(y)) == {0, 1, 2}


def test_names_and_design_agree():
    design = describe_digits_design(3, 4, 2)
    tasks = make_digits_tasks(seed=3, num_tasks=4, classes_per_task=2)
    assert [t.name for t in tasks] == [d["name"] for d in design]
    assert json.loads(json.dumps(design)) == design
    for index, spec in enumerate(design):
        assert spec["task"] == index
        assert spec["name"].startswith(f"digits t{index} classes=[")
        assert spec["transform"] in TRANSFORMS
        assert spec["noise_mean"] in (-0.05, 0.0, 0.05)
        assert spec["noise_std"] in (0.0, 0.05, 0.1)
        assert len(set(spec["classes"])) == 2


def test_class_sets_distinct_across_tasks():
    design = describe_digits_design(0, 45, 2)  # all C(10, 2) = 45 class pairs
    assert len({tuple(sorted(d["classes"])) for d in design}) == 45
    with pytest.raises(ValueError, match=r"num_tasks must be in 1\.\.45"):
        describe_digits_design(0, 46, 2)


def test_same_seed_is_deterministic():
    first, second = make_digits_tasks(seed=7), make_digits_tasks(seed=7)
    for a, b in zip(first, second, strict=True):
        assert a.name == b.name
        for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_different_seeds_differ():
    designs = {json.dumps(describe_digits_design(seed)) for seed in range(5)}
    assert len(designs) == 5
    a, b = make_digits_tasks(seed=0), make_digits_tasks(seed=1)
    assert [t.name for t in a] != [t.name for t in b]


def test_fractions_respected_and_split_sizes_equal_across_tasks():
    tasks = make_digits_tasks(seed=1, val_fraction=0.2, test_fraction=0.25)
    n_val, n_test = round(_PER_CLASS * 0.2), round(_PER_CLASS * 0.25)
    for task in tasks:
        assert len(task.y_val) == 3 * n_val
        assert len(task.y_test) == 3 * n_test
        assert task.num_train == 3 * (_PER_CLASS - n_val - n_test)
        for position in range(3):
            assert int((task.y_train == position).sum()) == _PER_CLASS - n_val - n_test


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_transform_applied_without_noise(transform):
    seed, index, spec = _find(
        lambda d: d["transform"] == transform and d["noise_mean"] == d["noise_std"] == 0
    )
    assert spec["name"].endswith(f"{transform} no-noise")
    task = make_digits_tasks(seed=seed)[index]
    x, y = _all_images_by_label(task)
    expected_fn = _EXPECTED_TRANSFORM[transform]
    for position, digit in enumerate(spec["classes"]):
        expected = expected_fn(_RAW[_DIGITS.target == digit])
        _assert_class_sample(x[y == position], expected)


def test_constant_noise_mean_shift_is_clipped():
    seed, index, spec = _find(
        lambda d: d["transform"] == "identity" and d["noise_mean"] != 0 and d["noise_std"] == 0
    )
    task = make_digits_tasks(seed=seed)[index]
    x, y = _all_images_by_label(task)
    for position, digit in enumerate(spec["classes"]):
        raw = _RAW[_DIGITS.target == digit].astype(np.float64)
        expected = np.clip(raw + spec["noise_mean"], 0.0, 1.0).astype(np.float32)
        _assert_class_sample(x[y == position], expected)


def test_gaussian_noise_statistics():
    seed, index, spec = _find(
        lambda d: d["transform"] == "identity" and d["noise_mean"] == 0 and d["noise_std"] == 0.1
    )
    task = make_digits_tasks(seed=seed)[index]
    x, y = _all_images_by_label(task)
    residuals = []
    for position, digit in enumerate(spec["classes"]):
        clean = _RAW[_DIGITS.target == digit].reshape(-1, 64)
        noisy = x[y == position].reshape(-1, 64)
        # Match each noisy image to its nearest clean image of the same class.
        dist = ((noisy[:, None, :] - clean[None, :, :]) ** 2).sum(-1)
        source = clean[dist.argmin(1)]
        interior = (source > 0.3) & (source < 0.7)  # pixels that clipping barely affects
        residuals.append((noisy - source)[interior])
    residuals = np.concatenate(residuals)
    assert abs(residuals.mean()) < 0.01
    assert residuals.std() == pytest.approx(0.1, rel=0.1)


def test_invalid_arguments():
    with pytest.raises(ValueError, match=r"classes_per_task must be in 2\.\.10"):
        make_digits_tasks(seed=0, classes_per_task=1)
    with pytest.raises(ValueError, match="val_fraction and test_fraction"):
        make_digits_tasks(seed=0, val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="leave a split of digit"):
        make_digits_tasks(seed=0, val_fraction=0.001)


def test_first_tasks_do_not_depend_on_num_tasks():
    """A 2-task scenario is exactly the first 2 tasks of the 5-task one with the same seed."""
    short, long = make_digits_tasks(seed=3, num_tasks=2), make_digits_tasks(seed=3, num_tasks=5)
    assert describe_digits_design(3, 2) == describe_digits_design(3, 5)[:2]
    for a, b in zip(short, long[:2], strict=True):
        assert a.name == b.name
        for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_negative_seed_rejected():
    with pytest.raises(ValueError, match=r"seed=-1 is not a non-negative integer"):
        make_digits_tasks(seed=-1)
