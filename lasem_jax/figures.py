"""PNG figures of a report (the paper's Fig. 4, 5, 8, 9 and accuracy curves), from results dicts."""

from __future__ import annotations

import collections
import io
import itertools
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from lasem_jax import results_io

if TYPE_CHECKING:
    from lasem_jax.reports import Setting

METRICS_FILE = "metrics.jsonl"


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def by_dataset(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Groups summary rows by their dataset label."""
    out = collections.defaultdict(list)
    for row in rows:
        out[row["dataset"]].append(row)
    return dict(out)


def fig4(rows: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Fig. 4: per learner, the static configurations' peak accuracy (box), `all`, LASEM, BF."""
    learners = sorted({r["learner"] for r in rows if r["method"] == "static"})
    if not learners:
        return None
    fig = Figure(figsize=(3.5 + 1.6 * len(learners), 4))
    ax = fig.add_subplot()
    for i, learner in enumerate(learners, start=1):
        static = [r for r in rows if r["learner"] == learner and r["method"] == "static"]
        ax.boxplot([r["mean_peak_accuracy"] for r in static], positions=[i], widths=0.5)
        for r in static:
            if r["static_config"] == "all":
                ax.plot(i, r["mean_peak_accuracy"], "bs", label="all" if i == 1 else None)
        for method, style, name in (("lasem", "r*", "LASEM"), ("brute_force", "g^", "brute force")):
            for r in rows:
                if r["learner"] == learner and r["method"] == method:
                    ax.plot(
                        i, r["mean_peak_accuracy"], style, ms=10, label=name if i == 1 else None
                    )
    ax.set_xticks(range(1, len(learners) + 1), learners)
    ax.set_ylabel("mean peak accuracy")
    ax.set_title(f"{rows[0]['dataset']}: static configs (box) vs LASEM, brute force")
    ax.legend()
    return _png(fig)


def fig5(rows: Sequence[Mapping[str, Any]], groups: Mapping[Setting, Sequence]) -> bytes | None:
    """Fig. 5: fraction of tasks transferring each layer for each LASEM setting (mean of seeds)."""
    lasem = [(s, runs) for s, runs in groups.items() if s.method == "lasem"]
    lasem = [(s, runs) for s, runs in lasem if s.dataset == rows[0]["dataset"]]
    if not lasem:
        return None
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    width = 0.8 / len(lasem)
    for i, (setting, runs) in enumerate(lasem):
        frac = np.mean([r["transfer_fraction_per_layer"] for _, r in runs], axis=0)
        x = np.arange(1, frac.size + 1) + (i - (len(lasem) - 1) / 2) * width
        ax.bar(x, frac, width, label=setting.label)
    ax.set_xticks(range(1, frac.size + 1))
    ax.set_xlabel("layer (input side first)")
    ax.set_ylabel("fraction of tasks transferring")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize="small")
    return _png(fig)


def fig8(rows: Sequence[Mapping[str, Any]], groups: Mapping[Setting, Sequence]) -> bytes | None:
    """Fig. 8: histogram of the configurations LASEM chose (all tasks and seeds)."""
    lasem = [(s, runs) for s, runs in groups.items() if s.method == "lasem"]
    lasem = [(s, runs) for s, runs in lasem if s.dataset == rows[0]["dataset"]]
    if not lasem:
        return None
    fig = Figure(figsize=(8, 2.8 * len(lasem)))
    for i, (setting, runs) in enumerate(lasem, start=1):
        counts = collections.Counter(
            "".join(str(int(b)) for b in c) for _, r in runs for c in r["chosen_configs"]
        )
        names = sorted(counts)
        ax = fig.add_subplot(len(lasem), 1, i)
        ax.bar(range(len(names)), [counts[n] for n in names])
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize="small")
        ax.set_ylabel("tasks")
        ax.set_title(f"{setting.label}: chosen configurations (1 = transfer)")
    return _png(fig)


def fig9(rows: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Fig. 9: forgetting ratio of static `all`, the best static (peak accuracy) and LASEM."""
    bars = []  # (learner, kind, mean, ci)
    for learner in sorted({r["learner"] for r in rows}):
        mine = [r for r in rows if r["learner"] == learner]
        static = [r for r in mine if r["method"] == "static"]
        picks = [("all", [r for r in static if r["static_config"] == "all"][:1])]
        best = max(static, key=lambda r: r["mean_peak_accuracy"], default=None)
        picks.append(
            (f"best static ({best['static_config']})" if best else "", [best] * bool(best))
        )
        picks.append(("LASEM", [r for r in mine if r["method"] == "lasem"][:1]))
        for kind, found in picks:
            for r in found:
                bars.append(
                    (learner, kind, r["mean_forgetting_ratio"], r["mean_forgetting_ratio_ci"])
                )
    if not bars:
        return None
    fig = Figure(figsize=(2 + 0.7 * len(bars), 4))
    ax = fig.add_subplot()
    colors = {"all": "tab:blue", "LASEM": "tab:red"}
    for i, (_, kind, mean, ci) in enumerate(bars):
        ax.bar(i, mean, yerr=ci or 0.0, color=colors.get(kind, "tab:gray"), capsize=3)
    ax.set_xticks(range(len(bars)), [f"{lr}\n{k}" for lr, k, _, _ in bars], fontsize="small")
    ax.set_ylabel("mean forgetting ratio (final / peak)")
    ax.axhline(1.0, color="k", lw=0.5)
    return _png(fig)


def curves(setting: Setting, runs: Sequence[tuple[str, Mapping[str, Any]]]) -> bytes | None:
    """Mean test accuracy over the tasks seen so far per epoch, one line per seed."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    drawn = False
    for run_dir, r in runs:
        path = os.path.join(run_dir, METRICS_FILE)
        if not os.path.exists(path):
            continue
        records = results_io.read_jsonl(path)
        if not records:
            continue
        x = [rec["global_epoch"] for rec in records]
        ax.plot(x, [float(np.mean(rec["test"])) for rec in records], label=f"seed {r.get('seed')}")
        if not drawn:
            for prev, rec in itertools.pairwise(records):
                if rec["task"] != prev["task"]:
                    ax.axvline(prev["global_epoch"] + 0.5, color="gray", ls=":", lw=0.8)
        drawn = True
    if not drawn:
        return None
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean test accuracy (tasks seen)")
    ax.set_title(setting.label)
    ax.legend(fontsize="small")
    return _png(fig)
