"""Engine options: `train.matmul_precision` and the launchers' persistent compilation cache."""

import os
import subprocess
import sys

import jax
import pytest

from lasem_jax.analysis import report_settings
from lasem_jax.config import defaults, sanity
from lasem_jax.training import loop_utils, trainer
from launch import common
from tests.trainer_test import TASKS, _config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = [
    "--config=configs/default.py:tiny",
    "--config.data.num_tasks=2",
    "--config.train.epochs_per_task=1",
]


def _launch_train(*args: str) -> subprocess.CompletedProcess:
    """`python -m launch.train` without the test suite's cache settings in the environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")
    }
    return subprocess.run(
        [sys.executable, "-m", "launch.train", *SMALL, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("value", ["fast", "HIGHEST", "tensorfloat32", "", None])
def test_bad_matmul_precision_is_a_one_line_error(value):
    config = _config()
    config.train.matmul_precision = value
    with pytest.raises(ValueError, match=r"config\.train\.matmul_precision=") as error:
        trainer.validate_config(config, 4)
    text = str(error.value)
    assert "\n" not in text and repr(value) in text
    assert all(repr(p) in text for p in ("highest", "high", "default"))


def test_launcher_refuses_a_bad_matmul_precision_in_one_line(tmp_path):
    out = _launch_train(f"--workdir={tmp_path / 'w'}", "--config.train.matmul_precision=fast")
    assert out.returncode == common.ERROR_EXIT, out.stderr[-2000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "config.train.matmul_precision='fast'" in errors[0], errors
    assert "Traceback" not in out.stderr


def test_every_precision_is_valid_and_highest_is_the_default():
    assert defaults.default_config().train.matmul_precision == "highest"
    for value in defaults.MATMUL_PRECISIONS:
        config = _config()
        config.train.matmul_precision = value
        trainer.validate_config(config, 4)


def test_matmul_precision_context_manager():
    config = _config()
    config.train.matmul_precision = "default"
    before = jax.config.jax_default_matmul_precision
    with loop_utils.matmul_precision(config):
        assert jax.config.jax_default_matmul_precision == "default"
    assert jax.config.jax_default_matmul_precision == before
    del config.train["matmul_precision"]  # A config saved before the field existed.
    with loop_utils.matmul_precision(config):
        assert jax.config.jax_default_matmul_precision == "highest"


def test_results_record_matmul_precision():
    config = _config("static", epochs=1)
    config.train.matmul_precision = "high"
    during = []  # the precision in force while the epochs train and evaluate
    results = trainer.train_lifelong(
        TASKS, config, on_epoch=lambda r: during.append(jax.config.jax_default_matmul_precision)
    )
    assert during and set(during) == {"high"}
    assert results["matmul_precision"] == "high"
    assert results["config"]["train"]["matmul_precision"] == "high"
    assert trainer.train_lifelong(TASKS, _config("static", epochs=1))["matmul_precision"] == (
        "highest"
    )


def test_runs_of_different_precisions_are_not_batched_together():
    configs = [_config("static", epochs=1), _config("static", epochs=1)]
    configs[1].train.matmul_precision = "default"
    with pytest.raises(ValueError, match=r"share one train\.matmul_precision"):
        trainer.train_lifelong_seeds([TASKS, TASKS], configs)


@pytest.mark.parametrize("method", trainer.METHODS)
def test_every_method_reads_matmul_precision(method):
    """No "ignored by this method" warning, and runs at other precisions are not averaged."""
    config = _config(method)
    config.train.matmul_precision = "default"
    assert "train.matmul_precision" not in sanity.ignored_fields(config)
    assert report_settings.field_matters("train.matmul_precision", method, "hps", "laplace")


def test_cache_directory_defaults(tmp_path):
    home = os.path.join(os.path.expanduser("~"), ".cache", "lasem_jax", "jax")
    assert common.compilation_cache_dir(None, {}) == home
    xdg = {"XDG_CACHE_HOME": "/xdg"}
    assert common.compilation_cache_dir(None, xdg) == "/xdg/lasem_jax/jax"
    ours = {**xdg, "LASEM_JAX_CACHE_DIR": "/ours"}
    assert common.compilation_cache_dir(None, ours) == "/ours"
    jax_env = {**ours, "JAX_COMPILATION_CACHE_DIR": "/jax"}
    assert common.compilation_cache_dir(None, jax_env) == "/jax"
    assert common.compilation_cache_dir("/flag", jax_env) == "/flag"
    assert common.compilation_cache_dir("", jax_env) is None


def test_launcher_fills_and_names_the_cache(tmp_path):
    cache = tmp_path / "cache"
    args = (f"--workdir={tmp_path / 'w'}", f"--compilation_cache={cache}")
    out = _launch_train(*args)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stderr.splitlines() if "Compilation cache:" in line]
    assert len(lines) == 1 and str(cache) in lines[0], out.stderr[-2000:]
    files = sorted(os.listdir(cache))
    assert any("train_epoch" in name for name in files), files
    again = _launch_train(*args, "--restart")
    assert again.returncode == 0, again.stderr[-2000:]
    assert sorted(os.listdir(cache)) == files  # Every program came from the cache.


def test_a_file_in_the_cache_path_warns_once_and_runs(tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    out = _launch_train(f"--workdir={tmp_path / 'w'}", f"--compilation_cache={blocker}")
    assert out.returncode == 0, out.stderr[-2000:]
    warnings = [line for line in out.stderr.splitlines() if str(blocker) in line]
    assert len(warnings) == 1 and "without a cache" in warnings[0], out.stderr[-2000:]
    assert os.path.isfile(tmp_path / "w" / "results.json")
    assert blocker.read_text() == ""
