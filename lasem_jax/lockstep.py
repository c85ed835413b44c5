"""Runs several lifelong runs in lockstep, batching equal-shaped epochs into one vmapped call."""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lasem_jax import interrupt, steps
from lasem_jax.model import Model

jitted_train_epoch = jax.jit(steps.train_epoch, static_argnums=(0, 1))


@dataclasses.dataclass(frozen=True)
class EpochRequest:
    """One epoch a run asks the driver to train (the arguments of `steps.train_epoch`)."""

    model: Model
    hp: steps.StepConfig
    state: steps.TrainState
    x: jax.Array
    y: jax.Array
    lr: float
    config: jax.Array

    def batch_key(self) -> tuple:
        """Requests with equal keys can share one vmapped call."""
        config = np.asarray(self.config).tobytes()
        return (self.model, self.hp, self.lr, self.x.shape, self.y.shape, config)


EpochResult = tuple[steps.TrainState, dict[str, jax.Array]]
RunGenerator = Generator[EpochRequest, EpochResult, dict[str, Any]]


def _seed_batched_epoch(
    model: Model,
    hp: steps.StepConfig,
    states: steps.TrainState,
    xs: jax.Array,
    ys: jax.Array,
    lr: jax.Array,
    config: jax.Array,
) -> EpochResult:
    """`steps.train_epoch` over a leading run axis of `states`, `xs` `[S, N, ...]`, `ys`."""

    def one(state: steps.TrainState, x: jax.Array, y: jax.Array) -> EpochResult:
        return steps.train_epoch(model, hp, state, x, y, lr, config)

    return jax.vmap(one)(states, xs, ys)


jitted_batched_epoch = jax.jit(_seed_batched_epoch, static_argnums=(0, 1))


def _train(requests: Sequence[EpochRequest]) -> list[EpochResult]:
    """Trains equal-keyed requests: one call, vmapped over the runs when there are several."""
    r = requests[0]
    if len(requests) == 1:
        return [jitted_train_epoch(r.model, r.hp, r.state, r.x, r.y, r.lr, r.config)]
    states = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[q.state for q in requests])
    xs = jnp.stack([q.x for q in requests])
    ys = jnp.stack([q.y for q in requests])
    batched = jitted_batched_epoch(r.model, r.hp, states, xs, ys, r.lr, r.config)
    return [jax.tree_util.tree_map(lambda a, k=k: a[k], batched) for k in range(len(requests))]


def drive(runs: Sequence[RunGenerator], *, vmap: bool) -> list[dict[str, Any]]:
    """Runs generators that yield `EpochRequest`s and return results, in lockstep.

    Each round, every unfinished run gets its pending epoch trained; with `vmap`, requests of
    the same model, step config, learning rate, data shapes and configuration are trained as
    one vmapped computation (the run is a batch axis), the others one after another.

    Args:
      runs: started-or-not generators (e.g. `trainer.lifelong_run`).
      vmap: batch compatible requests; False trains every request on its own.

    Returns:
      Each generator's return value, in order.

    Raises:
      interrupt.Stopped: a stop was requested; every run stopped at its next epoch boundary.
    """
    results: list[dict[str, Any] | None] = [None] * len(runs)
    pending: dict[int, EpochRequest] = {}
    stopped: list[interrupt.Stopped] = []

    def advance(i: int, value: EpochResult | None) -> None:
        try:
            pending[i] = runs[i].send(value)
        except StopIteration as stop:
            results[i] = stop.value
            pending.pop(i, None)
        except interrupt.Stopped as stop:  # Let the other runs reach their checkpoint too.
            stopped.append(stop)
            pending.pop(i, None)

    for i in range(len(runs)):
        advance(i, None)
    while pending:
        groups: dict[tuple, list[int]] = {}
        for i, request in pending.items():
            groups.setdefault(request.batch_key() if vmap else (i,), []).append(i)
        for members in groups.values():
            trained = _train([pending[i] for i in members])
            for i, result in zip(members, trained, strict=True):
                advance(i, result)
    if stopped:
        raise stopped[0]
    return results
