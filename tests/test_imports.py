"""No module imports another module's private (underscore) name (issue 16's acceptance)."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_of(path: Path) -> str:
    """The dotted module name of a file under src (a package's ``__init__`` is the package)."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(node: ast.ImportFrom, own: str, is_package: bool) -> str:
    """The module an ``ImportFrom`` names, relative imports resolved against ``own``."""
    if not node.level:
        return node.module or ""
    base = own.split(".")[: len(own.split(".")) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def private_imports(source: str, own: str, is_package: bool = False) -> list[str]:
    """``from M import _x`` for every private name taken from a module M other than ``own``.

    Dunders (``__version__``) are not private names.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom):
            continue
        module = _absolute(node, own, is_package)
        for alias in node.names:
            name = alias.name
            dunder = name.startswith("__") and name.endswith("__")
            if name.startswith("_") and not dunder and module != own:
                found.append(f"{own}: from {module} import {name}")
    return found


def test_no_module_imports_a_private_name_of_another():
    found = [hit for path in sorted(SRC.rglob("*.py"))
             for hit in private_imports(path.read_text(), _module_of(path), path.name == "__init__.py")]
    assert not found, "private names imported across modules:\n" + "\n".join(found)


def test_the_check_finds_private_imports_and_spares_dunders_and_own_names():
    source = ("from neuralsmith.rbm.learning import _hidden, __version__, public\n"
              "from neuralsmith.x import _mine\n"
              "from .model import _check\n")
    assert private_imports(source, "neuralsmith.x") == [
        "neuralsmith.x: from neuralsmith.rbm.learning import _hidden",
        "neuralsmith.x: from neuralsmith.model import _check"]
