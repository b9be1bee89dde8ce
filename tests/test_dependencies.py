"""Security floors of dependencies: pyproject.toml never lets an install resolve to a release with a
published advisory (the versions below are the first releases that fix them)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

#: package -> (first safe version, the advisories it fixes)
FLOORS = {
    "requests": ("2.33.0", "CVE-2024-35195, CVE-2024-47081, CVE-2026-25645"),
    "authlib": ("1.8.0", "CVE-2024-37568, CVE-2025-59420, CVE-2025-61920, CVE-2025-62706, CVE-2026-28802, CVE-2026-27962, CVE-2026-28498, CVE-2026-96760"),
}


def _requirements() -> dict[str, Requirement]:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return {Requirement(d).name.lower(): Requirement(d) for d in deps}


@pytest.mark.parametrize("package", sorted(FLOORS))
def test_lower_bound_is_above_known_advisories(package: str) -> None:
    floor, advisories = FLOORS[package]
    req = _requirements()[package]
    lower = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=", ">")]
    assert lower, f"{package} has no lower bound in pyproject.toml"
    assert max(lower) >= Version(floor), f"{package}{req.specifier} admits releases affected by {advisories}"
    # and no release just below the floor satisfies the requirement
    assert not any(req.specifier.contains(v) for v in _below(floor)), f"{package}{req.specifier} admits a release below {floor}"


def _below(floor: str) -> list[str]:
    major, minor, *rest = Version(floor).release + (0,)
    out = [f"{major}.{minor - 1}.99"] if minor else [f"{major - 1}.99.99"]
    if rest and rest[0]:
        out.append(f"{major}.{minor}.{rest[0] - 1}")
    return out
