"""A report's figures (the paper's Fig. 4, 5, 8, 9 and accuracy curves) from summary rows.

Each function returns a matplotlib `Figure` (None without data for it); `to_png` renders one.
The rows are `reports.summarize`'s.
"""

from __future__ import annotations

import collections
import io
import itertools
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lasem_jax.core import search_space
from lasem_jax.storage import files, results_io

if TYPE_CHECKING:
    from lasem_jax.analysis.report_settings import Setting

Row = Mapping[str, Any]  # a row of `reports.summarize`


def to_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (laid out tightly, 100 dpi)."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def by_dataset(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """Groups summary rows by their dataset label."""
    out = collections.defaultdict(list)
    for row in rows:
        out[row["dataset"]].append(row)
    return dict(out)


def _static_families(rows: Sequence[Row]) -> list[list[Row]]:
    """The static rows grouped by their shared fields (`base`): one column of Fig. 4 / 9 each."""
    families: dict[tuple, list[Row]] = {}
    for row in rows:
        if row["method"] == "static":
            families.setdefault(row["base"], []).append(row)
    return list(families.values())


def _matching_lasem(family: Sequence[Row], rows: Sequence[Row]) -> tuple[Row | None, str | None]:
    """The LASEM row a static family is compared with, or None and a note for the title."""
    label = family[0]["lasem_setting"]
    if label is None:
        return None, f"{family[0]['context']}: no unique matching LASEM setting (see table.md)"
    return next(r for r in rows if r["setting"] == label), None


def _title(ax: Axes, main: str, notes: Sequence[str]) -> None:
    ax.set_title("\n".join([main, *notes]), fontsize="medium" if not notes else "small")


def fig4(rows: Sequence[Row]) -> Figure | None:
    """Fig. 4: static configurations' peak accuracy (box) with `all`, LASEM and brute force.

    One column per static family (static rows equal in every field but the configuration);
    LASEM and brute force are marked where exactly one setting of theirs matches the family,
    and the title names the families without a LASEM match.
    """
    families = _static_families(rows)
    if not families:
        return None
    fig = Figure(figsize=(3.5 + 1.6 * len(families), 4))
    ax = fig.add_subplot()
    drawn: set[str] = set()

    def mark(x: int, row: Row, style: str, name: str) -> None:
        label = None if name in drawn else name
        ax.plot(x, row["mean_peak_accuracy"], style, ms=10, label=label)
        drawn.add(name)

    notes = []
    for i, family in enumerate(families, start=1):
        ax.boxplot([r["mean_peak_accuracy"] for r in family], positions=[i], widths=0.5)
        for r in family:
            if r["static_config"] == "all":
                mark(i, r, "bs", "all")
        lasem, note = _matching_lasem(family, rows)
        if lasem is not None:
            mark(i, lasem, "r*", "LASEM")
        notes += [note] if note else []
        bf = [r for r in rows if r["method"] == "brute_force" and r["base"] == family[0]["base"]]
        if len(bf) == 1:
            mark(i, bf[0], "g^", "brute force")
    ax.set_xticks(range(1, len(families) + 1), [f[0]["context"] for f in families])
    ax.set_ylabel("mean peak accuracy")
    versus = [name for name in ("LASEM", "brute force") if name in drawn]
    main = f"{rows[0]['dataset']}: static configs (box)"
    _title(ax, main + (f" vs {', '.join(versus)}" if versus else ""), notes)
    if drawn:
        ax.legend()
    return fig


def fig5(rows: Sequence[Row], groups: Mapping[Setting, Sequence]) -> Figure | None:
    """Fig. 5: fraction of tasks transferring each layer (0 = input side) per LASEM setting."""
    dataset = rows[0]["dataset"]
    lasem = [
        (s, runs) for s, runs in groups.items() if s.method == "lasem" and s.dataset == dataset
    ]
    if not lasem:
        return None
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    width = 0.8 / len(lasem)
    num_layers = 0
    for i, (setting, runs) in enumerate(lasem):
        frac = np.mean([r["transfer_fraction_per_layer"] for _, r in runs], axis=0)
        x = np.arange(frac.size) + (i - (len(lasem) - 1) / 2) * width
        ax.bar(x, frac, width, label=setting.label)
        num_layers = max(num_layers, frac.size)
    ax.set_xticks(range(num_layers))
    ax.set_xlabel("layer (0 = input side)")
    ax.set_ylabel("fraction of tasks transferring")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{dataset}: layers LASEM transfers (mean over seeds)")
    ax.legend(fontsize="small")
    return fig


def fig8(rows: Sequence[Row], groups: Mapping[Setting, Sequence]) -> Figure | None:
    """Fig. 8: histogram of the configurations LASEM chose (all tasks and seeds)."""
    dataset = rows[0]["dataset"]
    lasem = [
        (s, runs) for s, runs in groups.items() if s.method == "lasem" and s.dataset == dataset
    ]
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
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("tasks")
        ax.set_title(f"{setting.label}: chosen configurations (1 = transfer)")
    return fig


def fig9(rows: Sequence[Row]) -> Figure | None:
    """Fig. 9: forgetting ratio of static `all`, the best static (peak accuracy) and LASEM.

    Per static family as `fig4`; the LASEM bar only where exactly one LASEM setting matches
    (the title names the families without one). Error bars: the 95% CI, none for one seed.
    """
    bars, notes = [], []  # (family context, kind, row)
    for family in _static_families(rows):
        context = family[0]["context"]
        bars += [(context, "all", r) for r in family if r["static_config"] == "all"]
        best = max(family, key=lambda r: r["mean_peak_accuracy"])
        bars.append((context, f"best static ({best['static_config']})", best))
        lasem, note = _matching_lasem(family, rows)
        bars += [(context, "LASEM", lasem)] if lasem is not None else []
        notes += [note] if note else []
    if not bars:
        return None
    names = ["\n".join([*context.split(), kind]) for context, kind, _ in bars]
    per_bar = max(0.7, 0.07 * max(len(line) for n in names for line in n.split("\n")))
    fig = Figure(figsize=(2 + per_bar * len(bars), 4.5))
    ax = fig.add_subplot()
    colors = {"all": "tab:blue", "LASEM": "tab:red"}
    for i, (_, kind, r) in enumerate(bars):
        ci = r["mean_forgetting_ratio_ci"]
        color = colors.get(kind, "tab:gray")
        ax.bar(i, r["mean_forgetting_ratio"], yerr=ci, color=color, capsize=3)
    ax.set_xticks(range(len(bars)), names, fontsize="small")
    ax.set_ylabel("mean forgetting ratio (final / peak)")
    ax.axhline(1.0, color="k", lw=0.5)
    _title(ax, f"{rows[0]['dataset']}: forgetting (error bars: 95% CI)", notes)
    return fig


def curves(setting: Setting, runs: Sequence[tuple[str, Mapping[str, Any]]]) -> Figure | None:
    """Mean test accuracy over the tasks seen so far per epoch, one line per seed."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    drawn = False
    for run_dir, r in runs:
        path = files.path(run_dir, files.METRICS)
        if not os.path.exists(path):
            continue
        records = results_io.read_jsonl(path)
        if not records:
            continue
        records = [rec for rec in records if None not in rec["test"]]  # Fully evaluated epochs.
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
    return fig


def posterior_trajectories(
    setting: Setting, runs: Sequence[tuple[str, Mapping[str, Any]]], max_tasks: int = 6
) -> Figure | None:
    """LASEM's per-epoch posterior on the first `max_tasks` tasks of the lowest-seed run.

    One panel per task: the marginal probability that each layer transfers (the epoch's mean
    posterior times the configurations) and, dashed, the mean posterior of the configuration the
    task finally chose. None without per-epoch posteriors (`posterior` in metrics.jsonl).
    """
    found = [(r.get("seed"), d, r) for d, r in runs if r.get("chosen_configs")]
    for _, run_dir, r in sorted(found, key=lambda item: item[0]):
        path = files.path(run_dir, files.METRICS)
        records = results_io.read_jsonl(path) if os.path.exists(path) else []
        records = [rec for rec in records if rec.get("posterior")]
        if records:
            return _posterior_panels(setting, r, records, max_tasks)
    return None


def _posterior_panels(
    setting: Setting, results: Mapping[str, Any], records: Sequence[dict], max_tasks: int
) -> Figure:
    chosen = np.asarray(results["chosen_configs"], bool)
    partition = (results.get("config") or {}).get("model", {}).get("partition")
    configs = search_space.enumerate_configs(chosen.shape[1], partition)
    tasks = sorted({rec["task"] for rec in records})[:max_tasks]
    fig = Figure(figsize=(2.6 * len(tasks), 3.2))
    for i, task in enumerate(tasks):
        ax = fig.add_subplot(1, len(tasks), i + 1, sharey=fig.axes[0] if i else None)
        mine = [rec for rec in records if rec["task"] == task]
        epochs = [rec["epoch"] for rec in mine]
        post = np.asarray([rec["posterior"] for rec in mine], np.float64)
        for layer, p in enumerate((post @ configs.astype(np.float64)).T):
            ax.plot(epochs, p, label=f"layer {layer} transfers")
        if task < len(chosen):
            index = search_space.config_index(configs, chosen[task])
            name = search_space.config_to_string(chosen[task])
            ax.plot(epochs, post[:, index], "k--", label="chosen config")
            ax.set_title(f"task {task}: chose {name}", fontsize="small")
        ax.set_xlabel("epoch")
        ax.set_ylim(-0.02, 1.02)
    fig.axes[0].set_ylabel("mean posterior")
    fig.axes[0].legend(fontsize="x-small")
    fig.suptitle(f"{setting.label}, seed {results.get('seed')}", fontsize="small")
    return fig
