"""Sweep helpers and result reports: tables (mean ± 95% CI) and the paper's figures (no JAX)."""

from __future__ import annotations

import collections
import csv
import io
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from lasem_jax import figures, results_io, search_space

_LOG = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
METRICS = ("mean_peak_accuracy", "mean_forgetting_ratio", "train_seconds")


def paper_static_configs(num_layers: int) -> list[str]:
    """Returns the paper's static configurations for a network depth (spec section 7).

    Args:
      num_layers: number of conv layers `L`.

    Returns:
      4 layers: all, top1-3, bottom1-3, alternating, alternating_even; 6 layers: all, top1-5,
      bottom1-5, alternating; any other depth: all.
    """
    if num_layers == 4:
        ks = range(1, 4)
        tops, bottoms = (f"top{k}" for k in ks), (f"bottom{k}" for k in ks)
        return ["all", *tops, *bottoms, "alternating", "alternating_even"]
    if num_layers == 6:
        ks = range(1, 6)
        return ["all", *(f"top{k}" for k in ks), *(f"bottom{k}" for k in ks), "alternating"]
    return ["all"]


def expand_config_names(spec: str, num_layers: int) -> list[str]:
    """Expands a comma-separated list of static configuration names and checks every one.

    Args:
      spec: names such as `all,top1,0101`; `paper` adds `paper_static_configs(num_layers)`,
        `every` adds all `2^L` bit strings (input side first, 1 = transfer).
      num_layers: number of conv layers `L`.

    Returns:
      The names in order, without duplicates.

    Raises:
      ValueError: an empty list or a name `search_space.named_config` does not know.
    """
    names: list[str] = []
    for token in (t.strip() for t in spec.split(",")):
        if token == "paper":
            names += paper_static_configs(num_layers)
        elif token == "every":
            configs = search_space.enumerate_configs(num_layers)
            names += [search_space.config_to_string(c) for c in configs]
        elif token:
            try:
                search_space.named_config(token, num_layers)
            except ValueError as e:
                raise ValueError(f"--configs: {e} (or use 'paper' / 'every').") from e
            names.append(token)
    if not names:
        raise ValueError("--configs is empty; give e.g. all,top1 or paper or every.")
    return list(dict.fromkeys(names))


class Setting(NamedTuple):
    """What makes runs comparable; seeds of one setting are averaged."""

    method: str
    learner: str
    dataset: str  # the dataset name, with `_<num_tasks>` if it occurs with several task counts
    static_config: str  # static runs only, else ""
    partition: str  # the LASEM partition as JSON, "" for none
    prior: str  # LASEM runs only, else ""

    @property
    def label(self) -> str:
        """A file-name-safe name such as `static_hps_digits_top1`."""
        parts = [self.method, self.learner, self.dataset, self.static_config, self.prior]
        if self.partition:
            parts.append("p" + re.sub(r"\D+", "-", self.partition).strip("-"))
        return re.sub(r"[^A-Za-z0-9_.-]", "-", "_".join(p for p in parts if p))


def find_results(workdirs: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    """Returns `(run_dir, results)` of every `results.json` under `workdirs`, sorted by path."""
    found = []
    for top in workdirs:
        if not os.path.isdir(top):
            raise ValueError(f"{top} is not a directory.")
        for root, dirs, files in os.walk(top):
            dirs.sort()
            if RESULTS_FILE in files:
                with open(os.path.join(root, RESULTS_FILE), encoding="utf-8") as f:
                    found.append((root, json.load(f)))
    return sorted(found, key=lambda item: item[0])


def group_runs(
    runs: Sequence[tuple[str, Mapping[str, Any]]],
) -> dict[Setting, list[tuple[str, Mapping[str, Any]]]]:
    """Groups runs by `Setting`, sorted by setting; runs keep their order."""
    task_counts = collections.defaultdict(set)
    for _, r in runs:
        task_counts[r["dataset"]].add(r.get("num_tasks"))
    groups = collections.defaultdict(list)
    for run_dir, r in runs:
        cfg = r.get("config", {})
        dataset = r["dataset"]
        if len(task_counts[dataset]) > 1:
            dataset = f"{dataset}_{r.get('num_tasks')}"
        partition = cfg.get("model", {}).get("partition")
        setting = Setting(
            method=r["method"],
            learner=r["learner"],
            dataset=dataset,
            static_config=str(cfg.get("static_config", "")) if r["method"] == "static" else "",
            partition=json.dumps(partition) if partition else "",
            prior=str(cfg.get("em", {}).get("prior", "")) if r["method"] == "lasem" else "",
        )
        groups[setting].append((run_dir, r))
    return dict(sorted(groups.items()))


def mean_ci(values: Sequence[float | None]) -> tuple[float, float | None, int]:
    """Mean and 95% t confidence half-width of the finite values (None for fewer than 2).

    Returns:
      `(mean, half_width, n)`; the mean is NaN when no value is finite.
    """
    x = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = x.size
    if n == 0:
        return math.nan, None, 0
    if n == 1:
        return float(x[0]), None, 1
    half = stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return float(x.mean()), float(half), n


def summarize(groups: Mapping[Setting, Sequence[tuple[str, Mapping[str, Any]]]]) -> list[dict]:
    """One row per setting: n seeds, mean and CI of `METRICS`, time relative to LASEM.

    The relative time divides the setting's mean `train_seconds` by that of the LASEM setting
    of the same learner and dataset (the one with most runs, first in order on ties), or of
    LASEM HPS for methods without a base learner (learner "none", e.g. ProgNN); None if there
    is no such setting.
    """
    rows = []
    for setting, runs in groups.items():
        row: dict[str, Any] = {"setting": setting.label, **setting._asdict(), "n": len(runs)}
        row["seeds"] = sorted(r.get("seed") for _, r in runs)
        for metric in METRICS:
            row[metric], row[metric + "_ci"], _ = mean_ci([r.get(metric) for _, r in runs])
        rows.append(row)
    lasem: dict[tuple[str, str], dict] = {}
    for row in rows:
        key = (row["learner"], row["dataset"])
        if row["method"] == "lasem" and row["n"] > lasem.get(key, {"n": 0})["n"]:
            lasem[key] = row
    for row in rows:
        learner = "hps" if row["learner"] == "none" else row["learner"]
        ref = lasem.get((learner, row["dataset"]))
        ok = ref is not None and ref["train_seconds"] > 0
        row["time_vs_lasem"] = row["train_seconds"] / ref["train_seconds"] if ok else None
    return rows


_COLUMNS = ("setting", "method", "learner", "dataset", "static_config", "partition", "prior")


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def format_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The summary table in Markdown: `mean ± CI` per metric (`± n/a` for one seed)."""
    head = ["setting", "n", "peak accuracy", "forgetting ratio", "train seconds", "time / LASEM"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["setting"], str(row["n"])]
        for metric, digits in zip(METRICS, (4, 4, 1), strict=True):
            cells.append(f"{_fmt(row[metric], digits)} ± {_fmt(row[metric + '_ci'], digits)}")
        cells.append(_fmt(row["time_vs_lasem"], 2))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The summary table as CSV: one mean and one `_ci` column per metric ("n/a" if none)."""
    fields = [*_COLUMNS, "n", "seeds"]
    for metric in METRICS:
        fields += [metric, metric + "_ci"]
    fields.append("time_vs_lasem")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        cells = []
        for f in fields:
            v = row[f]
            if isinstance(v, float) or (v is None and f not in _COLUMNS):
                v = _fmt(v, 6)
            elif isinstance(v, list):
                v = " ".join(str(s) for s in v)
            cells.append(v)
        writer.writerow(cells)
    return buf.getvalue()


def write_report(workdirs: Sequence[str], out: str) -> list[str]:
    """Finds the runs under `workdirs` and writes table.md, table.csv and the figures to `out`.

    Returns:
      The paths written, in order.

    Raises:
      ValueError: a workdir is not a directory or holds no results.json.
    """
    runs = find_results(workdirs)
    if not runs:
        raise ValueError(f"No {RESULTS_FILE} under {', '.join(workdirs)}.")
    groups = group_runs(runs)
    rows = summarize(groups)
    files: dict[str, bytes | None] = {
        "table.md": format_markdown(rows).encode(),
        "table.csv": format_csv(rows).encode(),
    }
    for dataset, mine in figures.by_dataset(rows).items():
        files[f"fig4_{dataset}.png"] = figures.fig4(mine)
        files[f"fig5_{dataset}.png"] = figures.fig5(mine, groups)
        files[f"fig8_{dataset}.png"] = figures.fig8(mine, groups)
        files[f"fig9_{dataset}.png"] = figures.fig9(mine)
    for setting, setting_runs in groups.items():
        files[f"curves_{setting.label}.png"] = figures.curves(setting, setting_runs)
    written = []
    for name, data in files.items():
        if data is None:
            _LOG.info("Skipping %s: no data for it.", name)
            continue
        path = os.path.join(out, name)
        results_io.write_bytes_atomic(path, data)
        written.append(path)
    return written
