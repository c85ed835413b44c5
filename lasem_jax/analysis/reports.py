"""Sweep helpers and result reports: tables (mean ± 95% CI) and the paper's figures (no JAX)."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lasem_jax.analysis import figures, paired
from lasem_jax.analysis.paired import mean_ci
from lasem_jax.analysis.report_settings import Setting, group_runs, match_lasem
from lasem_jax.core import search_space
from lasem_jax.storage import files, results_io

_LOG = logging.getLogger(__name__)

METRICS = (
    "mean_peak_accuracy",
    "mean_forgetting_ratio",
    "bwt",
    "mean_forgetting",
    "mean_fwt",
    "train_seconds",
)
_HEADS = (
    "peak accuracy",
    "forgetting ratio",
    "BWT",
    "mean forgetting",
    "mean FWT",
    "train seconds",
)
_DIGITS = (4, 4, 4, 4, 4, 1)


def paper_static_configs(num_layers: int) -> list[str]:
    """Returns the paper's static configurations for a network depth (docs/protocol.md §7).

    For 6 layers the paper's text says 16 static configurations were tested, but it names
    none beyond these 12, which are the ones the reference code's table lists for 6 layers;
    the other four are unknown, so only these 12 are run.

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


def expand_config_names(spec: str, num_layers: int, flag: str = "--configs") -> list[str]:
    """Expands a comma-separated list of static configuration names and checks every one.

    Args:
      spec: names such as `all,top1,0101`; `paper` adds `paper_static_configs(num_layers)`,
        `every` adds all `2^L` bit strings (input side first, 1 = transfer).
      num_layers: number of conv layers `L`.
      flag: the command-line flag the errors name.

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
                raise ValueError(f"{flag}: {e} (or use 'paper' / 'every').") from e
            names.append(token)
    if not names:
        raise ValueError(f"{flag} is empty; give e.g. all,top1 or paper or every.")
    return list(dict.fromkeys(names))


def find_results(workdirs: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    """Returns `(run_dir, results)` of every `results.json` under `workdirs`, sorted by path."""
    found = []
    for top in workdirs:
        if not os.path.isdir(top):
            raise ValueError(f"{top} is not a directory.")
        for root, dirs, names in os.walk(top):
            dirs.sort()
            if files.RESULTS in names:
                with open(files.path(root, files.RESULTS), encoding="utf-8") as f:
                    found.append((root, json.load(f)))
    return sorted(found, key=lambda item: item[0])


def summarize(groups: Mapping[Setting, Sequence[tuple[str, Mapping[str, Any]]]]) -> list[dict]:
    """One row per setting: n seeds, mean and CI of `METRICS`, time relative to LASEM.

    The relative time divides the setting's mean `train_seconds` by that of its matching LASEM
    setting (`report_settings.match_lasem`: equal in every field but the method-specific ones,
    LASEM HPS for methods without a learner; a LASEM setting is its own match). Without a
    unique match it is None and `time_note` says why.

    Returns:
      Dicts with `setting` (the label), `method`, `learner`, `dataset`, `static_config`,
      `context` and `base` (`Setting`'s), `fields` (name -> value text of the setting's
      fields), `n`, `seeds`, each metric and its `_ci`, `time_vs_lasem`, `lasem_setting` (the
      matching LASEM label or None) and `time_note` (None or the note).
    """
    rows = []
    for setting, runs in groups.items():
        row: dict[str, Any] = {
            "setting": setting.label,
            "method": setting.method,
            "learner": setting.learner,
            "dataset": setting.dataset,
            "static_config": setting.static_config,
            "context": " ".join(setting.context),
            "base": setting.base,
            "fields": {name: setting.text(name) for name, _ in setting.fields},
            "n": len(runs),
            "seeds": sorted(r.get("seed") for _, r in runs),
        }
        for metric in METRICS:
            row[metric], row[metric + "_ci"], _ = mean_ci([r.get(metric) for _, r in runs])
        rows.append(row)
    by_label = {row["setting"]: row for row in rows}
    for setting, row in zip(groups, rows, strict=True):
        ref, row["time_note"] = match_lasem(setting, list(groups))
        row["lasem_setting"] = ref.label if ref else None
        seconds = by_label[ref.label]["train_seconds"] if ref else math.nan
        row["time_vs_lasem"] = row["train_seconds"] / seconds if seconds > 0 else None
    return rows


_COLUMNS = ("setting", "method", "learner", "dataset", "static_config")
_NOT_FIELD_COLUMNS = {*_COLUMNS, "num_tasks"}


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def format_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The summary table in Markdown: `mean ± CI` per metric (`± n/a` for one seed).

    Below the table, one line `- time / LASEM: <note>` per row without a LASEM setting to
    compare its time with (see `summarize`).
    """
    head = ["setting", "n", *_HEADS, "time / LASEM"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["setting"], str(row["n"])]
        for metric, digits in zip(METRICS, _DIGITS, strict=True):
            cells.append(f"{_fmt(row[metric], digits)} ± {_fmt(row[metric + '_ci'], digits)}")
        cells.append(_fmt(row["time_vs_lasem"], 2))
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- time / LASEM: {row['time_note']}" for row in rows if row["time_note"]]
    return "\n".join(lines + (["", *notes] if notes else [])) + "\n"


def varying_fields(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The setting fields (beyond `_COLUMNS`) whose values differ between the rows, in order."""
    values: dict[str, set[str]] = {}
    for row in rows:
        for name, text in row["fields"].items():
            values.setdefault(name, set()).add(text)
    return [n for n, v in values.items() if len(v) > 1 and n not in _NOT_FIELD_COLUMNS]


def format_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The summary table as CSV.

    Columns: `_COLUMNS`, one per setting field that differs between the rows (empty where a
    setting lacks it), `n`, `seeds`, a mean and a `_ci` column per metric ("n/a" if none),
    `time_vs_lasem` and `lasem_setting` (the label of the LASEM setting the time divides by).
    """
    varying = varying_fields(rows)
    fields = [*_COLUMNS, *varying, "n", "seeds"]
    for metric in METRICS:
        fields += [metric, metric + "_ci"]
    fields += ["time_vs_lasem", "lasem_setting"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        cells = []
        for f in fields:
            v = row["fields"].get(f, "") if f in varying else row[f]
            if isinstance(v, float) or (v is None and f != "lasem_setting"):
                v = _fmt(v, 6)
            elif isinstance(v, list):
                v = " ".join(str(s) for s in v)
            cells.append(v)
        writer.writerow(cells)
    return buf.getvalue()


def write_report(workdirs: Sequence[str], out: str) -> list[str]:
    """Finds the runs under `workdirs` and writes table.md, table.csv and the figures to `out`.

    With LASEM runs and comparable runs of the same seeds, also paired.md and paired.csv
    (`paired.paired_rows`: LASEM minus each comparable setting, paired by seed).

    Returns:
      The paths written, in order.

    Raises:
      ValueError: a workdir is not a directory or holds no results.json.
    """
    runs = find_results(workdirs)
    if not runs:
        raise ValueError(f"No {files.RESULTS} under {', '.join(workdirs)}.")
    groups = group_runs(runs)
    rows = summarize(groups)
    tables = {"table.md": format_markdown(rows), "table.csv": format_csv(rows)}
    pairs = paired.paired_rows(groups)
    if pairs:
        tables["paired.md"] = paired.format_paired_markdown(pairs)
        tables["paired.csv"] = paired.format_paired_csv(pairs)
    figs: dict[str, figures.Figure | None] = {}
    for dataset, mine in figures.by_dataset(rows).items():
        figs[f"fig4_{dataset}.png"] = figures.fig4(mine)
        figs[f"fig5_{dataset}.png"] = figures.fig5(mine, groups)
        figs[f"fig8_{dataset}.png"] = figures.fig8(mine, groups)
        figs[f"fig9_{dataset}.png"] = figures.fig9(mine)
    for i, (setting, setting_runs) in enumerate(groups.items()):
        kinds = [("curves", figures.curves)]
        if setting.method == "lasem":
            kinds.append(("posterior", figures.posterior_trajectories))
        for kind, draw in kinds:
            name = f"{kind}_{setting.file_label}.png"  # numbered if another label maps to it
            figs[f"{kind}_{setting.file_label}_{i}.png" if name in figs else name] = draw(
                setting, setting_runs
            )
    written = []
    for name, text in tables.items():
        written.append(os.path.join(out, name))
        results_io.write_bytes_atomic(written[-1], text.encode())
    for name, fig in figs.items():
        if fig is None:
            _LOG.info("Skipping %s: no data for it.", name)
            continue
        written.append(os.path.join(out, name))
        results_io.write_bytes_atomic(written[-1], figures.to_png(fig))
    return written
