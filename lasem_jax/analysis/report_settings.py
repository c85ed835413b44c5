"""Which runs a report averages together (settings), their labels and the matching LASEM setting.

A setting is the results' `method`, `learner`, `dataset` and `num_tasks` plus every resolved
config field (`results.json["config"]`, flattened with dots: `em.fixed_prob`) that can change
a run's results. Runs of one setting differ only in `seed` and the fields of `IGNORED`, and
are averaged; everything else splits them. A field only some methods read (`METHOD_FIELDS`,
`LEARNER_FIELDS`, `PRIOR_FIELDS`, all derived from `lasem_jax.config.schema`) is part of the
settings of those methods only, and `learner` does not matter for methods that report learner
"none". A field some runs' results lack (an older
results.json) has the value `ABSENT` there, so those runs form a setting of their own.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from lasem_jax.config import defaults, schema

# Fields that cannot change results: the seed (averaged over) and where files are read or kept.
IGNORED = frozenset(f.name for f in schema.FIELDS if not f.affects_results)
# Every method reads `train.matmul_precision` and it is not ignored: "default" (TF32 on a GPU)
# and "highest" compute different numbers, so runs at different precisions are not averaged.
# Config fields replaced by the results' own `method`, `learner`, `dataset` and `num_tasks`.
_FROM_RESULTS = {"method", "learner", "data.name", "data.num_tasks"}
# Fields read only by one base learner (`run_config.learner_hparams`), by those learners: the
# results' learner decides ("none" for methods without one), and they stay in `Setting.base`.
LEARNER_FIELDS: dict[str, tuple[str, ...]] = {
    f.name: f.learners for f in schema.FIELDS if f.learners is not None
}
# LASEM fields read only by some priors (`steps.make_prior`), by those priors.
PRIOR_FIELDS: dict[str, tuple[str, ...]] = {
    f.name: f.priors for f in schema.FIELDS if f.priors is not None
}


def _by_section(table: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """`table` with one `section.` entry for each section whose every field has the same value.

    A section entry also covers fields of that section that the schema lacks.
    """
    out = {}
    for name, value in table.items():
        section, dot, _ = name.rpartition(".")
        fields = [f.name for f in schema.FIELDS if f.name.startswith(f"{section}{dot}")]
        whole = bool(dot) and all(table.get(field) == value for field in fields)
        out.setdefault(f"{section}." if whole else name, value)
    return out


# Fields (exact names, or sections ending in ".") read only by some methods, by those methods.
METHOD_FIELDS = _by_section(
    {
        f.name: f.methods
        for f in schema.FIELDS
        if f.methods is not None and f.learners is None and f.name not in _FROM_RESULTS
    }
)
ABSENT = "<absent>"  # not JSON, so no real value encodes to it
# Fields a label names without `name=` (num_tasks in the dataset name).
_HEAD = ("method", "learner", "dataset", "num_tasks", "static_config")


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"em": {"prior": "fixed"}}` -> `{"em.prior": "fixed"}` (nested mappings only)."""
    out = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _method_specific(name: str) -> tuple[str, ...] | None:
    """The methods that read field `name`, or None if every method does."""
    for field, methods in METHOD_FIELDS.items():
        if name == field or (field.endswith(".") and name.startswith(field)):
            return methods
    return None


def field_matters(name: str, method: str, learner: str, prior: Any) -> bool:
    """Whether config field `name` can change the results of a run.

    Args:
      name: the flattened field name, e.g. `em.fixed_prob`.
      method: the run's method.
      learner: the run's learner as its results give it ("none" for methods without one).
      prior: the run's `em.prior`.
    """
    if name in IGNORED or name in _FROM_RESULTS:
        return False
    methods = _method_specific(name)
    if methods is not None and method not in methods:
        return False
    if name in LEARNER_FIELDS and learner not in LEARNER_FIELDS[name]:
        return False
    return name not in PRIOR_FIELDS or prior in PRIOR_FIELDS[name]


@dataclasses.dataclass(frozen=True)
class Setting:
    """What makes runs comparable; the runs (seeds) of one setting are averaged.

    Attributes:
      fields: `(name, JSON-encoded value)` of `method`, `learner`, `dataset`, `num_tasks` and
        every config field that matters for this run, in results.json's order (the identity).
      dataset: the dataset name, with `_<num_tasks>` if it occurs with several task counts.
      context: the label's words after method and static configuration: the learner (unless
        "none"), the dataset if the report has several, and `name=value` for each other field
        that differs between the report's settings of this dataset.
    """

    fields: tuple[tuple[str, str], ...]
    dataset: str = dataclasses.field(compare=False)
    context: tuple[str, ...] = dataclasses.field(compare=False)

    def value(self, name: str) -> Any:
        """The decoded value of field `name` (None if the setting lacks it or it is absent)."""
        encoded = dict(self.fields).get(name, ABSENT)
        return None if encoded == ABSENT else json.loads(encoded)

    def text(self, name: str) -> str:
        """Field `name` as a label shows it: strings bare, other values compact JSON."""
        return _text(dict(self.fields)[name])

    @property
    def method(self) -> str:
        """The method, e.g. `lasem`."""
        return self.value("method")

    @property
    def learner(self) -> str:
        """The base learner, "none" for methods without one."""
        return self.value("learner")

    @property
    def static_config(self) -> str:
        """The static configuration of a static run, else ""."""
        return str(self.value("static_config") or "") if self.method == "static" else ""

    @property
    def label(self) -> str:
        """Method, static configuration (static runs), then `context`.

        E.g. `static top1 hps`, `lasem dfcnn em.prior=fixed em.fixed_prob=0.5`.
        """
        return " ".join(filter(None, (self.method, self.static_config, *self.context)))

    @property
    def file_label(self) -> str:
        """`label` for file names: `_` between words, `-` for other characters."""
        return re.sub(r"[^A-Za-z0-9._=,+-]", "-", self.label.replace(" ", "_"))

    @property
    def base(self) -> tuple[tuple[str, str], ...]:
        """The fields every method shares (equal for a setting and its matching LASEM).

        That is `fields` without `method` and the method-specific fields (`METHOD_FIELDS`),
        with learner "none" read as "hps".
        """
        return tuple(
            (name, json.dumps("hps") if name == "learner" and value == '"none"' else value)
            for name, value in self.fields
            if name != "method" and _method_specific(name) is None
        )


def _sort_value(encoded: str) -> tuple[int, float, str]:
    """Numbers in numeric order, then other values by their JSON, then absent ones."""
    if encoded == ABSENT:
        return 2, 0.0, ""
    value = json.loads(encoded)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return 0, float(value), ""
    return 1, 0.0, encoded


def _sort_key(setting: Setting) -> tuple:
    fields = tuple((name, _sort_value(value)) for name, value in setting.fields)
    return setting.method, setting.learner, setting.dataset, fields


def _text(encoded: str) -> str:
    if encoded == ABSENT:
        return "absent"
    value = json.loads(encoded)
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _contexts(
    fields: Sequence[Mapping[str, str]], datasets: Sequence[str]
) -> list[tuple[str, ...]]:
    """`Setting.context` of each setting (its fields, its dataset as `Setting.dataset`).

    A field is named where it differs between settings of the same dataset that have it.
    """
    values = collections.defaultdict(set)
    for f, dataset in zip(fields, datasets, strict=True):
        for name, value in f.items():
            values[dataset, name].add(value)
    several_datasets = len(set(datasets)) > 1
    out = []
    for f, dataset in zip(fields, datasets, strict=True):
        parts = [_text(f["learner"])] if f["learner"] != '"none"' else []
        parts += [dataset] if several_datasets else []
        varying = [n for n in f if len(values[dataset, n]) > 1 and n not in _HEAD]
        parts += [f"{name}={_text(f[name])}" for name in varying]
        out.append(tuple(parts))
    return out


def group_runs(
    runs: Sequence[tuple[str, Mapping[str, Any]]],
) -> dict[Setting, list[tuple[str, Mapping[str, Any]]]]:
    """Groups `(run_dir, results)` pairs by `Setting`, sorted by setting; runs keep their order."""
    flat = [flatten(r.get("config") or {}) for _, r in runs]
    universe = list(dict.fromkeys(name for f in flat for name in f))
    task_counts = collections.defaultdict(set)
    for _, r in runs:
        task_counts[r["dataset"]].add(r.get("num_tasks"))
    keys: dict[tuple, list] = {}
    for (run_dir, r), config in zip(runs, flat, strict=True):
        method, learner = r["method"], r["learner"]
        fields = {"method": method, "learner": learner, "dataset": r["dataset"]}
        fields["num_tasks"] = r.get("num_tasks")
        prior = config.get("em.prior")
        encoded = {name: json.dumps(value, sort_keys=True) for name, value in fields.items()}
        for name in universe:
            if field_matters(name, method, learner, prior):
                present = name in config
                encoded[name] = json.dumps(config[name], sort_keys=True) if present else ABSENT
        dataset = r["dataset"]
        if len(task_counts[dataset]) > 1:
            dataset = f"{dataset}_{r.get('num_tasks')}"
        key = tuple(encoded.items())
        keys.setdefault(key, [dataset, []])[1].append((run_dir, r))
    contexts = _contexts([dict(k) for k in keys], [d for d, _ in keys.values()])
    groups = {
        Setting(key, dataset, context): members
        for (key, (dataset, members)), context in zip(keys.items(), contexts, strict=True)
    }
    return dict(sorted(groups.items(), key=lambda item: _sort_key(item[0])))


def _default_lasem(setting: Setting) -> bool:
    """Whether every LASEM-specific field of `setting` has the default config's value."""
    default = flatten(defaults.default_config().to_dict())
    specific = [(n, v) for n, v in setting.fields if "lasem" in (_method_specific(n) or ())]
    return all(n in default and json.dumps(default[n], sort_keys=True) == v for n, v in specific)


def match_lasem(setting: Setting, settings: Sequence[Setting]) -> tuple[Setting | None, str | None]:
    """The LASEM setting `setting` is compared with (itself for LASEM settings).

    Other settings match the LASEM setting with equal `Setting.base`: every field but the
    method-specific ones (`method`, `static_config`, `model.partition`, `em.*` and the sections
    of other methods); a setting of learner "none" matches LASEM HPS.

    Where several LASEM settings match (a study's ablations), the one whose LASEM-specific
    fields (`em.*`, `model.partition`) all have their default values is the match.

    Returns:
      `(lasem_setting, None)` for a unique match, else `(None, note)` with the note
      `no LASEM setting matches <label>` or `several LASEM settings match <label>: <a>; <b>`.
    """
    if setting.method == "lasem":
        return setting, None
    found = [s for s in settings if s.method == "lasem" and s.base == setting.base]
    if len(found) == 1:
        return found[0], None
    if not found:
        return None, f"no LASEM setting matches {setting.label}"
    paper = [s for s in found if _default_lasem(s)]
    if len(paper) == 1:  # A study's ablations beside the paper's LASEM: compare with that.
        return paper[0], None
    names = "; ".join(s.label for s in found)
    return None, f"several LASEM settings match {setting.label}: {names}"
