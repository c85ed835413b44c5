"""CIFAR-100 lifelong tasks of 10 classes, the reference's percent protocol (docs/protocol.md §5.1).

Protocol, per class ``c`` of the 100: its 500 training images are shuffled once (by
``stream_rng(seed, CLASS_STREAM, c)``, shared by every task using the class) and split into
a validation pool of ``int(500 * 0.2 / 1.2) = 83`` and a training pool of
``min(500 - 83, int(500 / 1.2)) = 416`` images. A task (10 classes from the task list of
``num_tasks`` in {10, 20, 40}) takes the first ``int(train_size / 10)`` images of each class's
training pool and the first ``int(valid_size / 10)`` of its validation pool, where
``(train_size, valid_size) = NUM_DATA_POINTS[data_percent]`` (4% -> 170 / 30, i.e. 17 / 3 per
class); its test set is all 100 test images of each class. Labels are positions in the task's
class list, and task t's example order comes from ``stream_rng(seed, DATA_STREAM, t)``, so a
task's data depends only on the seed, its index and its classes. A class shared by several tasks
contributes the same images to each of them (as in the reference). ``num_tasks`` picks one of
the reference's class lists: the 20-task list is the first half of the 40-task list (so the
20-task scenario is a prefix of the 40-task one), while the 10 disjoint tasks are another list
(only its first task is also the first of the 20-task list). At 100% the 417 training images per
class exceed the 416-image pool and are cut to 416, as the reference's slicing does.

Images are scaled to [0, 1] and standardised per RGB channel: with ``standardize="per_split"``
(the reference) the train, valid and test set of each task each use their own mean and std over
all their pixels; with ``"train_stats"`` all three use the task's training-set statistics. The
std is floored at ``1 / sqrt(#values per channel)``.

Reference quirk: the reference sampler takes the first 17 (3) images of each class in a fixed order
(its shuffled index lists are unused), so its 5 "data groups" hold identical images. Here the
per-class shuffle is drawn from ``seed``: the same seed gives identical tasks, different seeds
give different samples.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import numpy as np

from lasem_jax.data.design import CLASS_STREAM, DATA_STREAM, stream_rng
from lasem_jax.data.tfds_source import load_split_arrays
from lasem_jax.task import Task

# (train, valid) images per task for `data_percent` (reference `utils_env_cl.num_data_points`).
NUM_DATA_POINTS: dict[int, tuple[int, int]] = {
    2: (80, 20),
    4: (170, 30),
    6: (250, 50),
    8: (330, 70),
    10: (410, 90),
    100: (4170, 830),
}
TASK_LIST_SIZES = (10, 20, 40)
CLASSES_PER_TASK = 10
NUM_CLASSES = 100
STANDARDIZE_MODES = ("per_split", "train_stats")
_VALID_RATIO = 0.2


@functools.lru_cache(maxsize=1)
def _task_lists_json() -> dict[str, Any]:
    text = resources.files("lasem_jax.data").joinpath("task_lists.json").read_text()
    return json.loads(text)


def cifar100_task_classes(num_tasks: int) -> list[list[int]]:
    """Returns the reference class lists (``_cifar100_task_labels_<num_tasks>``).

    Args:
        num_tasks: 10 (disjoint tasks), 20 or 40 (overlapping tasks).

    Returns:
        ``num_tasks`` lists of 10 CIFAR-100 fine-label ids; label ``i`` of a task is ``list[i]``.

    Raises:
        ValueError: If ``num_tasks`` is not 10, 20 or 40.
    """
    if num_tasks not in TASK_LIST_SIZES:
        raise ValueError(
            f"cifar100: num_tasks must be one of {TASK_LIST_SIZES} (the reference task lists), "
            f"got {num_tasks}."
        )
    return [list(map(int, row)) for row in _task_lists_json()[f"cifar100_task_labels_{num_tasks}"]]


def standardize(x: np.ndarray, stats_from: np.ndarray | None = None) -> np.ndarray:
    """Standardises images per channel with the mean/std of ``stats_from`` (default ``x``).

    Args:
        x: Images ``[N, H, W, C]``, float.
        stats_from: Images ``[M, H, W, C]`` whose per-channel statistics are used.

    Returns:
        ``(x - mean_c) / max(std_c, 1 / sqrt(M * H * W))`` as float32 ``[N, H, W, C]``.
    """
    ref = x if stats_from is None else stats_from
    # [C, M] contiguous rows: float32 pairwise summation along the last axis is fast and exact
    # to ~1e-7 relative.
    rows = np.ascontiguousarray(ref.reshape(-1, ref.shape[-1]).T, dtype=np.float32)
    mean = rows.mean(axis=1)
    std = np.sqrt(np.square(rows - mean[:, None]).mean(axis=1))
    std = np.maximum(std, np.float32(1.0 / np.sqrt(rows.shape[1])))
    return ((x - mean) / std).astype(np.float32)


def _split_pools(
    labels: np.ndarray, seed: int
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Shuffles each class's training indices and splits them into (train pool, valid pool)."""
    train_pool: dict[int, np.ndarray] = {}
    valid_pool: dict[int, np.ndarray] = {}
    for cls in range(NUM_CLASSES):
        idx = stream_rng(seed, CLASS_STREAM, cls).permutation(np.flatnonzero(labels == cls))
        n = idx.shape[0]
        n_valid = int(n * _VALID_RATIO / (1.0 + _VALID_RATIO))
        n_train = min(n - n_valid, int(n / (1.0 + _VALID_RATIO)))
        valid_pool[cls] = idx[:n_valid]
        train_pool[cls] = idx[n_valid : n_valid + n_train]
    return train_pool, valid_pool


def _gather(
    classes: list[int],
    pools: dict[int, np.ndarray],
    per_class: int | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns shuffled dataset indices and task labels, ``per_class`` (None: all) per class."""
    idx = [pools[c][:per_class] for c in classes]
    lab = [np.full(i.shape[0], pos, np.int32) for pos, i in enumerate(idx)]
    order = rng.permutation(sum(i.shape[0] for i in idx))
    return np.concatenate(idx)[order], np.concatenate(lab)[order]


def make_cifar100_tasks(data_config: Any, *, seed: int) -> list[Task]:
    """Builds the CIFAR-100 lifelong tasks (protocol in the module docstring).

    Args:
        data_config: ``config.data`` with ``num_tasks`` (10, 20, 40), ``classes_per_task`` (10),
            ``data_percent`` (a key of ``NUM_DATA_POINTS``), optional ``data_dir`` (tfds data
            directory, "" = tfds default) and ``standardize`` (``"per_split"`` default or
            ``"train_stats"``).
        seed: The run's seed (non-negative): per-class shuffles and each task's example order.

    Returns:
        ``num_tasks`` Tasks of ``32x32x3`` float32 images; 4% gives 170 train, 30 valid and
        1000 test images per task with labels ``0..9``.

    Raises:
        ValueError: On an unsupported ``num_tasks``, ``classes_per_task``, ``data_percent`` or
            ``standardize`` value, or if CIFAR-100 is not prepared for tfds.
    """
    classes_per_task = int(data_config.classes_per_task)
    if classes_per_task != CLASSES_PER_TASK:
        raise ValueError(
            f"cifar100: classes_per_task must be {CLASSES_PER_TASK} (the reference task lists), "
            f"got {classes_per_task}."
        )
    lists = cifar100_task_classes(int(data_config.num_tasks))
    percent = data_config.get("data_percent", 4)
    if percent not in NUM_DATA_POINTS:
        raise ValueError(
            f"cifar100: data_percent must be one of {sorted(NUM_DATA_POINTS)}, got {percent!r}."
        )
    mode = data_config.get("standardize", "per_split") or "per_split"
    if mode not in STANDARDIZE_MODES:
        raise ValueError(f"cifar100: standardize must be one of {STANDARDIZE_MODES}, got {mode!r}.")
    data_dir = data_config.get("data_dir", "") or None
    train_size, valid_size = NUM_DATA_POINTS[int(percent)]

    x_all, y_all = load_split_arrays("cifar100", "train", data_dir=data_dir)
    x_test_all, y_test_all = load_split_arrays("cifar100", "test", data_dir=data_dir)
    train_pool, valid_pool = _split_pools(y_all, seed)
    test_pool = {c: np.flatnonzero(y_test_all == c) for c in range(NUM_CLASSES)}

    tasks = []
    for t, classes in enumerate(lists):
        rng = stream_rng(seed, DATA_STREAM, t)
        i_tr, y_tr = _gather(classes, train_pool, train_size // classes_per_task, rng)
        i_va, y_va = _gather(classes, valid_pool, valid_size // classes_per_task, rng)
        i_te, y_te = _gather(classes, test_pool, None, rng)
        raw = [x_all[i_tr] / np.float32(255), x_all[i_va] / np.float32(255)]
        raw.append(x_test_all[i_te] / np.float32(255))
        ref = raw[0] if mode == "train_stats" else None
        x_tr, x_va, x_te = (standardize(x, ref) for x in raw)
        name = f"cifar100 t{t} classes=[{','.join(map(str, classes))}]"
        tasks.append(Task(x_tr, y_tr, x_va, y_va, x_te, y_te, name=name, num_classes=len(classes)))
    return tasks


__all__ = ["NUM_DATA_POINTS", "cifar100_task_classes", "make_cifar100_tasks", "standardize"]
