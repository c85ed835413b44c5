"""Counts the collectives in compiled epochs on 4 virtual CPU devices (run by sharding_test).

python -m tests.collectives  (with XLA_FLAGS=--xla_force_host_platform_device_count=4)
prints JSON: for the batched epoch of 8 runs (static and LASEM) and for a data-parallel LASEM
epoch, the number of each collective op in the compiled HLO; and how often a padded batch of
runs (3 runs on 4 devices) stacks its states.
"""

import dataclasses
import json
import re

import jax
import jax.numpy as jnp
import numpy as np

from configs import default
from lasem_jax.config import run_config
from lasem_jax.data import make_tasks
from lasem_jax.engine import lockstep, steps
from lasem_jax.training import trainer

OPS = ("all-gather", "all-reduce", "collective-permute", "all-to-all", "reduce-scatter")


def count(text: str) -> dict[str, int]:
    """Occurrences of each collective (sync or async start) in compiled HLO text."""
    return {op: len(re.findall(rf" {op}(-start)?\(", text)) for op in OPS}


def batched(method: str, *, gspmd: bool = False) -> dict[str, int]:
    """The batched epoch of 8 runs over a 4-device run mesh.

    With `gspmd`, the vmapped epoch partitioned by XLA from the inputs' shardings instead of
    `lockstep.sharded_epoch`'s `shard_map` (what the driver did before; it gathers).
    """
    config = default.get_config("tiny")
    config.method, config.static_config = method, "top1"
    tasks = make_tasks(config.data, seed=0)
    model, hp = trainer.make_model(config, tasks[0]), run_config.step_config(config)
    mesh = lockstep.run_mesh(4)
    states, xs, ys, cfgs = [], [], [], []
    for seed in range(8):
        params = model.init(jax.random.PRNGKey(seed))
        states.append(steps.init_state(model, hp, params, jax.random.PRNGKey(seed), 1e-3))
        xs.append(jnp.asarray(tasks[0].x_train))
        ys.append(jnp.asarray(tasks[0].y_train))
        cfgs.append(jnp.ones(model.num_layers, bool))
    args = [lockstep._to_mesh(a, mesh) for a in (states, xs, ys)]
    epoch = lockstep.sharded_epoch(model, hp, mesh)
    if gspmd:
        epoch = jax.jit(lambda *a: lockstep._run_batched_epoch(model, hp, *a[:3], *a[3:]))
    lowered = epoch.lower(*args, jnp.float32(1e-3), lockstep._to_mesh(cfgs, mesh), None)
    return count(lowered.compile().as_text())


def data_parallel() -> dict[str, int]:
    """One LASEM run's epoch with each minibatch split over 4 devices (`shard_batch`)."""
    config = default.get_config("tiny")
    config.train.batch_size = 8
    tasks = make_tasks(config.data, seed=0)
    model = trainer.make_model(config, tasks[0])
    hp = dataclasses.replace(run_config.step_config(config), batch_devices=4)
    params = model.init(jax.random.PRNGKey(0))
    state = steps.init_state(model, hp, params, jax.random.PRNGKey(1), 1e-3)
    devices = np.array(jax.local_devices()[:4])
    whole = jax.sharding.NamedSharding(
        jax.sharding.Mesh(devices, ("b",)), jax.sharding.PartitionSpec()
    )
    x, y = jnp.asarray(tasks[0].x_train), jnp.asarray(tasks[0].y_train)
    args = jax.device_put((state, x, y, jnp.ones(model.num_layers, bool)), whole)
    lowered = lockstep.jitted_train_epoch.lower(model, hp, *args[:3], 1e-3, args[3])
    return count(lowered.compile().as_text())


def restacks_with_padding() -> list[int]:
    """3 static runs (padded to 4 on 4 devices), 2 tasks x 3 epochs: sizes of state stackings."""
    from tests.lockstep_test import TASK_LISTS, _configs

    sizes = []
    to_mesh = lockstep._to_mesh

    def counting(trees: list, mesh: jax.sharding.Mesh) -> object:
        if isinstance(trees[0], steps.TrainState):
            sizes.append(len(trees))
        return to_mesh(trees, mesh)

    lockstep._to_mesh = counting
    configs = _configs("static")
    for c in configs:
        c.train.epochs_per_task = 3
    trainer.train_lifelong_seeds(TASK_LISTS, configs, vmap=True)
    lockstep._to_mesh = to_mesh
    return sizes


if __name__ == "__main__":
    assert len(jax.devices()) == 4, "run with XLA_FLAGS=--xla_force_host_platform_device_count=4"
    found = {"static": batched("static"), "lasem": batched("lasem")}
    found["gspmd"] = batched("static", gspmd=True)
    found["data_parallel"] = data_parallel()
    found["restacks_with_padding"] = restacks_with_padding()
    print(json.dumps(found))
