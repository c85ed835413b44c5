"""Tests of APD: kernel composition, the active drift penalty, freezing, and a lifelong run."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lasem_jax.baselines import APD, BASELINES, base
from lasem_jax.baselines.apd import (
    additive_penalty,
    apd_logits,
    apd_loss,
    compose_kernel,
    drift_penalty,
)
from lasem_jax.networks import layers
from lasem_jax.networks.model import count_params
from lasem_jax.training import trainer
from tests.trainer_test import TASKS, _config, _task


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """`train_lifelong` of APD on a 3-class then a 4-class task, with snapshots at task ends."""
    tasks = [TASKS[0], _task(1, num_classes=4)]
    workdir = tmp_path_factory.mktemp("apd")
    snaps, original = [], APD.end_task

    def spy(self: APD, t: int) -> None:
        original(self, t)
        snaps.append(
            {
                "runner": self,
                "prev": self.shared_prev,
                "shared": self.shared,
                "tasks": list(self.task_params),
                "num_parameters": self.num_parameters(),
            }
        )

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(APD, "end_task", spy)
        results = trainer.train_lifelong(tasks, _config("apd"), workdir=str(workdir))
    return results, workdir, snaps


def test_compose_kernel_hand_made():
    """W * sigmoid(M) + A on hand-picked values, and the conv uses the composed kernel."""
    w = jnp.array([2.0, -4.0, 1.0, 0.0])
    m = jnp.array([0.0, jnp.log(3.0), -jnp.inf, 5.0])
    a = jnp.array([0.25, 0.0, 0.5, -1.0])
    np.testing.assert_allclose(compose_kernel(w, m, a), [1.25, -3.0, 0.5, -1.0], rtol=1e-6)

    cfg = _config("apd")
    runner = APD(cfg, TASKS)
    runner.start_task(0, jax.random.PRNGKey(1))
    shared, task = runner.shared, runner.task_params[0]

    @jax.jit
    def plain_logits(x: jax.Array) -> jax.Array:
        plain = {
            name: {"w": s["w"] * jax.nn.sigmoid(ts["mask"]) + ts["add"], "b": s["b"]}
            for (name, s), ts in zip(shared.items(), task["convs"].values(), strict=True)
        }
        feats, _ = base.conv_stack(runner.arch, x, base.plain_layer(plain))
        return layers.apply_head(task["head"], feats)

    x = jnp.asarray(TASKS[0].x_val)
    logits = jax.jit(apd_logits, static_argnums=0)(runner.arch, shared, task, x)
    np.testing.assert_allclose(logits, plain_logits(x), rtol=1e-5)


def test_penalties_hand_made():
    """Both penalties are means over layers of per-layer means (drift: sum / 2 / numel)."""
    shared = {
        "layer_0": {"w": jnp.full((1, 1, 1, 2), 3.0)},
        "layer_1": {"w": jnp.ones((1, 1, 2, 2))},
    }
    prev = {"layer_0": jnp.ones((1, 1, 1, 2)), "layer_1": jnp.ones((1, 1, 2, 2))}
    # layer 0: 2 entries of (3 - 1)^2 = 4 -> 8 / 2 / 2 = 2; layer 1: 0; mean 1.
    np.testing.assert_allclose(drift_penalty(shared, prev), 1.0)
    convs = {"layer_0": {"add": jnp.array([-1.0, 3.0])}, "layer_1": {"add": jnp.zeros(4)}}
    np.testing.assert_allclose(additive_penalty(convs), 1.0)


def test_drift_gradient_reaches_shared_kernels():
    """The lambda2 term adds exactly lambda2 * (W - W_prev) / numel / L to the kernel gradient."""
    cfg = _config("apd")
    runner = APD(cfg, TASKS)
    runner.start_task(0, jax.random.PRNGKey(2))
    rng = np.random.default_rng(0)
    prev = {
        name: layer["w"] + jnp.asarray(rng.normal(0, 0.1, layer["w"].shape), jnp.float32)
        for name, layer in runner.shared.items()
    }
    params = {"shared": runner.shared, "task": runner.task_params[0]}
    x, y = jnp.asarray(TASKS[0].x_train[:10]), jnp.asarray(TASKS[0].y_train[:10])
    drop = jax.random.PRNGKey(3)

    @jax.jit
    def grad(lambda2: jax.Array) -> base.Params:
        def loss(p: base.Params) -> jax.Array:
            return apd_loss(runner.arch, p, prev, x, y, drop, lambda1=4e-4, lambda2=lambda2)

        return jax.grad(loss)(params)["shared"]

    with_drift, without = grad(jnp.float32(100.0)), grad(jnp.float32(0.0))
    num_layers = len(prev)
    for name, p in prev.items():
        w = runner.shared[name]["w"]
        diff = with_drift[name]["w"] - without[name]["w"]
        np.testing.assert_allclose(
            diff, 100.0 * (w - p) / p.size / num_layers, rtol=1e-3, atol=1e-7
        )
        assert float(jnp.abs(diff).max()) > 1e-4
        chex.assert_trees_all_close(with_drift[name]["b"], without[name]["b"])


def test_drift_is_active_after_the_first_task(run):
    """Task 1 starts from W_prev = shared after task 0; its training moves W, so drift > 0."""
    _, _, snaps = run
    after0 = {name: layer["w"] for name, layer in snaps[0]["shared"].items()}
    chex.assert_trees_all_equal(snaps[1]["prev"], after0)
    assert float(drift_penalty(snaps[1]["shared"], snaps[1]["prev"])) > 0.0
    # On the first task W_prev is the initial value.
    assert float(drift_penalty(snaps[0]["shared"], snaps[0]["prev"])) > 0.0


def test_earlier_tasks_frozen_and_evaluated_with_current_shared(run):
    """Training task 1 leaves task 0's masks, additives and head bitwise unchanged."""
    _, _, snaps = run
    runner = snaps[1]["runner"]
    chex.assert_trees_all_equal(runner.task_params[0], snaps[0]["tasks"][0])
    with pytest.raises(AssertionError):
        chex.assert_trees_all_equal(runner.shared, snaps[0]["shared"])
    assert runner.task_params[1]["head"]["out"]["w"].shape[-1] == 4
    x, y = jnp.asarray(TASKS[0].x_test), jnp.asarray(TASKS[0].y_test)
    logits = jax.jit(apd_logits, static_argnums=0)(
        runner.arch, runner.shared, runner.task_params[0], x
    )
    assert runner.accuracy(0, x, y) == pytest.approx(float((logits.argmax(-1) == y).mean()))


def test_lifelong_run_writes_results(run):
    """`train_lifelong` runs APD and writes results; parameters grow with every task."""
    results, workdir, snaps = run
    assert BASELINES["apd"] is APD
    saved = json.loads((workdir / "results.json").read_text())
    assert saved["method"] == "apd" and saved["num_tasks"] == 2
    assert saved["chosen_configs"] is None
    accs = saved["peak_accuracy"] + saved["final_accuracy"]
    assert len(accs) == 4 and all(0.0 <= a <= 1.0 for a in accs)
    assert saved["accuracy_matrix"][1][1] == saved["final_accuracy"][1]
    assert saved["num_parameters"] == results["num_parameters"] == snaps[1]["num_parameters"]

    runner = snaps[1]["runner"]
    shared = count_params(runner.shared)
    kernels = sum(layer["w"].size for layer in runner.shared.values())
    heads = [
        count_params(base.init_head(np.random.default_rng(0), runner.arch, k, he=False))
        for k in (3, 4)
    ]
    # Per task: a mask and an additive per kernel, and the task's own head.
    assert snaps[0]["num_parameters"] == shared + 2 * kernels + heads[0]
    assert snaps[1]["num_parameters"] == shared + 4 * kernels + sum(heads)
