"""Paired comparisons: LASEM minus every comparable setting, per seed, with 95% t-intervals."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from lasem_jax.analysis.report_settings import Setting

# The paired metrics: peak accuracy and the final accuracy of the kept model.
PAIRED_METRICS = ("mean_peak_accuracy", "mean_final_accuracy")
_SHORT = {"mean_peak_accuracy": "peak", "mean_final_accuracy": "final"}


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


def _by_seed(runs: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[int, Mapping[str, Any]]:
    return {int(r["seed"]): r for _, r in runs if r.get("seed") is not None}


def paired_rows(groups: Mapping[Setting, Sequence[tuple[str, Mapping[str, Any]]]]) -> list[dict]:
    """LASEM minus each other setting of the same base, paired by seed (same seed = same tasks).

    For every LASEM setting and every other setting with an equal `Setting.base` (statics,
    brute force, other LASEM settings such as ablations; methods without a learner pair with
    HPS), the seeds both have are paired and, per metric of `PAIRED_METRICS`, the mean and
    95% t-interval half-width of the per-seed differences (LASEM minus other) are computed.

    Args:
      groups: `report_settings.group_runs` output.

    Returns:
      One dict per pair with `lasem` and `other` (setting labels), `other_method`,
      `other_static_config`, `n` (paired seeds), `seeds`, `lasem_n` (all LASEM seeds), and per
      metric `<short>_lasem_all` (LASEM's mean over all its seeds), `<short>_lasem` and
      `<short>_other` (means over the paired seeds), `<short>_diff` and `<short>_diff_ci` (None
      below 2 seeds), where short is `peak` or `final`. Pairs with no common seed are left
      out. Within one LASEM setting, rows are ordered by the other setting's mean peak
      accuracy, best first.
    """
    settings = list(groups)
    rows = []
    for lasem in (s for s in settings if s.method == "lasem"):
        mine = _by_seed(groups[lasem])
        overall = {
            f"{short}_lasem_all": mean_ci([r.get(metric) for r in mine.values()])[0]
            for metric, short in _SHORT.items()
        }
        block = []
        for other in settings:
            if other == lasem or other.base != lasem.base:
                continue
            theirs = _by_seed(groups[other])
            seeds = sorted(set(mine) & set(theirs))
            if not seeds:
                continue
            row: dict[str, Any] = {
                "lasem": lasem.label,
                "other": other.label,
                "other_method": other.method,
                "other_static_config": other.static_config,
                "n": len(seeds),
                "seeds": seeds,
                "lasem_n": len(mine),
                **overall,
            }
            for metric in PAIRED_METRICS:
                a = [mine[s].get(metric) for s in seeds]
                b = [theirs[s].get(metric) for s in seeds]
                short = _SHORT[metric]
                row[f"{short}_lasem"] = mean_ci(a)[0]
                row[f"{short}_other"] = mean_ci(b)[0]
                diffs = [_minus(x, y) for x, y in zip(a, b, strict=True)]
                row[f"{short}_diff"], row[f"{short}_diff_ci"], _ = mean_ci(diffs)
            block.append(row)
        block.sort(key=lambda r: -_finite(r["peak_other"]))
        rows += block
    return rows


def _minus(x: float | None, y: float | None) -> float | None:
    return None if x is None or y is None else x - y


def _finite(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def verdict(row: Mapping[str, Any], metric: str = "peak") -> str:
    """`above` / `below` if the 95% interval of the difference excludes 0, else `tie`."""
    diff, half = row[f"{metric}_diff"], row[f"{metric}_diff_ci"]
    if half is None or not math.isfinite(diff):
        return "n/a"
    if diff - half > 0:
        return "above"
    return "below" if diff + half < 0 else "tie"


def _num(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "n/a"


def _cell(diff: float, half: float | None) -> str:
    if not math.isfinite(diff):
        return "n/a"
    return f"{diff:+.4f} ± {'n/a' if half is None else f'{half:.4f}'}"


def headline(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per LASEM setting, its rows against the best static configuration, `all` and brute force.

    The best static configuration is the static setting with the highest mean peak accuracy
    over the paired seeds: an oracle choice made after seeing the test results of these very
    seeds, so comparing against it favours the statics.

    Returns:
      Dicts with `lasem`, `lasem_n`, `peak_lasem_all`, `final_lasem_all` and `best`, `all`,
      `brute_force`: the matching `paired_rows` row, or None where there is none.
    """
    out = []
    for lasem in dict.fromkeys(r["lasem"] for r in rows):
        mine = [r for r in rows if r["lasem"] == lasem]
        statics = [r for r in mine if r["other_method"] == "static"]
        entry = {k: mine[0][k] for k in ("lasem", "lasem_n", "peak_lasem_all", "final_lasem_all")}
        entry["best"] = max(statics, key=lambda r: _finite(r["peak_other"]), default=None)
        entry["all"] = next((r for r in statics if r["other_static_config"] == "all"), None)
        entry["brute_force"] = next((r for r in mine if r["other_method"] == "brute_force"), None)
        out.append(entry)
    return out


def format_headline_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """`headline` as one table: LASEM minus the best static, `all` and brute force."""
    head = ["LASEM setting", "n", "peak", "final", "best static", "peak - best", "final - best"]
    head += ["peak - all", "final - all", "peak - brute force"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in headline(rows):
        cells = [e["lasem"], str(e["lasem_n"]), _num(e["peak_lasem_all"])]
        cells += [_num(e["final_lasem_all"])]
        best = e["best"]
        cells.append(best["other_static_config"] if best else "n/a")
        for key, metrics in (("best", ("peak", "final")), ("all", ("peak", "final"))):
            for m in metrics:
                r = e[key]
                cells.append(_cell(r[f"{m}_diff"], r[f"{m}_diff_ci"]) if r else "n/a")
        brute = e["brute_force"]
        cells.append(_cell(brute["peak_diff"], brute["peak_diff_ci"]) if brute else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_paired_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The paired tables: the headline table, then one table per LASEM setting."""
    head = ["compared with", "n", "its peak", "LASEM - it, peak", "", "its final"]
    head += ["LASEM - it, final", ""]
    lines: list[str] = ["", format_headline_markdown(rows)]
    for lasem in dict.fromkeys(r["lasem"] for r in rows):
        mine = [r for r in rows if r["lasem"] == lasem]
        first = mine[0]
        peak, final = _num(first["peak_lasem_all"]), _num(first["final_lasem_all"])
        title = f"**{lasem}** ({first['lasem_n']} seeds: mean peak {peak}, mean final {final})"
        lines += ["", title, ""]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in mine:
            cells = [r["other"], str(r["n"]), _num(r["peak_other"])]
            cells += [_cell(r["peak_diff"], r["peak_diff_ci"]), verdict(r, "peak")]
            cells += [_num(r["final_other"]), _cell(r["final_diff"], r["final_diff_ci"])]
            cells.append(verdict(r, "final"))
            lines.append("| " + " | ".join(cells) + " |")
    intro = (
        "Paired by seed (same seed = same tasks): mean of LASEM minus the other setting ± 95% "
        "t-interval; above / below: the interval excludes 0. Best static: the static "
        "configuration with the highest mean peak accuracy on these seeds (an oracle choice)."
    )
    return "\n".join([intro, *lines]) + "\n"


def format_paired_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The paired rows as CSV (seeds space-separated, missing values "n/a")."""
    fields = ["lasem", "other", "other_method", "other_static_config", "n", "seeds"]
    for short in _SHORT.values():
        fields += [f"{short}_lasem", f"{short}_other", f"{short}_diff", f"{short}_diff_ci"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        cells = []
        for f in fields:
            v = row[f]
            if isinstance(v, list):
                v = " ".join(str(s) for s in v)
            elif v is None or (isinstance(v, float) and not math.isfinite(v)):
                v = "n/a"
            elif isinstance(v, float):
                v = f"{v:.6f}"
            cells.append(v)
        writer.writerow(cells)
    return buf.getvalue()
