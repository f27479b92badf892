"""README's deploy section and docs/deploy.md list exactly template.yaml's parameters, and
the deploy guide names the resource types moto's CloudFormation does not model."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.cfn import MOTO_UNMODELLED, TEMPLATE, load

REPO_ROOT = Path(__file__).resolve().parents[1]


def _documented_parameters(text: str) -> set[str]:
    """Names in the first column of the markdown tables of ``text`` headed ``| parameter |``."""
    names: set[str] = set()
    for table in re.findall(r"(?:^\|.*\n?)+", text, flags=re.M):
        if table.lower().startswith("| parameter |"):
            names |= set(re.findall(r"^\| `([A-Za-z]+)` \|", table, flags=re.M))
    return names


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    following = re.search(r"^## ", text[start + len(heading):], flags=re.M)
    return text[start:start + len(heading) + following.start()] if following else text[start:]


def test_readme_and_deploy_guide_list_exactly_the_template_parameters() -> None:
    parameters = set(load(TEMPLATE)["Parameters"])
    readme = _section((REPO_ROOT / "README.md").read_text(), "## Deploy")
    guide = (REPO_ROOT / "docs" / "deploy.md").read_text()
    assert _documented_parameters(readme) == parameters
    assert _documented_parameters(guide) == parameters
    for name in parameters:  # and each is at least named in the prose of both
        assert f"`{name}`" in readme and f"`{name}`" in guide
    for kind in sorted(MOTO_UNMODELLED):
        assert kind in guide, f"docs/deploy.md should say moto does not model {kind}"
