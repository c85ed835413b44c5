"""The paper's lifelong scenarios (Appendix A, Table 4; docs/protocol.md §3-§5, §7, §9).

Not a config file itself: every `configs/<scenario>_<method>.py` calls `get_paper_config`, which
starts from `configs.default.get_config()` and overrides the fields of one scenario and method.

Scenarios (`SCENARIOS`): `cifar100_10`, `cifar100_40`, `office_home`, `stl10_20`, `stl10_15`.
Methods (`METHODS`, one file per scenario): `lasem` (Eq. 1 Laplace prior, Eq. 2 product
likelihood), `static` (`static_config`, default `all`), `single_task`. `OTHER_METHODS` have
files for the scenarios the paper runs them on: `brute_force` (Table 3: CIFAR-100 10 tasks,
Office-Home) and the competing methods of Table 1 (Office-Home).

Optimiser per scenario (docs/protocol.md §4, RMSProp): `lr = lr0 / (1 + global_epoch * lr_decay)`,
a fixed number of epochs per task (no early stopping), minibatches of `batch_size`.

The argument `"tiny"` (`--config=configs/<file>.py:tiny`) shrinks a run to a smoke test that
still learns (`lasem_jax.config.defaults.apply_tiny`: 3 epochs per task, width 0.25, He
initialisation, learning rate 1e-2; the idea of big_vision's `runlocal`).
"""

from __future__ import annotations

from typing import Any

import ml_collections

from configs import default
from lasem_jax.config import defaults, schema

METHODS = ("lasem", "static", "single_task")
OTHER_METHODS = ("brute_force", "single_network", "prognn", "darts", "apd", "den")

# The LASEM partition of the 9-layer STL-10 network: three groups of three adjacent layers
# (Appendix D, docs/protocol.md §9: `layer_group_config = [3, 3, 3]`), 0-based layer indices.
STL10_9_GROUPS = ((0, 1, 2), (3, 4, 5), (6, 7, 8))
# TF on STL-10 with 20 tasks uses one FC hidden layer of 128 instead of [128, 16]
# (docs/protocol.md §2.3).
STL10_20_TF_FC_HIDDEN = (128,)

TINY_EPOCHS_PER_TASK = defaults.TINY_EPOCHS_PER_TASK
TINY_WIDTH = defaults.TINY_WIDTH


def _cifar100(num_tasks: int) -> dict[str, Any]:
    """CIFAR-100: 10 disjoint tasks, or 20/40 of overlapping class lists (docs/protocol.md §5.1)."""
    return {
        "data": {
            "name": "cifar100",
            "num_tasks": num_tasks,
            "classes_per_task": 10,
            "data_percent": 4,
            "data_dir": "",
            "standardize": "per_split",
        },
        "arch": "cifar100_4",
        "optim": {"lr": 1e-4, "lr_decay": 1.0 / 4000.0},
        "train": {"epochs_per_task": 2000, "batch_size": 10},
    }


# Per scenario: `data` fields (the dataset loaders read these), architecture, optimiser
# (docs/protocol.md §4).
SCENARIOS: dict[str, dict[str, Any]] = {
    "cifar100_10": _cifar100(10),
    "cifar100_40": _cifar100(40),
    "office_home": {
        # Product, RealWorld x 5 fixed groups of 13 classes, split 6:1:3 (docs/protocol.md §5.2).
        "data": {
            "name": "office_home",
            "num_tasks": 10,
            "classes_per_task": 13,
            "manual_dir": "",
            "cache_dir": "",
        },
        "arch": "office_home_4",
        "optim": {"lr": 2e-5, "lr_decay": 1e-4},
        "train": {"epochs_per_task": 1000, "batch_size": 16},
    },
    "stl10_20": {
        # 20 three-way tasks with noise and channel swaps; 25% of the data, 15% of it for
        # validation (318 train / 57 valid / 2400 test per task, docs/protocol.md §5.3).
        "data": {
            "name": "stl10",
            "num_tasks": 20,
            "classes_per_task": 3,
            "data_percent": 25,
            "valid_ratio": 0.15,
            "data_dir": "",
            "design_file": "",
        },
        "arch": "stl10_6",
        "optim": {"lr": 1e-4, "lr_decay": 0.0},
        "train": {"epochs_per_task": 500, "batch_size": 10},
    },
    "stl10_15": {
        # 15 five-way tasks; 10% of the data, half of it for validation (Appendix D).
        "data": {
            "name": "stl10",
            "num_tasks": 15,
            "classes_per_task": 5,
            "data_percent": 10,
            "valid_ratio": 0.5,
            "data_dir": "",
            "design_file": "",
        },
        "arch": "stl10_9",
        "lasem_partition": STL10_9_GROUPS,
        "optim": {"lr": 1e-4, "lr_decay": 0.0},
        "train": {"epochs_per_task": 500, "batch_size": 10},
    },
}


# The `config.data` fields a scenario may set beyond the default schema, with their meaning.
DATA_FIELDS = {f.name.removeprefix("data."): f.doc for f in schema.FIELDS if f.data_optional}


def _set_data_fields(data: ml_collections.ConfigDict, fields: dict[str, Any]) -> None:
    """Sets `config.data` fields, adding those of `DATA_FIELDS` the default schema lacks."""
    for key, value in fields.items():
        if key not in data and key not in DATA_FIELDS:
            raise KeyError(f"configs/paper.py: unknown data field {key!r}.")
        data[key] = value


def get_paper_config(
    scenario: str, method: str, arg: str | None = None, *, learner: str = "hps"
) -> ml_collections.ConfigDict:
    """Returns the config of one paper scenario and method.

    Args:
      scenario: one of `SCENARIOS`.
      method: one of `METHODS` or `OTHER_METHODS`.
      arg: the config-file argument: None or "" (the paper's run) or "tiny" (smoke test).
      learner: the base learner (hps | tf | dfcnn); `--config.learner=...` overrides it later,
        but only `learner="tf"` here applies the STL-10 20-task TF head (docs/protocol.md §2.3).

    Raises:
      ValueError: unknown scenario, method or argument.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"Unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}.")
    if method not in METHODS + OTHER_METHODS:
        known = ", ".join(METHODS + OTHER_METHODS)
        raise ValueError(f"Unknown method {method!r}; choose one of {known}.")
    if arg not in (None, "", "tiny"):
        raise ValueError(f"Unknown config argument {arg!r}; use nothing or ':tiny'.")
    s = SCENARIOS[scenario]
    c = default.get_config()
    c.method = method
    c.learner = learner
    c.static_config = "all"  # static only; override with --config.static_config=top2 etc.
    _set_data_fields(c.data, s["data"])

    c.model.arch = s["arch"]
    c.model.width = 1.0
    if method in ("lasem", "brute_force") and "lasem_partition" in s:
        c.model.partition = tuple(tuple(group) for group in s["lasem_partition"])
    if scenario == "stl10_20" and learner == "tf":
        c.model.fc_hidden = STL10_20_TF_FC_HIDDEN

    c.em.prior = "laplace"  # Eq. 1
    c.em.likelihood = "product"  # Eq. 2
    c.em.num_m_steps = 1  # Appendix A: one M-step per E-step
    c.optim.lr = s["optim"]["lr"]
    c.optim.lr_decay = s["optim"]["lr_decay"]
    c.train.epochs_per_task = s["train"]["epochs_per_task"]
    c.train.batch_size = s["train"]["batch_size"]
    # Runs of 500-2000 epochs per task: a checkpoint every 100 epochs (and at each task's end).
    c.train.checkpoint_every_epochs = 100

    return defaults.apply_tiny(c) if arg == "tiny" else c
