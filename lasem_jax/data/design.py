"""Random lifelong designs for grey-image scenarios: class sets, pixel noise, an input transform.

Mirrors the paper's STL-10 design (random class sets, Gaussian noise, channel swaps) for images
with one channel, where a rotation, flip or inversion stands in for the channel permutation.

Every random choice comes from `stream_rng(seed, stream, index)`: one generator per task (or per
class) and purpose, so task k never depends on how many tasks follow it (the first tasks of a
longer scenario are exactly the tasks of a shorter one with the same seed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

TRANSFORMS: tuple[str, ...] = ("identity", "rot90", "rot180", "rot270", "hflip", "invert")
NOISE_UNIT = 0.05
# The `stream` of `stream_rng`: a task's design, a class's split, a task's example order and noise.
DESIGN_STREAM, CLASS_STREAM, DATA_STREAM = 1, 2, 3


def stream_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """The generator of one task or class and one purpose: `default_rng([seed, stream, index])`.

    Args:
      seed: the run's seed, a non-negative integer.
      stream: the purpose, one of `DESIGN_STREAM`, `CLASS_STREAM`, `DATA_STREAM`.
      index: the task index (design, data) or the class id (split).

    Raises:
      ValueError: a negative or non-integer seed.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed={seed!r} is not a non-negative integer; use a seed >= 0.")
    return np.random.default_rng([int(seed), stream, index])


def check_design_args(
    dataset: str, num_tasks: int, classes_per_task: int, num_classes: int
) -> None:
    """Raises ValueError unless 2 <= K <= classes and the tasks fit in the distinct class sets."""
    if not 2 <= classes_per_task <= num_classes:
        raise ValueError(
            f"{dataset}: classes_per_task must be in 2..{num_classes}, got {classes_per_task}."
        )
    max_tasks = math.comb(num_classes, classes_per_task)
    if not 1 <= num_tasks <= max_tasks:
        raise ValueError(
            f"{dataset}: num_tasks must be in 1..{max_tasks} (the number of distinct "
            f"{classes_per_task}-class sets of {num_classes} classes), got {num_tasks}."
        )


def draw_design(
    seed: int,
    *,
    dataset: str,
    num_tasks: int,
    classes_per_task: int,
    num_classes: int,
    class_names: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Draws each task's transformation, noise and classes from its own `DESIGN_STREAM` generator.

    Task k's transformation and noise depend only on `(seed, k)`; its classes too, except that a
    class set (sorted) already used by an earlier task is redrawn from the same generator. Noise
    has mean `0.05 m` (m in {-1, 0, 1}) and standard deviation `0.05 s` (s in {0, 1, 2}).

    Returns:
      One JSON-ready dict per task: `task`, `name`, `classes` (label i is `classes[i]`),
      `transform` (one of `TRANSFORMS`), `noise_mean`, `noise_std`, and `class_names` if given.
    """
    check_design_args(dataset, num_tasks, classes_per_task, num_classes)
    seen: set[tuple[int, ...]] = set()
    design = []
    for index in range(num_tasks):
        rng = stream_rng(seed, DESIGN_STREAM, index)
        transform = TRANSFORMS[int(rng.integers(len(TRANSFORMS)))]
        mean = round(NOISE_UNIT * int(rng.integers(-1, 2)), 10)
        std = round(NOISE_UNIT * int(rng.integers(0, 3)), 10)
        classes = [int(c) for c in rng.choice(num_classes, classes_per_task, replace=False)]
        while tuple(sorted(classes)) in seen:
            classes = [int(c) for c in rng.choice(num_classes, classes_per_task, replace=False)]
        seen.add(tuple(sorted(classes)))
        noise = "no-noise" if mean == 0 and std == 0 else f"noise(m={mean:g},s={std:g})"
        listed = ",".join(map(str, classes))
        spec = {
            "task": index,
            "name": f"{dataset} t{index} classes=[{listed}] {transform} {noise}",
            "classes": classes,
            "transform": transform,
            "noise_mean": mean,
            "noise_std": std,
        }
        if class_names is not None:
            spec["class_names"] = [class_names[c] for c in classes]
        design.append(spec)
    return design


def apply_transform(images: np.ndarray, transform: str) -> np.ndarray:
    """Applies a named transformation to `[N, H, W]` images (rotations counter-clockwise)."""
    if transform == "identity":
        return images
    if transform in ("rot90", "rot180", "rot270"):
        return np.rot90(images, k=int(transform[3:]) // 90, axes=(1, 2))
    if transform == "hflip":
        return images[:, :, ::-1]
    if transform == "invert":
        return 1.0 - images
    raise ValueError(f"unknown transform {transform!r}; expected one of {TRANSFORMS}.")


def corrupt(x: np.ndarray, spec: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """`T(clip(x + noise, 0, 1))` for `[N, H, W]` images in [0, 1] -> `[N, H, W, 1]` float32."""
    if spec["noise_mean"] != 0 or spec["noise_std"] != 0:
        x = np.clip(x + rng.normal(spec["noise_mean"], spec["noise_std"], size=x.shape), 0.0, 1.0)
    x = apply_transform(x, spec["transform"])
    return np.ascontiguousarray(x[..., None], dtype=np.float32)
