"""The Lambda layer holds only what Lambda runs: the promises of shared/ and local/, by AST.

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


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
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
