"""Lifelong task sequences, chosen by `data_config.name`."""

from __future__ import annotations

import ml_collections

from lasem_jax.data.digits import make_digits_tasks
from lasem_jax.task import Task

DATASETS = ("digits",)
PAPER_DATASETS = ("cifar100", "stl10", "office_home", "fashion_mnist")


def make_tasks(data_config: ml_collections.ConfigDict, *, seed: int) -> list[Task]:
    """Builds the task sequence named by `data_config.name`.

    Args:
      data_config: the `config.data` section (`name` plus the dataset's own fields).
      seed: the run's seed (task design and splits are drawn from it).

    Returns:
      The tasks, in training order.

    Raises:
      ValueError: unknown dataset, or a paper dataset whose loader is not built yet.
    """
    name = data_config.name
    if name == "digits":
        return make_digits_tasks(
            seed=seed,
            num_tasks=data_config.num_tasks,
            classes_per_task=data_config.classes_per_task,
        )
    if name in PAPER_DATASETS:
        raise ValueError(
            f"Dataset {name!r} is not prepared: its loader (tfds) is not part of this version of "
            "lasem_jax yet. Run with --config.data.name=digits, or pass your own tasks to "
            "lasem_jax.train_lifelong from Python."
        )
    raise ValueError(f"Unknown dataset {name!r}; available: {', '.join(DATASETS)}.")


__all__ = ["DATASETS", "make_digits_tasks", "make_tasks"]
