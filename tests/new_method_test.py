"""A new method is a `Baseline` subclass and one registry line: trained, resumed and loaded."""

import numpy as np
import pytest

import lasem_jax
from lasem_jax import baselines
from lasem_jax.baselines.single_network import SingleNetwork
from lasem_jax.training import trainer
from tests.trainer_test import TASKS, _config


class Copycat(SingleNetwork):
    """A method of this test: the single network under another name."""

    name = "copycat"


@pytest.fixture
def registered():
    baselines.register(Copycat)
    yield
    del baselines.BASELINES[Copycat.name]


def test_a_registered_method_trains_and_loads_like_the_built_in_ones(registered, tmp_path):
    """After `register`, `config.method` names it; its model loads and reproduces its results."""
    config = _config("copycat")
    got = trainer.train_lifelong(TASKS, config, workdir=str(tmp_path))
    want = trainer.train_lifelong(TASKS, _config("single_network"))
    assert got["method"] == "copycat"
    assert got["accuracy_matrix"] == want["accuracy_matrix"]
    model = lasem_jax.load_trained(str(tmp_path))
    for k, task in enumerate(TASKS):
        accuracy = model.evaluate(k, task.x_test, task.y_test)
        np.testing.assert_allclose(accuracy, got["final_accuracy"][k], atol=1e-6)


def test_a_name_cannot_be_registered_twice(registered):
    """Registering a taken name is refused, built-in names included."""
    with pytest.raises(ValueError, match="exists already"):
        baselines.register(Copycat)

    class Impostor(SingleNetwork):
        name = "lasem"

    with pytest.raises(ValueError, match="'lasem' exists already"):
        baselines.register(Impostor)


def test_an_unregistered_method_is_refused():
    """Without `register`, the name is unknown and the error lists the methods."""
    with pytest.raises(ValueError, match=r"config\.method='copycat' is unknown"):
        trainer.train_lifelong(TASKS, _config("copycat"))
