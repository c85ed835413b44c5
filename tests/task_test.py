"""Tests for lasem_jax.task."""

import numpy as np
import pytest

from lasem_jax.task import Task, validate_tasks


def _arrays(n=(6, 3, 4), shape=(5, 5, 2), num_classes=3, dtype=np.float64):
    rng = np.random.default_rng(0)
    out = {}
    for split, size in zip(("train", "val", "test"), n, strict=True):
        out[f"x_{split}"] = rng.random((size, *shape)).astype(dtype)
        out[f"y_{split}"] = np.arange(size, dtype=np.int64) % num_classes
    return out


def _make(name="demo", **overrides):
    kwargs = _arrays()
    kwargs.update(overrides)
    return Task(**kwargs, name=name)


def test_coerces_images_to_float32_and_labels_to_int32():
    task = _make()
    for split in ("train", "val", "test"):
        assert getattr(task, f"x_{split}").dtype == np.float32
        assert getattr(task, f"y_{split}").dtype == np.int32
    np.testing.assert_allclose(task.x_train, _arrays()["x_train"], rtol=1e-6)
    np.testing.assert_array_equal(task.y_val, [0, 1, 2])


def test_properties():
    task = _make()
    assert task.image_shape == (5, 5, 2)
    assert task.num_train == 6
    assert "demo" in repr(task)


def test_num_classes_inferred_from_training_labels():
    arrays = _arrays()
    arrays["y_train"] = np.array([0, 1, 2, 3, 1, 0])
    task = Task(**arrays)
    assert task.num_classes == 4


@pytest.mark.parametrize("split", ["val", "test"])
def test_label_beyond_training_labels_rejected_unless_num_classes_given(split):
    arrays = _arrays()
    arrays[f"y_{split}"] = np.array([0, 1, 5, 1])[: len(arrays[f"y_{split}"])]
    with pytest.raises(
        ValueError, match=rf"'demo': y_{split} contains label 5, which y_train never uses.*=6"
    ):
        Task(**arrays, name="demo")
    assert Task(**arrays, num_classes=6).num_classes == 6


def test_training_labels_with_gaps_rejected_unless_num_classes_given():
    arrays = _arrays()
    arrays["y_train"] = np.array([0, 2, 0, 2, 0, 2])
    arrays["y_val"], arrays["y_test"] = np.array([0, 2, 0]), np.array([0, 2, 0, 2])
    with pytest.raises(ValueError, match=r"'demo': y_train has no example of class\(es\) \[1\]"):
        Task(**arrays, name="demo")
    assert Task(**arrays, num_classes=3).num_classes == 3


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (4, 5, 6)])
def test_channels_first_images_rejected(shape):
    with pytest.raises(ValueError, match=r"'demo': x_train has shape .* NCHW.*transpose to NHWC"):
        _make(x_train=np.zeros((6, *shape)))


def test_flat_channels_last_images_accepted():
    task = Task(**_arrays(shape=(8, 8, 3)))
    assert task.image_shape == (8, 8, 3)
    assert Task(**_arrays(shape=(4, 4, 16))).image_shape == (4, 4, 16)


def test_explicit_num_classes_kept():
    task = Task(**_arrays(), num_classes=10)
    assert task.num_classes == 10


def test_frozen():
    task = _make()
    with pytest.raises(AttributeError):
        task.name = "other"


def test_unnamed_task_is_called_task_in_errors():
    with pytest.raises(ValueError, match=r"^task: x_val must be a 4-D NHWC"):
        Task(**_arrays() | {"x_val": np.zeros((3, 5, 5))})


def test_images_not_4d():
    with pytest.raises(ValueError, match=r"'demo': x_train must be a 4-D NHWC.*shape \(6, 5, 5\)"):
        _make(x_train=np.zeros((6, 5, 5)))


def test_integer_images_rejected_with_scaling_hint():
    with pytest.raises(ValueError, match=r"'demo': x_test has integer dtype uint8; scale"):
        _make(x_test=np.zeros((4, 5, 5, 2), np.uint8))


def test_non_float_images_rejected():
    with pytest.raises(ValueError, match=r"'demo': x_train has dtype complex128.*float32"):
        _make(x_train=np.zeros((6, 5, 5, 2), np.complex128))


def test_empty_split_rejected():
    with pytest.raises(ValueError, match=r"'demo': x_val is empty.*at least one example"):
        _make(x_val=np.zeros((0, 5, 5, 2)), y_val=np.zeros((0,), np.int64))


def test_non_finite_pixels_counted_per_split():
    x_val = _arrays()["x_val"]
    x_val[0, 0, 0, 0] = np.nan
    x_val[1, 2, 3, 1] = np.inf
    with pytest.raises(ValueError, match=r"'demo': x_val contains 2 non-finite .* split 'val'"):
        _make(x_val=x_val)


def test_image_shape_mismatch_between_splits():
    with pytest.raises(
        ValueError, match=r"'demo': x_test has image shape .* \(5, 4, 2\) but x_train has"
    ):
        _make(x_test=np.zeros((4, 5, 4, 2)))


def test_labels_not_1d():
    with pytest.raises(ValueError, match=r"'demo': y_train must be a 1-D array.*\(6, 1\)"):
        _make(y_train=np.zeros((6, 1), np.int64))


def test_float_labels_rejected():
    with pytest.raises(ValueError, match=r"'demo': y_val has dtype float64; labels must be int"):
        _make(y_val=np.zeros(3))


def test_label_length_mismatch():
    with pytest.raises(ValueError, match=r"'demo': y_test has 3 labels but x_test has 4 images"):
        _make(y_test=np.zeros(3, np.int64))


def test_negative_labels_rejected():
    with pytest.raises(ValueError, match=r"'demo': y_train contains negative label -1"):
        _make(y_train=np.array([0, 1, -1, 0, 1, 2]))


def test_labels_out_of_range_for_num_classes():
    with pytest.raises(ValueError, match=r"'demo': y_train contains label 2 but num_classes=2"):
        Task(**_arrays(), name="demo", num_classes=2)


def test_non_positive_num_classes_rejected():
    with pytest.raises(ValueError, match=r"'demo': num_classes must be >= 1, got 0"):
        Task(**_arrays(), name="demo", num_classes=0)


def test_non_int_num_classes_rejected():
    with pytest.raises(ValueError, match=r"'demo': num_classes must be an int or None, got float"):
        Task(**_arrays(), name="demo", num_classes=3.0)


def test_validate_tasks_accepts_consistent_tasks():
    validate_tasks([_make(), _make(name="other")])


def test_validate_tasks_rejects_empty():
    with pytest.raises(ValueError, match="task sequence is empty"):
        validate_tasks([])


def test_validate_tasks_rejects_non_task():
    with pytest.raises(ValueError, match=r"tasks\[1\] is a dict, not a Task"):
        validate_tasks([_make(), _arrays()])


def test_validate_tasks_rejects_image_shape_mismatch():
    other = Task(**_arrays(shape=(4, 4, 2)), name="small")
    with pytest.raises(
        ValueError,
        match=r"tasks\[2\] \('small'\) has image shape .* \(4, 4, 2\) but tasks\[0\] .*\(5, 5, 2\)",
    ):
        validate_tasks([_make(), _make(), other, other])
