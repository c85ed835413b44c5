"""A run's config turned into its pieces: method list, model, step hyperparameters, checks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from lasem_jax.config import defaults, schema
from lasem_jax.core import em, search_space
from lasem_jax.core.frozen import Frozen, RunConfig, freeze
from lasem_jax.engine import steps
from lasem_jax.networks.learners import LEARNERS, get_learner
from lasem_jax.networks.model import Model, build_model
from lasem_jax.task import Task

# The methods besides the competing ones of `lasem_jax.baselines`.
LASEM_FAMILY = schema.LASEM_FAMILY


def learner_hparams(config: RunConfig) -> dict[str, Any]:
    """The keyword arguments of `config.learner` taken from `config.model`."""
    m = config.model
    hparams: dict[str, Any] = {"he_init": bool(m.he_init)}
    if config.learner == "tf":
        hparams["ortho_weight"] = float(m.tf_ortho_weight)
    if config.learner == "dfcnn":
        hparams.update(kb_l2=float(m.dfcnn_kb_l2), ts_l2=float(m.dfcnn_ts_l2))
    return hparams


def make_model(config: RunConfig, task: Task) -> Model:
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


def validate_settings(config: RunConfig, num_layers: int) -> None:
    """Refuses, before any training, a config that cannot train or would train silently wrong.

    Checks the names (learner, likelihood, prior, `train.matmul_precision`, `static_config` for
    method static, the LASEM fixed prior's `em.fixed_config`, the partition, `darts.order`) and
    the range of every numeric field that `lasem_jax.config.schema` gives one (`RANGES`),
    whichever method reads it.

    Args:
      config: the run's config (frozen, or a ConfigDict: frozen here).
      num_layers: the number of conv layers `L` of the task network.

    Raises:
      ValueError: one sentence naming the field, its value and the fix.
    """
    config = freeze(config)
    if config.learner not in LEARNERS:
        raise ValueError(
            f"config.learner={config.learner!r} is unknown; use one of {tuple(LEARNERS)}."
        )
    if config.em.likelihood not in em.LIKELIHOOD_MODES:
        raise ValueError(
            f"config.em.likelihood={config.em.likelihood!r} is unknown; use one of "
            f"{em.LIKELIHOOD_MODES}."
        )
    if config.em.prior not in em.PRIORS:
        raise ValueError(f"config.em.prior={config.em.prior!r} is unknown; use one of {em.PRIORS}.")
    _check_matmul_precision(config)
    m = config.model
    _named("model.partition", search_space.validate_partition, num_layers, m.partition)
    if config.method == "static":
        _named("static_config", search_space.named_config, config.static_config, num_layers)
    if config.method == "lasem" and config.em.prior == "fixed":
        fixed = _named(
            "em.fixed_config", search_space.named_config, config.em.fixed_config, num_layers
        )
        space = search_space.enumerate_configs(num_layers, m.partition)
        _named("em.fixed_config", search_space.config_index, space, fixed)
    for field, requirement in RANGES.items():
        _check_range(config, field, requirement)
    _check_phases(config)
    _check_den_thresholds(config)
    _check_fc_hidden(config)


def validate_for_tasks(config: RunConfig, tasks: Sequence[Task]) -> None:
    """Refuses settings that cannot train on these tasks (after `validate_settings`).

    Args:
      config: the run's config.
      tasks: the validated task sequence, length `T`.

    Raises:
      ValueError: `train.batch_size` exceeds a task's training set (an epoch would have no
        minibatch), or a task has a single class (its accuracy would be trivially 1).
    """
    batch_size = int(config.train.batch_size)
    smallest = min(task.num_train for task in tasks)
    for t, task in enumerate(tasks):
        if task.num_train < batch_size:
            raise ValueError(
                f"config.train.batch_size={batch_size} exceeds the {task.num_train} training "
                f"images of task {t} ({task.name!r}), so it would train on no minibatch; set "
                f"--config.train.batch_size={smallest} or lower."
            )
        if task.num_classes < 2:
            raise ValueError(
                f"task {t} ({task.name!r}) has num_classes={task.num_classes}, so its accuracy "
                "is trivially 1; give every task at least 2 classes."
            )


def _named(field: str, check: Callable[..., Any], *args: Any) -> Any:
    """`check(*args)`, its ValueError prefixed with `config.<field>`."""
    try:
        return check(*args)
    except ValueError as e:
        raise ValueError(f"config.{field}: {e}") from e


# Field -> its allowed range, every numeric field of the schema that has one.
RANGES: dict[str, schema.Range] = {
    f.name: f.allowed for f in schema.FIELDS if isinstance(f.allowed, schema.Range)
}


def _lookup(config: RunConfig, field: str) -> tuple[bool, Any]:
    """`(True, value)` of a dotted field, or `(False, None)` if the config lacks it."""
    node: Any = config
    for key in field.split("."):
        if not isinstance(node, Frozen) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _check_range(config: RunConfig, field: str, allowed: schema.Range) -> None:
    """Raises ValueError naming `field`, its value and its default unless it is in range."""
    present, value = _lookup(config, field)
    if not present or allowed.accepts(value):
        return
    default = schema.BY_NAME[field].default
    raise ValueError(
        f"config.{field}={value!r} must be {allowed.words}; set e.g. --config.{field}={default!r} "
        "(the default)."
    )


def _check_phases(config: RunConfig) -> None:
    """LASEM's warm-up and fine-tuning epochs must leave at least one EM epoch per task."""
    warmup, finetune = _phase_epochs(config)
    epochs = int(config.train.epochs_per_task)
    if config.method == "lasem" and warmup + finetune >= epochs:
        raise ValueError(
            f"config.em.warmup_epochs={warmup} plus config.em.finetune_epochs="
            f"{finetune} leave no EM epoch of the {epochs} epochs per task; lower them "
            f"to sum to at most {epochs - 1}."
        )


def lasem_phase(config: RunConfig, epoch: int) -> str:
    """`warmup`, `em` or `finetune`: what LASEM does in 0-based `epoch` of a task."""
    warmup, finetune = _phase_epochs(config)
    if epoch < warmup:
        return "warmup"
    return "finetune" if int(config.train.epochs_per_task) - epoch <= finetune else "em"


def _phase_epochs(config: RunConfig) -> tuple[int, int]:
    """`(em.warmup_epochs, em.finetune_epochs)`, 0 where the config lacks the field."""
    return int(config.em.get("warmup_epochs", 0)), int(config.em.get("finetune_epochs", 0))


def _check_matmul_precision(config: RunConfig) -> None:
    """`train.matmul_precision` is one of `defaults.MATMUL_PRECISIONS` (or absent)."""
    present, value = _lookup(config, "train.matmul_precision")
    if present and (not isinstance(value, str) or value not in defaults.MATMUL_PRECISIONS):
        raise ValueError(
            f"config.train.matmul_precision={value!r} is unknown; use one of "
            f"{defaults.MATMUL_PRECISIONS}, e.g. --config.train.matmul_precision=highest "
            "(the default: float32 everywhere)."
        )


def _check_den_thresholds(config: RunConfig) -> None:
    """`den.sparsity_thresholds`: (kept weight mass in (0, 1], pruning threshold >= 0)."""
    present, value = _lookup(config, "den.sparsity_thresholds")
    if not present:
        return
    pair = tuple(value) if isinstance(value, list | tuple) else ()
    valid = (
        len(pair) == 2
        and schema.UNIT.accepts(pair[0])
        and pair[0] > 0
        and schema.NON_NEGATIVE.accepts(pair[1])
    )
    if not valid:
        raise ValueError(
            f"config.den.sparsity_thresholds={value!r} must be a pair (kept weight mass in (0, 1],"
            " pruning threshold >= 0); set e.g. --config.den.sparsity_thresholds='(0.98, 0.01)'."
        )


def _check_fc_hidden(config: RunConfig) -> None:
    """`model.fc_hidden`: None or positive integer sizes."""
    hidden = config.model.fc_hidden
    if hidden is None:
        return
    sizes = tuple(hidden) if isinstance(hidden, list | tuple) else (hidden,)
    if not all(schema.COUNT.accepts(size) for size in sizes):
        raise ValueError(
            f"config.model.fc_hidden={hidden!r} must be None or a tuple of integers >= 1; set "
            "e.g. --config.model.fc_hidden='(128,)'."
        )


def step_config(config: RunConfig) -> steps.StepConfig:
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
        batch_devices=batch_devices(config),
    )


def batch_devices(config: RunConfig) -> int:
    """Devices each minibatch is split over: `train.num_devices` (0: all) if `train.shard_batch`.

    Raises:
      ValueError: more devices than this process has, or a batch size they do not divide.
    """
    if not config.train.shard_batch:
        return 1
    available = len(jax.local_devices())
    wanted = int(config.train.num_devices) or available
    if wanted > available:
        raise ValueError(
            f"config.train.num_devices={wanted} but this process has {available} device(s); "
            "set --config.train.num_devices=0 for all."
        )
    if int(config.train.batch_size) % wanted:
        raise ValueError(
            f"config.train.shard_batch splits each minibatch over {wanted} devices, which does "
            f"not divide config.train.batch_size={config.train.batch_size}; use a multiple of "
            f"{wanted} or set --config.train.num_devices."
        )
    return wanted


def static_config(config: RunConfig, num_layers: int) -> np.ndarray:
    """`[L]` bool configuration of a static run (`none` for single_task)."""
    name = "none" if config.method == "single_task" else config.static_config
    return search_space.named_config(name, num_layers)
