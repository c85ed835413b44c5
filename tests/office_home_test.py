"""Tests for lasem_jax.data.office_home on a generated folder of tiny JPEGs."""

import os

import ml_collections
import numpy as np
import pytest
from PIL import Image

from lasem_jax.data import make_tasks
from lasem_jax.data import office_home as oh

# Class index -> number of images (10 -> 6/1/3, 11 -> 6/1/4 train/val/test).
_SIZES = (10, 11)


def _num_images(class_index):
    return _SIZES[class_index % len(_SIZES)]


def _write_dataset(root):
    """Writes Product/ and Real World/ with every class; pixel colour encodes the class."""
    for domain_index, domain in enumerate(("Product", "Real World")):
        for class_index, name in enumerate(oh.OFFICEHOME_CLASS_LABELS):
            folder = root / domain / name
            folder.mkdir(parents=True)
            colour = (class_index * 3, 40 + 100 * domain_index, 200)
            for i in range(_num_images(class_index)):
                Image.new("RGB", (12 + i, 9), colour).save(folder / f"{i:05d}.jpg", quality=95)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("officehome")
    _write_dataset(root)
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _config(root, **overrides):
    fields = dict(name="office_home", num_tasks=10, classes_per_task=13, manual_dir=str(root))
    fields.update(overrides)
    return ml_collections.ConfigDict(fields)


def test_tasks_shapes_labels_and_splits(dataset, cache_dir):
    tasks = make_tasks(_config(dataset, cache_dir=str(cache_dir)), seed=0)
    assert len(os.listdir(cache_dir)) == 130  # one .npz per domain and class
    assert len(tasks) == 10
    for index, task in enumerate(tasks):
        domain, group = divmod(index, 5)
        assert task.image_shape == (128, 128, 3) and task.num_classes == 13
        assert ("Product" if domain == 0 else "Real World") in task.name
        for split, fraction in (("train", 0.6), ("val", 0.1), ("test", None)):
            x, y = getattr(task, f"x_{split}"), getattr(task, f"y_{split}")
            assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
            for position, class_index in enumerate(oh.OFFICEHOME_TASK_LABELS[group]):
                n = _num_images(class_index)
                expected = int(fraction * n) if fraction else n - int(0.6 * n) - int(0.1 * n)
                assert np.sum(y == position) == expected
                # The label is the position in the group: the red channel encodes the class.
                red = x[y == position][..., 0].mean() * 255
                assert abs(red - class_index * 3) < 4


def test_same_seed_same_tasks_and_cache_skips_decoding(dataset, cache_dir, monkeypatch):
    config = _config(dataset, cache_dir=str(cache_dir), num_tasks=2)
    first = make_tasks(config, seed=3)

    def fail(path):
        raise AssertionError(f"decoded {path} although it is cached")

    monkeypatch.setattr(oh, "_decode_image", fail)
    second = make_tasks(config, seed=3)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.x_train, b.x_train)
        np.testing.assert_array_equal(a.y_test, b.y_test)
    other = make_tasks(config, seed=4)
    assert not np.array_equal(first[0].y_train, other[0].y_train)


def test_default_cache_dir_is_inside_manual_dir(tmp_path):
    root = tmp_path / "oh"
    for domain in ("Product", "Real World"):
        for name in oh.OFFICEHOME_CLASS_LABELS:
            (root / domain / name).mkdir(parents=True)
            for i in range(10):
                Image.new("RGB", (5, 5), (i, 0, 0)).save(root / domain / name / f"{i}.jpg")
    make_tasks(_config(root, num_tasks=1), seed=0)
    assert len(os.listdir(root / ".lasem_cache")) == 13


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        ("unset", "manual_dir is not set"),
        ("missing", "does not exist or is empty"),
        ("empty", "does not exist or is empty"),
        ("no_domain", "domain folder 'Product' not found"),
        ("no_class", "class folder 'TV' not found"),
        ("no_images", "no images"),
    ],
)
def test_errors_name_dataset_path_and_fix(tmp_path, setup, match):
    root = tmp_path / "data"
    root.mkdir()
    if setup in ("no_domain", "no_class", "no_images"):
        (root / ("Art" if setup == "no_domain" else "Product")).mkdir()
    if setup == "no_images":
        (root / "Product" / "TV").mkdir()
        (root / "Product" / "TV" / "readme.txt").write_text("x")
    manual_dir = {"unset": "", "missing": str(tmp_path / "nope")}.get(setup, str(root))
    with pytest.raises(ValueError, match=match) as info:
        make_tasks(_config(manual_dir), seed=0)
    message = str(info.value)
    assert message.startswith("office_home:")
    assert "--config.data.manual_dir=" in message and "hemanthdv.org" in message
    if setup != "unset":
        assert str(tmp_path) in message


def test_bad_arguments():
    with pytest.raises(ValueError, match="classes_per_task must be 13"):
        oh.make_office_home_tasks(_config("/x", classes_per_task=10), seed=0)
    with pytest.raises(ValueError, match="num_tasks"):
        oh.make_office_home_tasks(_config("/", num_tasks=11), seed=0)
