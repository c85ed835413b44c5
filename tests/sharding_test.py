"""Each device trains its own runs: no collective in a batched epoch; batches stay on device."""

import json
import os
import re
import subprocess
import sys

import jax
import pytest

from lasem_jax.engine import evaluation, lockstep, steps
from lasem_jax.training import trainer
from tests.lockstep_test import TASK_LISTS, _configs, _strip, batch_sizes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def collectives():
    """`tests.collectives` on 4 virtual CPU devices: collective counts of compiled epochs."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.collectives"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("method", ["static", "lasem"])
def test_batched_epoch_holds_no_collective(collectives, method):
    """The shard_map epoch over 4 devices compiles with no collective at all."""
    assert collectives[method] == dict.fromkeys(collectives[method], 0)


def test_counter_finds_the_gathers_of_xla_partitioning(collectives):
    """The same epoch partitioned by XLA from the input shardings gathers: the count can fail."""
    assert collectives["gspmd"]["all-gather"] > 0


def test_data_parallel_lasem_gathers_no_activations(collectives):
    """shard_batch: the batch-major prefix fold keeps each device's rows; no all-gather."""
    assert collectives["data_parallel"]["all-gather"] == 0
    assert collectives["data_parallel"]["all-reduce"] > 0  # the gradient sum


def test_a_padded_batch_is_restacked_only_at_task_starts(collectives):
    """3 runs on 4 devices (one padding run): the states stay on the devices within a task."""
    assert collectives["restacks_with_padding"] == [4, 4]  # 2 tasks x 3 epochs


def test_resident_batch_is_restacked_only_when_its_runs_change(monkeypatch):
    """Within a task the stacked states stay on the device; they are stacked once per task.

    (That the results equal one-after-another runs: `lockstep_test`.)
    """
    stacked = []
    to_mesh = lockstep._to_mesh

    def counting(trees, mesh):
        if isinstance(trees[0], steps.TrainState):
            stacked.append(len(trees))
        return to_mesh(trees, mesh)

    monkeypatch.setattr(lockstep, "_to_mesh", counting)
    configs = _configs("static")
    for c in configs:
        c.train.epochs_per_task = 3
    trainer.train_lifelong_seeds(TASK_LISTS, configs, vmap=True)
    assert stacked == [3, 3]  # 2 tasks x 3 epochs: stacked at each task's start only


def test_max_batched_runs_splits_a_batch_with_the_same_results(monkeypatch):
    """max_runs=2 trains 3 runs as calls of 2 and 1; the results are those of one call."""
    sizes = batch_sizes(monkeypatch)
    configs = _configs("static")
    runs = [trainer.lifelong_run(t, c) for t, c in zip(TASK_LISTS, configs, strict=True)]
    capped = lockstep.drive(runs, vmap=True, max_runs=2)
    assert set(sizes) == {2}  # the third run trains alone, through the single-run path
    whole = trainer.train_lifelong_seeds(TASK_LISTS, configs, vmap=True)
    assert _strip(capped) == _strip(whole)


def test_a_run_that_does_not_fit_names_the_fields(monkeypatch):
    """Derived from device memory: if one run per device does not fit, one clear error."""
    monkeypatch.setattr(lockstep.batch_memory, "device_memory", lambda device: 1024)
    configs = _configs("static")
    runs = [trainer.lifelong_run(t, c) for t, c in zip(TASK_LISTS, configs, strict=True)]
    with pytest.raises(ValueError, match=re.escape("config.train.max_batched_runs=1")):
        lockstep.drive(runs, vmap=True)


def test_runs_that_fit_are_batched_whole(monkeypatch):
    """With ample (reported) memory the derived cap keeps all runs in one call."""
    monkeypatch.setattr(lockstep.batch_memory, "device_memory", lambda device: 1 << 40)
    requests = []
    for tasks, config in zip(TASK_LISTS, _configs("static"), strict=True):
        run = trainer.lifelong_run(tasks, config)
        requests.append(next(run))
        run.close()
    mesh = lockstep.run_mesh(1)
    cap = lockstep.batch_memory.runs_per_call(requests, mesh, 0, lockstep.sharded_epoch)
    assert cap >= len(requests)
    assert lockstep.batch_memory.runs_per_call(requests, mesh, 2, lockstep.sharded_epoch) == 2


def test_evaluations_of_batched_runs_are_one_call(monkeypatch):
    """After each batched epoch the runs' evaluations run as one call over the runs."""
    sizes = []
    batched = evaluation.runs_accuracies

    def counting(model, shared, *args, **kwargs):
        sizes.append(jax.tree.leaves(shared)[0].shape[0])
        return batched(model, shared, *args, **kwargs)

    monkeypatch.setattr(evaluation, "runs_accuracies", counting)
    configs = _configs("static")
    for c in configs:
        c.train.epochs_per_task = 1
    runs = [trainer.lifelong_run(t, c) for t, c in zip(TASK_LISTS, configs, strict=True)]
    together = lockstep.drive(runs, vmap=True, batch_evaluations=True)  # default: accelerators
    assert sizes and set(sizes) == {3}
    assert len(sizes) == 2  # one call per epoch (2 tasks x 1 epoch), not one per run
    apart = [trainer.train_lifelong(t, c) for t, c in zip(TASK_LISTS, configs, strict=True)]
    assert _strip(together) == _strip(apart)
