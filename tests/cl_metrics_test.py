"""Tests for forgetting and forward transfer (lasem_jax.core.metrics) and their results fields."""

import numpy as np
import pytest

from lasem_jax.core import metrics
from lasem_jax.training import trainer
from tests.trainer_test import _config, _task

R = [
    [0.9, None, None],
    [0.7, 0.8, None],
    [0.6, 0.85, 0.5],
]


def test_forgetting_is_best_earlier_accuracy_minus_final():
    out = metrics.forgetting(R)
    assert out[0] == pytest.approx(0.9 - 0.6)  # max(R[0][0], R[1][0]) - R[2][0]
    assert out[1] == pytest.approx(0.8 - 0.85)  # negative: the task improved
    assert out[2] is None  # the last task cannot be forgotten yet


def test_forgetting_of_one_task_is_none():
    assert metrics.forgetting([[0.5]]) == [None]


def test_forward_transfer_is_accuracy_before_training_minus_at_init():
    out = metrics.forward_transfer([None, 0.4, 0.3], [0.1, 0.25, None])
    assert out[0] is None
    assert out[1] == pytest.approx(0.15)
    assert out[2] is None  # unknown at-init accuracy


def test_transfer_metrics_means_leave_out_the_last_task_and_none():
    out = metrics.transfer_metrics(R, [None, 0.5, 0.2], [None, 0.3, 0.3])
    assert out["mean_forgetting"] == pytest.approx((0.3 - 0.05) / 2)
    assert out["fwt"][0] is None
    assert out["fwt"][1:] == pytest.approx([0.2, -0.1])
    assert out["mean_fwt"] == pytest.approx(0.05)
    one = metrics.transfer_metrics([[0.5]], [None], [None])
    assert one["mean_forgetting"] is None and one["mean_fwt"] is None


def test_forward_transfer_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="entries"):
        metrics.forward_transfer([None], [None, 0.1])


TASKS = [_task(0), _task(1), _task(2)]


def _check_fields(results):
    matrix = results["accuracy_matrix"]
    assert results["forgetting"] == pytest.approx(metrics.forgetting(matrix))
    assert results["forgetting"][-1] is None
    assert results["fwt"][0] is None
    assert len(results["fwt"]) == len(TASKS)
    assert isinstance(results["mean_forgetting"], float)


@pytest.mark.parametrize("method", ["static", "single_task"])
def test_lasem_family_reports_forgetting_and_fwt(method):
    results = trainer.train_lifelong(TASKS, _config(method, epochs=1))
    _check_fields(results)
    before, at_init = results["accuracy_before_task"], results["accuracy_at_init"]
    assert before[0] is None and None not in before[1:] and None not in at_init[1:]
    fwt = np.array(results["fwt"][1:], float)
    np.testing.assert_allclose(fwt, np.array(before[1:]) - np.array(at_init[1:]))
    if method == "single_task":  # nothing shared: the model at init predicts the same
        np.testing.assert_array_equal(fwt, 0.0)


def test_baseline_reports_forgetting_and_fwt():
    results = trainer.train_lifelong(TASKS, _config("single_network", epochs=1))
    _check_fields(results)
    assert None not in results["accuracy_at_init"][1:]
    assert isinstance(results["mean_fwt"], float)
