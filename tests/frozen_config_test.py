"""Tests of `lasem_jax.core.frozen`: the immutable run config below the entry points."""

import copy
import json
import pickle

import ml_collections
import pytest

from configs import default, paper
from lasem_jax.config import defaults
from lasem_jax.core.frozen import Frozen, freeze
from lasem_jax.storage import results_io
from lasem_jax.training import trainer
from tests.trainer_test import TASKS, _config


def _paper():
    return paper.get_paper_config("cifar100_10", "lasem")


def test_freezing_keeps_order_values_and_sections():
    config = defaults.default_config()
    frozen = freeze(config)
    assert list(frozen) == list(config.to_dict())
    assert list(frozen.train) == list(config.train.to_dict())
    assert isinstance(frozen.train, Frozen) and frozen.train.batch_size == 10
    assert frozen["em"]["prior"] == "laplace" and frozen.em.get("bogus", 3) == 3
    assert "den" in frozen and "bogus" not in frozen
    assert frozen.den.sparsity_thresholds == (0.98, 0.01)
    assert frozen.model.fc_hidden is None
    assert dict(frozen.data.items()) == config.data.to_dict()
    assert frozen.to_dict() == config.to_dict()
    assert freeze(frozen) is frozen


def test_plain_mappings_keep_their_order_and_lists_become_tuples():
    frozen = freeze({"b": [1, [2, 3]], "a": {"z": 1, "y": [{"k": [4]}]}})
    assert list(frozen) == ["b", "a"] and list(frozen.a) == ["z", "y"]
    assert frozen.b == (1, (2, 3)) and frozen.a.y[0].k == (4,)
    assert frozen.to_dict() == {"b": (1, (2, 3)), "a": {"z": 1, "y": ({"k": (4,)},)}}


def test_setting_raises_and_equal_configs_hash_equal():
    frozen = freeze(defaults.default_config())
    with pytest.raises(AttributeError, match=r"frozen: cannot change 'batch_size'.*replace"):
        frozen.train.batch_size = 5
    with pytest.raises(AttributeError, match="frozen"):
        frozen["seed"] = 1
    with pytest.raises(AttributeError, match="frozen"):
        del frozen.seed
    with pytest.raises(AttributeError, match="no field 'bogus'"):
        _ = frozen.bogus
    again = freeze(defaults.default_config())
    assert again == frozen and hash(again) == hash(frozen)
    assert {frozen: 1}[again] == 1
    assert frozen == frozen.to_dict()
    assert frozen != frozen.replace(seed=1)
    assert pickle.loads(pickle.dumps(frozen)) == frozen
    assert copy.deepcopy(frozen) == frozen


def test_replace_returns_a_changed_copy():
    frozen = freeze(defaults.default_config())
    changed = frozen.replace({"em.likelihood": "mean", "model.fc_hidden": [64]}, seed=3)
    assert (changed.em.likelihood, changed.model.fc_hidden, changed.seed) == ("mean", (64,), 3)
    assert (frozen.em.likelihood, frozen.model.fc_hidden, frozen.seed) == ("product", None, 0)
    assert list(changed) == list(frozen) and list(changed.em) == list(frozen.em)
    assert changed.train is frozen.train  # untouched sections are shared
    for field in ("em.bogus", "bogus", "seed.x"):
        with pytest.raises(KeyError, match=f"no field '{field}'"):
            frozen.replace({field: 1})


@pytest.mark.parametrize("make", [defaults.default_config, _paper], ids=["default", "paper"])
def test_frozen_json_is_the_config_dicts(make):
    config = make()
    expected = results_io.to_jsonable(config)
    got = results_io.to_jsonable(freeze(config))
    assert got == expected
    assert json.dumps(got) == json.dumps(expected)  # the same key order too


def test_freeze_refuses_other_objects():
    with pytest.raises(TypeError, match="cannot freeze a list"):
        freeze([1, 2])


def test_train_lifelong_does_not_see_later_changes_of_the_config_dict():
    config = _config(epochs=2)
    original = results_io.to_jsonable(config)

    def mutate(record):
        config.optim.lr = 0.5
        config.train.epochs_per_task = 5

    changed = trainer.train_lifelong(TASKS, config, on_epoch=mutate)
    plain = trainer.train_lifelong(TASKS, _config(epochs=2))
    assert changed["config"] == original == plain["config"]
    assert changed["accuracy_matrix"] == plain["accuracy_matrix"]
    assert changed["peak_accuracy"] == plain["peak_accuracy"]
    assert isinstance(config, ml_collections.ConfigDict) and config.optim.lr == 0.5


def test_the_default_config_stays_a_config_dict():
    assert isinstance(default.get_config(), ml_collections.ConfigDict)
    assert defaults.frozen_default() == freeze(defaults.default_config())
