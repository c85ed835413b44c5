"""Tests of the run checks: `run_config.validate_settings` / `validate_for_tasks`, `sanity`."""

import math

import numpy as np
import pytest

from lasem_jax.config import defaults, run_config, sanity
from lasem_jax.data import make_digits_tasks
from lasem_jax.task import Task
from lasem_jax.training import trainer


def _config(method="lasem", **fields):
    """The default config with `method` and dotted `fields` (`"optim.lr": 0.0`) set."""
    c = defaults.default_config()
    c.method = method
    for dotted, value in fields.items():
        *path, last = dotted.split(".")
        node = c
        for key in path:
            node = node[key]
        node[last] = value
    return c


def _task(n_train, num_classes=3, name="small"):
    x = np.zeros((n_train, 8, 8, 1), np.float32)
    y = np.arange(n_train) % num_classes
    return Task(x, y, x[:num_classes], y[:num_classes], x[:num_classes], y[:num_classes], name=name)


def test_default_config_is_valid_for_every_method():
    for method in trainer.METHODS:
        trainer.validate_config(_config(method), 4)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("optim.lr", 0.0, r"config\.optim\.lr=0\.0 must be a finite number > 0; set e\.g\."),
        ("optim.lr", math.nan, r"config\.optim\.lr=nan must be a finite number > 0"),
        ("optim.lr_decay", -0.5, r"config\.optim\.lr_decay=-0\.5 must be a finite number >= 0"),
        ("train.epochs_per_task", 0, r"config\.train\.epochs_per_task=0 must be an integer >= 1"),
        ("train.batch_size", 0, r"config\.train\.batch_size=0 .* --config\.train\.batch_size=10"),
        ("train.eval_chunk", 0, r"config\.train\.eval_chunk=0 must be an integer >= 1"),
        ("train.keep_checkpoints", 0, r"config\.train\.keep_checkpoints=0 must be an integer"),
        (
            "train.checkpoint_every_epochs",
            -1,
            r"checkpoint_every_epochs=-1 must be an integer >= 0",
        ),
        ("em.prior_init_count", 0.0, r"config\.em\.prior_init_count=0\.0 must be .* > 0"),
        ("em.fixed_prob", 1.5, r"config\.em\.fixed_prob=1\.5 must be in \[0, 1\]"),
        ("em.num_m_steps", 0, r"config\.em\.num_m_steps=0 must be an integer >= 1"),
        ("model.width", 0.0, r"config\.model\.width=0\.0 must be a finite number > 0"),
        ("model.tf_ortho_weight", -0.1, r"config\.model\.tf_ortho_weight=-0\.1 must be"),
        ("model.dfcnn_ts_l2", -1e-7, r"config\.model\.dfcnn_ts_l2=-1e-07 must be"),
        ("model.fc_hidden", (64, 0), r"config\.model\.fc_hidden=\(64, 0\) must be None or"),
        ("apd.lambda2", -1.0, r"config\.apd\.lambda2=-1\.0 must be a finite number >= 0"),
        ("den.group_lasso", -0.8, r"config\.den\.group_lasso=-0\.8 must be"),
        ("den.expansion_size", -1, r"config\.den\.expansion_size=-1 must be an integer >= 0"),
        ("den.sparsity_thresholds", (0.0, 0.01), r"config\.den\.sparsity_thresholds=\(0\.0, 0\.01"),
        ("darts.arch_lr", -1e-3, r"config\.darts\.arch_lr=-0\.001 must be"),
        ("darts.order", 3, r"config\.darts\.order=3 must be an integer in 1\.\.2"),
        ("prognn.dim_reduction_scale", 0.0, r"config\.prognn\.dim_reduction_scale=0\.0 must be"),
        ("seed", -1, r"config\.seed=-1 must be an integer >= 0"),
        ("learner", "cnn", r"config\.learner='cnn' is unknown"),
    ],
)
def test_bad_value_refused_before_training(field, value, message):
    with pytest.raises(ValueError, match=message):
        trainer.validate_config(_config(**{field: value}), 4)


def test_named_configurations_checked_with_their_field():
    with pytest.raises(ValueError, match=r"^config\.static_config: .*'top9'"):
        trainer.validate_config(_config("static", static_config="top9"), 4)
    trainer.validate_config(_config("lasem", static_config="top9"), 4)  # ignored by lasem
    fixed = _config("lasem", **{"em.prior": "fixed", "em.fixed_config": "1000"})
    trainer.validate_config(fixed, 4)
    fixed.model.partition = ((0, 1), (2, 3))
    with pytest.raises(ValueError, match=r"^config\.em\.fixed_config: .*not in the search space"):
        trainer.validate_config(fixed, 4)


def test_batch_size_larger_than_a_training_set_refused():
    tasks = make_digits_tasks(seed=0, num_tasks=2)
    assert {t.num_train for t in tasks} == {288}
    config = _config(**{"train.batch_size": 288})
    run_config.validate_for_tasks(config, tasks)
    config.train.batch_size = 289
    with pytest.raises(
        ValueError,
        match=r"batch_size=289 exceeds the 288 training images of task 0 \('digits t0 .*"
        r"--config\.train\.batch_size=288 or lower",
    ):
        run_config.validate_for_tasks(config, tasks)


def test_smallest_task_names_the_fix():
    config = _config(**{"train.batch_size": 12})
    with pytest.raises(ValueError, match=r"of task 1 \('tiny'\).*batch_size=9 or lower"):
        run_config.validate_for_tasks(config, [_task(30), _task(9, name="tiny")])


def test_single_class_task_refused():
    with pytest.raises(ValueError, match=r"task 0 \('one'\) has num_classes=1"):
        run_config.validate_for_tasks(_config(), [_task(20, num_classes=1, name="one")])


_STATIC = ["em.likelihood", "model.partition"]


@pytest.mark.parametrize(
    ("method", "fields", "expected"),
    [
        ("lasem", {}, []),
        ("lasem", {"static_config": "top3", "den.l1": 0.5}, ["static_config", "den.l1"]),
        ("lasem", {"em.fixed_prob": 0.5, "em.prior_init_count": 2.0}, ["em.fixed_prob"]),
        ("static", {"em.likelihood": "mean", "model.partition": ((0, 1), (2, 3))}, _STATIC),
        ("single_task", {"static_config": "none"}, ["static_config"]),
        ("brute_force", {"model.partition": ((0, 1), (2, 3))}, []),
        ("prognn", {"learner": "tf", "prognn.dim_reduction_scale": 4.0}, ["learner"]),
        ("darts", {"learner": "tf", "model.tf_ortho_weight": 0.5}, []),
        ("lasem", {"model.tf_ortho_weight": 0.5}, ["model.tf_ortho_weight"]),
    ],
)
def test_ignored_fields(method, fields, expected):
    config = _config(method, **fields)
    assert sorted(sanity.ignored_fields(config)) == sorted(expected)


def test_chance_warning():
    results = {"peak_accuracy": [0.35, 0.30, 0.5], "config": {"train": {"epochs_per_task": 2}}}
    warning = sanity.chance_warning(results, [3, 3, 2])
    assert warning is not None and "\n" not in warning
    assert "at most 0.500 over 3 tasks" in warning and "1/2, 1/3" in warning
    assert "--config.train.epochs_per_task above 2" in warning
    results["peak_accuracy"][2] = 0.56
    assert sanity.chance_warning(results, [3, 3, 2]) is None
    assert sanity.chance_warning(results, [3, 3, 2], margin=0.1) is not None
    with pytest.raises(ValueError, match="num_classes has 2 entries but the results have 3"):
        sanity.chance_warning(results, [3, 3])


def test_default_config_is_the_config_file():
    from configs import default

    assert default.get_config().to_dict() == defaults.default_config().to_dict()
    tiny = default.get_config("tiny")
    assert tiny.train.epochs_per_task == defaults.TINY_EPOCHS_PER_TASK
    assert (tiny.model.he_init, tiny.optim.lr) == (True, defaults.TINY_LR)
    with pytest.raises(ValueError, match="tiny"):
        default.get_config("huge")
