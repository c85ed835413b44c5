"""The default run configuration: one source of truth, usable outside the repository root.

`configs/default.py` (the launcher's default config file) returns `default_config()`; every other
config file starts from it and overrides fields. `apply_tiny` turns any config into a smoke test
(the `:tiny` argument of the config files).
"""

from __future__ import annotations

import functools

import ml_collections

from lasem_jax.core.frozen import RunConfig, freeze
from lasem_jax.storage import results_io

# `:tiny` smoke tests: few epochs of a narrow network that still learns (He init, larger lr);
# on the default digits scenario LASEM HPS reaches a mean peak accuracy of ~0.89 (seeds 0-2).
TINY_EPOCHS_PER_TASK = 3
TINY_WIDTH = 0.25
TINY_LR = 1e-2
# `train.matmul_precision` values: `jax.default_matmul_precision`'s float32 choices.
MATMUL_PRECISIONS = ("highest", "high", "default")


def default_config() -> ml_collections.ConfigDict:
    """LASEM with HPS on 5 three-way digits tasks (scikit-learn's digits, no download).

    Returns:
      A fresh `ConfigDict` with every field the trainer, the data loaders and the competing
      methods read (`configs/default.py` documents the launch commands).
    """
    c = ml_collections.ConfigDict()
    c.seed = 0
    # lasem | static | single_task | brute_force | single_network | prognn | darts | apd | den
    # | finetune | ewc | si | lwf | er | agem | derpp
    c.method = "lasem"
    c.learner = "hps"  # hps | tf | dfcnn
    c.static_config = "all"  # static only: all, none, top<k>, bottom<k>, alternating, "0101"

    c.data = ml_collections.ConfigDict()
    c.data.name = "digits"  # digits (embedded); paper datasets come with the data issue
    c.data.num_tasks = 5
    c.data.classes_per_task = 3

    c.model = ml_collections.ConfigDict()
    c.model.arch = "cifar100_4"  # 4 conv layers, pools after layers 2 and 4 (8x8 -> 2x2)
    c.model.width = 0.5  # channel multiplier (16/16/32/32 here)
    c.model.fc_hidden = ml_collections.FieldReference(None, field_type=tuple)
    c.model.partition = ml_collections.FieldReference(None, field_type=tuple)
    c.model.he_init = False
    c.model.tf_ortho_weight = 0.1  # docs/protocol.md §2.3, test_type 0
    c.model.dfcnn_kb_l2 = 1e-7  # docs/protocol.md §2.4
    c.model.dfcnn_ts_l2 = 1e-7

    c.em = ml_collections.ConfigDict()
    c.em.likelihood = "product"  # product (Eq. 2) | mean (Appendix D, reference code)
    c.em.prior = "laplace"  # laplace (Eq. 1) | running_mean (reference default) | fixed
    c.em.prior_init_count = 1.0
    c.em.fixed_config = "top1"  # fixed prior only
    c.em.fixed_prob = 0.9
    c.em.num_m_steps = 1
    # First epochs of each task train every configuration equally (uniform prior and M-step
    # weights, prior not updated); last epochs train only the argmax-prior configuration.
    c.em.warmup_epochs = 0
    c.em.finetune_epochs = 0

    c.brute_force = ml_collections.ConfigDict()
    # Search the first task too (as LASEM's EM does); False: train it with `all` (reference).
    c.brute_force.search_first_task = True
    # candidates trained together per vmapped call (0: all; 1: one after another, bitwise as
    # separate runs); lower it when a task's candidates do not fit in memory together
    c.brute_force.batch_candidates = 0

    c.prognn = ml_collections.ConfigDict()
    c.prognn.dim_reduction_scale = 2.0  # lateral 1x1 reduction (docs/protocol.md §10, test_type 1)

    c.darts = ml_collections.ConfigDict()
    c.darts.order = 1  # 1: first-order; 2: second-order (exact unrolled gradient, any learner)
    c.darts.arch_lr = 0.0  # 0: the weights' learning rate

    c.apd = ml_collections.ConfigDict()
    c.apd.lambda1 = 4e-4  # L1 of the task-additive parameters (docs/protocol.md §10)
    c.apd.lambda2 = 100.0  # drift of the shared parameters from their value before the task

    c.den = ml_collections.ConfigDict()  # hyperparameters of docs/protocol.md §10 (Office-Home)
    c.den.l1 = 1e-6
    c.den.l2 = 0.01
    c.den.group_lasso = 0.8
    c.den.reg = 0.5
    c.den.loss_threshold = 0.01
    c.den.sparsity_thresholds = (0.98, 0.01)
    c.den.expansion_size = 32
    c.den.split_threshold = 0.05  # DEN's sigma; absent from LASEM, DEN code's spl_thr default

    # Standard continual-learning methods (docs/methods.md), task-incremental with task heads.
    c.ewc = ml_collections.ConfigDict()  # online EWC (Schwarz et al. 2018)
    c.ewc.lambda_ = 100.0  # penalty weight lambda (mid-grid; tune per scenario)
    c.ewc.gamma = 1.0  # F = gamma * F + F_t
    c.si = ml_collections.ConfigDict()  # Zenke et al. 2017, split CIFAR-10/100 values
    c.si.c = 0.1
    c.si.xi = 1e-3
    c.lwf = ml_collections.ConfigDict()  # Li & Hoiem 2017
    c.lwf.temperature = 2.0
    c.lwf.lambda_o = 1.0
    c.er = ml_collections.ConfigDict()  # Chaudhry et al. 2019, reservoir memory
    c.er.buffer_size = 500
    c.agem = ml_collections.ConfigDict()  # Chaudhry et al. 2019 (ICLR)
    c.agem.buffer_size = 500
    c.agem.sample_size = 256  # examples of the reference gradient
    c.derpp = ml_collections.ConfigDict()  # Buzzega et al. 2020
    c.derpp.buffer_size = 500
    c.derpp.alpha = 0.1
    c.derpp.beta = 0.5

    c.optim = ml_collections.ConfigDict()
    c.optim.lr = 1e-3  # TF1 RMSProp (docs/protocol.md §4); lr / (1 + global_epoch * lr_decay)
    c.optim.lr_decay = 0.0

    c.train = ml_collections.ConfigDict()
    c.train.epochs_per_task = 30
    c.train.batch_size = 10
    c.train.eval_chunk = 256  # evaluation batch size (memory only)
    c.train.num_devices = 0  # local devices batched runs are sharded over; 0: all
    c.train.shard_batch = False  # True: split each minibatch over those devices instead
    c.train.max_batched_runs = 0  # most runs one batched call trains; 0: as many as fit in memory
    c.train.pad_tasks = True  # pad unequal training sets to the largest: one compile, same results
    c.train.eval_every_epochs = 1  # k > 1: fewer evaluations, exact metrics (README)
    c.train.checkpoint_every_epochs = 10  # also at every task's end; 0: only at task ends
    c.train.keep_checkpoints = 2  # complete checkpoints kept in <workdir>/checkpoints
    # Precision of float32 matmuls and convolutions (`jax.default_matmul_precision`): highest
    # (full float32 on every backend, as the CPU and the authors' float32 code compute) | high
    # (backend-dependent middle ground) | default (the faster GPU choice: TF32 on NVIDIA GPUs,
    # which changes the numerics; on a CPU all three compute float32 alike).
    c.train.matmul_precision = "highest"
    c.train.tensorboard = True  # epoch scalars as TensorBoard event files in the workdir
    return c


def apply_tiny(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Shrinks `config` in place to a smoke test that still learns, and returns it.

    Sets `TINY_EPOCHS_PER_TASK` epochs per task, width `TINY_WIDTH` (a channel multiplier, not
    relative to the config's width), He initialisation and learning rate `TINY_LR`: with the
    default initialisation and learning rates of 1e-3 or less, TF1-style RMSProp leaves a few
    epochs at exactly chance accuracy.

    Args:
      config: any run config (the default schema).

    Returns:
      `config`, changed.
    """
    config.train.epochs_per_task = TINY_EPOCHS_PER_TASK
    config.model.width = TINY_WIDTH
    config.model.he_init = True
    config.optim.lr = TINY_LR
    return config


@functools.cache
def frozen_default() -> RunConfig:
    """`default_config()` frozen, built once: for code that only reads the defaults."""
    return freeze(default_config())


def default_json() -> dict:
    """`default_config()` as JSON values (what a run's files record of its config)."""
    return results_io.to_jsonable(default_config())
