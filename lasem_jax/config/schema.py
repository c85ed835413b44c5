"""Every run config field declared once: default, allowed values, readers, effect on results."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lasem_jax.config import defaults
from lasem_jax.core import em
from lasem_jax.data import DATASETS
from lasem_jax.data.cifar100 import STANDARDIZE_MODES
from lasem_jax.networks.learners import LEARNERS

# The methods `lasem_jax.training` runs itself, then the competing methods of
# `lasem_jax.baselines` (its `BASELINES` keys; the config layer cannot import that package).
LASEM_FAMILY = ("lasem", "static", "single_task", "brute_force")
BASELINE_METHODS = (
    "single_network",
    "prognn",
    "darts",
    "apd",
    "den",
    "finetune",
    "ewc",
    "si",
    "lwf",
    "er",
    "agem",
    "derpp",
)
METHODS = (*LASEM_FAMILY, *BASELINE_METHODS)
# Methods that build their task networks with `config.learner` (HPS, TF or DF-CNN).
LEARNER_METHODS = ("lasem", "static", "single_task", "brute_force", "darts")
_SEARCH_METHODS = ("lasem", "brute_force")  # methods that read `model.partition`
_WORDS = {">0": "a finite number > 0", ">=0": "a finite number >= 0", "[0,1]": "in [0, 1]"}


@dataclasses.dataclass(frozen=True)
class Range:
    """Allowed numbers (never a bool).

    Attributes:
      kind: "int" (an integer in `low`..`high`), ">0", ">=0" or "[0,1]" (a finite number).
      low: the smallest integer allowed (kind "int" only).
      high: the largest integer allowed (kind "int" only; None: no upper bound).
    """

    kind: str
    low: int | None = None
    high: int | None = None

    def accepts(self, value: Any) -> bool:
        """Whether `value` is a number (not a bool) in this range."""
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            return False
        if self.kind == "int":
            whole = isinstance(value, int | np.integer)
            return whole and value >= self.low and (self.high is None or value <= self.high)
        if not np.isfinite(value):
            return False
        return bool({">0": value > 0, ">=0": value >= 0, "[0,1]": 0 <= value <= 1}[self.kind])

    @property
    def words(self) -> str:
        """The range as an error message names it, e.g. `an integer >= 1`."""
        if self.kind != "int":
            return _WORDS[self.kind]
        if self.high is not None:
            return f"an integer in {self.low}..{self.high}"
        return f"an integer >= {self.low}"


POSITIVE = Range(">0")
NON_NEGATIVE = Range(">=0")
UNIT = Range("[0,1]")
NATURAL = Range("int", 0)  # integers >= 0
COUNT = Range("int", 1)  # integers >= 1


@dataclasses.dataclass(frozen=True)
class ConfigField:
    """One config field.

    Attributes:
      name: the dotted name, e.g. `train.batch_size`.
      default: its value in `defaults.default_config()`; for a data-optional field, what the
        dataset loaders use where it is absent (None: it differs between datasets).
      doc: one line on what it means.
      allowed: a `Range`, the tuple of allowed names, or None (free or checked elsewhere).
      methods: the methods that read it; None: every method.
      learners: the only base learners it matters for; None: every learner.
      priors: the only LASEM priors (`em.prior`) it matters for; None: every prior.
      affects_results: False where it cannot change a run's results (the seed, averaged over,
        and where files are read or kept or how the work is split).
      data_optional: a `config.data` field only some datasets have; absent from the defaults.
    """

    name: str
    default: Any
    doc: str
    allowed: Range | tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    learners: tuple[str, ...] | None = None
    priors: tuple[str, ...] | None = None
    affects_results: bool = True
    data_optional: bool = False

    def allows(self, value: Any) -> bool:
        """Whether `value` is among the allowed values (always, for `allowed=None`)."""
        if isinstance(self.allowed, Range):
            return self.allowed.accepts(value)
        return self.allowed is None or value in self.allowed

    def reads(self, method: str, learner: str, prior: str) -> bool:
        """Whether a run of `method` with this learner and `em.prior` reads the field."""
        return (
            (self.methods is None or method in self.methods)
            and (self.learners is None or learner in self.learners)
            and (self.priors is None or prior in self.priors)
        )


_F = ConfigField  # the table's rows, short
FIELDS: tuple[ConfigField, ...] = (
    _F("seed", 0, "the run's seed (averaged over by reports)", NATURAL, affects_results=False),
    _F("method", "lasem", "the method trained", METHODS),
    _F("learner", "hps", "the base learner: hps | tf | dfcnn", tuple(LEARNERS), LEARNER_METHODS),
    _F(
        "static_config",
        "all",
        'static only: all, none, top<k>, bottom<k>, alternating, "0101"',
        methods=("static",),
    ),
    _F("data.name", "digits", "the dataset (digits is embedded)", DATASETS),
    _F("data.num_tasks", 5, "the number of tasks"),
    _F("data.classes_per_task", 3, "the classes of each task"),
    _F(
        "data.data_percent",
        None,
        "percent of the training set sampled per task (CIFAR-100 4 -> 170 + 30)",
        data_optional=True,
    ),
    _F(
        "data.valid_ratio",
        0.15,
        "fraction of the sampled images per class held out for validation (STL-10)",
        data_optional=True,
    ),
    _F(
        "data.data_dir",
        "",
        "prepared tfds directory (array_record); empty: $TFDS_DATA_DIR or the default",
        affects_results=False,
        data_optional=True,
    ),
    _F(
        "data.standardize",
        "per_split",
        "CIFAR-100: per_split (each split's own channel stats) or train_stats",
        STANDARDIZE_MODES,
        data_optional=True,
    ),
    _F(
        "data.design_file",
        "",
        "STL-10: task design JSON to reuse if it exists; empty: drawn from the seed",
        affects_results=False,
        data_optional=True,
    ),
    _F(
        "data.manual_dir",
        "",
        "Office-Home: the extracted download (its terms forbid redistribution)",
        affects_results=False,
        data_optional=True,
    ),
    _F(
        "data.cache_dir",
        "",
        "Office-Home: where decoded arrays are cached; empty: <manual_dir>/.lasem_cache",
        affects_results=False,
        data_optional=True,
    ),
    _F("model.arch", "cifar100_4", "the task network (a registered architecture)"),
    _F("model.width", 0.5, "channel multiplier", POSITIVE),
    _F("model.fc_hidden", None, "sizes of the FC hidden layers; None: the architecture's"),
    _F("model.partition", None, "LASEM's layer groups; None: one per layer", None, _SEARCH_METHODS),
    _F("model.he_init", False, "He initialisation instead of the reference one"),
    _F(
        "model.tf_ortho_weight",
        0.1,
        "TF orthogonality weight (docs/protocol.md §2.3, test_type 0)",
        NON_NEGATIVE,
        LEARNER_METHODS,
        learners=("tf",),
    ),
    _F(
        "model.dfcnn_kb_l2",
        1e-7,
        "DF-CNN knowledge-base L2 (docs/protocol.md §2.4)",
        NON_NEGATIVE,
        LEARNER_METHODS,
        learners=("dfcnn",),
    ),
    _F(
        "model.dfcnn_ts_l2",
        1e-7,
        "DF-CNN task-specific L2 (docs/protocol.md §2.4)",
        NON_NEGATIVE,
        LEARNER_METHODS,
        learners=("dfcnn",),
    ),
    _F(
        "em.likelihood",
        "product",
        "product (Eq. 2) | mean (Appendix D, reference code)",
        em.LIKELIHOOD_MODES,
        ("lasem",),
    ),
    _F(
        "em.prior",
        "laplace",
        "laplace (Eq. 1) | running_mean (reference default) | fixed",
        em.PRIORS,
        ("lasem",),
    ),
    _F(
        "em.prior_init_count",
        1.0,
        "Laplace prior's initial count",
        POSITIVE,
        ("lasem",),
        priors=("laplace",),
    ),
    _F(
        "em.fixed_config",
        "top1",
        "the fixed prior's configuration",
        methods=("lasem",),
        priors=("fixed",),
    ),
    _F(
        "em.fixed_prob",
        0.9,
        "the fixed prior's probability",
        UNIT,
        ("lasem",),
        priors=("fixed",),
    ),
    _F("em.num_m_steps", 1, "M-steps per E-step", COUNT, ("lasem",)),
    _F(
        "em.warmup_epochs",
        0,
        "first epochs: every configuration trained equally",
        NATURAL,
        ("lasem",),
    ),
    _F(
        "em.finetune_epochs",
        0,
        "last epochs: only the argmax-prior configuration",
        NATURAL,
        ("lasem",),
    ),
    _F(
        "brute_force.search_first_task",
        True,
        "search the first task too (as LASEM's EM does); False: train it with `all`",
        methods=("brute_force",),
    ),
    _F(
        "brute_force.batch_candidates",
        0,
        "candidates trained together per vmapped call (0: all; 1: one after another)",
        NATURAL,
        ("brute_force",),
    ),
    _F(
        "prognn.dim_reduction_scale",
        2.0,
        "lateral 1x1 reduction (docs/protocol.md §10, test_type 1)",
        POSITIVE,
        ("prognn",),
    ),
    _F("darts.order", 1, "1: first-order; 2: second-order", Range("int", 1, 2), ("darts",)),
    _F(
        "darts.arch_lr",
        0.0,
        "architecture learning rate; 0: the weights'",
        NON_NEGATIVE,
        ("darts",),
    ),
    _F("apd.lambda1", 4e-4, "L1 of the task-additive parameters", NON_NEGATIVE, ("apd",)),
    _F("apd.lambda2", 100.0, "drift of the shared parameters", NON_NEGATIVE, ("apd",)),
    _F("den.l1", 1e-6, "L1 weight (docs/protocol.md §10)", NON_NEGATIVE, ("den",)),
    _F("den.l2", 0.01, "L2 weight", NON_NEGATIVE, ("den",)),
    _F("den.group_lasso", 0.8, "group lasso weight", NON_NEGATIVE, ("den",)),
    _F("den.reg", 0.5, "regularisation weight", NON_NEGATIVE, ("den",)),
    _F("den.loss_threshold", 0.01, "loss above which DEN expands", NON_NEGATIVE, ("den",)),
    _F(
        "den.sparsity_thresholds",
        (0.98, 0.01),
        "(kept weight mass in (0, 1], pruning threshold >= 0)",
        methods=("den",),
    ),
    _F("den.expansion_size", 32, "units added per expansion", NATURAL, ("den",)),
    _F("den.split_threshold", 0.05, "DEN's sigma (DEN code's spl_thr)", NON_NEGATIVE, ("den",)),
    _F("ewc.lambda_", 100.0, "online EWC penalty weight lambda", NON_NEGATIVE, ("ewc",)),
    _F("ewc.gamma", 1.0, "online EWC Fisher decay: F = gamma * F + F_t", UNIT, ("ewc",)),
    _F("si.c", 0.1, "SI penalty strength c (Zenke et al. 2017, Eq. 4)", NON_NEGATIVE, ("si",)),
    _F("si.xi", 1e-3, "SI damping xi (Eq. 5)", POSITIVE, ("si",)),
    _F("lwf.temperature", 2.0, "LwF distillation temperature T", POSITIVE, ("lwf",)),
    _F("lwf.lambda_o", 1.0, "LwF weight of the old tasks' loss", NON_NEGATIVE, ("lwf",)),
    _F("er.buffer_size", 500, "ER reservoir memory size (examples)", COUNT, ("er",)),
    _F("agem.buffer_size", 500, "A-GEM reservoir memory size (examples)", COUNT, ("agem",)),
    _F("agem.sample_size", 256, "A-GEM reference-gradient sample size", COUNT, ("agem",)),
    _F("derpp.buffer_size", 500, "DER++ reservoir memory size (examples)", COUNT, ("derpp",)),
    _F("derpp.alpha", 0.1, "DER++ weight of the logit MSE", NON_NEGATIVE, ("derpp",)),
    _F("derpp.beta", 0.5, "DER++ weight of the replayed labels' CE", NON_NEGATIVE, ("derpp",)),
    _F("optim.lr", 1e-3, "TF1 RMSProp; lr / (1 + global_epoch * lr_decay)", POSITIVE),
    _F("optim.lr_decay", 0.0, "learning rate decay per global epoch", NON_NEGATIVE),
    _F("train.epochs_per_task", 30, "epochs per task", COUNT),
    _F("train.batch_size", 10, "minibatch size", COUNT),
    _F(
        "train.eval_chunk", 256, "evaluation batch size (memory only)", COUNT, affects_results=False
    ),
    _F(
        "train.num_devices",
        0,
        "local devices batched runs are sharded over; 0: all",
        NATURAL,
        affects_results=False,
    ),
    _F(
        "train.shard_batch",
        False,
        "True: split each minibatch over those devices instead",
        affects_results=False,
    ),
    _F(
        "train.max_batched_runs",
        0,
        "most runs one batched call trains; 0: as many as fit in memory",
        NATURAL,
        affects_results=False,
    ),
    _F(
        "train.pad_tasks",
        True,
        "pad unequal training sets to the largest: one compile, same results",
        affects_results=False,
    ),
    _F(
        "train.eval_every_epochs",
        1,
        "k > 1: fewer evaluations, exact metrics",
        COUNT,
        affects_results=False,
    ),
    _F(
        "train.checkpoint_every_epochs",
        10,
        "also at every task's end; 0: only at task ends",
        NATURAL,
        affects_results=False,
    ),
    _F(
        "train.keep_checkpoints",
        2,
        "complete checkpoints kept in <workdir>/checkpoints",
        COUNT,
        affects_results=False,
    ),
    _F(
        "train.matmul_precision",
        "highest",
        "float32 matmul precision: highest | high | default (TF32 on NVIDIA GPUs)",
        defaults.MATMUL_PRECISIONS,
    ),
    _F(
        "train.tensorboard",
        True,
        "epoch scalars as TensorBoard event files in the workdir",
        affects_results=False,
    ),
)
BY_NAME: dict[str, ConfigField] = {f.name: f for f in FIELDS}
