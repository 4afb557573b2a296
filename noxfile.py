"""Nox sessions: `nox --list` shows them; `nox` runs every default session (the CI run).

Each session is a thin wrapper: it installs layerkit and a dependency group from pyproject.toml,
then runs pytest or an invoke task. Slow benchmarks are opt-in (`nox -s bench`).
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
LAYERS = sorted(p.parent.name for p in (ROOT / "layers").glob("*/layer.toml"))
RUNTIMES = ["python3.9", "python3.12"]

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = True
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests", "validate_layers", "deploy_tests"]


def _install(session: nox.Session, *groups: str) -> None:
    """Install layerkit (editable) and the named dependency groups."""
    deps = [d for g in groups for d in nox.project.dependency_groups(PYPROJECT, g)]
    session.install("-e", ".", *deps)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint and formatting check of the library, tasks, sessions and tests."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit, function and integration tests (integration builds real layers from PyPI)."""
    _install(session, "test")
    session.run("pytest", "-m", "not aws", *session.posargs)


@nox.session
@nox.parametrize("runtime", RUNTIMES, ids=RUNTIMES)
@nox.parametrize("layer", LAYERS, ids=LAYERS)
def validate_layers(session: nox.Session, layer: str, runtime: str) -> None:
    """Build one layer for one runtime and prove it there: imports, smoke test, ELF/glibc."""
    _install(session)
    session.run("inv", "validate.layer", layer, f"--runtime={runtime}")


@nox.session
def deploy_tests(session: nox.Session) -> None:
    """Deploy, re-deploy, fault-injection and rollback tests against moto (no AWS account)."""
    _install(session, "test")
    session.run("pytest", "-m", "aws", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks: cold-start imports and handler init, seeds' method vs layerkit (slow)."""
    _install(session, "test")
    session.install("aws-sam-cli")  # tests/benchmarks/test_sam_build.py: sam build side by side
    session.run("inv", "build.all")
    session.run(
        "pytest",
        "tests/benchmarks",
        "-m",
        "benchmark",
        "--benchmark-only",
        "--benchmark-autosave",
        *session.posargs,  # compare: nox -s bench -- --benchmark-compare
    )
