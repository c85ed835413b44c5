"""Tests for lasem_jax.data.fashion_mnist on tiny idx files written by the test."""

import gzip
import json
import struct

import ml_collections
import numpy as np
import pytest

from lasem_jax.data import fashion_mnist as fm
from lasem_jax.data import make_tasks
from lasem_jax.data.design import TRANSFORMS
from lasem_jax.data.fashion_mnist import describe_fashion_mnist_design, read_idx

_PER_CLASS = {"train": 12, "test": 6}
_SIZES = {"train_per_class": 5, "val_per_class": 3, "test_per_class": 4}


def _idx_bytes(array, magic):
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _raw(split, seed):
    """Images whose every pixel encodes the example's index; labels cycle over the 10 classes."""
    n = _PER_CLASS[split] * 10
    labels = np.arange(n) % 10
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    return images, labels.astype(np.uint8)


def _write(directory, gz):
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = _raw(split, seed=len(split))
        for stem, array, magic in (
            (f"{prefix}-images-idx3-ubyte", images, 2051),
            (f"{prefix}-labels-idx1-ubyte", labels, 2049),
        ):
            data = _idx_bytes(array, magic)
            if gz:
                (directory / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (directory / stem).write_bytes(data)


@pytest.fixture(params=[False, True], ids=["plain", "gz"])
def data_dir(tmp_path, request):
    _write(tmp_path, gz=request.param)
    fm.load_fashion_mnist.cache_clear()
    yield tmp_path
    fm.load_fashion_mnist.cache_clear()


def _config(data_dir, **overrides):
    fields = dict(name="fashion_mnist", num_tasks=6, classes_per_task=3, data_dir=str(data_dir))
    fields.update(_SIZES, **overrides)
    return ml_collections.ConfigDict(fields)


def test_read_idx_plain_gz_and_bad_magic(data_dir):
    suffix = ".gz" if (data_dir / "t10k-labels-idx1-ubyte.gz").exists() else ""
    images = read_idx(str(data_dir / f"train-images-idx3-ubyte{suffix}"), 2051)
    labels = read_idx(str(data_dir / f"train-labels-idx1-ubyte{suffix}"), 2049)
    np.testing.assert_array_equal(images, _raw("train", 5)[0])
    np.testing.assert_array_equal(labels, _raw("train", 5)[1])
    with pytest.raises(ValueError, match="magic 2049, expected 2051"):
        read_idx(str(data_dir / f"train-labels-idx1-ubyte{suffix}"), 2051)


def test_tasks_sizes_labels_and_pixels(data_dir):
    tasks = make_tasks(_config(data_dir), seed=0)
    design = describe_fashion_mnist_design(0, 6, 3)
    json.dumps(design)
    assert [t.name for t in tasks] == [d["name"] for d in design]
    assert len({tuple(sorted(d["classes"])) for d in design}) == 6
    for task in tasks:
        assert task.image_shape == (28, 28, 1) and task.num_classes == 3
        for split in ("train", "val", "test"):
            x, y = getattr(task, f"x_{split}"), getattr(task, f"y_{split}")
            assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
            assert np.bincount(y, minlength=3).tolist() == [_SIZES[f"{split}_per_class"]] * 3


def _expected_transform(x, transform):
    """Independent reference for the transformations on [N, 28, 28] images."""
    if transform.startswith("rot"):
        return np.rot90(x, int(transform[3:]) // 90, axes=(1, 2))
    return {"identity": x, "hflip": x[:, :, ::-1], "invert": 1.0 - x}[transform]


def test_transforms_and_noise_applied(data_dir):
    raw_train, raw_labels = _raw("train", 5)
    design = describe_fashion_mnist_design(1, 30, 3)
    tasks = make_tasks(_config(data_dir, num_tasks=30), seed=1)
    assert {d["transform"] for d in design} == set(TRANSFORMS)
    assert {(d["noise_mean"], d["noise_std"]) for d in design} > {(0.0, 0.0), (0.05, 0.1)}
    for spec, task in zip(design, tasks, strict=True):
        # Every training image is the transformed raw image of its class plus the task's noise.
        candidates = _expected_transform(raw_train / 255.0, spec["transform"])
        residuals = []
        for x, label in zip(task.x_train[..., 0], task.y_train, strict=True):
            match = int(np.abs(candidates - x).mean(axis=(1, 2)).argmin())
            assert raw_labels[match] == spec["classes"][label]
            inside = (candidates[match] > 0.3) & (candidates[match] < 0.7)  # never clipped
            residuals.append((x - candidates[match])[inside])
        residuals = np.concatenate(residuals)
        sign = -1 if spec["transform"] == "invert" else 1  # noise is added before inverting
        assert abs(sign * residuals.mean() - spec["noise_mean"]) < 0.01
        assert abs(residuals.std() - spec["noise_std"]) < 0.01


def test_same_seed_same_tasks(data_dir):
    a = make_tasks(_config(data_dir), seed=7)
    b = make_tasks(_config(data_dir), seed=7)
    c = make_tasks(_config(data_dir), seed=8)
    for x, y in zip(a, b, strict=True):
        for split in ("train", "val", "test"):
            np.testing.assert_array_equal(getattr(x, f"x_{split}"), getattr(y, f"x_{split}"))
    assert [t.name for t in a] != [t.name for t in c]


def test_too_many_images_per_class(data_dir):
    with pytest.raises(ValueError, match="train/val/test_per_class"):
        make_tasks(_config(data_dir, train_per_class=10), seed=0)
    with pytest.raises(ValueError, match=r"num_tasks must be in 1\.\.120"):
        describe_fashion_mnist_design(0, 121, 3)


def test_missing_data_error(tmp_path, monkeypatch):
    fm.load_fashion_mnist.cache_clear()
    with pytest.raises(ValueError, match="apt-get install dataset-fashion-mnist") as info:
        make_tasks(_config(tmp_path), seed=0)
    assert str(tmp_path) in str(info.value) and "--config.data.data_dir=" in str(info.value)
    monkeypatch.setattr(fm, "DEFAULT_DIR", str(tmp_path / "none"))
    monkeypatch.setattr(fm, "_from_tfds", lambda: None)
    with pytest.raises(ValueError, match="tfds") as info:
        make_tasks(_config(""), seed=0)
    assert str(tmp_path / "none") in str(info.value)
    fm.load_fashion_mnist.cache_clear()


def test_first_tasks_do_not_depend_on_num_tasks(data_dir):
    """A 2-task scenario is exactly the first 2 tasks of the 5-task one with the same seed."""
    short = make_tasks(_config(data_dir, num_tasks=2), seed=3)
    long = make_tasks(_config(data_dir, num_tasks=5), seed=3)
    for a, b in zip(short, long[:2], strict=True):
        assert a.name == b.name
        for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
