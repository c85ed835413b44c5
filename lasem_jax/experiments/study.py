"""A paired study: LASEM (and ablations), the static configurations and brute force, per seed."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ml_collections

from lasem_jax.analysis import reports
from lasem_jax.data import make_tasks
from lasem_jax.networks.architectures import get_architecture
from lasem_jax.storage import files, results_io
from lasem_jax.training import trainer

_LOG = logging.getLogger(__name__)

# LASEM settings a study can add beside the default (`lasem`): name -> config overrides.
ABLATIONS: dict[str, dict[str, Any]] = {
    "mean": {"em.likelihood": "mean"},
    "running_mean": {"em.prior": "running_mean"},
    "laplace10": {"em.prior_init_count": 10.0},
    "msteps2": {"em.num_m_steps": 2},
    "warmup1": {"em.warmup_epochs": 1},
    "warmup5": {"em.warmup_epochs": 5},
    "finetune1": {"em.finetune_epochs": 1},
}


def is_complete(path: str, config: ml_collections.ConfigDict) -> bool:
    """Whether `path` holds results of `config`.

    Raises:
      ValueError: `path` holds results of a different config (the fix: restart or another
        workdir).
    """
    results_path = files.path(path, files.RESULTS)
    if not os.path.exists(results_path):
        return False
    with open(results_path, encoding="utf-8") as f:
        saved = json.load(f).get("config")
    if saved != results_io.to_jsonable(config):
        raise ValueError(
            f"{path} holds results of a different config; use --restart (restart=True) to "
            "retrain, or another --workdir."
        )
    return True


def with_overrides(
    config: ml_collections.ConfigDict, overrides: Mapping[str, Any], name: str = "overrides"
) -> ml_collections.ConfigDict:
    """A resolved copy of `config` with dotted-field `overrides` (`{"em.likelihood": "mean"}`).

    Raises:
      ValueError: a field the config does not have, naming `name` and the field.
    """
    cfg = config.copy_and_resolve_references()
    for field, value in overrides.items():
        *path, leaf = field.split(".")
        node = cfg
        for part in path:
            node = node.get(part) if isinstance(node, ml_collections.ConfigDict) else None
        if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
            raise ValueError(
                f"{name}: the config has no field {field!r}; see --print_config for the fields."
            )
        node[leaf] = value
    return cfg


def study_runs(
    config: ml_collections.ConfigDict,
    workdir: str,
    seeds: Sequence[int],
    *,
    learners: Sequence[str] = ("hps", "dfcnn"),
    statics: str = "paper",
    ablations: Sequence[str] = (),
    brute_force: bool = False,
) -> list[tuple[str, ml_collections.ConfigDict]]:
    """Every run of a study as `(run_dir, resolved config)`, same seed = same tasks.

    Per learner `<workdir>/<learner>/`: `lasem/seed_<s>`, `lasem_<ablation>/seed_<s>`,
    `static_<name>/seed_<s>` (names from `reports.expand_config_names(statics)`) and, with
    `brute_force`, `brute_force/seed_<s>`.

    Raises:
      ValueError: an unknown learner, ablation or static configuration name.
    """
    unknown = [a for a in ablations if a not in ABLATIONS]
    if unknown:
        raise ValueError(f"Unknown ablation(s) {unknown}; known: {sorted(ABLATIONS)}.")
    bad = [learner for learner in learners if learner not in ("hps", "tf", "dfcnn")]
    if bad or not learners:
        raise ValueError(f"Learners must be a non-empty list of hps, tf, dfcnn; got {learners}.")
    num_layers = get_architecture(config.model.arch).num_layers
    names = reports.expand_config_names(statics, num_layers, flag="--statics")
    settings: list[tuple[str, dict[str, Any]]] = [("lasem", {"method": "lasem"})]
    settings += [(f"lasem_{a}", {"method": "lasem", **ABLATIONS[a]}) for a in ablations]
    settings += [(f"static_{n}", {"method": "static", "static_config": n}) for n in names]
    settings += [("brute_force", {"method": "brute_force"})] if brute_force else []
    runs = []
    for learner in learners:
        for name, overrides in settings:
            for seed in seeds:
                fields = {**overrides, "learner": learner, "seed": int(seed)}
                path = os.path.join(workdir, learner, name, f"seed_{seed}")
                runs.append((path, with_overrides(config, fields, name)))
    return runs


def run_study(
    runs: Sequence[tuple[str, ml_collections.ConfigDict]],
    *,
    restart: bool = False,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> list[str]:
    """Trains the runs without results (all together: `trainer.train_lifelong_seeds`).

    A run whose results.json holds its config is skipped; an interrupted one resumes.

    Returns:
      The run directories trained now.

    Raises:
      ValueError: without `restart`, a run directory holding another config's results (before
        any training).
    """
    todo = [(p, c) for p, c in runs if restart or not is_complete(p, c)]
    for path, _ in todo:
        results_path = files.path(path, files.RESULTS)
        if os.path.exists(results_path):
            os.remove(results_path)
    _LOG.info("Study: %d of %d runs to train.", len(todo), len(runs))
    if todo:
        trainer.train_lifelong_seeds(
            [make_tasks(c.data, seed=c.seed, workdir=p) for p, c in todo],
            [c for _, c in todo],
            workdirs=[p for p, _ in todo],
            on_epoch=on_epoch,
            restart=restart,
        )
    return [p for p, _ in todo]
