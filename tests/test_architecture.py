"""ARCHITECTURE.md matches the code: the layers import only downwards, the rules never import
Flask, and every module of the mock has its place on the page."""

from __future__ import annotations

import ast
from pathlib import Path

import contract_tests
import mockserver

PACKAGE = Path(mockserver.__file__).parent  # the installed package (CI installs a wheel)
ROOT = Path(__file__).resolve().parents[1]  # the checkout, where ARCHITECTURE.md is
# The page's layers, lowest first: a module may import only from its own layer or below.
LAYERS: list[set[str]] = [
    {
        "plans",
        "errors",
        "clock",
        "quoting",
        "resources",
        "contract",
        "turns",
        "multipart",
        "prompts",
        "schemas",
        "validation",
    },
    {
        "store",
        "store.base",
        "store.schema",
        "store.database",
        "store.sqlite",
        "store.redis",
        "store.redis_client",
        "store.redis_scripts",
        "store.redis_rows",
    },
    {"faults", "tokens", "fixtures", "imaging", "hostile", "upload", "recognition"},
    {"state"},
    {"backend"},
]
NO_FLASK = set().union(*LAYERS)


def _sources(package: Path) -> list[Path]:
    """The package's Python modules; not the data a wheel carries (`_data/`: the spec and the
    fixtures directory, whose generator script is a tool of the checkout, not a module)."""
    return [
        path for path in package.rglob("*.py") if "_data" not in path.relative_to(package).parts
    ]


def _modules() -> dict[str, Path]:
    found = {}
    for path in _sources(PACKAGE):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _layer(module: str) -> int | None:
    return next((n for n, layer in enumerate(LAYERS) if module in layer), None)


def test_the_rules_never_import_flask() -> None:
    modules = _modules()
    offenders = {
        name: sorted(i for i in _imports(modules[name]) if i.split(".")[0] in ("flask", "werkzeug"))
        for name in NO_FLASK
        if name in modules
    }
    # multipart extends Werkzeug's sans-IO decoder (no HTTP), the one exception.
    offenders.pop("multipart", None)
    assert {name: found for name, found in offenders.items() if found} == {}


def test_layers_import_only_downwards() -> None:
    upward = []
    for name, path in _modules().items():
        own = _layer(name)
        if own is None:
            continue
        for imported in _imports(path):
            if not imported.startswith("mockserver."):
                continue
            target = _layer(imported.removeprefix("mockserver."))
            if target is not None and target > own:
                upward.append(f"{name} imports {imported}")
    assert upward == []


def test_every_module_of_the_mock_is_on_the_page() -> None:
    page = (ROOT / "ARCHITECTURE.md").read_text("utf-8")
    missing = [
        name
        for name in _modules()
        if name not in ("__init__", "__main__", "cli", "cli.__main__")
        and name.split(".")[-1] not in page
    ]
    assert missing == []
    # A package's modules are named under it: `control/`, `store/`...
    packages = {name.split(".")[0] for name in _modules() if "." in name}
    assert sorted(package for package in packages if f"{package}/" not in page) == []


def test_no_module_of_the_kit_grows_past_about_400_lines() -> None:
    """Small modules (STYLE): one over ~400 lines is split along a seam, not let grow."""
    limit = 430  # "about 400": room for a fix, not for a second topic
    sources = [PACKAGE, Path(contract_tests.__file__).parent]
    long = {
        str(path.relative_to(source.parent)): lines
        for source in sources
        for path in _sources(source)
        if (lines := len(path.read_text("utf-8").splitlines())) > limit
    }
    assert long == {}
