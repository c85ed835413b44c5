"""Warnings for runs that are valid but mislead: fields the method ignores, chance-level results.

`run_config.validate_settings` refuses what cannot train; these functions name what trains but
would be misread, for the launcher to print in one line.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from lasem_jax.config import defaults, schema
from lasem_jax.core.frozen import Frozen, RunConfig, freeze

# Methods that build their task networks with `config.learner` (HPS, TF or DF-CNN).
LEARNER_METHODS = schema.BY_NAME["learner"].methods
CHANCE_MARGIN = 0.05


def _leaves(config: Frozen, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """`(dotted field, value)` of every leaf of `config`."""
    for key, value in config.items():
        if isinstance(value, Frozen):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _unread(config: RunConfig) -> set[str]:
    """The schema's fields that `config.method` never reads with its learner and prior."""
    method, learner, prior = config.method, config.learner, config.em.prior
    return {f.name for f in schema.FIELDS if not f.reads(method, learner, prior)}


def ignored_fields(config: RunConfig) -> list[str]:
    """The fields `config.method` ignores that differ from `lasem_jax.default_config()`.

    E.g. `static_config=top9` with method lasem, any `em.*` with method static, `den.*` with
    method lasem, `learner` with method prognn, `model.tf_ortho_weight` with learner hps,
    `em.fixed_prob` with the Laplace prior. Fields absent from the default schema (a dataset's
    own `data.*` fields) are never reported.

    Args:
      config: the run's config (frozen, or a ConfigDict: the launchers call this before training).

    Returns:
      Dotted field names in the default schema's order; empty if the method reads every
      changed field.
    """
    unread = _unread(config)
    given = dict(_leaves(freeze(config)))  # lists as tuples, as in the frozen default
    return [
        field
        for field, default in _leaves(defaults.frozen_default())
        if field in unread and field in given and given[field] != default
    ]


def chance_warning(
    results: dict[str, Any], num_classes: Sequence[int], *, margin: float = CHANCE_MARGIN
) -> str | None:
    """A one-line warning when every task's peak accuracy is within `margin` of chance.

    Args:
      results: a run's results dict (`peak_accuracy` `[T]`, and `config` for the epoch count).
      num_classes: `[T]` classes of each task (chance is `1 / num_classes[t]`).
      margin: how far above chance a task must get for the run to count as learning.

    Returns:
      None if some task learned; otherwise a sentence saying the accuracies are not meaningful
      and how to train longer.

    Raises:
      ValueError: `num_classes` does not have one entry per task of `results`.
    """
    peaks = [float(p) for p in results["peak_accuracy"]]
    if len(peaks) != len(num_classes):
        raise ValueError(
            f"num_classes has {len(num_classes)} entries but the results have {len(peaks)} "
            "tasks; pass one class count per task."
        )
    if any(p > 1.0 / k + margin for p, k in zip(peaks, num_classes, strict=True)):
        return None
    counts = sorted(set(num_classes))
    chance = ", ".join(f"1/{k}" for k in counts)
    epochs = results.get("config", {}).get("train", {}).get("epochs_per_task")
    longer = f" above {epochs}" if epochs is not None else ""
    return (
        f"Every task's peak accuracy (at most {max(peaks):.3f} over {len(peaks)} tasks) is within "
        f"{margin} of chance ({chance}), so the accuracies are not meaningful at this size; "
        f"train longer (raise --config.train.epochs_per_task{longer}, or drop ':tiny') or "
        "with a larger --config.optim.lr."
    )
