"""The locked dependencies: complete, consistent across the three locks, and what is installed."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "requirements"


def read_lock(name: str) -> dict[str, list[Requirement]]:
    """Return a lock's pins by package name (several when markers fork them), hashes checked."""
    text = (LOCKS / name).read_text(encoding="utf-8").replace("\\\n", " ")
    pins: dict[str, list[Requirement]] = {}
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        spec, *hashes = (part.strip() for part in line.split("--hash="))
        requirement = Requirement(spec)
        assert hashes and all(h.startswith("sha256:") for h in hashes), spec
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", spec
        pins.setdefault(canonicalize_name(requirement.name), []).append(requirement)
    return pins


def applicable(pins: list[Requirement]) -> Requirement | None:
    """Return the pin whose marker holds here, if any."""
    here = [p for p in pins if p.marker is None or p.marker.evaluate({"extra": ""})]
    assert len(here) <= 1, here
    return here[0] if here else None


def pinned(requirement: Requirement) -> str:
    (specifier,) = requirement.specifier
    return specifier.version


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


@pytest.mark.parametrize("lock", ["dev.txt", "runtime.txt"])
def test_every_declared_dependency_is_locked_within_its_range(project, lock):
    declared = list(project["dependencies"])
    if lock == "dev.txt":
        declared += project["optional-dependencies"]["dev"]
    pins = read_lock(lock)
    for text in declared:
        wanted = Requirement(text)
        found = applicable(pins.get(canonicalize_name(wanted.name), []))
        assert found is not None, f"{wanted.name} is not in requirements/{lock}: run make lock"
        assert wanted.specifier.contains(pinned(found), prereleases=True), (text, str(found))


def test_the_runtime_and_build_locks_agree_with_the_development_lock():
    dev = read_lock("dev.txt")
    for lock in ("runtime.txt", "build.txt"):
        for name, pins in read_lock(lock).items():
            assert name in dev, f"{name} of {lock} is missing from dev.txt"
            # Markers may differ (a package only some platforms need); versions may not.
            assert {pinned(p) for p in pins} <= {pinned(p) for p in dev[name]}, name


def test_the_environment_holds_exactly_the_locked_versions():
    for name, pins in read_lock("dev.txt").items():
        pin = applicable(pins)
        if pin is None:
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{name}=={pinned(pin)} is locked but not installed: run make install")
        assert installed == pinned(pin), f"{name} {installed} installed, {pinned(pin)} locked"
