"""Docs that cannot rot silently: the examples run, and every quoted command names real things."""

import functools
import json
import pathlib
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

import lasem_jax
from lasem_jax.config import defaults, schema

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
EXAMPLE_PAGES = [ROOT / "README.md", ROOT / "docs" / "getting-started.md"]
CODE_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


def _blocks(page: pathlib.Path, language: str) -> list[str]:
    return [code for lang, code in CODE_BLOCK.findall(page.read_text()) if lang == language]


EXAMPLES = [(p, i, code) for p in EXAMPLE_PAGES for i, code in enumerate(_blocks(p, "python"))]


def _check_readme_example(ns: dict) -> None:
    """The kept model evaluates task 0 to the run's final accuracy."""
    tasks, results, model = ns["tasks"], ns["results"], ns["model"]
    accuracy = model.evaluate(0, tasks[0].x_test, tasks[0].y_test)
    np.testing.assert_allclose(accuracy, results["final_accuracy"][0], atol=1e-6)
    assert len(results["chosen_configs"]) == len(tasks) == 2


def _check_all_configurations(ns: dict) -> None:
    """`apply_config` of configuration 5 equals row 5 of `apply_all`."""
    assert ns["logits"].shape == (16, 10, 10)
    np.testing.assert_allclose(ns["one"], ns["logits"][5], atol=1e-5)


def _check_own_tasks(ns: dict) -> None:
    assert len(ns["results"]["peak_accuracy"]) == 2
    assert ns["results"]["learner"] == "tf"


def _check_own_network(ns: dict) -> None:
    assert ns["logits"].shape == (8, 10, 3)
    assert lasem_jax.build_model("my_net", "hps", num_classes=3).num_layers == 3


CHECKS = {
    ("README.md", 0): _check_readme_example,
    ("getting-started.md", 0): _check_all_configurations,
    ("getting-started.md", 1): _check_own_tasks,
    ("getting-started.md", 2): _check_own_network,
}


def test_every_example_has_a_check():
    """A new example gets a check of what it shows (so none runs unchecked)."""
    assert {(p.name, i) for p, i, _ in EXAMPLES} == set(CHECKS)


@pytest.mark.parametrize(("page", "index", "code"), EXAMPLES, ids=lambda v: str(v)[-30:])
def test_example_runs(page, index, code, tmp_path, monkeypatch):
    """Each Python example runs as written (tiny widths; workdirs under a temporary folder)."""
    tiny = functools.partial(lambda make: defaults.apply_tiny(make()), defaults.default_config)
    monkeypatch.setattr(lasem_jax, "default_config", tiny)
    code = re.sub(r'"/tmp/([\w.-]+)"', lambda m: repr(str(tmp_path / m.group(1))), code)
    ns: dict = {}
    exec(compile(code, f"{page.name} example {index}", "exec"), ns)
    CHECKS[(page.name, index)](ns)


def _commands() -> list[tuple[str, str]]:
    """`(page, command)` of every shell command quoted in the README and docs/."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for code in _blocks(page, "bash"):
            joined = re.sub(r"\\\n\s*", " ", code)
            for line in joined.splitlines():
                line = line.split(" #")[0].strip()
                if line and not line.startswith("#"):
                    found += [(page.name, part.strip()) for part in re.split(r"&&|;", line)]
        inline = re.findall(r"`((?:srun )?python -m launch\.[^`]+)`", text)
        found += [(page.name, c) for c in inline]
    return [(p, c) for p, c in found if "launch." in c or "benchmarks/" in c]


COMMANDS = _commands()


@functools.cache
def _launcher_flags(module: str) -> frozenset[str]:
    """The absl flags a launcher defines (imported in a subprocess: launchers share FLAGS)."""
    code = f"import json, {module}; from absl import flags; print(json.dumps(list(flags.FLAGS)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return frozenset(json.loads(out.stdout.strip().splitlines()[-1]))


def _known_field(dotted: str) -> bool:
    """A config field (or section) of the default config or the schema's data fields."""
    fields = [f.name for f in schema.FIELDS]
    return any(f == dotted or f.startswith(dotted + ".") for f in fields)


def test_commands_were_found():
    """The collector sees the README's first command and the docs' launchers."""
    assert ("README.md", "python -m launch.train --workdir=/tmp/lasem_digits") in COMMANDS
    assert len({c.split()[2] for _, c in COMMANDS if c.startswith("python -m launch.")}) >= 5


@pytest.mark.parametrize(("page", "command"), COMMANDS)
def test_command_names_real_launchers_configs_and_flags(page, command):
    """Launchers, config files, benchmark scripts and flags quoted in the docs exist."""
    words = shlex.split(command, posix=True)
    module = next((w for w in words if w.startswith("launch.")), None)
    for word in words:
        if word.startswith("benchmarks/"):
            assert (ROOT / word).exists(), f"{page}: {word} does not exist"
    if module is None:
        return
    assert (ROOT / (module.replace(".", "/") + ".py")).exists(), f"{page}: no {module}"
    known = _launcher_flags(module)
    for word in words:
        if not word.startswith("--"):
            continue
        name, _, value = word[2:].partition("=")
        if name == "config":
            path = value.split(":")[0]
            placeholder = "<" in path or "$" in path
            assert placeholder or (ROOT / path).exists(), f"{page}: {path} does not exist"
        elif name.startswith("config."):
            assert _known_field(name[len("config.") :]), f"{page}: no config field {name}"
        else:
            plain = name[2:] if name.startswith("no") and name[2:] in known else name
            assert plain in known, f"{page}: {module} has no flag --{name}"


def test_config_files_named_in_the_docs_exist():
    """Every `configs/*.py` the docs mention is a file."""
    for page in PAGES:
        for path in re.findall(r"configs/[\w]+\.py", page.read_text()):
            assert (ROOT / path).exists(), f"{page.name}: {path} does not exist"
