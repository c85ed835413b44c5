"""Embedded lifelong scenario built from scikit-learn's bundled 8x8 digits (no download needed).

The design mirrors the STL-10 lifelong scenario of the LASEM paper: every task draws a random set
of digit classes (labels are positions in that list), a Gaussian pixel-noise setting and an input
transformation. Every random draw comes from its own generator
(``design.stream_rng(seed, stream, index)``, i.e. ``np.random.default_rng([seed, stream, index])``):
(1) task k's design (``describe_digits_design``) from ``(seed, DESIGN_STREAM, k)``, (2) one
shuffle per digit class ``c`` that fixes its train/val/test split from ``(seed, CLASS_STREAM, c)``
(shared by all tasks that use the class, so a test image of one task is never a training image of
another), (3) task k's example order, then noise, per split from ``(seed, DATA_STREAM, k)``. So
task k does not depend on ``num_tasks``: the tasks of a 2-task scenario are the first two of the
5-task scenario with the same seed.

Per task, pixels ``x`` in ``[0, 1]`` (raw values 0..16 divided by 16) become::

    x' = T(clip(x + eps, 0, 1)),   eps ~ N(0.05 * m, (0.05 * s)^2) i.i.d. per pixel

with ``m`` in {-1, 0, 1}, ``s`` in {0, 1, 2} (no noise when ``m == s == 0``) and ``T`` one of
identity, rot90 / rot180 / rot270 (``np.rot90`` with k = 1, 2, 3, counter-clockwise),
hflip (mirror left-right) and invert (``1 - x``). Noise is drawn for all three splits.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from lasem_jax.data import design
from lasem_jax.task import Task

NUM_DIGIT_CLASSES = 10
_SPLITS = ("train", "val", "test")


@functools.lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """Returns the digits scaled to [0, 1], ``[1797, 8, 8]`` float32, and labels ``[1797]``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (np.asarray(digits.images, dtype=np.float64) / 16.0).astype(np.float32)
    targets = np.asarray(digits.target, dtype=np.int64)
    images.setflags(write=False)
    targets.setflags(write=False)
    return images, targets


def describe_digits_design(
    seed: int, num_tasks: int = 5, classes_per_task: int = 3
) -> list[dict[str, Any]]:
    """Returns the task design that ``make_digits_tasks`` uses for the same arguments.

    Args:
        seed: The run's seed (non-negative).
        num_tasks: Number of tasks ``T``.
        classes_per_task: Classes per task ``K`` (2..10).

    Returns:
        ``T`` JSON-ready dicts with keys ``task`` (index), ``name`` (the Task name),
        ``classes`` (K digit classes; label ``i`` is ``classes[i]``), ``transform`` (one of
        ``TRANSFORMS``), ``noise_mean`` and ``noise_std``.

    Raises:
        ValueError: If ``classes_per_task`` is outside 2..10 or ``num_tasks`` exceeds the number
            of distinct class sets.
    """
    return design.draw_design(
        seed,
        dataset="digits",
        num_tasks=num_tasks,
        classes_per_task=classes_per_task,
        num_classes=NUM_DIGIT_CLASSES,
    )


def make_digits_tasks(
    *,
    seed: int,
    num_tasks: int = 5,
    classes_per_task: int = 3,
    val_fraction: float = 0.15,
    test_fraction: float = 0.3,
) -> list[Task]:
    """Builds the digits lifelong scenario (design in the module docstring).

    Each digit class is first cut to the size of the smallest class (174 images, so every task
    has the same split sizes and one compiled training step serves all tasks), then split once
    into ``round(n * val_fraction)`` validation, ``round(n * test_fraction)`` test and the
    remaining training images; a task takes all images of its classes.

    Args:
        seed: The run's seed (non-negative); the same seed gives identical arrays.
        num_tasks: Number of tasks ``T``.
        classes_per_task: Classes per task ``K`` (2..10); class sets are distinct across tasks.
        val_fraction: Fraction of each class used for validation, in ``(0, 1)``.
        test_fraction: Fraction of each class used for testing, in ``(0, 1)``.

    Returns:
        ``T`` tasks with images ``[N, 8, 8, 1]`` float32 in ``[0, 1]``, labels int32 in
        ``0..K-1`` and ``num_classes == K``.

    Raises:
        ValueError: For out-of-range arguments (including fractions that leave a split empty).
    """
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            "val_fraction and test_fraction must be in (0, 1) with val_fraction + test_fraction "
            f"< 1, got {val_fraction} and {test_fraction}."
        )
    specs = describe_digits_design(seed, num_tasks, classes_per_task)
    images, targets = _raw_digits()

    class_splits: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    n = int(np.bincount(targets, minlength=NUM_DIGIT_CLASSES).min())
    for digit in range(NUM_DIGIT_CLASSES):
        shuffle = design.stream_rng(seed, design.CLASS_STREAM, digit)
        indices = shuffle.permutation(np.flatnonzero(targets == digit))[:n]
        n_val, n_test = round(n * val_fraction), round(n * test_fraction)
        n_train = n - n_val - n_test
        if min(n_train, n_val, n_test) < 1:
            raise ValueError(
                f"val_fraction={val_fraction} and test_fraction={test_fraction} leave a split of "
                f"digit {digit} ({n} images) empty (train/val/test = {n_train}/{n_val}/{n_test})."
            )
        class_splits.append(
            (indices[:n_train], indices[n_train : n_train + n_val], indices[n_train + n_val :])
        )

    tasks = []
    for spec in specs:
        rng = design.stream_rng(seed, design.DATA_STREAM, spec["task"])
        arrays: dict[str, np.ndarray] = {}
        for split_index, split in enumerate(_SPLITS):
            parts = [class_splits[digit][split_index] for digit in spec["classes"]]
            index = np.concatenate(parts)
            labels = np.concatenate(
                [np.full(len(part), position, np.int32) for position, part in enumerate(parts)]
            )
            order = rng.permutation(len(index))
            index, labels = index[order], labels[order]
            arrays[f"x_{split}"] = design.corrupt(images[index].astype(np.float64), spec, rng)
            arrays[f"y_{split}"] = labels
        tasks.append(Task(**arrays, name=spec["name"], num_classes=classes_per_task))
    return tasks
