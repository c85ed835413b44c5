"""Tests that a run requests its next epoch before it reads the last one's results."""

from collections.abc import Iterator, Mapping

from lasem_jax.engine import evaluation, lockstep
from lasem_jax.training import trainer
from tests.trainer_test import TASKS, _config


class _Spy(Mapping):
    """An epoch's statistics that log when the run first reads them."""

    def __init__(self, stats: Mapping, epoch: int, log: list) -> None:
        self._stats, self._epoch, self._log = stats, epoch, log

    def _read(self) -> Mapping:
        if ("stats", self._epoch) not in self._log:
            self._log.append(("stats", self._epoch))
        return self._stats

    def __getitem__(self, name: str):
        return self._read()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._stats)


def test_next_epoch_is_requested_before_the_last_is_read():
    """Epoch k's results are read after epoch k+1 is requested; results as `drive` gives."""
    config = _config("lasem", epochs=3)
    run, log, requests, epoch = trainer.lifelong_run(TASKS, config), [], [], 0
    value = None
    try:
        while True:
            request = run.send(value)
            requests.append((type(request).__name__, list(log)))
            if isinstance(request, lockstep.EpochRequest):
                epoch += 1
                state, stats = lockstep._train_single(request)
                value = (state, _Spy(stats, epoch, log))
            else:
                assert isinstance(request, evaluation.EvalRequest)
                read, k = request.start(), epoch
                value = lambda read=read, k=k: (log.append(("acc", k)), read())[1]  # noqa: E731
    except StopIteration as stop:
        got = stop.value
    # The second epoch of the first task is requested with nothing of the first read yet.
    assert requests[:3] == [("EpochRequest", []), ("EvalRequest", []), ("EpochRequest", [])]
    # Epoch 1 is read (statistics, then accuracies) after epoch 2 is requested.
    assert requests[3] == ("EvalRequest", [("stats", 1), ("acc", 1)])
    want = trainer.train_lifelong(TASKS, config)
    assert {k: v for k, v in got.items() if k != "train_seconds"} == {
        k: v for k, v in want.items() if k != "train_seconds"
    }
