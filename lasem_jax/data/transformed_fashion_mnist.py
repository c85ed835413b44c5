"""Permuted and rotated Fashion-MNIST: every task all 10 classes under its own input transform.

Both read the offline Fashion-MNIST of ``lasem_jax.data.fashion_mnist`` (``data_config.data_dir``,
then its ``DEFAULT_DIR``, then tfds). Every task holds the same images: per class ``c`` a shuffle
of its training images (first ``train_per_class`` train, next ``val_per_class`` validation), then
of its test images (first ``test_per_class``), from ``design.stream_rng(seed, CLASS_STREAM, c)``;
labels are the class ids ``0..9``. Task ``k`` transforms them all, its transform drawn from
``design.stream_rng(seed, DESIGN_STREAM, k)``, and shuffles each split with
``design.stream_rng(seed, DATA_STREAM, k)``. So task ``k`` never depends on ``num_tasks``.

* ``permuted_fashion_mnist``: task 0 keeps the images (the identity permutation, as in GEM's
  permuted MNIST, where the first task is the original data); task ``k >= 1`` applies one fixed
  random permutation of the 784 pixels (``rng.permutation(784)``) to every image.
* ``rotated_fashion_mnist``: task 0 keeps the images (angle 0); task ``k >= 1`` rotates every
  image by one fixed angle drawn uniformly from ``[0, 180)`` degrees (``rng.uniform``),
  counter-clockwise about the image centre, bilinear (``scipy.ndimage.rotate`` with
  ``reshape=False``, ``order=1``; pixels from outside the image are 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from lasem_jax.data import design
from lasem_jax.data.fashion_mnist import NUM_CLASSES, load_with_sizes
from lasem_jax.task import Task

TRANSFORMED = ("permuted_fashion_mnist", "rotated_fashion_mnist")
_SPLITS = ("train", "val", "test")
MAX_ANGLE = 180.0


def task_transform(kind: str, seed: int, task: int) -> dict[str, Any]:
    """Task `task`'s transform: `{"permutation": [784] ints}` or `{"angle": degrees}`.

    Args:
      kind: `permuted_fashion_mnist` or `rotated_fashion_mnist`.
      seed: the run's seed (non-negative).
      task: the task index (0: the identity / angle 0).

    Raises:
      ValueError: an unknown `kind` or a negative seed.
    """
    rng = design.stream_rng(seed, design.DESIGN_STREAM, task)
    if kind == "permuted_fashion_mnist":
        size = 28 * 28
        return {"permutation": np.arange(size) if task == 0 else rng.permutation(size)}
    if kind == "rotated_fashion_mnist":
        return {"angle": 0.0 if task == 0 else float(rng.uniform(0.0, MAX_ANGLE))}
    raise ValueError(f"Unknown transformed dataset {kind!r}; use one of {TRANSFORMED}.")


def apply(images: np.ndarray, transform: dict[str, Any]) -> np.ndarray:
    """`images` `[N, 28, 28]` in `[0, 1]` under a `task_transform`, as float32 `[N, 28, 28]`."""
    images = np.asarray(images, np.float32)
    if "permutation" in transform:
        flat = images.reshape(len(images), -1)[:, transform["permutation"]]
        return flat.reshape(images.shape)
    if transform["angle"] == 0.0:
        return images
    rotated = ndimage.rotate(
        images, transform["angle"], axes=(2, 1), reshape=False, order=1, mode="constant"
    )
    return np.clip(rotated, 0.0, 1.0)


def make_transformed_fashion_mnist_tasks(data_config: Any, *, seed: int) -> list[Task]:
    """Builds `data_config.name`'s scenario (module docstring).

    Args:
      data_config: the `config.data` section; fields (defaults): `name` (one of `TRANSFORMED`),
        `num_tasks` (10), `train_per_class` (200), `val_per_class` (50), `test_per_class`
        (200), `data_dir` ("": Fashion-MNIST's default sources). `classes_per_task` is not
        read: every task has the 10 classes.
      seed: the run's seed (non-negative); the same seed gives identical tasks.

    Returns:
      `T` tasks with images `[10 * n, 28, 28, 1]` float32 in `[0, 1]` (`n` the split's
      per-class count), labels int32 in `0..9` and `num_classes == 10`.

    Raises:
      ValueError: unknown name, data not found or a size out of range.
    """
    kind = str(data_config.name)
    num_tasks = int(data_config.get("num_tasks", 10))
    task_transform(kind, seed, 0)  # checks the name and the seed before loading
    if num_tasks < 1:
        raise ValueError(f"{kind}: num_tasks must be >= 1, got {num_tasks}.")
    raw, sizes = load_with_sizes(data_config, kind)
    index: dict[str, list[np.ndarray]] = {s: [] for s in _SPLITS}
    for c in range(NUM_CLASSES):
        shuffle = design.stream_rng(seed, design.CLASS_STREAM, c)
        train = shuffle.permutation(np.flatnonzero(raw["y_train"] == c))
        test = shuffle.permutation(np.flatnonzero(raw["y_test"] == c))
        index["train"].append(train[: sizes[0]])
        index["val"].append(train[sizes[0] : sizes[0] + sizes[1]])
        index["test"].append(test[: sizes[2]])
    base = {}
    for split, size in zip(_SPLITS, sizes, strict=True):
        source = raw["x_test"] if split == "test" else raw["x_train"]
        base[split] = (
            source[np.concatenate(index[split])].astype(np.float32) / 255.0,
            np.repeat(np.arange(NUM_CLASSES, dtype=np.int32), size),
        )
    tasks = []
    for k in range(num_tasks):
        transform = task_transform(kind, seed, k)
        rng = design.stream_rng(seed, design.DATA_STREAM, k)
        arrays: dict[str, np.ndarray] = {}
        for split, (x, y) in base.items():
            order = rng.permutation(len(y))
            arrays[f"x_{split}"] = apply(x[order], transform)[..., None]
            arrays[f"y_{split}"] = y[order]
        suffix = f"_{transform['angle']:.1f}deg" if "angle" in transform else ""
        tasks.append(Task(**arrays, name=f"{kind}_{k}{suffix}", num_classes=NUM_CLASSES))
    return tasks
