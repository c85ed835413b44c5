"""Loading a model or a checkpoint runs nothing its files name, and damaged files get LoadError.

`tests/data/legacy_8257345` holds what main at 8257345 wrote for `configs/default.py:tiny`
(`model/`, the last checkpoint and `results.json`): the files of that format keep loading, and
a few hundred mutations of them (dangerous type names, swapped node kinds, bad array indices,
dropped, resized or retyped arrays, cut JSON, deep nesting, huge numbers, edited metadata and
orbax metadata) each raise `lasem_jax.LoadError` while a sentinel named in the files never runs.
"""

import copy
import json
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import orbax.checkpoint as ocp
import pytest

import lasem_jax
from configs import default
from lasem_jax.data import make_tasks
from lasem_jax.storage import tree_io

LEGACY = os.path.join(os.path.dirname(__file__), "data", "legacy_8257345")
CHECKPOINT = "checkpoints/0000000015"
SENTINEL_MODULE = "lasem_sentinel_mod"


@pytest.fixture
def sentinel(tmp_path, monkeypatch):
    """A path that exists only if code named in a file ran (a module, a shell command)."""
    path = tmp_path / "SENTINEL"
    module_dir = tmp_path / "modules"
    module_dir.mkdir()
    (module_dir / f"{SENTINEL_MODULE}.py").write_text(
        f"open({str(path)!r}, 'a').write('imported')\n"
        "class Thing:\n    pass\n"
        "def factory(**kwargs):\n    return None\n"
    )
    monkeypatch.syspath_prepend(str(module_dir))
    yield path
    sys.modules.pop(SENTINEL_MODULE, None)


def _dangerous_nodes(path):
    """Nodes that name a callable which would create `path` if a loader called it."""
    touch = f"touch {path}"
    named = {
        "subprocess:run": {"args": {"value": touch}, "shell": {"value": True}},
        "os:system": {"command": {"value": touch}},
        "posix:system": {"command": {"value": touch}},
        "builtins:eval": {"source": {"value": f"open({str(path)!r}, 'w')"}},
        "builtins:exec": {"source": {"value": f"open({str(path)!r}, 'w')"}},
        "pathlib:Path.touch": {"self": {"value": str(path)}},
        f"{SENTINEL_MODULE}:Thing": {},
        f"{SENTINEL_MODULE}:factory": {"width": {"value": 1.0}},
    }
    return [{"namedtuple": name, "fields": fields} for name, fields in named.items()]


def _nodes(node, out):
    """Every node of a skeleton, as (container, key) pairs, depth first."""
    if not isinstance(node, dict):
        return out
    children = node.get("dict") or node.get("fields") or {}
    items = children.items() if isinstance(children, dict) else []
    for key, child in items:
        out.append((children, key))
        _nodes(child, out)
    for kind in ("list", "tuple"):
        for i, child in enumerate(node.get(kind, [])):
            out.append((node[kind], i))
            _nodes(child, out)
    return out


def _skeleton_mutations(skeleton, sentinel, rng):
    """(name, new skeleton text) pairs: each is a skeleton no loader may accept."""
    out = []
    for node in _dangerous_nodes(sentinel):
        for where in range(3):
            s = copy.deepcopy(skeleton)
            container, key = rng.choice(_nodes(s["tree"], []))
            if where == 0:
                container[key] = node
            elif where == 1:
                s["tree"] = node
            else:
                container[key] = {"namedtuple": node["namedtuple"], "fields": {"x": container[key]}}
            out.append((f"name {node['namedtuple']} #{where}", json.dumps(s)))
    kinds = ["value", "dict", "namedtuple", "list", "tuple", "array"]
    for i in range(80):
        s = copy.deepcopy(skeleton)
        container, key = rng.choice(_nodes(s["tree"], []))
        node = container[key]
        old = next(k for k in kinds if k in node)
        new = rng.choice([k for k in kinds if k != old])
        node[new] = node.pop(old)
        out.append((f"kind {old}->{new} #{i}", json.dumps(s)))
    for i, bad in enumerate([10**6 + 7, -1, True, 1.5, "0", None, 10**30, 1e308, [0], {"a": 0}]):
        s = copy.deepcopy(skeleton)
        container, key = rng.choice([(c, k) for c, k in _nodes(s["tree"], []) if "array" in c[k]])
        container[key]["array"] = bad
        out.append((f"array index {bad!r} #{i}", json.dumps(s)))
    text = json.dumps(skeleton)
    for i in range(50):
        out.append((f"truncated #{i}", text[: rng.randrange(0, len(text) - 1)]))
    head = '{"format": 2, "meta": {}, "tree": '
    for depth in (tree_io.MAX_DEPTH + 2, 100_000):
        lists = '{"list": [' * depth + "null" + "]}" * depth
        dicts = '{"dict": {"a": ' * depth + "null" + "}}" * depth
        out.append((f"nested lists {depth}", head + lists + "}"))
        out.append((f"nested dicts {depth}", head + dicts + "}"))
    for i, value in enumerate([10**30, -1, "2", None, True, 3]):
        s = copy.deepcopy(skeleton)
        s["format"] = value
        out.append((f"format {value!r} #{i}", json.dumps(s)))
    out.append(("huge literal", '{"format": ' + "9" * 5000 + ", " + text[1:]))
    out.append(("not an object", "[1, 2, 3]"))
    out.append(("no meta", json.dumps({"tree": skeleton["tree"]})))
    return out


def _meta_mutations():
    """(name, edit) pairs for a model's metadata; each edit makes it unloadable."""
    edits = {
        "format 2": lambda m: m.update(format=2),
        "method os:system": lambda m: m.update(method="os:system"),
        "method number": lambda m: m.update(method=7),
        "arch import path": lambda m: m["config"]["model"].update(
            arch=f"{SENTINEL_MODULE}:factory"
        ),
        "arch os:system": lambda m: m["config"]["model"].update(arch="os:system"),
        "arch unknown": lambda m: m["config"]["model"].update(arch="no_such_net"),
        "learner unknown": lambda m: m["config"].update(learner="subprocess:run"),
        "width text": lambda m: m["config"]["model"].update(width="wide"),
        "width zero": lambda m: m["config"]["model"].update(width=0),
        "no train section": lambda m: m["config"].pop("train"),
        "no model section": lambda m: m["config"].pop("model"),
        "config list": lambda m: m.update(config=[1, 2]),
        "tasks empty": lambda m: m.update(tasks=[]),
        "task dropped": lambda m: m["tasks"].pop(),
        "task added": lambda m: m["tasks"].append(dict(m["tasks"][0])),
        "classes huge": lambda m: m["tasks"][0].update(num_classes=10**30),
        "classes zero": lambda m: m["tasks"][0].update(num_classes=0),
        "classes more": lambda m: m["tasks"][0].update(num_classes=5),
        "classes text": lambda m: m["tasks"][0].update(num_classes="3"),
        "shape 2d": lambda m: m["tasks"][0].update(image_shape=[8, 8]),
        "shape huge": lambda m: m["tasks"][0].update(image_shape=[10**30, 8, 1]),
        "channels 3": lambda m: m["tasks"][0].update(image_shape=[8, 8, 3]),
        "name missing": lambda m: m["tasks"][0].pop("name"),
        "chosen 2": lambda m: m["chosen_configs"][0].__setitem__(0, 2),
        "chosen short": lambda m: m["chosen_configs"].pop(),
        "chosen text": lambda m: m.update(chosen_configs="0110"),
        "chosen missing": lambda m: m.update(chosen_configs=None),
    }
    return list(edits.items())


def _copy(src, dst):
    shutil.copytree(src, dst)
    return str(dst)


def _rewrite_arrays(model_dir, edit):
    """Re-saves `model_dir/arrays` with `edit(leaves)` applied (drop, resize, retype)."""
    arrays = os.path.join(model_dir, tree_io.ARRAYS)
    leaves = dict(ocp.StandardCheckpointer().restore(os.path.abspath(arrays)))
    edit(leaves)
    shutil.rmtree(arrays)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(os.path.abspath(arrays), leaves)
    checkpointer.wait_until_finished()


ARRAY_EDITS = {
    "leaf dropped": lambda leaves: leaves.pop(sorted(leaves)[3]),
    "leaf resized": lambda leaves: leaves.update(leaf_000002=np.zeros((3, 3, 1, 9), np.float32)),
    "leaf flattened": lambda leaves: leaves.update(
        {k: v.ravel() for k, v in leaves.items() if v.ndim > 1}
    ),
    "leaf float64": lambda leaves: leaves.update(
        leaf_000001=leaves["leaf_000001"].astype(np.float64)
    ),
    "leaf int32": lambda leaves: leaves.update(leaf_000001=leaves["leaf_000001"].astype(np.int32)),
    "all dropped": lambda leaves: leaves.clear() or leaves.update(other=np.zeros(1)),
}


def _expect_load_error(load, sentinel, name):
    with pytest.raises(lasem_jax.LoadError):
        load()
        pytest.fail(f"{name}: loaded without an error")
    assert not sentinel.exists(), f"{name}: code named in the files ran"


def _load_and_predict(workdir):
    model = lasem_jax.load_trained(workdir)
    model.predict(0, np.zeros((2, 8, 8, 1), np.float32))


def test_untouched_files_of_both_formats_load(tmp_path):
    """The legacy model loads and predicts; re-saved in the current format it gives the same."""
    legacy = lasem_jax.load_trained(LEGACY)
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype(np.float32)
    tree, meta = tree_io.load(os.path.join(LEGACY, "model"))
    tree_io.save(str(tmp_path / "model"), tree, meta)
    with open(tmp_path / "model" / tree_io.SKELETON) as f:
        assert json.load(f)["format"] == tree_io.FORMAT
    current = lasem_jax.load_trained(str(tmp_path))
    for k in range(legacy.num_tasks):
        np.testing.assert_array_equal(legacy.predict(k, x), current.predict(k, x))


def test_legacy_model_reproduces_its_final_accuracy(tiny):
    """The model/ main at 8257345 wrote evaluates its tasks to that run's final accuracy."""
    _, tasks = tiny
    model = lasem_jax.load_trained(LEGACY)
    with open(os.path.join(LEGACY, "results.json")) as f:
        expected = json.load(f)["final_accuracy"]
    got = [model.evaluate(k, t.x_test, t.y_test) for k, t in enumerate(tasks)]
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("fmt", ["legacy", "current"])
def test_crafted_model_skeletons_raise_load_error(tmp_path, sentinel, fmt):
    """Hundreds of skeleton mutations: LoadError each time, and the sentinel never appears."""
    model_dir = _copy(os.path.join(LEGACY, "model"), tmp_path / "base" / "model")
    if fmt == "current":
        tree_io.save(model_dir, *tree_io.load(model_dir))
    with open(os.path.join(model_dir, tree_io.SKELETON)) as f:
        skeleton = json.load(f)
    mutations = _skeleton_mutations(skeleton, sentinel, random.Random(fmt))
    assert len(mutations) > 150
    skeleton_path = os.path.join(model_dir, tree_io.SKELETON)
    for name, text in mutations:
        with open(skeleton_path, "w") as f:
            f.write(text)
        _expect_load_error(lambda: _load_and_predict(str(tmp_path / "base")), sentinel, name)


def test_crafted_model_metadata_and_arrays_raise_load_error(tmp_path, sentinel):
    """Edited metadata, orbax metadata and arrays: LoadError each time, nothing imported."""
    model_dir = os.path.join(LEGACY, "model")
    with open(os.path.join(model_dir, tree_io.SKELETON)) as f:
        skeleton = json.load(f)
    cases = []
    for name, edit in _meta_mutations():
        s = copy.deepcopy(skeleton)
        edit(s["meta"])
        cases.append((name, lambda d, s=s: _write_json(os.path.join(d, tree_io.SKELETON), s)))
    for name, edit in ARRAY_EDITS.items():
        cases.append((name, lambda d, e=edit: _rewrite_arrays(d, e)))
    for name, edit in ARRAY_EDITS.items():  # the current format's skeleton records shapes
        cases.append((f"{name}, current format", lambda d, e=edit: _resave_then(d, e)))
    cases.append(("arrays removed", lambda d: shutil.rmtree(os.path.join(d, tree_io.ARRAYS))))
    cases.append(("skeleton removed", lambda d: os.remove(os.path.join(d, tree_io.SKELETON))))
    cases.append(("skeleton a directory", lambda d: _replace_with_dir(d)))
    for i, (name, edit) in enumerate(cases):
        workdir = tmp_path / f"case{i}"
        edit(_copy(model_dir, workdir / "model"))
        _expect_load_error(lambda w=workdir: _load_and_predict(str(w)), sentinel, name)


def test_orbax_metadata_naming_types_imports_nothing(tmp_path, sentinel):
    """Type names in orbax's own metadata are not imported (orbax reads them or ignores them)."""
    edits = {
        "handler": ("_CHECKPOINT_METADATA", "item_handlers", f"{SENTINEL_MODULE}.Thing"),
        "value type": ("_METADATA", None, f"{SENTINEL_MODULE}:Thing"),
    }
    for i, (file, field, value) in enumerate(edits.values()):
        workdir = tmp_path / f"case{i}"
        _edit_orbax(_copy(os.path.join(LEGACY, "model"), workdir / "model"), file, field, value)
        try:
            _load_and_predict(str(workdir))
        except lasem_jax.LoadError:
            pass
        assert not sentinel.exists()


def _write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f)


def _resave_then(model_dir, edit):
    tree_io.save(model_dir, *tree_io.load(model_dir))
    _rewrite_arrays(model_dir, edit)


def _replace_with_dir(model_dir):
    os.remove(os.path.join(model_dir, tree_io.SKELETON))
    os.mkdir(os.path.join(model_dir, tree_io.SKELETON))


def _edit_orbax(model_dir, file, field, value):
    path = os.path.join(model_dir, tree_io.ARRAYS, file)
    with open(path) as f:
        data = json.load(f)
    if field is not None:
        data[field] = value
    else:
        for entry in data["tree_metadata"].values():
            entry["value_metadata"]["value_type"] = value
    _write_json(path, data)


def test_import_path_arch_needs_consent(tmp_path, sentinel):
    """A saved import-path model.arch is refused unless allow_imports=True, which imports it."""
    workdir = tmp_path / "w"
    model_dir = _copy(os.path.join(LEGACY, "model"), workdir / "model")
    with open(os.path.join(model_dir, tree_io.SKELETON)) as f:
        skeleton = json.load(f)
    skeleton["meta"]["config"]["model"]["arch"] = f"{SENTINEL_MODULE}:factory"
    _write_json(os.path.join(model_dir, tree_io.SKELETON), skeleton)
    with pytest.raises(lasem_jax.ImportNotAllowedError, match="allow_imports=True"):
        lasem_jax.load_trained(str(workdir))
    assert not sentinel.exists()
    with pytest.raises(lasem_jax.LoadError, match="BlockNetwork"):
        lasem_jax.load_trained(str(workdir), allow_imports=True)
    assert sentinel.read_text() == "imported"


def test_evaluate_launcher_reports_one_error_line(tmp_path, sentinel):
    """launch.evaluate on a crafted model: one `Error:` line naming the type, exit status 2."""
    workdir = tmp_path / "w"
    model_dir = _copy(os.path.join(LEGACY, "model"), workdir / "model")
    with open(os.path.join(model_dir, tree_io.SKELETON)) as f:
        skeleton = json.load(f)
    skeleton["tree"]["dict"]["shared"] = _dangerous_nodes(sentinel)[0]
    _write_json(os.path.join(model_dir, tree_io.SKELETON), skeleton)
    proc = subprocess.run(
        [sys.executable, "-m", "launch.evaluate", f"--workdir={workdir}"],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "subprocess:run" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not sentinel.exists()


@pytest.fixture(scope="module")
def tiny():
    """The config and tasks the legacy checkpoint was written for."""
    config = default.get_config("tiny")
    return config, make_tasks(config.data, seed=int(config.seed))


def _checkpoint_mutations(skeleton, sentinel, rng):
    out = _skeleton_mutations(skeleton, sentinel, rng)[::2]
    edits = {
        "task -1": lambda m: m.update(task=-1),
        "task huge": lambda m: m.update(task=10**30),
        "task past the end": lambda m: m.update(task=5),
        "epoch text": lambda m: m.update(epoch="3"),
        "epoch too many": lambda m: m.update(epoch=4),
        "global_epoch bool": lambda m: m.update(global_epoch=True),
        "records text": lambda m: m.update(records="x"),
        "kept short": lambda m: m["kept"].pop(),
        "chosen short": lambda m: m["chosen"].pop(),
        "chosen ints": lambda m: m["chosen"][0].__setitem__(0, 1),
        "alive long": lambda m: m["alive"].append(True),
        "elapsed text": lambda m: m.update(elapsed="1s"),
        "no prior_history": lambda m: m.pop("prior_history"),
        "task earlier": lambda m: m.update(task=3),
    }
    for name, edit in edits.items():
        s = copy.deepcopy(skeleton)
        edit(s["meta"])
        out.append((name, json.dumps(s)))
    return out


def test_crafted_checkpoints_raise_load_error_on_resume(tmp_path, sentinel, tiny):
    """Resuming from a crafted (only) checkpoint raises LoadError naming --restart; nothing runs."""
    config, tasks = tiny
    workdir = tmp_path / "w"
    ckpt = _copy(os.path.join(LEGACY, CHECKPOINT), workdir / CHECKPOINT)
    with open(os.path.join(ckpt, tree_io.SKELETON)) as f:
        skeleton = json.load(f)
    mutations = _checkpoint_mutations(skeleton, sentinel, random.Random(1))
    assert len(mutations) > 80
    for name, text in mutations:
        with open(os.path.join(ckpt, tree_io.SKELETON), "w") as f:
            f.write(text)
        with pytest.raises(lasem_jax.LoadError, match="--restart"):
            lasem_jax.train_lifelong(tasks, config, workdir=str(workdir))
            pytest.fail(f"{name}: resumed without an error")
        assert not sentinel.exists(), f"{name}: code named in the files ran"
        assert not os.path.exists(workdir / "results.json"), name


def test_legacy_checkpoint_resumes_to_the_same_results(tmp_path, tiny):
    """The checkpoint main at 8257345 wrote resumes and finishes as that run did."""
    config, tasks = tiny
    workdir = tmp_path / "w"
    _copy(os.path.join(LEGACY, "checkpoints"), workdir / "checkpoints")
    results = lasem_jax.train_lifelong(tasks, config, workdir=str(workdir))
    with open(os.path.join(LEGACY, "results.json")) as f:
        expected = json.load(f)
    assert results["chosen_configs"] == expected["chosen_configs"]
    np.testing.assert_allclose(results["final_accuracy"], expected["final_accuracy"], atol=1e-6)
    np.testing.assert_allclose(results["peak_accuracy"], expected["peak_accuracy"], atol=1e-6)
