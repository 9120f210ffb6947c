"""`python -m tests.security.audit`: pip-audit for `make security`, with a clear verdict.

Runs `pip-audit --local --skip-editable --format json` on the environment that runs
the tests (the packages `make setup` installed, not this project itself) and decides:

    vulnerable   a package has a known vulnerability not in ACCEPTED      exit 1
    audited      every package that PyPI knows was checked; none found    exit 0
    unreachable  no package could be checked (the vulnerability service   exit 0, or 1
                 or the network is unavailable: pip-audit skips each       with
                 package, or fails without a report)                       MODELYARD_AUDIT_STRICT=1

Packages PyPI does not know (local builds such as `torch 2.13.0+cpu`) are listed as not
audited. An unreachable service is not a finding about this project, so by default it
does not make `make test` red; a CI with network sets MODELYARD_AUDIT_STRICT=1 so that
a scan that could not run fails instead of passing silently. Accepted findings (with
their reasons) are in ACCEPTED and in docs/SECURITY.md.
"""

from __future__ import annotations

import json
import os
import subprocess  # nosec B404
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

#: Vulnerability id -> why it is accepted (each also in docs/SECURITY.md).
ACCEPTED: Mapping[str, str] = {}
STRICT_ENV = "MODELYARD_AUDIT_STRICT"
TIMEOUT_S = 240

Verdict = Literal["vulnerable", "audited", "unreachable"]


@dataclass(frozen=True)
class Report:
    verdict: Verdict
    findings: list[str]  # "package version: id (fix versions)" not accepted
    accepted: list[str]
    audited: int
    skipped: list[str]  # "package: reason"


def judge(report: Mapping[str, Any] | None) -> Report:
    """The verdict on pip-audit's JSON report (None: pip-audit gave no report)."""
    if report is None:
        return Report("unreachable", [], [], 0, ["pip-audit produced no report"])
    findings: list[str] = []
    accepted: list[str] = []
    skipped: list[str] = []
    audited = 0
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            skipped.append(f"{dep['name']}: {dep['skip_reason']}")
            continue
        audited += 1
        for vuln in dep.get("vulns", []):
            ids = [vuln["id"], *vuln.get("aliases", [])]
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fix"
            line = f"{dep['name']} {dep['version']}: {vuln['id']} ({fixes})"
            (accepted if any(i in ACCEPTED for i in ids) else findings).append(line)
    if findings:
        return Report("vulnerable", findings, accepted, audited, skipped)
    if audited == 0:
        return Report("unreachable", [], accepted, 0, skipped)
    return Report("audited", [], accepted, audited, skipped)


def exit_code(report: Report, *, strict: bool) -> int:
    if report.verdict == "vulnerable":
        return 1
    if report.verdict == "unreachable":
        return 1 if strict else 0
    return 0


def run_pip_audit(argv: Sequence[str] = ()) -> Mapping[str, Any] | None:
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--local",
        "--skip-editable",
        "--format",
        "json",
        "--progress-spinner",
        "off",
        *argv,
    ]
    try:
        done = subprocess.run(  # nosec B603
            command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return None
    try:
        parsed: Mapping[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        tail = (done.stderr.strip().splitlines() or [""])[-1]
        print(f"pip-audit: no report (exit {done.returncode}): {tail[:300]}")
        return None
    return parsed


def main(argv: Sequence[str] | None = None) -> int:
    strict = os.environ.get(STRICT_ENV, "") == "1"
    report = judge(run_pip_audit(list(argv or [])))
    for line in report.findings:
        print(f"pip-audit: VULNERABLE {line}")
    for line in report.accepted:
        print(f"pip-audit: accepted   {line} (docs/SECURITY.md)")
    if report.verdict == "unreachable":
        mode = "failing" if strict else f"not failing; set {STRICT_ENV}=1 to fail"
        print(
            f"pip-audit: NOT RUN - no package could be audited ({len(report.skipped)} "
            f"skipped; the vulnerability service is unreachable from here), {mode}"
        )
        for line in report.skipped[:3]:
            print(f"    {line}")
    else:
        for line in report.skipped:
            print(f"pip-audit: not audited {line}")
        print(
            f"pip-audit: {report.audited} packages audited, {len(report.findings)} "
            f"unaccepted and {len(report.accepted)} accepted vulnerabilities"
        )
    return exit_code(report, strict=strict)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
