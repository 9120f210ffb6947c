"""The pip-audit verdict of `make security` (tests/security/audit.py), table-driven on
reports in pip-audit's JSON format."""

from __future__ import annotations

from typing import Any

import pytest

from tests.security import audit

OK = {"name": "pyyaml", "version": "6.0.2", "vulns": []}
NOT_ON_PYPI = {"name": "torch", "skip_reason": "Dependency not found on PyPI ..."}
VULN = {
    "name": "jinja2",
    "version": "3.1.2",
    "vulns": [
        {"id": "GHSA-h5c8-rqwp-cp95", "aliases": ["CVE-2024-22195"], "fix_versions": ["3.1.3"]}
    ],
}


def report(*deps: dict[str, Any]) -> dict[str, Any]:
    return {"dependencies": list(deps), "fixes": []}


@pytest.mark.parametrize(
    ("given", "accepted", "verdict", "code", "strict_code"),
    [
        (report(OK), {}, "audited", 0, 0),
        (report(OK, NOT_ON_PYPI), {}, "audited", 0, 0),
        (report(OK, VULN), {}, "vulnerable", 1, 1),
        # Accepted by its id or by an alias.
        (report(OK, VULN), {"GHSA-h5c8-rqwp-cp95": "why"}, "audited", 0, 0),
        (report(OK, VULN), {"CVE-2024-22195": "why"}, "audited", 0, 0),
        # Every package skipped: the service was not reachable.
        (report(NOT_ON_PYPI, NOT_ON_PYPI), {}, "unreachable", 0, 1),
        (report(), {}, "unreachable", 0, 1),
        (None, {}, "unreachable", 0, 1),
        # A finding wins over skips.
        (report(NOT_ON_PYPI, VULN), {}, "vulnerable", 1, 1),
    ],
)
def test_verdicts(
    monkeypatch: pytest.MonkeyPatch,
    given: dict[str, Any] | None,
    accepted: dict[str, str],
    verdict: str,
    code: int,
    strict_code: int,
) -> None:
    monkeypatch.setattr(audit, "ACCEPTED", accepted)
    judged = audit.judge(given)
    assert judged.verdict == verdict
    assert audit.exit_code(judged, strict=False) == code
    assert audit.exit_code(judged, strict=True) == strict_code


def test_a_finding_names_package_version_id_and_fix() -> None:
    judged = audit.judge(report(VULN))
    assert judged.findings == ["jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (3.1.3)"]
