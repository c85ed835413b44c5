"""Tests of task-wise brute-force search (docs/protocol.md §8) against individual static runs."""

import json

import numpy as np
import pytest

from configs import default
from lasem_jax.core import search_space
from lasem_jax.data import make_digits_tasks
from lasem_jax.training import brute_force, trainer
from tests.trainer_test import TASKS, _config

PARTITION = ((0, 1), (2, 3))
EPOCHS = 4


def _digits_config(method: str, static_config: str = "all"):
    c = default.get_config()
    c.method, c.static_config = method, static_config
    c.model.width, c.train.epochs_per_task, c.optim.lr = 0.25, EPOCHS, 1e-3
    c.model.he_init = True  # learns within a few epochs (TF1 RMSProp starts slowly)
    c.model.partition = PARTITION
    c.brute_force.batch_candidates = 1  # one after another: bitwise equal to the static runs
    return c


@pytest.fixture(scope="module")
def digits():
    """Brute force over the 4 configurations of a 2-group partition, and each static run."""
    tasks = make_digits_tasks(seed=0, num_tasks=2)
    searched = _run(tasks, _digits_config("brute_force"))
    static = {}
    for config in search_space.enumerate_configs(4, PARTITION):
        name = search_space.config_to_string(config)
        static[name] = _run(tasks, _digits_config("static", name))
    return searched, static


def _run(tasks, config) -> dict:
    """The results, with the per-epoch records under "records"."""
    records = []
    results = trainer.train_lifelong(tasks, config, on_epoch=records.append)
    return {**results, "records": records}


def test_first_task_winner_is_the_best_static_run(digits):
    """Task 0's scores are the static runs' best validation accuracies; the argmax wins."""
    searched, static = digits
    first = searched["search"][0]
    assert len(first["configs"]) == 4
    for name, score in zip(first["configs"], first["scores"], strict=True):
        records = static[name]["records"]
        assert score == max(r["val"][0] for r in records if r["task"] == 0)
    assert len(set(first["scores"])) > 1, "scores tie: the test would not discriminate"
    best = first["configs"][int(np.argmax(first["scores"]))]
    assert first["chosen"] == best
    assert searched["chosen_configs"][0] == [int(c) for c in best]


def test_winner_keeps_its_final_parameters(digits):
    """The run continues from the winner: task 1's winner score matches the static run."""
    searched, static = digits
    first, second = searched["search"]
    winner_run = static[first["chosen"]]
    index = second["configs"].index(first["chosen"])
    assert second["scores"][index] == max(
        r["val"][1] for r in winner_run["records"] if r["task"] == 1
    )
    chosen = second["configs"][int(np.argmax(second["scores"]))]
    assert searched["chosen_configs"][1] == [int(c) for c in chosen]
    assert second["seconds"] > 0 and searched["train_seconds"] >= first["seconds"]


def test_search_records_are_the_winners(digits):
    """The epochs reported for task 0 are the winner's, with its configuration."""
    searched, static = digits
    chosen = searched["search"][0]["chosen"]
    ours = [r for r in searched["records"] if r["task"] == 0]
    theirs = [r for r in static[chosen]["records"] if r["task"] == 0]
    assert [r["val"] for r in ours] == [r["val"] for r in theirs]
    assert {r["config"] for r in ours} == {chosen}


@pytest.mark.parametrize(("learner", "first"), [("hps", [0, 0, 0, 0]), ("dfcnn", [1, 1, 1, 1])])
def test_first_task_not_searched(learner, first):
    """search_first_task=False: HPS trains task 0 task-specific, TF/DF-CNN shared.

    As the reference code does (docs/protocol.md §8).
    """
    c = _config("brute_force", learner)
    c.brute_force.search_first_task = False
    c.model.partition = PARTITION
    results = trainer.train_lifelong(TASKS, c)
    assert results["search"][0]["configs"] == [search_space.config_to_string(first)]
    assert results["chosen_configs"][0] == first
    assert len(results["search"][1]["configs"]) == 4


def test_results_file_reports_search(tmp_path):
    """results.json holds the search of every task and the whole run's time."""
    c = _config("brute_force")
    c.model.partition = PARTITION
    trainer.train_lifelong(TASKS, c, workdir=str(tmp_path))
    results = json.loads((tmp_path / "results.json").read_text())
    assert [len(s["scores"]) for s in results["search"]] == [4, 4]
    assert results["train_seconds"] >= sum(s["seconds"] for s in results["search"])
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 * 2


def test_score_and_ties():
    """A candidate scores its best validation accuracy; equal scores keep the first."""
    assert brute_force.score([{"val": [0.9, 0.2]}, {"val": [0.1, 0.7]}, {"val": [0.0, 0.4]}]) == 0.7
    assert brute_force.best_index([0.5, 0.5, 0.5]) == 0
    assert brute_force.best_index([0.2, 0.6, 0.6]) == 1


def test_candidates_follow_the_partition():
    """Candidates are the partition's configurations, or only `none` (HPS) when not searching."""
    model = trainer.make_model(_digits_config("brute_force"), TASKS[0])
    np.testing.assert_array_equal(
        brute_force.candidates(model, search=True), search_space.enumerate_configs(4, PARTITION)
    )
    np.testing.assert_array_equal(brute_force.candidates(model, search=False), [[False] * 4])


def test_static_config_field_is_ignored():
    """brute_force chooses per task; config.static_config (a static-only field) is not read."""
    c = _config("brute_force")
    c.model.partition = PARTITION
    c.static_config = "not_a_config"
    results = trainer.train_lifelong(TASKS, c)
    assert [len(s["scores"]) for s in results["search"]] == [4, 4]


def test_batched_candidates_equal_one_after_another():
    """Candidates trained together (in chunks of 3) pick what one-after-another training picks."""
    tasks = make_digits_tasks(seed=0, num_tasks=2)
    config = _digits_config("brute_force")
    config.train.epochs_per_task = 2
    apart = trainer.train_lifelong(tasks, config)
    config.brute_force.batch_candidates = 3
    together = trainer.train_lifelong(tasks, config)
    assert together["chosen_configs"] == apart["chosen_configs"]
    for a, b in zip(together["search"], apart["search"], strict=True):
        np.testing.assert_allclose(a["scores"], b["scores"], atol=1.5 / 78)  # <= 1 image
    np.testing.assert_allclose(together["peak_accuracy"], apart["peak_accuracy"], atol=0.02)
