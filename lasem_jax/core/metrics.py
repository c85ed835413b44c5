"""Summary metrics of a lifelong run computed from its per-epoch accuracy records.

Notation: ``T`` tasks are trained in order ``0..T-1``; task ``k``'s *window* is the set of records
with ``record["task"] == k`` (every epoch spent training task ``k``). ``val_e[k]`` and
``test_e[k]`` are the validation and test accuracy of task ``k`` in record ``e``.

* Peak accuracy (as the LASEM reference code computes ``best_test_error_each_task``: a running
  best with strict improvement, so the earliest epoch wins ties; NaN never counts)::

      e*_k   = min { e in window(k) : val_e[k] = max_{e' in window(k)} val_{e'}[k] }
      peak_k = test_{e*_k}[k]                        (None if no val_e[k] is a number)

* Final accuracy: ``final_k = R[T-1][k]``.
* Forgetting ratio (the DF-CNN/LASEM ratio): ``ratio_k = final_k / peak_k`` (``None`` when
  ``peak_k == 0``); ``> 1`` means positive backward transfer, ``< 1`` means forgetting.
* Accuracy matrix of the kept model: ``R[i][j]`` = test accuracy of task ``j`` evaluated right
  after task ``i``'s end-of-task consolidation, with the parameters the learner keeps
  (``kept_rows[i][j]``); ``R[i][j]`` is ``None`` for ``j > i`` (task ``j`` not seen yet).
* Last-epoch accuracy matrix (the reference code's reading): ``R_last[i][j] = test_{end(i)}[j]``
  where ``end(i)`` is the last record of window ``i``, evaluated *before* consolidation (for
  LASEM and DARTS these include shared-layer updates that consolidation then rolls back).
  Without ``kept_rows``, ``R = R_last``.
* Backward transfer (GEM, Lopez-Paz & Ranzato 2017; Mammoth's ``backward_transfer``)::

      BWT = 1/(T-1) * sum_{i=0}^{T-2} (R[T-1][i] - R[i][i])       (None when T == 1)

* Forgetting (Chaudhry et al. 2018; Avalanche, Mammoth): for ``k < T-1``::

      forgetting_k = max_{k <= i < T-1} R[i][k] - R[T-1][k]

  and ``None`` for the last task, which the mean leaves out (as Avalanche and Mammoth do).
* Forward transfer (GEM, Lopez-Paz & Ranzato 2017, Eq. 3; Avalanche's ``ForwardTransfer``):
  with ``before_i = R[i-1][i]``, task ``i``'s test accuracy at its start (the model kept after
  task ``i-1`` with task ``i``'s fresh task parameters, before training on it), and ``b_i`` the
  accuracy of the same fresh task parameters with the run's initial shared parameters::

      fwt_i = before_i - b_i         (None for task 0, or where either is unknown)

* ``mean_*``: the mean over tasks of the per-task values, skipping ``None``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(sum(present) / len(present)) if present else None


def _as_float(value: Any, where: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where} is {value!r}, which is not a number.") from exc


def _check_record(index: int, record: Mapping[str, Any], num_tasks: int) -> int:
    """Validates one record and returns its task index."""
    if not isinstance(record, Mapping):
        raise ValueError(f"records[{index}] is a {type(record).__name__}, expected a dict.")
    for key in ("task", "val", "test"):
        if key not in record:
            raise ValueError(
                f"records[{index}] has no {key!r} key; each record needs 'task', 'epoch', 'val' "
                "and 'test'."
            )
    try:
        if isinstance(record["task"], bool):
            raise TypeError
        task = operator.index(record["task"])
    except TypeError as exc:
        raise ValueError(
            f"records[{index}]['task'] = {record['task']!r} is not an integer task index."
        ) from exc
    if not 0 <= task < num_tasks:
        raise ValueError(
            f"records[{index}]['task'] = {task} is outside 0..{num_tasks - 1} "
            f"(num_tasks={num_tasks})."
        )
    for key in ("val", "test"):
        if len(record[key]) != task + 1:
            raise ValueError(
                f"records[{index}][{key!r}] has {len(record[key])} entries but task={task}; it "
                f"must hold the accuracy of tasks 0..{task} ({task + 1} entries)."
            )
    return task


def _square(rows: Sequence[Sequence[float]], num_tasks: int) -> list[list[float | None]]:
    """Lower-triangular rows padded with None to ``[T][T]``."""
    return [[*row, *([None] * (num_tasks - len(row)))] for row in rows]


def _check_kept_rows(kept_rows: Sequence[Sequence[float]], num_tasks: int) -> list[list[float]]:
    """Validates ``kept_rows`` (row ``i`` has ``i + 1`` numbers) and returns them as floats."""
    if len(kept_rows) != num_tasks:
        raise ValueError(
            f"kept_rows has {len(kept_rows)} rows; expected one per task ({num_tasks})."
        )
    rows = []
    for i, row in enumerate(kept_rows):
        if len(row) != i + 1:
            raise ValueError(f"kept_rows[{i}] has {len(row)} entries; expected {i + 1}.")
        rows.append([_as_float(v, f"kept_rows[{i}][{j}]") for j, v in enumerate(row)])
    return rows


def forgetting(matrix: Sequence[Sequence[float | None]]) -> list[float | None]:
    """Per-task forgetting of an accuracy matrix (module docstring).

    Args:
        matrix: ``R`` ``[T][T]`` (``accuracy_matrix``); entries above the diagonal are ignored.

    Returns:
        ``[T]``: ``max_{k <= i < T-1} R[i][k] - R[T-1][k]`` for ``k < T-1``, ``None`` for the
        last task.
    """
    r = [list(row) for row in matrix]
    last = len(r) - 1
    out: list[float | None] = []
    for k in range(last):
        best = max(_as_float(r[i][k], f"matrix[{i}][{k}]") for i in range(k, last))
        out.append(float(best - _as_float(r[last][k], f"matrix[{last}][{k}]")))
    return [*out, None] if r else []


def forward_transfer(
    before: Sequence[float | None], at_init: Sequence[float | None]
) -> list[float | None]:
    """Per-task forward transfer ``before_i - b_i`` (module docstring).

    Args:
        before: ``[T]``: ``R[i-1][i]``, task ``i``'s test accuracy before training on it
            (``None`` for task 0 or where unknown).
        at_init: ``[T]``: ``b_i``, task ``i``'s test accuracy with the initial shared
            parameters and the same fresh task parameters (``None`` where unknown).

    Returns:
        ``[T]``: ``None`` for task 0 and where either value is ``None``.
    """
    if len(before) != len(at_init):
        raise ValueError(f"before has {len(before)} entries but at_init {len(at_init)}.")
    return [
        None if i == 0 or a is None or b is None else float(a - b)
        for i, (a, b) in enumerate(zip(before, at_init, strict=True))
    ]


def transfer_metrics(
    matrix: Sequence[Sequence[float | None]],
    before: Sequence[float | None],
    at_init: Sequence[float | None],
) -> dict[str, Any]:
    """``forgetting``, ``mean_forgetting``, ``fwt`` and ``mean_fwt`` of a run (JSON-ready).

    Args:
        matrix: ``R`` ``[T][T]``.
        before: ``[T]`` accuracies at each task's start (``forward_transfer``).
        at_init: ``[T]`` accuracies with the initial shared parameters (``forward_transfer``).

    Returns:
        A dict with ``forgetting`` [T], ``mean_forgetting`` (over ``k < T-1``; ``None`` when
        ``T == 1``), ``fwt`` [T] and ``mean_fwt`` (over the non-``None`` entries).
    """
    forget = forgetting(matrix)
    fwt = forward_transfer(before, at_init)
    return {
        "forgetting": forget,
        "mean_forgetting": _mean(forget[:-1]),
        "fwt": fwt,
        "mean_fwt": _mean(fwt),
    }


def summarize(
    records: Sequence[Mapping[str, Any]],
    num_tasks: int,
    kept_rows: Sequence[Sequence[float]] | None = None,
) -> dict[str, Any]:
    """Summarises a lifelong run (formulas in the module docstring).

    Args:
        records: Per-epoch records in chronological order, each a dict with ``"task"`` (int, the
            task being trained), ``"epoch"`` (int, 1-based epoch within that task), ``"val"`` and
            ``"test"`` (lists of ``task + 1`` accuracies of tasks ``0..task``; earlier tasks'
            entries may be None in epochs that did not evaluate them, and so may the current
            task's test accuracy where its validation accuracy does not improve, except in a
            task's last record, see ``train.eval_every_epochs``). Extra keys are ignored. Tasks must
            be trained in order ``0, 1, ..., num_tasks - 1``.
        num_tasks: The number of tasks ``T`` of the scenario.
        kept_rows: ``[T][i+1]``: row ``i`` holds the test accuracy of tasks ``0..i`` with the
            parameters kept after task ``i``'s consolidation. None: use the last-epoch rows.

    Returns:
        A JSON-ready dict (plain Python floats / ``None``) with keys ``peak_accuracy`` [T],
        ``final_accuracy`` [T], ``forgetting_ratio`` [T], ``accuracy_matrix`` [T][T] (``None``
        above the diagonal), ``accuracy_matrix_last_epoch`` [T][T], ``mean_peak_accuracy``,
        ``mean_final_accuracy``, ``mean_forgetting_ratio`` and ``bwt`` (``None`` when
        ``T == 1``).

    Raises:
        ValueError: If ``num_tasks < 1``, a record is malformed, tasks appear out of order,
            some task ``0..num_tasks-1`` has no record, or ``kept_rows`` has the wrong shape.
    """
    if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 1:
        raise ValueError(f"num_tasks must be a positive int, got {num_tasks!r}.")

    best_val: list[float] = [-math.inf] * num_tasks
    peak: list[float | None] = [None] * num_tasks
    row_end: list[list[float] | None] = [None] * num_tasks
    previous_task = -1
    for index, record in enumerate(records):
        task = _check_record(index, record, num_tasks)
        if task < previous_task:
            raise ValueError(
                f"records[{index}] trains task {task} after task {previous_task}; records must be "
                "chronological with tasks trained in order 0, 1, 2, ..."
            )
        previous_task = task
        val = _as_float(record["val"][task], f"records[{index}]['val'][{task}]")
        test = [
            None if v is None else _as_float(v, f"records[{index}]['test'][{j}]")
            for j, v in enumerate(record["test"])
        ]
        # Strict improvement: the earliest epoch wins ties, as in the reference code.
        if val > best_val[task]:
            if test[task] is None:
                raise ValueError(
                    f"records[{index}]['test'][{task}] is null although task {task}'s validation "
                    "accuracy improved there; an epoch that improves it must evaluate its test set."
                )
            best_val[task] = val
            peak[task] = test[task]
        row_end[task] = test

    missing = [k for k in range(num_tasks) if row_end[k] is None]
    if missing:
        raise ValueError(
            f"no record for task(s) {missing} (num_tasks={num_tasks}); every task "
            f"0..{num_tasks - 1} needs at least one per-epoch record."
        )

    unevaluated = [k for k, row in enumerate(row_end) if row is not None and None in row]
    if unevaluated:
        raise ValueError(
            f"the last record of task(s) {unevaluated} lacks an accuracy of an earlier task; "
            "a task's last epoch must evaluate every seen task."
        )
    last_epoch = [row for row in row_end if row is not None]
    rows = last_epoch if kept_rows is None else _check_kept_rows(kept_rows, num_tasks)
    final = list(rows[-1])
    ratio = [
        None if p is None or p == 0 else float(f / p) for f, p in zip(final, peak, strict=True)
    ]
    if num_tasks > 1:
        diffs = [rows[-1][i] - rows[i][i] for i in range(num_tasks - 1)]
        bwt: float | None = float(sum(diffs) / len(diffs))
    else:
        bwt = None
    return {
        "peak_accuracy": peak,
        "final_accuracy": final,
        "forgetting_ratio": ratio,
        "accuracy_matrix": _square(rows, num_tasks),
        "accuracy_matrix_last_epoch": _square(last_epoch, num_tasks),
        "mean_peak_accuracy": _mean(peak),
        "mean_final_accuracy": _mean(final),
        "mean_forgetting_ratio": _mean(ratio),
        "bwt": bwt,
    }
