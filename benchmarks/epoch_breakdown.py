"""Splits the wall time of training epochs into the training scan and everything else.

Runs a lifelong job from a config (default: the embedded digits scenario) and, per epoch, times
the jitted training scan (waiting first for the work queued before it, then blocking on its
result) and the whole epoch as the trainer sees it
(scan, evaluation of every seen task, records, checkpoints). Prints the medians over the epochs
after the first of each task (the first includes compilation):

  python benchmarks/epoch_breakdown.py --config=configs/default.py --config.method=static
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import jax
from absl import app
from ml_collections import config_flags

from lasem_jax.data import make_tasks
from lasem_jax.engine import lockstep
from lasem_jax.training import trainer

_CONFIG = config_flags.DEFINE_config_file("config", "configs/default.py", "Run configuration.")


def main(argv: Sequence[str]) -> None:
    """Trains once and prints the median scan time, epoch time and their difference."""
    del argv
    config = _CONFIG.value
    scan_seconds: list[float] = []
    epoch_ends: list[tuple[int, int, float]] = []
    jitted = lockstep.jitted_train_epoch

    def timed_epoch(*args: object) -> lockstep.EpochResult:
        # The last epoch's evaluation is still queued (runs request their next epoch first):
        # wait for all pending work, so that the timed span is this epoch's scan alone.
        jax.block_until_ready(jax.live_arrays())
        start = time.perf_counter()
        out = jax.block_until_ready(jitted(*args))
        scan_seconds.append(time.perf_counter() - start)
        return out

    lockstep.jitted_train_epoch = timed_epoch
    tasks = make_tasks(config.data, seed=config.seed)

    def on_epoch(record: dict) -> None:
        epoch_ends.append((record["task"], record["epoch"], time.perf_counter()))

    start = time.perf_counter()
    trainer.train_lifelong(tasks, config, on_epoch=on_epoch)
    steady = [  # Epoch i's wall time runs from epoch i-1's record to its own.
        (t - epoch_ends[i - 1][2], scan_seconds[i])
        for i, (_, epoch, t) in enumerate(epoch_ends)
        if epoch > 1
    ]
    epoch_ms = 1e3 * statistics.median(w for w, _ in steady)
    scan_ms = 1e3 * statistics.median(s for _, s in steady)
    other = epoch_ms - scan_ms
    print(
        f"{config.method} / {config.learner} on {config.data.name}: "
        f"{len(steady)} steady epochs, median epoch {epoch_ms:.1f} ms, training scan "
        f"{scan_ms:.1f} ms, evaluation + bookkeeping {other:.1f} ms "
        f"({100 * other / epoch_ms:.0f}% of the epoch); run {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    app.run(main)
