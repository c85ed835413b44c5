"""STL-10 lifelong tasks: random class sets, pixel noise and channel swaps (docs/protocol.md §5.3).

The design (a JSON-able list of dicts, ``design_from_seed``) fixes per task, drawn in this order
from the task's own generator ``stream_rng(seed, DESIGN_STREAM, k)``: ``noise_mean = 0.025 * m``
with ``m`` in {-2, -1, 0, 1} and ``noise_std = 0.025 * s`` with ``s`` in {0, 1} (both 0: no
noise), ``channel_perm`` (a random permutation of (0, 1, 2); the identity is stored as ``None``),
``classes`` (``classes_per_task`` distinct classes drawn uniformly; a sorted class set that
repeats an earlier task's is redrawn), and per class the positions (within that class's training
images, in dataset order) of its ``int(500 * data_percent / 100)`` kept images: the first
``ceil(valid_ratio * n)`` go to validation, the rest to training (20 tasks: 125 kept, 19 valid,
106 train per class -> 318 / 57 per task; 15 tasks: 50 kept, 25 / 25). Task k thus does not
depend on ``num_tasks``: a shorter scenario is a prefix of a longer one with the same seed.

Materialisation: pixels are scaled to [-0.5, 0.5] (``x / 255 - 0.5``); noise ``N(mean, std^2)``,
drawn from task k's ``stream_rng(seed, DATA_STREAM, k)`` independently per pixel and channel, is
added to train, valid and test images (in this order), which are then clipped to [-0.5, 0.5];
then ``x[..., channel_perm]`` is applied to all three splits. The test set is all 800 test images
of each class. Labels are class positions.

Difference from the reference: the reference draws one design for all 5 trials and only the
sampled indices per trial; here the whole design comes from ``seed``. To share one design across
seeds, set ``data_config.design_file`` to a file written by ``save_design`` (``make_stl10_tasks``
writes ``<workdir>/stl10_design.json``); its first ``num_tasks`` tasks are used.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from lasem_jax.data.design import DATA_STREAM, DESIGN_STREAM, stream_rng
from lasem_jax.data.tfds_source import load_split_arrays
from lasem_jax.task import Task

NUM_CLASSES = 10
TRAIN_PER_CLASS = 500
NOISE_UNIT = 0.025
DESIGN_FILENAME = "stl10_design.json"


def split_sizes(data_percent: float, valid_ratio: float) -> tuple[int, int]:
    """Returns ``(kept, valid)`` images per class: ``int(500 * pct)`` and ``ceil(ratio * kept)``."""
    kept = int(TRAIN_PER_CLASS * float(data_percent) / 100.0 + 1e-9)
    return kept, math.ceil(float(valid_ratio) * kept - 1e-9)


def design_from_seed(
    seed: int,
    *,
    num_tasks: int,
    classes_per_task: int,
    data_percent: float,
    valid_ratio: float,
) -> list[dict[str, Any]]:
    """Draws the STL-10 task design, task k from ``stream_rng(seed, DESIGN_STREAM, k)``.

    Args:
        seed: The run's seed (non-negative).
        num_tasks: Number of tasks ``T``.
        classes_per_task: Classes per task ``K`` (2..10).
        data_percent: Percent of the 500 training images per class kept (25 or 10 in the paper).
        valid_ratio: Fraction of the kept images per class used for validation.

    Returns:
        ``T`` dicts with keys ``task``, ``classes`` (K ints), ``noise_mean``, ``noise_std``,
        ``channel_perm`` (3 ints or None), ``train_indices`` and ``valid_indices`` (K lists of
        positions within each class's training images).

    Raises:
        ValueError: If ``K`` is outside 2..10 or ``T`` exceeds the number of distinct class sets.
    """
    if not 2 <= classes_per_task <= NUM_CLASSES:
        raise ValueError(f"stl10: classes_per_task must be in 2..10, got {classes_per_task}.")
    if not 1 <= num_tasks <= math.comb(NUM_CLASSES, classes_per_task):
        raise ValueError(f"stl10: num_tasks={num_tasks} exceeds the distinct class sets.")
    kept, n_valid = split_sizes(data_percent, valid_ratio)
    if not 0 < n_valid < kept:
        raise ValueError(
            f"stl10: data_percent={data_percent}, valid_ratio={valid_ratio} give {kept} kept and "
            f"{n_valid} validation images per class; both splits need >= 1 image."
        )
    seen: set[tuple[int, ...]] = set()
    design = []
    for index in range(num_tasks):
        rng = stream_rng(seed, DESIGN_STREAM, index)
        m, s = int(rng.integers(-2, 2)), int(rng.integers(0, 2))
        perm = [int(p) for p in rng.permutation(3)]
        while True:
            classes = [int(c) for c in rng.choice(NUM_CLASSES, classes_per_task, replace=False)]
            if tuple(sorted(classes)) not in seen:
                break
        seen.add(tuple(sorted(classes)))
        positions = [rng.permutation(TRAIN_PER_CLASS)[:kept] for _ in classes]
        design.append(
            {
                "task": index,
                "classes": classes,
                "noise_mean": round(NOISE_UNIT * m, 10),
                "noise_std": round(NOISE_UNIT * s, 10),
                "channel_perm": None if perm == [0, 1, 2] else perm,
                "train_indices": [[int(i) for i in p[n_valid:]] for p in positions],
                "valid_indices": [[int(i) for i in p[:n_valid]] for p in positions],
            }
        )
    return design


def save_design(path: str, design: list[dict[str, Any]]) -> None:
    """Writes ``design`` as JSON to ``path`` (parent directories are created)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(design, f)


def load_design(path: str) -> list[dict[str, Any]]:
    """Reads a design written by ``save_design``."""
    with open(path) as f:
        return json.load(f)


def apply_noise_and_perm(
    x: np.ndarray, task_design: dict[str, Any], rng: np.random.Generator
) -> np.ndarray:
    """Adds the task's noise, clips to [-0.5, 0.5], then permutes channels.

    Args:
        x: Images in [-0.5, 0.5], ``[N, H, W, 3]`` float32.
        task_design: One entry of a design (``noise_mean``, ``noise_std``, ``channel_perm``).
        rng: Source of the noise.

    Returns:
        The transformed images, ``[N, H, W, 3]`` float32.
    """
    mean, std = float(task_design["noise_mean"]), float(task_design["noise_std"])
    if mean != 0.0 or std != 0.0:
        noise = rng.standard_normal(x.shape, dtype=np.float32) * np.float32(std)
        x = np.clip(x + (noise + np.float32(mean)), -0.5, 0.5)
    perm = task_design.get("channel_perm")
    if perm is not None:
        x = x[..., list(perm)]
    return np.ascontiguousarray(x, dtype=np.float32)


def _task_name(d: dict[str, Any]) -> str:
    noise = (
        "no-noise"
        if d["noise_mean"] == d["noise_std"] == 0
        else (f"noise(m={d['noise_mean']:g},s={d['noise_std']:g})")
    )
    perm = "perm=" + ("none" if d["channel_perm"] is None else "".join(map(str, d["channel_perm"])))
    return f"stl10 t{d['task']} classes=[{','.join(map(str, d['classes']))}] {noise} {perm}"


def _design_for(data_config: Any, seed: int) -> list[dict[str, Any]]:
    """The first ``num_tasks`` tasks of ``design_file`` if it exists, else ``design_from_seed``."""
    num_tasks, k = int(data_config.num_tasks), int(data_config.classes_per_task)
    design_file = data_config.get("design_file", "") or ""
    if not (design_file and os.path.exists(design_file)):
        return design_from_seed(
            seed,
            num_tasks=num_tasks,
            classes_per_task=k,
            data_percent=float(data_config.get("data_percent", 25)),
            valid_ratio=float(data_config.get("valid_ratio", 0.15)),
        )
    design = load_design(design_file)
    if len(design) < num_tasks:
        raise ValueError(
            f"stl10: design_file {design_file!r} holds {len(design)} tasks but "
            f"data.num_tasks={num_tasks}; lower --config.data.num_tasks or use a longer design."
        )
    sizes = sorted({len(d["classes"]) for d in design[:num_tasks]})
    if sizes != [k]:
        raise ValueError(
            f"stl10: design_file {design_file!r} has {sizes} classes per task but "
            f"data.classes_per_task={k}; set --config.data.classes_per_task to the file's value."
        )
    return design[:num_tasks]


def make_stl10_tasks(data_config: Any, *, seed: int, workdir: str | None = None) -> list[Task]:
    """Builds the STL-10 lifelong tasks (design and protocol in the module docstring).

    Args:
        data_config: ``config.data`` with ``num_tasks``, ``classes_per_task``, ``data_percent``,
            ``valid_ratio`` and optional ``data_dir`` (tfds data directory, "" = default) and
            ``design_file`` (if set and the file exists, its first ``num_tasks`` tasks are used).
        seed: Seed of the design (unless read from ``design_file``) and of the noise.
        workdir: If given, the design used is written to ``<workdir>/stl10_design.json``.

    Returns:
        ``num_tasks`` Tasks of ``96x96x3`` float32 images in [-0.5, 0.5]; 20 tasks x 3 classes at
        25% / 0.15 give 318 train, 57 valid and 2400 test images per task.

    Raises:
        ValueError: On an invalid design setting, a design file with fewer tasks or other class
            counts than the config, or if STL-10 is not prepared for tfds.
    """
    design = _design_for(data_config, seed)
    if workdir:
        save_design(os.path.join(workdir, DESIGN_FILENAME), design)
    data_dir = data_config.get("data_dir", "") or None
    x_all, y_all = load_split_arrays("stl10", "train", data_dir=data_dir)
    x_test_all, y_test_all = load_split_arrays("stl10", "test", data_dir=data_dir)
    by_class = {c: np.flatnonzero(y_all == c) for c in range(NUM_CLASSES)}
    test_by_class = {c: np.flatnonzero(y_test_all == c) for c in range(NUM_CLASSES)}

    def take(
        x: np.ndarray, groups: list[np.ndarray], d: dict[str, Any], rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        labels = np.concatenate([np.full(len(g), k, np.int32) for k, g in enumerate(groups)])
        images = x[np.concatenate(groups)].astype(np.float32) / np.float32(255) - np.float32(0.5)
        return apply_noise_and_perm(images, d, rng), labels

    tasks = []
    for t, d in enumerate(design):
        classes = d["classes"]
        for c, tr_pos, va_pos in zip(classes, d["train_indices"], d["valid_indices"], strict=True):
            if max(tr_pos + va_pos) >= by_class[c].shape[0]:
                raise ValueError(
                    f"stl10: the design of task {d['task']} uses image {max(tr_pos + va_pos)} of "
                    f"class {c}, but the training split has {by_class[c].shape[0]} images of it."
                )
        tr = [
            by_class[c][np.asarray(p, int)]
            for c, p in zip(classes, d["train_indices"], strict=True)
        ]
        va = [
            by_class[c][np.asarray(p, int)]
            for c, p in zip(classes, d["valid_indices"], strict=True)
        ]
        noise_rng = stream_rng(seed, DATA_STREAM, t)
        x_tr, y_tr = take(x_all, tr, d, noise_rng)
        x_va, y_va = take(x_all, va, d, noise_rng)
        x_te, y_te = take(x_test_all, [test_by_class[c] for c in classes], d, noise_rng)
        tasks.append(
            Task(x_tr, y_tr, x_va, y_va, x_te, y_te, name=_task_name(d), num_classes=len(classes))
        )
    return tasks


__all__ = [
    "apply_noise_and_perm",
    "design_from_seed",
    "load_design",
    "make_stl10_tasks",
    "save_design",
    "split_sizes",
]
