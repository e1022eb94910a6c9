"""Every third-party module the library imports at module level is a declared core dependency.

The README's first command installs the package without extras, so a module-level import of a
test-only or optional package would break the main job for a newcomer (it did once: statmorph).
"""

import ast
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
IMPORT_TO_DISTRIBUTION = {"skimage": "scikit-image", "yaml": "pyyaml", "PIL": "pillow",
                          "sklearn": "scikit-learn"}


def core_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = set()
    for requirement in project["dependencies"]:
        name = requirement.split(";")[0]
        for sep in "<>=!~[ ":
            name = name.split(sep)[0]
        names.add(name.strip().lower().replace("_", "-"))
    return names


def module_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body:  # module level only: imports inside functions are optional extras
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "galwidgets").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_module_level_imports_are_core_dependencies(path):
    core = core_dependencies()
    third_party = {m for m in module_level_imports(path)
                   if m not in sys.stdlib_module_names and m not in ("galwidgets", "__future__")}
    missing = {m for m in third_party
               if IMPORT_TO_DISTRIBUTION.get(m, m).lower().replace("_", "-") not in core}
    assert not missing, f"{path.name} imports {sorted(missing)} at module level; add to dependencies"
