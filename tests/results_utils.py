"""Test helper: hand-made results.json files with a full resolved config."""

import json

import ml_collections

from configs import default
from lasem_jax.storage import results_io


def resolved(config: ml_collections.ConfigDict, **fields) -> dict:
    """`config` resolved as JSON, with dotted `fields` overridden (`em__prior` -> `em.prior`)."""
    c = config.copy_and_resolve_references()
    for dotted, value in fields.items():
        *sections, name = dotted.split("__")
        target = c
        for section in sections:
            target = target[section]
        target[name] = value
    return results_io.to_jsonable(c)


def write_run(
    root,
    name,
    seed,
    method="lasem",
    learner="hps",
    config=None,
    *,
    peak=0.8,
    forgetting=None,
    seconds=10.0,
    chosen=None,
    config_learner=None,
    **fields,
):
    """Writes `<root>/<name>/seed_<seed>/results.json` and returns that directory.

    The config is `config` (default: `configs/default.py`) with method, learner, seed and the
    dotted `fields` set (`train__epochs_per_task=3`); `config.learner` is `config_learner`,
    by default `learner` ("hps" for "none", as baselines without a learner keep the default).
    """
    run_dir = root / name / f"seed_{seed}"
    run_dir.mkdir(parents=True)
    chosen = chosen or [[1, 1, 0, 0], [1, 0, 0, 1]]
    cfg = config or default.get_config()
    config_learner = config_learner or ("hps" if learner == "none" else learner)
    config_json = resolved(cfg, method=method, learner=config_learner, seed=seed, **fields)
    results = {
        "method": method,
        "learner": learner,
        "dataset": config_json["data"]["name"],
        "num_tasks": config_json["data"]["num_tasks"],
        "seed": seed,
        "mean_peak_accuracy": peak,
        "mean_forgetting_ratio": 0.9 + 0.01 * seed if forgetting is None else forgetting,
        "train_seconds": seconds,
        "chosen_configs": chosen,
        "transfer_fraction_per_layer": [sum(c) / len(chosen) for c in zip(*chosen, strict=True)],
        "config": config_json,
    }
    (run_dir / "results.json").write_text(json.dumps(results))
    return run_dir
