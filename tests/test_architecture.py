"""The architecture the docs promise, held by AST: the layer holds only what Lambda runs, each
package imports only what its rule allows, each kind of I/O has one home.

- ``shared/`` (the layer) never imports the local product, the test double or local-only
  libraries; the functions import only the layer and what the runtime provides;
- the layer's requirements name no local-only or test package;
- the local product never patches or imports moto (moto is the AWS adapters' test double).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOCAL_ONLY = {"earshot_local", "moto", "yaml", "platformdirs", "waitress", "tests", "pytest"}


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    out: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                stack.extend(child.orelse)
                continue
            stack.append(child)
    return out


def _imports(path: Path) -> set[str]:
    """Top-level names of the modules a file imports when it runs."""
    names: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


LAYER_FILES = sorted([*(REPO / "shared").rglob("*.py"), *(REPO / "functions").rglob("*.py")])


@pytest.mark.parametrize("path", LAYER_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_layer_and_functions_import_nothing_local(path: Path) -> None:
    assert not (_imports(path) & LOCAL_ONLY), f"{path.relative_to(REPO)} imports {_imports(path) & LOCAL_ONLY}"


def test_layer_requirements_name_no_local_or_test_package() -> None:
    lines = [line.split("#")[0].strip().lower() for line in (REPO / "shared" / "requirements.txt").read_text().splitlines()]
    packages = {line.split("[")[0].split(">")[0].split("=")[0].split("<")[0] for line in lines if line}
    assert not packages & {"pyyaml", "moto", "platformdirs", "waitress", "aws-sam-cli", "pytest"}


def test_layer_folder_holds_only_the_earshot_package() -> None:
    entries = {p.name for p in (REPO / "shared").iterdir()
               if not p.name.startswith(".") and p.name != "__pycache__" and not p.name.endswith(".egg-info")}
    assert entries == {"earshot", "requirements.txt"}


@pytest.mark.parametrize("path", sorted((REPO / "local").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_local_product_never_touches_moto(path: Path) -> None:
    assert "moto" not in _imports(path)


# ------------------------------------------------------------------ package rules
# What each part of the earshot package may import (its __init__ says the same in words).
CORE = {"earshot", "settings", "errors", "models", "textutil", "identity", "templating", "queue", "observability",
        "bounds", "urls"}
ALLOWED: dict[str, set[str]] = {
    "core": CORE,
    "store": CORE | {"store"},
    "ingest": CORE | {"store", "ingest"},
    "topics": CORE | {"store", "topics"},
    "mail": CORE | {"store", "topics", "mail"},
    "web": CORE | {"store", "topics", "mail", "web", "runtime"},
    "directory": CORE | {"store", "ingest", "topics", "directory"},
    "runtime": CORE | {"store", "ingest", "topics", "mail"},
    "transcripts": CORE | {"store", "ingest", "topics", "transcripts"},
}
# Third-party clients that one module (or one adapter package, "dir/") each may use
# ("the only module that talks to ...").
ONLY_IN: dict[str, set[str]] = {
    "boto3": {"store/dynamodb/", "store/archive.py", "queue.py", "mail/mailer.py", "runtime.py"},
    "botocore": {"store/dynamodb/", "mail/mailer.py"},
    "httpx": {"ingest/fetcher.py", "runtime.py"},
    "feedparser": {"ingest/parser.py"},
    "lxml": {"ingest/fastparse.py"},
    "nh3": {"ingest/sanitize.py"},
    "sqlite3": set(),
    "smtplib": set(),
}
EARSHOT = REPO / "shared" / "earshot"
DOMAIN_FILES = sorted(EARSHOT.rglob("*.py"))


def _part(path: Path) -> str:
    rel = path.relative_to(EARSHOT)
    if len(rel.parts) > 1:
        return rel.parts[0]
    return "runtime" if rel.stem == "runtime" else "core"


def _earshot_imports(path: Path) -> set[str]:
    """The parts of earshot a module imports (``earshot.ingest.fetcher`` -> ``ingest``)."""
    parts: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules = [node.module] if node.module != "earshot" else [
                f"earshot.{a.name}" if (EARSHOT / a.name).is_dir() or (EARSHOT / f"{a.name}.py").is_file()
                else "earshot" for a in node.names]
        for module in modules:
            bits = module.split(".")
            if bits[0] == "earshot":
                parts.add(bits[1] if len(bits) > 1 else "earshot")
    return parts


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: str(p.relative_to(EARSHOT)))
def test_each_package_imports_only_what_its_rule_allows(path: Path) -> None:
    part = _part(path)
    forbidden = _earshot_imports(path) - ALLOWED[part]
    assert not forbidden, f"{path.relative_to(EARSHOT)} ({part}) may not import earshot.{forbidden}"


@pytest.mark.parametrize("library", sorted(ONLY_IN))
def test_each_kind_of_io_has_one_home(library: str) -> None:
    users = {str(p.relative_to(EARSHOT)) for p in DOMAIN_FILES if library in _imports(p)}
    outside = {u for u in users if not any(u == home or (home.endswith("/") and u.startswith(home))
                                           for home in ONLY_IN[library])}
    assert not outside, f"{library} used outside its home: {outside}"


def test_only_settings_reads_the_environment() -> None:
    readers = {str(p.relative_to(EARSHOT)) for p in DOMAIN_FILES if "os.environ" in p.read_text()
               or "getenv" in p.read_text()}
    assert readers <= {"settings.py"}


def test_rules_cover_every_package() -> None:
    packages = {p.name for p in EARSHOT.iterdir() if (p / "__init__.py").is_file()}
    assert packages <= set(ALLOWED), f"no import rule for {packages - set(ALLOWED)}"
    for package in packages:
        doc = ast.get_docstring(ast.parse((EARSHOT / package / "__init__.py").read_text())) or ""
        assert "Owns:" in doc and "May import:" in doc, f"earshot/{package}/__init__.py must say what it owns and may import"


def test_readme_module_table_matches_the_tree() -> None:
    """Every module the README's architecture table names exists, and every module of the
    layer is named there (its package, for the store adapter)."""
    import re

    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("| step | module |"):readme.index("Handlers in `functions/*/app.py`")]
    named = set(re.findall(r"`([a-z_/]+(?:\.py|/))`", table))
    for name in named:
        assert (EARSHOT / name).exists(), f"README names {name}, which is not in shared/earshot/"
    for path in DOMAIN_FILES:
        rel = str(path.relative_to(EARSHOT))
        if path.name == "__init__.py" and rel != "__init__.py":
            continue
        covered = rel in named or any(n.endswith("/") and rel.startswith(n) for n in named)
        assert covered or rel == "__init__.py", f"README's module table does not name {rel}"
