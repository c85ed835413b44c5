"""Tests of `lasem_jax.config.schema`: it matches the defaults and the tables derived from it."""

import itertools

import ml_collections
import pytest

from configs import paper
from lasem_jax.analysis import report_settings
from lasem_jax.baselines import BASELINES
from lasem_jax.config import defaults, run_config, sanity, schema
from lasem_jax.core import em
from lasem_jax.networks.learners import LEARNERS
from lasem_jax.training import trainer

# The tables kept by hand before the schema, as they were: the derived ones must equal them.
OLD_RANGES = {
    "seed": ("int", 0),
    "model.width": (">0",),
    "model.tf_ortho_weight": (">=0",),
    "model.dfcnn_kb_l2": (">=0",),
    "model.dfcnn_ts_l2": (">=0",),
    "em.prior_init_count": (">0",),
    "em.fixed_prob": ("[0,1]",),
    "em.num_m_steps": ("int", 1),
    "em.warmup_epochs": ("int", 0),
    "em.finetune_epochs": ("int", 0),
    "prognn.dim_reduction_scale": (">0",),
    "darts.order": ("int", 1, 2),
    "darts.arch_lr": (">=0",),
    "apd.lambda1": (">=0",),
    "apd.lambda2": (">=0",),
    "den.l1": (">=0",),
    "den.l2": (">=0",),
    "den.group_lasso": (">=0",),
    "den.reg": (">=0",),
    "den.loss_threshold": (">=0",),
    "den.expansion_size": ("int", 0),
    "den.split_threshold": (">=0",),
    "ewc.lambda_": (">=0",),
    "ewc.gamma": ("[0,1]",),
    "si.c": (">=0",),
    "si.xi": (">0",),
    "lwf.temperature": (">0",),
    "lwf.lambda_o": (">=0",),
    "er.buffer_size": ("int", 1),
    "agem.buffer_size": ("int", 1),
    "agem.sample_size": ("int", 1),
    "derpp.buffer_size": ("int", 1),
    "derpp.alpha": (">=0",),
    "derpp.beta": (">=0",),
    "optim.lr": (">0",),
    "optim.lr_decay": (">=0",),
    "train.epochs_per_task": ("int", 1),
    "train.batch_size": ("int", 1),
    "train.eval_chunk": ("int", 1),
    "train.eval_every_epochs": ("int", 1),
    "train.num_devices": ("int", 0),
    "train.max_batched_runs": ("int", 0),
    "brute_force.batch_candidates": ("int", 0),
    "train.checkpoint_every_epochs": ("int", 0),
    "train.keep_checkpoints": ("int", 1),
}
OLD_IGNORED = {
    "seed",
    "train.eval_chunk",
    "train.eval_every_epochs",
    "train.num_devices",
    "train.shard_batch",
    "train.max_batched_runs",
    "train.pad_tasks",
    "train.checkpoint_every_epochs",
    "train.keep_checkpoints",
    "train.tensorboard",
    "data.data_dir",
    "data.manual_dir",
    "data.cache_dir",
    "data.design_file",
}
OLD_METHOD_FIELDS = {
    "static_config": ("static",),
    "model.partition": ("lasem", "brute_force"),
    "em.": ("lasem",),
    "brute_force.": ("brute_force",),
    "prognn.": ("prognn",),
    "darts.": ("darts",),
    "apd.": ("apd",),
    "den.": ("den",),
    "ewc.": ("ewc",),
    "si.": ("si",),
    "lwf.": ("lwf",),
    "er.": ("er",),
    "agem.": ("agem",),
    "derpp.": ("derpp",),
}
OLD_LEARNER_FIELDS = {
    "model.tf_ortho_weight": "tf",
    "model.dfcnn_kb_l2": "dfcnn",
    "model.dfcnn_ts_l2": "dfcnn",
}
OLD_PRIOR_FIELDS = {
    "em.prior_init_count": "laplace",
    "em.fixed_config": "fixed",
    "em.fixed_prob": "fixed",
}
OLD_LEARNER_METHODS = ("lasem", "static", "single_task", "brute_force", "darts")
OLD_METHOD_SECTIONS = (
    *("em", "brute_force", "prognn", "darts", "apd", "den"),
    *("ewc", "si", "lwf", "er", "agem", "derpp"),
)
OLD_DATA_FIELDS = {
    "data_percent": "percent of the training set sampled per task (CIFAR-100 4 -> 170 + 30)",
    "valid_ratio": "fraction of the sampled images per class held out for validation (STL-10)",
    "data_dir": "prepared tfds directory (array_record); empty: $TFDS_DATA_DIR or the default",
    "standardize": "CIFAR-100: per_split (each split's own channel stats) or train_stats",
    "design_file": "STL-10: task design JSON to reuse if it exists; empty: drawn from the seed",
    "manual_dir": "Office-Home: the extracted download (its terms forbid redistribution)",
    "cache_dir": "Office-Home: where decoded arrays are cached; empty: <manual_dir>/.lasem_cache",
}


def _old_candidates(method, learner, prior):
    """The old `sanity._candidates`: fields (or `section.` prefixes) a method never reads."""
    fields = [f"{section}." for section in OLD_METHOD_SECTIONS if section != method]
    if method == "lasem":
        fields.remove("em.")
        if prior != "laplace":
            fields.append("em.prior_init_count")
        if prior != "fixed":
            fields += ["em.fixed_config", "em.fixed_prob"]
    if method != "static":
        fields.append("static_config")
    if method not in ("lasem", "brute_force"):
        fields.append("model.partition")
    if method not in OLD_LEARNER_METHODS:
        fields.append("learner")
    if method not in OLD_LEARNER_METHODS or learner != "tf":
        fields.append("model.tf_ortho_weight")
    if method not in OLD_LEARNER_METHODS or learner != "dfcnn":
        fields += ["model.dfcnn_kb_l2", "model.dfcnn_ts_l2"]
    return fields


def _leaves(config, prefix=""):
    for key, value in config.items():
        if isinstance(value, ml_collections.ConfigDict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _typed(value):
    """`value` with its type (lists as tuples), so that 1 and 1.0 or 0 and False differ."""
    if isinstance(value, list | tuple):
        return tuple, tuple(_typed(v) for v in value)
    return type(value), value


def test_schema_declares_every_default_field_with_its_default():
    leaves = dict(_leaves(defaults.default_config()))
    assert len(schema.BY_NAME) == len(schema.FIELDS)  # every field declared once
    required = {f.name: f for f in schema.FIELDS if not f.data_optional}
    assert sorted(required) == sorted(leaves)
    for name, value in leaves.items():
        assert _typed(required[name].default) == _typed(value), name
    optional = [f.name for f in schema.FIELDS if f.data_optional]
    assert optional and all(name.startswith("data.") for name in optional)


def test_allowed_values_accept_the_defaults_and_the_tiny_config():
    for field in schema.FIELDS:
        assert field.allows(field.default), field.name
    tiny = dict(_leaves(defaults.apply_tiny(defaults.default_config())))
    for name, value in tiny.items():
        assert schema.BY_NAME[name].allows(value), (name, value)
    assert not schema.BY_NAME["train.batch_size"].allows(0)
    assert not schema.BY_NAME["em.prior"].allows("uniform")


def test_named_methods_learners_and_priors_exist():
    assert sorted(schema.METHODS) == sorted(trainer.METHODS)
    assert set(schema.BASELINE_METHODS) == set(BASELINES)
    assert schema.LASEM_FAMILY == run_config.LASEM_FAMILY
    for field in schema.FIELDS:
        assert set(field.methods or ()) <= set(schema.METHODS), field.name
        assert set(field.learners or ()) <= set(LEARNERS), field.name
        assert set(field.priors or ()) <= set(em.PRIORS), field.name


def test_derived_tables_equal_the_old_hand_kept_ones():
    assert run_config.RANGES == {name: schema.Range(*r) for name, r in OLD_RANGES.items()}
    assert report_settings.IGNORED == OLD_IGNORED
    assert report_settings.METHOD_FIELDS == OLD_METHOD_FIELDS
    assert report_settings.LEARNER_FIELDS == {n: (v,) for n, v in OLD_LEARNER_FIELDS.items()}
    assert report_settings.PRIOR_FIELDS == {n: (v,) for n, v in OLD_PRIOR_FIELDS.items()}
    assert sanity.LEARNER_METHODS == OLD_LEARNER_METHODS
    assert paper.DATA_FIELDS == OLD_DATA_FIELDS


@pytest.mark.parametrize("method", schema.METHODS)
def test_unread_fields_equal_the_old_candidates(method):
    config = defaults.default_config()
    config.method = method
    leaves = [name for name, _ in _leaves(config)]
    for learner, prior in itertools.product(LEARNERS, em.PRIORS):
        config.learner, config.em.prior = learner, prior
        old = _old_candidates(method, learner, prior)
        expected = {
            n for n in leaves if any(n == c or (c.endswith(".") and n.startswith(c)) for c in old)
        }
        assert sanity._unread(config) & set(leaves) == expected, (method, learner, prior)
