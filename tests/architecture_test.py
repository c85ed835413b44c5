"""Tests of the package's shape: layers import downwards only, no cycles, a pure math layer."""

import ast
import pathlib
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "lasem_jax"
# Lowest first: a module imports only from its own layer or lower ones.
LAYERS = (
    "base",  # lasem_jax/errors.py, task.py, interrupt.py
    "core",
    "native",
    "storage",
    "data",
    "networks",
    "engine",
    "config",
    "baselines",
    "training",
    "analysis",
    "experiments",
)
THIRD_PARTY_OF_CORE = {"jax", "numpy"}


def _modules() -> dict[str, ast.Module]:
    """Every module of the package, by dotted name, parsed (nothing is imported)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(encoding="utf-8"))
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "top"  # lasem_jax/__init__.py, the public API: may import anything
    if len(parts) == 2 and (PACKAGE / f"{parts[1]}.py").exists():
        return "base"
    return parts[1]


def _imports(tree: ast.Module) -> list[tuple[str, bool]]:
    """`(imported module, at module level)` of every import; `if TYPE_CHECKING:` is not one."""
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
            found.extend((n, id(node) in top) for n in [node.module, *names])
        elif isinstance(node, ast.Import):
            found.extend((a.name, id(node) in top) for a in node.names)
    return found


MODULES = _modules()


def _internal(name: str) -> str | None:
    """The package module `name` refers to (a module or a name in one), or None."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def test_every_module_is_in_a_layer_and_few_sit_at_the_top():
    """Modules live in named subpackages; at most 8 sit directly in lasem_jax/."""
    assert all(_layer(m) in (*LAYERS, "top") for m in MODULES), sorted(MODULES)
    direct = [p.name for p in PACKAGE.glob("*.py")]
    assert len(direct) <= 8, direct


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) != "top"))
def test_imports_go_down_and_sit_at_module_level(module):
    """No import reaches a higher layer; no package import hides inside a function."""
    mine = LAYERS.index(_layer(module))
    for name, at_top in _imports(MODULES[module]):
        target = _internal(name) if name.startswith("lasem_jax") else None
        if target is None or target == "lasem_jax":
            continue
        assert at_top, f"{module} imports {name} inside a function"
        assert LAYERS.index(_layer(target)) <= mine, f"{module} imports upwards: {name}"


def test_no_import_cycle():
    """The package's module graph (module-level imports) has no cycle."""
    graph = {
        m: {_internal(n) for n, _ in _imports(tree) if n.startswith("lasem_jax.")} - {None, m}
        for m, tree in MODULES.items()
    }
    graph = {
        m: {t for t in deps if t != "lasem_jax" and not m.startswith(t + ".")}
        for m, deps in graph.items()
    }
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in graph[m]:
            assert state.get(t) != 1, f"import cycle: {' -> '.join([*path, m, t])}"
            if t not in state:
                visit(t, [*path, m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def test_core_imports_only_jax_numpy_and_itself():
    """The math layer imports neither flax nor ml_collections: only jax, numpy, the stdlib."""
    for module, tree in MODULES.items():
        if _layer(module) != "core":
            continue
        for name, _ in _imports(tree):
            root = name.split(".")[0]
            if root == "lasem_jax":
                assert _layer(_internal(name)) == "core", f"{module} imports {name}"
            else:
                assert root in THIRD_PARTY_OF_CORE or root in sys.stdlib_module_names, (
                    f"{module} imports {name}"
                )


# The entry points that take the launchers' ml_collections ConfigDict and freeze it once
# (`lasem_jax.core.frozen`); every module below them receives the frozen config.
CONFIG_DICT_MODULES = {
    "lasem_jax.config.defaults",  # builds the default ConfigDict (the config files' schema)
    "lasem_jax.experiments.study",  # a study's runs as ConfigDicts, as the launchers' configs
    "lasem_jax.training.trainer",  # `train_lifelong` & co. accept a ConfigDict and freeze it
}


def test_few_modules_import_ml_collections():
    """At most 4 modules import ml_collections: the entry points that freeze the config."""
    found = {
        module
        for module, tree in MODULES.items()
        if any(name.split(".")[0] == "ml_collections" for name, _ in _imports(tree))
    }
    assert found == CONFIG_DICT_MODULES and len(found) <= 4, sorted(found)
