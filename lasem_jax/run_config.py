"""A run's config turned into its pieces: method list, model, step hyperparameters, checks."""

from __future__ import annotations

from typing import Any

import ml_collections
import numpy as np

from lasem_jax import em, search_space, steps
from lasem_jax.learners import get_learner
from lasem_jax.model import Model, build_model
from lasem_jax.task import Task

# The competing methods of `lasem_jax.baselines` (their names are listed there).
LASEM_FAMILY = ("lasem", "static", "single_task", "brute_force")


def learner_hparams(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The keyword arguments of `config.learner` taken from `config.model`."""
    m = config.model
    hparams: dict[str, Any] = {"he_init": bool(m.he_init)}
    if config.learner == "tf":
        hparams["ortho_weight"] = float(m.tf_ortho_weight)
    if config.learner == "dfcnn":
        hparams.update(kb_l2=float(m.dfcnn_kb_l2), ts_l2=float(m.dfcnn_ts_l2))
    return hparams


def make_model(config: ml_collections.ConfigDict, task: Task) -> Model:
    """The model for one task (the number of classes may differ between tasks)."""
    m = config.model
    partition = m.partition if config.method in ("lasem", "brute_force") else None
    return build_model(
        m.arch,
        get_learner(config.learner, **learner_hparams(config)),
        task.num_classes,
        partition=partition,
        width=m.width,
        input_shape=task.image_shape,
        fc_hidden=m.fc_hidden,
    )


def validate_settings(config: ml_collections.ConfigDict, num_layers: int) -> None:
    """Raises ValueError naming the field and the fix for any invalid setting."""
    if config.em.likelihood not in em.LIKELIHOOD_MODES:
        raise ValueError(
            f"config.em.likelihood={config.em.likelihood!r}; use one of {em.LIKELIHOOD_MODES}."
        )
    if config.em.prior not in em.PRIORS:
        raise ValueError(f"config.em.prior={config.em.prior!r}; use one of {em.PRIORS}.")
    if config.method == "static":
        search_space.named_config(config.static_config, num_layers)
    search_space.validate_partition(num_layers, config.model.partition)
    if config.train.batch_size < 1 or config.train.epochs_per_task < 1:
        raise ValueError("config.train.batch_size and epochs_per_task must be >= 1.")


def step_config(config: ml_collections.ConfigDict) -> steps.StepConfig:
    """The hashable step hyperparameters of a run."""
    e = config.em
    return steps.StepConfig(
        method="lasem" if config.method == "lasem" else "static",
        likelihood=e.likelihood,
        prior=e.prior,
        prior_init_count=float(e.prior_init_count),
        fixed_config=e.fixed_config,
        fixed_prob=float(e.fixed_prob),
        num_m_steps=int(e.num_m_steps),
        batch_size=int(config.train.batch_size),
    )


def static_config(config: ml_collections.ConfigDict, num_layers: int) -> np.ndarray:
    """`[L]` bool configuration of a static run (`none` for single_task)."""
    name = "none" if config.method == "single_task" else config.static_config
    return search_space.named_config(name, num_layers)
