"""Tests of the baselines' states: bitwise resume mid-task, prediction reload, honest sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lasem_jax.baselines import BASELINES
from lasem_jax.networks.model import count_params
from lasem_jax.storage import tree_io
from lasem_jax.training.trained import TaskSpec
from tests.trainer_test import TASKS, _config, _task

METHODS = ("single_network", "apd", "prognn", "darts", "den")
EPOCHS = 2


def _setup(method: str) -> tuple:
    """Config and 2 tasks (3 then 4 classes, except the one-head single network)."""
    cfg = _config(method, epochs=EPOCHS)
    cfg.optim.lr = 3e-3
    if method == "den":  # forced growth, kept (no pruning): old tasks mask the new channels
        cfg.den.update(expansion_size=2, loss_threshold=0.0, sparsity_thresholds=(0.98, 0.0))
    second = TASKS[1] if method == "single_network" else _task(2, num_classes=4)
    tasks = [TASKS[0], second]
    specs = [TaskSpec(t.name, t.image_shape, t.num_classes) for t in tasks]
    return cfg, tasks, specs


def _task_keys(seed: int, num_tasks: int) -> list[jax.Array]:
    """The per-task keys of `BaselineRun`."""
    key, keys = jax.random.PRNGKey(seed), []
    for _ in range(num_tasks):
        key, task_key = jax.random.split(key)
        keys.append(task_key)
    return keys


def _steps(cfg, num_tasks: int) -> list[tuple[int, int]]:
    """Every `(task, epoch)` of a run, epochs from 1."""
    epochs = int(cfg.train.epochs_per_task)
    return [(t, e) for t in range(num_tasks) for e in range(1, epochs + 1)]


def _drive(runner, cfg, tasks, steps) -> list[tuple[np.ndarray, list[float]]]:
    """Runs `(task, epoch)` steps as `BaselineRun` does; per step losses and val accuracies."""
    keys = _task_keys(cfg.seed, len(tasks))
    epochs = int(cfg.train.epochs_per_task)
    out = []
    for t, epoch in steps:
        if epoch == 1:
            runner.start_task(t, keys[t])
        lr = cfg.optim.lr * 0.8 ** (t * epochs + epoch - 1)
        task = tasks[t]
        losses = runner.train_epoch(t, jnp.asarray(task.x_train), jnp.asarray(task.y_train), lr)
        accs = [runner.accuracy(k, tasks[k].x_val, tasks[k].y_val) for k in range(t + 1)]
        out.append((losses, accs))
        if epoch == epochs:
            runner.end_task(t)
    return out


def _assert_trees_equal(a, b) -> None:
    """Same structure, dtypes and bits (arrays as NumPy or JAX; Python scalars and strings)."""
    (leaves_a, tree_a), (leaves_b, tree_b) = jax.tree.flatten(a), jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        assert type(x) is type(y) or np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _run_and_resume(method, cfg, tasks, specs, save_points, directory) -> dict:
    """Runs every step, saving `train_state()` with `tree_io` at each of `save_points`.

    Each save is loaded into a fresh object (built from `specs`) that continues to the end.
    """
    cls, steps = BASELINES[method], _steps(cfg, len(tasks))
    original, out, saved, done = cls(cfg, tasks), [], {}, 0
    for point in save_points:
        n = steps.index(point) + 1
        out += _drive(original, cfg, tasks, steps[done:n])
        done, path = n, str(directory / f"task{point[0]}_epoch{point[1]}")
        tree_io.save(path, original.train_state())
        saved[n] = (path, jax.tree.map(np.asarray, original.predict_state()))
    out += _drive(original, cfg, tasks, steps[done:])
    resumed = {}
    for n, (path, at_save) in saved.items():
        restored = cls(cfg, specs)
        restored.load_train_state(tree_io.load(path)[0])
        resumed[n] = (restored, _drive(restored, cfg, tasks, steps[n:]), at_save)
    return {"original": original, "out": out, "resumed": resumed}


def _assert_resumed_bitwise(result: dict) -> None:
    """Each restored copy matched the original from its save point on, bit for bit."""
    original = result["original"]
    for n, (restored, out, at_save) in result["resumed"].items():
        for (losses, accs), (losses_r, accs_r) in zip(result["out"][n:], out, strict=True):
            np.testing.assert_array_equal(losses_r, losses)
            assert accs_r == accs
        _assert_trees_equal(restored.predict_state(), original.predict_state())
        _assert_trees_equal(restored.train_state(), original.train_state())
        assert restored.num_parameters() == original.num_parameters()
        with pytest.raises(AssertionError):  # the epochs after the save changed the model
            _assert_trees_equal(at_save, original.predict_state())


@pytest.fixture(scope="module", params=METHODS)
def run(request, tmp_path_factory) -> dict:
    """2 tasks x 2 epochs, each save (see below) continued by a restored copy.

    Saves after task 0's last epoch (before `end_task`, where the loop checkpoints) and mid-task
    (after epoch 1 of task 1).
    """
    method = request.param
    cfg, tasks, specs = _setup(method)
    points = [(0, EPOCHS), (1, 1)]
    result = _run_and_resume(method, cfg, tasks, specs, points, tmp_path_factory.mktemp(method))
    return {"method": method, "cfg": cfg, "tasks": tasks, "specs": specs, **result}


def test_resume_is_bitwise(run):
    """Continuing a restored training state gives the same losses, accuracies and states."""
    assert len(run["resumed"]) == 2
    _assert_resumed_bitwise(run)


def test_predict_state_round_trip_serves_every_task(run, tmp_path):
    """A fresh object loading the saved prediction state gives the same logits and accuracies."""
    original, tasks = run["original"], run["tasks"]
    tree_io.save(str(tmp_path / "model"), original.predict_state())
    loaded = BASELINES[run["method"]](run["cfg"], run["specs"])
    loaded.load_predict_state(tree_io.load(str(tmp_path / "model"))[0])
    state = original.predict_state()
    for k, task in enumerate(tasks):
        x, y = jnp.asarray(task.x_test), jnp.asarray(task.y_test)
        logits = np.asarray(original.logits(k, x))
        assert logits.shape == (len(x), task.num_classes)
        np.testing.assert_array_equal(np.asarray(loaded.logits(k, x)), logits)
        np.testing.assert_allclose(original.predict(state, k, x), logits, rtol=1e-5, atol=1e-5)
        accuracy = original.accuracy(k, x, y)
        assert loaded.accuracy(k, x, y) == accuracy
        assert accuracy == pytest.approx(np.mean(logits.argmax(-1) == task.y_test))


def _read_entries(runner, tasks) -> int:
    """Entries of `predict_state()` with a nonzero gradient of some task's logits."""
    state = jax.tree.map(jnp.asarray, runner.predict_state())
    leaves, treedef = jax.tree.flatten(state)
    is_float = [jnp.issubdtype(leaf.dtype, jnp.floating) for leaf in leaves]
    floats = [leaf for leaf, f in zip(leaves, is_float, strict=True) if f]
    gen = np.random.default_rng(0)
    reached = [np.zeros(leaf.shape, bool) for leaf in floats]
    for k, task in enumerate(tasks):
        noise = gen.normal(0.5, 1.0, (32, *task.image_shape)).astype(np.float32)
        x = jnp.asarray(np.concatenate([task.x_test, noise]))
        r = jnp.asarray(gen.normal(size=task.num_classes), jnp.float32)

        def objective(values, k=k, x=x, r=r):
            it = iter(values)
            full = [next(it) if f else leaf for leaf, f in zip(leaves, is_float, strict=True)]
            return jnp.sum(r * runner.predict(treedef.unflatten(full), k, x))

        grads = jax.jit(jax.grad(objective))(floats)
        reached = [seen | (np.asarray(g) != 0) for seen, g in zip(reached, grads, strict=True)]
    return int(sum(seen.sum() for seen in reached))


def test_num_parameters_counts_what_predictions_read(run):
    """`num_parameters()` is the number of state entries some task's logits depend on."""
    original, tasks = run["original"], run["tasks"]
    assert original.num_parameters() == _read_entries(original, tasks)
    if run["method"] == "den":  # old heads' zero rows of the new channels are not counted
        stored = count_params(original.convs) + count_params(original.heads)
        assert original.num_parameters() < stored


def test_den_with_split_units_resumes_and_counts_what_tasks_read(tmp_path):
    """DEN with selective retraining, growth and splits resumes bitwise and counts honestly.

    The restore comes before the growth (generator state, phase and selected units matter);
    weights between channels no single task uses are not counted.
    """
    cfg, tasks, specs = _setup("den")
    cfg.train.epochs_per_task = 4  # head, selective retraining, then growth
    cfg.den.split_threshold = 1e-6  # every retrained unit splits
    result = _run_and_resume("den", cfg, tasks, specs, [(1, 1)], tmp_path)
    _assert_resumed_bitwise(result)
    runner = result["original"]
    old, new = runner.masks
    assert (old[1] & ~new[1]).any()  # originals kept for task 0, replaced for task 1
    stored = count_params(runner.convs) + count_params(runner.heads)
    assert runner.num_parameters() == _read_entries(runner, tasks) < stored
