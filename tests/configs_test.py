"""Tests for the config files in configs/ (loading, validity, docstrings, launcher behaviour)."""

import importlib.util
import os
import pathlib
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

import lasem_jax
from lasem_jax.config import defaults, sanity
from lasem_jax.training import trainer

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "configs"
if str(REPO) not in sys.path:  # config files import `from configs import paper`
    sys.path.insert(0, str(REPO))

from configs import default, paper  # noqa: E402

CONFIG_FILES = sorted(
    p.name for p in CONFIG_DIR.glob("*.py") if p.name not in ("__init__.py", "paper.py")
)
PAPER_FILES = [
    f"{scenario}_{method}.py" for scenario in paper.SCENARIOS for method in paper.METHODS
] + ["stl10_20_lasem_tf.py"]
# The fields `trainer.validate_config` reads.
VALIDATE_FIELDS = (
    "method",
    "em.likelihood",
    "em.prior",
    "static_config",
    "model.partition",
    "train.batch_size",
    "train.epochs_per_task",
)


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_cfg_{name[:-3]}", CONFIG_DIR / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _get(config, dotted):
    for key in dotted.split("."):
        config = config[key]
    return config


def _num_layers(config):
    return lasem_jax.get_architecture(config.model.arch).num_layers


def _leaf_paths(config, prefix=""):
    for key, value in config.items():
        if isinstance(value, ml_collections.ConfigDict):
            yield from _leaf_paths(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def test_every_paper_file_exists():
    assert set(PAPER_FILES) <= set(CONFIG_FILES)
    assert len(PAPER_FILES) == 16


@pytest.mark.parametrize(
    ("name", "arg"),
    [(n, None) for n in CONFIG_FILES] + [(n, "tiny") for n in CONFIG_FILES],
)
def test_config_loads_and_validates(name, arg):
    module = _load(name)
    config = module.get_config() if arg is None else module.get_config(arg)
    assert isinstance(config, ml_collections.ConfigDict)
    for field in VALIDATE_FIELDS:
        _get(config, field)  # raises if missing
    # Every field of the default schema is present (the trainer and launcher read them).
    assert set(_leaf_paths(default.get_config())) <= set(_leaf_paths(config))
    trainer.validate_config(config, _num_layers(config))
    # No config file sets a field its method ignores (the launcher would warn about it).
    assert sanity.ignored_fields(config) == []


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_docstring_has_launch_command(name):
    doc = _load(name).__doc__
    assert doc and f"python -m launch.train --config=configs/{name}" in doc


@pytest.mark.parametrize("name", [*PAPER_FILES, "default.py", "fashion_mnist_lasem_hps.py"])
def test_tiny_only_applies_the_tiny_settings(name):
    module = _load(name)
    full, tiny = module.get_config(), module.get_config("tiny")
    assert tiny.train.epochs_per_task == paper.TINY_EPOCHS_PER_TASK == 3
    assert (tiny.model.width, tiny.model.he_init, tiny.optim.lr) == (0.25, True, 1e-2)
    assert tiny.to_dict() == defaults.apply_tiny(full).to_dict()
    with pytest.raises(ValueError, match="tiny"):
        module.get_config("huge")


# scenario: (data.name, num_tasks, classes_per_task, arch, lr, lr_decay, epochs, batch)
EXPECTED = {
    "cifar100_10": ("cifar100", 10, 10, "cifar100_4", 1e-4, 1 / 4000, 2000, 10),
    "cifar100_40": ("cifar100", 40, 10, "cifar100_4", 1e-4, 1 / 4000, 2000, 10),
    "office_home": ("office_home", 10, 13, "office_home_4", 2e-5, 1e-4, 1000, 16),
    "stl10_20": ("stl10", 20, 3, "stl10_6", 1e-4, 0.0, 500, 10),
    "stl10_15": ("stl10", 15, 5, "stl10_9", 1e-4, 0.0, 500, 10),
}


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
@pytest.mark.parametrize("method", paper.METHODS)
def test_paper_hyperparameters(scenario, method):
    c = _load(f"{scenario}_{method}.py").get_config()
    name, tasks, classes, arch, lr, decay, epochs, batch = EXPECTED[scenario]
    assert (c.data.name, c.data.num_tasks, c.data.classes_per_task) == (name, tasks, classes)
    assert (c.model.arch, c.model.width) == (arch, 1.0)
    assert c.optim.lr == pytest.approx(lr) and c.optim.lr_decay == pytest.approx(decay)
    assert (c.train.epochs_per_task, c.train.batch_size) == (epochs, batch)
    assert (c.method, c.learner, c.static_config) == (method, "hps", "all")
    assert (c.em.prior, c.em.likelihood, c.em.num_m_steps) == ("laplace", "product", 1)
    assert c.model.fc_hidden is None
    grouped = scenario == "stl10_15" and method == "lasem"
    assert c.model.partition == (paper.STL10_9_GROUPS if grouped else None)
    if name == "cifar100":
        assert c.data.data_percent == 4
    if name == "stl10":
        expected = (25, 0.15) if tasks == 20 else (10, 0.5)
        assert (c.data.data_percent, c.data.valid_ratio) == expected
    if name == "office_home":
        assert c.data.manual_dir == ""


def test_stl10_20_tf_head():
    c = _load("stl10_20_lasem_tf.py").get_config()
    assert (c.learner, c.method, c.model.fc_hidden) == ("tf", "lasem", (128,))
    lasem = _load("stl10_20_lasem.py").get_config()
    c.learner, c.model.fc_hidden = lasem.learner, lasem.model.fc_hidden
    assert c.to_dict() == lasem.to_dict()


def test_static_config_override_validates():
    c = _load("cifar100_10_static.py").get_config()
    for name in ("top2", "bottom3", "alternating", "0101"):
        c.static_config = name
        trainer.validate_config(c, _num_layers(c))
    c.static_config = "top5"
    with pytest.raises(ValueError, match="top5"):
        trainer.validate_config(c, _num_layers(c))


def test_unknown_scenario_or_method():
    with pytest.raises(ValueError, match="scenario"):
        paper.get_paper_config("mnist", "lasem")
    with pytest.raises(ValueError, match="method"):
        paper.get_paper_config("cifar100_10", "ewc")


def test_launcher_stops_on_unprepared_dataset(tmp_path):
    workdir = tmp_path / "run"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "launch.train",
            "--config=configs/cifar100_10_lasem.py",
            f"--workdir={workdir}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert "not prepared" in proc.stdout + proc.stderr
    assert not (workdir / "results.json").exists()


@pytest.mark.parametrize("groups", [4, 5, 6, 7])
def test_resnet_table5_partitions(groups):
    """The ResNet configs use Table 5's contiguous groups, the mean likelihood and 200 epochs."""
    module = _load("cifar100_10_resnet.py")
    c = module.get_config(f"lasem{groups}")
    assert (c.method, c.model.arch, c.em.likelihood) == ("lasem", "cifar100_resnet18", "mean")
    assert len(c.model.partition) == groups
    assert [i for g in c.model.partition for i in g] == list(range(17))
    assert [len(g) for g in c.model.partition] == list(module.TABLE5_GROUP_SIZES[groups])
    assert c.train.epochs_per_task == 200
    model = trainer.make_model(c, _fake_task())
    assert model.num_configs == 2**groups
    trainer.validate_config(c, 17)


def _fake_task():
    x = np.zeros((2, 32, 32, 3), np.float32)
    y = np.array([0, 1], np.int32)
    return lasem_jax.Task(x, y, x, y, x, y, num_classes=10)


def test_resnet_static_and_bad_arguments():
    module = _load("cifar100_40_resnet.py")
    c = module.get_config("static")
    assert (c.method, c.model.partition, c.data.num_tasks) == ("static", None, 40)
    tiny = module.get_config("lasem5,tiny")
    assert tiny.train.epochs_per_task == paper.TINY_EPOCHS_PER_TASK
    for bad in ("lasem3", "lasem5,huge", "hps"):
        with pytest.raises(ValueError, match="Unknown argument"):
            module.get_config(bad)


def test_fixed_prior_ablation_config():
    module = _load("office_home_fixed_prior.py")
    c = module.get_config("0.7")
    assert (c.method, c.learner, c.em.prior) == ("lasem", "dfcnn", "fixed")
    assert (c.em.fixed_config, c.em.fixed_prob) == ("top2", 0.7)
    assert module.get_config().em.fixed_prob == module.DEFAULT_P
    for bad in ("1.5", "high", "0.5,huge"):
        with pytest.raises(ValueError, match="Unknown argument"):
            module.get_config(bad)


@pytest.mark.parametrize("method", paper.OTHER_METHODS)
def test_other_methods_have_office_home_and_fashion_mnist_files(method):
    for prefix in ("office_home", "fashion_mnist"):
        c = _load(f"{prefix}_{method}.py").get_config()
        assert c.method == method
        trainer.validate_config(c, _num_layers(c))
    assert _load("cifar100_10_brute_force.py").get_config().method == "brute_force"
    assert _load("office_home_darts_dfcnn.py").get_config().learner == "dfcnn"
