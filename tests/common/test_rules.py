"""Rules of the architecture that the code itself must keep."""

import ast
from pathlib import Path

import pytest

from services.common.web import check_access_declared, endpoint_access

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["projects", "checkin", "credits", "certs"]


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another(service):
    others = {f"services.{s}" for s in SERVICES if s != service}
    offenders = []
    for path in (ROOT / "services" / service).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names
                          if any(n == o or n.startswith(o + ".") for o in others)]
    assert offenders == []


def test_common_imports_no_service():
    for path in (ROOT / "services" / "common").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for s in SERVICES:
            assert f"services.{s}" not in text, f"{path} mentions services.{s}"


@pytest.mark.parametrize("service", SERVICES)
def test_every_endpoint_declares_access(service, request):
    app = request.getfixturevalue(f"{service}_app")
    check_access_declared(app)  # raises when one is missing
    table = endpoint_access(app)
    assert table[f"GET /{service}/healthz"] == ("public",)
    assert all(roles for roles in table.values())
