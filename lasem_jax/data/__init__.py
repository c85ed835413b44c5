"""Lifelong task sequences, chosen by `data_config.name`."""

from __future__ import annotations

from typing import Any

from lasem_jax.data.cifar100 import make_cifar100_tasks
from lasem_jax.data.digits import make_digits_tasks
from lasem_jax.data.fashion_mnist import make_fashion_mnist_tasks
from lasem_jax.data.office_home import make_office_home_tasks
from lasem_jax.data.stl10 import make_stl10_tasks
from lasem_jax.data.transformed_fashion_mnist import (
    TRANSFORMED,
    make_transformed_fashion_mnist_tasks,
)
from lasem_jax.task import Task

DATASETS = ("digits", "fashion_mnist", "cifar100", "stl10", "office_home", *TRANSFORMED)


def make_tasks(data_config: Any, *, seed: int, workdir: str | None = None) -> list[Task]:
    """Builds the task sequence named by `data_config.name`.

    Args:
      data_config: the `config.data` section (`name` plus the dataset's own fields), frozen
        (`core.frozen.Frozen`) or a ConfigDict's.
      seed: the run's seed (task design and splits are drawn from it).
      workdir: the run's directory; STL-10 writes the design it used there
        (`stl10_design.json`).

    Returns:
      The tasks, in training order.

    Raises:
      ValueError: unknown dataset, or data that is missing or not prepared (the message names
        the dataset, where it was looked for and the command that prepares it).
    """
    name = data_config.name
    if name == "digits":
        return make_digits_tasks(
            seed=seed,
            num_tasks=data_config.num_tasks,
            classes_per_task=data_config.classes_per_task,
        )
    if name == "office_home":
        return make_office_home_tasks(data_config, seed=seed)
    if name == "fashion_mnist":
        return make_fashion_mnist_tasks(data_config, seed=seed)
    if name in TRANSFORMED:
        return make_transformed_fashion_mnist_tasks(data_config, seed=seed)
    if name == "cifar100":
        return make_cifar100_tasks(data_config, seed=seed)
    if name == "stl10":
        return make_stl10_tasks(data_config, seed=seed, workdir=workdir)
    raise ValueError(f"Unknown dataset {name!r}; available: {', '.join(DATASETS)}.")


__all__ = [
    "DATASETS",
    "make_cifar100_tasks",
    "make_digits_tasks",
    "make_fashion_mnist_tasks",
    "make_office_home_tasks",
    "make_stl10_tasks",
    "make_tasks",
    "make_transformed_fashion_mnist_tasks",
]
