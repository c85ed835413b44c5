"""Tests for permuted and rotated Fashion-MNIST on tiny idx files written by the test."""

import ml_collections
import numpy as np
import pytest

from lasem_jax.data import fashion_mnist as fm
from lasem_jax.data import make_tasks
from lasem_jax.data import transformed_fashion_mnist as tfm
from tests.fashion_mnist_test import _write

_SIZES = {"train_per_class": 5, "val_per_class": 3, "test_per_class": 4}


@pytest.fixture
def data_dir(tmp_path):
    _write(tmp_path, gz=False)
    fm.load_fashion_mnist.cache_clear()
    yield tmp_path
    fm.load_fashion_mnist.cache_clear()


def _tasks(data_dir, name, num_tasks=3, seed=0):
    config = dict(name=name, num_tasks=num_tasks, data_dir=str(data_dir), **_SIZES)
    return make_tasks(ml_collections.ConfigDict(config), seed=seed)


def _rows(x):
    """The images of `x` as a sorted list of byte strings (a multiset, order-free)."""
    return sorted(np.ascontiguousarray(img).tobytes() for img in np.asarray(x, np.float32))


@pytest.mark.parametrize("name", tfm.TRANSFORMED)
def test_tasks_are_deterministic_prefix_stable_and_ten_way(data_dir, name):
    tasks, again, longer = _tasks(data_dir, name), _tasks(data_dir, name), _tasks(data_dir, name, 4)
    other_seed = _tasks(data_dir, name, seed=1)
    for a, b, c in zip(tasks, again, longer, strict=False):
        assert a.name == b.name == c.name
        np.testing.assert_array_equal(a.x_train, b.x_train)
        np.testing.assert_array_equal(a.x_test, c.x_test)
        np.testing.assert_array_equal(a.y_val, c.y_val)
    assert not np.array_equal(tasks[1].x_train, other_seed[1].x_train)
    for task in tasks:
        assert task.num_classes == 10 and task.x_train.shape == (50, 28, 28, 1)
        assert task.x_val.shape[0] == 30 and task.x_test.shape[0] == 40
        np.testing.assert_array_equal(np.bincount(task.y_train), [5] * 10)
        assert task.x_train.dtype == np.float32
        assert 0.0 <= task.x_train.min() and task.x_train.max() <= 1.0


def test_permuted_tasks_permute_the_pixels_of_the_same_images(data_dir):
    tasks = _tasks(data_dir, "permuted_fashion_mnist")
    np.testing.assert_array_equal(
        tfm.task_transform(tfm.TRANSFORMED[0], 0, 0)["permutation"], np.arange(784)
    )
    base = tasks[0].x_test[..., 0]
    for k in (1, 2):
        perm = tfm.task_transform("permuted_fashion_mnist", 0, k)["permutation"]
        assert not np.array_equal(perm, np.arange(784))
        x = tasks[k].x_test[..., 0].reshape(-1, 784)
        undone = x[:, np.argsort(perm)].reshape(-1, 28, 28)
        assert _rows(undone) == _rows(base)
    p1, p2 = (tfm.task_transform("permuted_fashion_mnist", 0, k)["permutation"] for k in (1, 2))
    assert not np.array_equal(p1, p2)


def test_rotated_tasks_rotate_the_same_images_by_a_fixed_angle(data_dir):
    tasks = _tasks(data_dir, "rotated_fashion_mnist")
    assert tfm.task_transform("rotated_fashion_mnist", 0, 0) == {"angle": 0.0}
    base = tasks[0].x_test[..., 0]
    for k in (1, 2):
        transform = tfm.task_transform("rotated_fashion_mnist", 0, k)
        assert 0.0 <= transform["angle"] < tfm.MAX_ANGLE
        assert tasks[k].name.endswith(f"_{transform['angle']:.1f}deg")
        assert _rows(tasks[k].x_test[..., 0]) == _rows(tfm.apply(base, transform))


def test_rotation_by_90_degrees_is_rot90_counter_clockwise():
    image = np.random.default_rng(0).uniform(0, 1, (1, 28, 28)).astype(np.float32)
    rotated = tfm.apply(image, {"angle": 90.0})
    np.testing.assert_allclose(rotated[0], np.rot90(image[0]), atol=1e-5)


def test_unknown_name_is_rejected():
    with pytest.raises(ValueError, match="Unknown transformed dataset"):
        tfm.task_transform("flipped_fashion_mnist", 0, 1)
