"""Fashion-MNIST lifelong scenario built like the paper's STL-10 design, from local idx files.

Data is found offline, in this order: the idx files (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each plain
or ``.gz``) in ``data_config.data_dir`` if set (only there), else in ``DEFAULT_DIR`` (Debian's
``dataset-fashion-mnist`` package), else a prepared tfds ``fashion_mnist`` (``tfds.data_source``).

The design mirrors ``lasem_jax.data.digits`` (and STL-10's, docs/protocol.md §5.3): every task
draws a distinct random set of ``classes_per_task`` classes (label ``i`` is ``classes[i]``), a
Gaussian noise ``N(0.05 m, (0.05 s)^2)`` with ``m`` in {-1, 0, 1}, ``s`` in {0, 1, 2} (none when
both are 0) added to all splits and clipped to ``[0, 1]``, then one input transformation in place
of the channel swap: identity, rot90/rot180/rot270, hflip or invert. Every random draw has its
own generator ``design.stream_rng(seed, stream, index)``: (1) task k's design
(``describe_fashion_mnist_design``) from ``(seed, DESIGN_STREAM, k)``, (2) per class ``c`` a
shuffle of its training images (first ``train_per_class`` train, next ``val_per_class``
validation), then of its test images (first ``test_per_class``), from ``(seed, CLASS_STREAM, c)``
and shared by every task using the class, (3) task k's example order, then noise, per split from
``(seed, DATA_STREAM, k)``. So task k does not depend on ``num_tasks`` (a shorter scenario is a
prefix of a longer one). All tasks have equal sizes, so one compiled step serves all of them.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
from typing import Any

import numpy as np
from absl import logging

from lasem_jax.data import design
from lasem_jax.task import Task

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
NUM_CLASSES = len(CLASS_NAMES)
_FILES = {
    "x_train": ("train-images-idx3-ubyte", 2051),
    "y_train": ("train-labels-idx1-ubyte", 2049),
    "x_test": ("t10k-images-idx3-ubyte", 2051),
    "y_test": ("t10k-labels-idx1-ubyte", 2049),
}
_SPLITS = ("train", "val", "test")


def read_idx(path: str, expected_magic: int | None = None) -> np.ndarray:
    """Reads an unsigned-byte idx file (plain or gzip-compressed).

    Args:
        path: The file; gzip is detected from its first two bytes, not its name.
        expected_magic: If set, the required magic number (2051 images, 2049 labels).

    Returns:
        A uint8 array of the file's shape, e.g. ``[N, 28, 28]`` images or ``[N]`` labels.

    Raises:
        ValueError: If the magic number, element type or size is wrong.
    """
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    magic = int.from_bytes(data[:4], "big")
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise ValueError(f"{path!r} is not an unsigned-byte idx file (magic {magic}).")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(f"{path!r} has idx magic {magic}, expected {expected_magic}.")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) - offset != math.prod(shape):
        raise ValueError(
            f"{path!r}: header shape {shape} needs {math.prod(shape)} bytes, file has "
            f"{len(data) - offset}."
        )
    return np.frombuffer(data, np.uint8, offset=offset).reshape(shape)


def _from_dir(directory: str) -> dict[str, np.ndarray] | None:
    """Reads the four idx files from ``directory``, or returns None if one is missing."""
    arrays = {}
    for key, (stem, magic) in _FILES.items():
        path = next(
            (
                p
                for p in (os.path.join(directory, stem + e) for e in ("", ".gz"))
                if os.path.isfile(p)
            ),
            None,
        )
        if path is None:
            return None
        arrays[key] = read_idx(path, magic)
    logging.info("Fashion-MNIST: read the idx files in %s.", directory)
    return arrays


def _from_tfds() -> dict[str, np.ndarray] | None:
    """Reads a prepared tfds ``fashion_mnist`` without downloading, or returns None."""
    try:
        import tensorflow_datasets as tfds

        arrays = {}
        for split, name in (("train", "train"), ("test", "test")):
            source = tfds.data_source("fashion_mnist", split=name, download=False)
            records = [source[i] for i in range(len(source))]
            arrays[f"x_{split}"] = np.stack([r["image"][..., 0] for r in records]).astype(np.uint8)
            arrays[f"y_{split}"] = np.asarray([r["label"] for r in records], np.uint8)
        logging.info("Fashion-MNIST: read the prepared tfds 'fashion_mnist'.")
        return arrays
    except Exception:
        return None


@functools.lru_cache(maxsize=2)
def load_fashion_mnist(data_dir: str = "") -> dict[str, np.ndarray]:
    """Returns the raw data: ``x_train [60000, 28, 28]``, ``x_test [10000, 28, 28]`` uint8, labels.

    Args:
        data_dir: Directory with the idx files; empty: ``DEFAULT_DIR``, then tfds.

    Raises:
        ValueError: If no source has the data (the message lists where it looked and the fix).
    """
    arrays = _from_dir(data_dir) if data_dir else _from_dir(DEFAULT_DIR) or _from_tfds()
    if arrays is None:
        looked = repr(data_dir) if data_dir else f"{DEFAULT_DIR!r} and tfds 'fashion_mnist'"
        raise ValueError(
            f"fashion_mnist: the idx files ({', '.join(s for s, _ in _FILES.values())}, plain "
            f"or .gz) were not found in {looked}; run `apt-get install dataset-fashion-mnist` "
            "or pass --config.data.data_dir=<dir with the idx files>."
        )
    for value in arrays.values():
        value.setflags(write=False)
    return arrays


def describe_fashion_mnist_design(
    seed: int, num_tasks: int = 10, classes_per_task: int = 3
) -> list[dict[str, Any]]:
    """Returns the task design that ``make_fashion_mnist_tasks`` draws for the same arguments.

    Args:
        seed: The run's seed (non-negative).
        num_tasks: Number of tasks ``T``.
        classes_per_task: Classes per task ``K`` (2..10).

    Returns:
        ``T`` JSON-ready dicts with keys ``task``, ``name``, ``classes`` (K class ids),
        ``class_names``, ``transform``, ``noise_mean``, ``noise_std``.

    Raises:
        ValueError: If ``classes_per_task`` or ``num_tasks`` is out of range.
    """
    return design.draw_design(
        seed,
        dataset="fashion_mnist",
        num_tasks=num_tasks,
        classes_per_task=classes_per_task,
        num_classes=NUM_CLASSES,
        class_names=CLASS_NAMES,
    )


def load_with_sizes(data_config: Any, name: str) -> tuple[dict[str, np.ndarray], list[int]]:
    """The Fashion-MNIST arrays and the checked train/val/test images per class of a scenario.

    Args:
      data_config: the `config.data` section (`data_dir`, `<split>_per_class`: 200, 50, 200).
      name: the scenario, for the error message.

    Raises:
      ValueError: the data is not found, or a size is below 1 or above the images per class.
    """
    sizes = [
        int(data_config.get(f"{s}_per_class", d))
        for s, d in zip(_SPLITS, (200, 50, 200), strict=True)
    ]
    raw = load_fashion_mnist(str(data_config.get("data_dir", "") or ""))
    train_counts = np.bincount(raw["y_train"], minlength=NUM_CLASSES)
    test_counts = np.bincount(raw["y_test"], minlength=NUM_CLASSES)
    if min(sizes) < 1 or sizes[0] + sizes[1] > train_counts.min() or sizes[2] > test_counts.min():
        raise ValueError(
            f"{name}: train/val/test_per_class = {sizes} must be >= 1 with train + val <= "
            f"{train_counts.min()} and test <= {test_counts.min()} (images per class)."
        )
    return raw, sizes


def make_fashion_mnist_tasks(data_config: Any, *, seed: int) -> list[Task]:
    """Builds the Fashion-MNIST lifelong scenario (design in the module docstring).

    Args:
        data_config: The ``config.data`` section; fields (defaults): ``num_tasks`` (10),
            ``classes_per_task`` (3), ``train_per_class`` (200), ``val_per_class`` (50),
            ``test_per_class`` (200), ``data_dir`` ("": ``DEFAULT_DIR``, then tfds).
        seed: The run's seed (non-negative); the same seed gives identical tasks.

    Returns:
        ``T`` tasks with images ``[K * n, 28, 28, 1]`` float32 in ``[0, 1]`` (``n`` the split's
        per-class count), labels int32 in ``0..K-1`` and ``num_classes == K``.

    Raises:
        ValueError: If the data is not found or an argument is out of range.
    """
    num_tasks = int(data_config.get("num_tasks", 10))
    k = int(data_config.get("classes_per_task", 3))
    specs = describe_fashion_mnist_design(seed, num_tasks, k)
    raw, sizes = load_with_sizes(data_config, "fashion_mnist")
    per_class = []
    for c in range(NUM_CLASSES):
        shuffle = design.stream_rng(seed, design.CLASS_STREAM, c)
        train = shuffle.permutation(np.flatnonzero(raw["y_train"] == c))
        test = shuffle.permutation(np.flatnonzero(raw["y_test"] == c))
        per_class.append(
            (train[: sizes[0]], train[sizes[0] : sizes[0] + sizes[1]], test[: sizes[2]])
        )
    tasks = []
    for spec in specs:
        rng = design.stream_rng(seed, design.DATA_STREAM, spec["task"])
        arrays: dict[str, np.ndarray] = {}
        for split_index, split in enumerate(_SPLITS):
            source = raw["x_test"] if split == "test" else raw["x_train"]
            index = np.concatenate([per_class[c][split_index] for c in spec["classes"]])
            labels = np.repeat(np.arange(k, dtype=np.int32), sizes[split_index])
            order = rng.permutation(len(index))
            x = source[index[order]].astype(np.float64) / 255.0
            arrays[f"x_{split}"] = design.corrupt(x, spec, rng)
            arrays[f"y_{split}"] = labels[order]
        tasks.append(Task(**arrays, name=spec["name"], num_classes=k))
    return tasks
