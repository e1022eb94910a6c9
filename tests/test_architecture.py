"""The house has one-way floors (docs/architecture.md), and these tests keep it so.

``lint-imports`` checks the layers declared in ``pyproject.toml``; the tests here add what
import-linter cannot see: every module sits on a declared floor, no module imports itself back
through others (also within a floor), no private ``_name`` crosses a package, modules import
names from the module that defines them rather than through a package's lazy name table, and the
name tables resolve.
"""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "galwidgets"
#: Package ``__init__`` files that are lazy name tables (``galwidgets._lazy.attach``), not code.
NAME_TABLES = ("galwidgets", "galwidgets.data", "galwidgets.diffusion", "galwidgets.models",
               "galwidgets.training")

pytestmark = pytest.mark.skipif(not PACKAGE.is_dir(), reason="needs the source checkout")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """``(module imported from, names, line)`` for every import in the module, functions included."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.append((module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found.extend((a.name, [], node.lineno) for a in node.names)
    return found


def _dependencies(name: str) -> set[str]:
    deps = set()
    for module, names, _ in _imports(name, MODULES[name]):
        for imported in names or [None]:
            sub = f"{module}.{imported}" if imported else module
            deps.add(sub if sub in MODULES else module)
    return {d for d in deps if d in MODULES and d != name}


def _layers() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["type"] == "layers")
    return [[m.strip() for m in layer.replace(":", "|").split("|")] for layer in contract["layers"]]


def test_lint_imports_passes():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (pip install '.[test]')")
    done = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_every_module_is_on_a_declared_floor():
    declared = [m for layer in _layers() for m in layer]
    homeless = [m for m in MODULES if m not in NAME_TABLES
                and not any(m == d or m.startswith(d + ".") for d in declared)]
    assert not homeless, f"modules on no floor of [tool.importlinter] in pyproject.toml: {homeless}"


def test_no_module_imports_itself_back():
    graph = {m: _dependencies(m) for m in MODULES}

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for d in graph.get(todo.pop(), ()):
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return seen

    cycles = sorted(m for m in graph if m != "galwidgets" and m in reach(m))
    assert not cycles, f"modules in import cycles: {cycles}"


def _package_of(module: str) -> str:
    path = ROOT.joinpath(*module.split("."))
    return module if path.is_dir() else module.rsplit(".", 1)[0]


def test_no_private_name_crosses_a_package():
    crossings = []
    for name, path in MODULES.items():
        here = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for module, names, line in _imports(name, path):
            if not module.startswith("galwidgets"):
                continue
            for imported in names:
                private = imported.startswith("_") and not imported.startswith("__")
                if private and _package_of(module) != here:
                    crossings.append(f"{name}:{line} imports {module}.{imported}")
    assert not crossings, "\n".join(crossings)


def test_modules_import_names_where_they_are_defined():
    """``from ..models import UNet`` goes through a lazy name table; import ``..models.unet``."""
    through_tables = []
    for name, path in MODULES.items():
        if name in NAME_TABLES:
            continue
        for module, names, line in _imports(name, path):
            if module in NAME_TABLES:
                names = [n for n in names if f"{module}.{n}" not in MODULES and n != "__version__"]
                if names:
                    through_tables.append(f"{name}:{line} imports {names} from the name table {module}")
    assert not through_tables, "\n".join(through_tables)


def test_name_tables_are_only_tables():
    for table in NAME_TABLES:
        tree = ast.parse(MODULES[table].read_text())
        imports = [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
        allowed = {"__future__", "_lazy", "._lazy", ".._lazy", "_version"}
        bad = [ast.unparse(node) for node in imports
               if isinstance(node, ast.Import) or (node.module or "") not in allowed]
        assert not bad, f"{table} imports code: {bad}"


@pytest.mark.parametrize("table", NAME_TABLES)
def test_every_name_in_a_table_resolves(table):
    module = importlib.import_module(table)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{table}.{name}"
