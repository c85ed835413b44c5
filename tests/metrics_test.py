"""Tests for lasem_jax.core.metrics."""

import json

import numpy as np
import pytest

from lasem_jax.core.metrics import summarize


def _rec(task, epoch, val, test):
    return {"task": task, "epoch": epoch, "val": val, "test": test}


# Values are multiples of 1/8 so that most expected results are exact binary fractions.
RECORDS = [
    # Task 0: best val 0.75 first reached at epoch 2 (tie at epoch 3 must not move it).
    _rec(0, 1, [0.5], [0.25]),
    _rec(0, 2, [0.75], [0.5]),
    _rec(0, 3, [0.75], [0.625]),
    # Task 1: best val at epoch 1.
    _rec(1, 1, [0.5, 0.875], [0.5, 0.75]),
    _rec(1, 2, [0.5, 0.5], [0.375, 0.5]),
    # Task 2: best val at epoch 2 (last epoch).
    _rec(2, 1, [0.5, 0.5, 0.5], [0.5, 0.5, 0.25]),
    _rec(2, 2, [0.5, 0.5, 0.875], [0.75, 0.25, 1.0]),
]


def test_hand_computed_three_task_example():
    out = summarize(RECORDS, num_tasks=3)
    assert out["peak_accuracy"] == [0.5, 0.75, 1.0]
    assert out["final_accuracy"] == [0.75, 0.25, 1.0]
    assert out["forgetting_ratio"] == [1.5, 0.25 / 0.75, 1.0]
    assert out["accuracy_matrix"] == [
        [0.625, None, None],
        [0.375, 0.5, None],
        [0.75, 0.25, 1.0],
    ]
    assert out["mean_peak_accuracy"] == 0.75
    assert out["mean_final_accuracy"] == pytest.approx(2.0 / 3.0, abs=1e-15)
    assert out["mean_forgetting_ratio"] == pytest.approx((1.5 + 1.0 / 3.0 + 1.0) / 3.0, abs=1e-15)
    # GEM BWT: ((R[2][0] - R[0][0]) + (R[2][1] - R[1][1])) / 2 = (0.125 - 0.25) / 2.
    assert out["bwt"] == -0.0625
    assert set(out) == {
        "peak_accuracy",
        "final_accuracy",
        "forgetting_ratio",
        "accuracy_matrix",
        "accuracy_matrix_last_epoch",
        "mean_peak_accuracy",
        "mean_final_accuracy",
        "mean_forgetting_ratio",
        "bwt",
    }
    assert out["accuracy_matrix_last_epoch"] == out["accuracy_matrix"]


KEPT = [[0.5], [0.25, 0.625], [0.5, 0.125, 1.0]]


def test_kept_rows_drive_final_forgetting_and_bwt():
    """With kept rows, final, ratio and BWT use them; the last-epoch matrix is kept apart."""
    out = summarize(RECORDS, num_tasks=3, kept_rows=KEPT)
    assert out["peak_accuracy"] == [0.5, 0.75, 1.0]
    assert out["final_accuracy"] == [0.5, 0.125, 1.0]
    assert out["forgetting_ratio"] == [1.0, 0.125 / 0.75, 1.0]
    assert out["accuracy_matrix"] == [[0.5, None, None], [0.25, 0.625, None], [0.5, 0.125, 1.0]]
    assert out["accuracy_matrix_last_epoch"][1] == [0.375, 0.5, None]
    # ((R[2][0] - R[0][0]) + (R[2][1] - R[1][1])) / 2 = (0 - 0.5) / 2.
    assert out["bwt"] == -0.25


@pytest.mark.parametrize(
    ("kept", "message"),
    [
        (KEPT[:2], r"one per task \(3\)"),
        ([[0.5], [0.25], [0.5, 0.1, 1.0]], r"kept_rows\[1\] has 1"),
    ],
)
def test_kept_rows_shape_is_checked(kept, message):
    with pytest.raises(ValueError, match=message):
        summarize(RECORDS, num_tasks=3, kept_rows=kept)


def test_output_is_plain_json():
    records = [
        {
            "task": np.int64(r["task"]),
            "epoch": r["epoch"],
            "val": np.asarray(r["val"], np.float32),
            "test": np.asarray(r["test"], np.float32),
        }
        for r in RECORDS
    ]
    out = summarize(records, num_tasks=3)
    for value in out["peak_accuracy"] + out["final_accuracy"] + [out["bwt"]]:
        assert type(value) is float
    assert json.loads(json.dumps(out, allow_nan=False)) == out


def test_ties_keep_the_earliest_epoch():
    records = [
        _rec(0, 1, [0.25], [0.125]),
        _rec(0, 2, [0.5], [0.25]),
        _rec(0, 3, [0.5], [0.875]),
        _rec(0, 4, [0.375], [1.0]),
    ]
    assert summarize(records, num_tasks=1)["peak_accuracy"] == [0.25]


def test_peak_uses_only_the_tasks_own_window():
    # Task 0's validation accuracy is highest during task 1's training, which must not count.
    records = [
        _rec(0, 1, [0.5], [0.5]),
        _rec(1, 1, [1.0, 0.5], [1.0, 0.5]),
    ]
    out = summarize(records, num_tasks=2)
    assert out["peak_accuracy"] == [0.5, 0.5]
    assert out["forgetting_ratio"] == [2.0, 1.0]


def test_zero_peak_gives_none_ratio_and_means_skip_it():
    records = [_rec(0, 1, [0.5], [0.0]), _rec(1, 1, [0.5, 0.5], [0.25, 0.5])]
    out = summarize(records, num_tasks=2)
    assert out["forgetting_ratio"] == [None, 1.0]
    assert out["mean_forgetting_ratio"] == 1.0


def test_single_task_has_no_bwt():
    out = summarize([_rec(0, 1, [0.5], [0.25])], num_tasks=1)
    assert out["bwt"] is None
    assert out["accuracy_matrix"] == [[0.25]]
    assert out["forgetting_ratio"] == [1.0]


def test_missing_task_raises():
    with pytest.raises(ValueError, match=r"no record for task\(s\) \[2\]"):
        summarize(RECORDS[:5], num_tasks=3)


def test_task_beyond_num_tasks_raises():
    with pytest.raises(ValueError, match=r"records\[5\]\['task'\] = 2 is outside 0..1"):
        summarize(RECORDS, num_tasks=2)


def test_out_of_order_records_raise():
    with pytest.raises(ValueError, match=r"records\[1\] trains task 0 after task 1"):
        summarize([RECORDS[3], RECORDS[0]], num_tasks=2)


def test_wrong_length_raises():
    with pytest.raises(ValueError, match=r"records\[0\]\['test'\] has 2 entries but task=0"):
        summarize([_rec(0, 1, [0.5], [0.5, 0.5])], num_tasks=1)


def test_missing_key_raises():
    with pytest.raises(ValueError, match=r"records\[0\] has no 'val' key"):
        summarize([{"task": 0, "epoch": 1, "test": [0.5]}], num_tasks=1)
