"""Nox sessions: `nox --list` shows them; `nox` runs every default session (the CI run).

Each session is a thin wrapper: it installs layerkit and a dependency group from pyproject.toml,
then runs pytest or an invoke task. Slow benchmarks are opt-in (`nox -s bench`).
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")


def layer_targets(root: Path = ROOT) -> list[tuple[str, str, str]]:
    """(layer, runtime, architecture) for each target a layer.toml lists (layerkit defaults)."""
    found = []
    for toml in sorted((root / "layers").glob("*/layer.toml")):
        data = nox.project.load_toml(toml)
        for runtime in data.get("runtimes", ["python3.9"]):
            for architecture in data.get("architectures", ["x86_64"]):
                found.append((toml.parent.name, runtime, architecture))
    return found


LAYER_TARGETS = layer_targets()

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = True
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests", "validate_layers", "deploy_tests"]


#: pytest-xdist: one worker per CPU (`-- -n 0`: one process). `tests` sends each file to one
#: worker, so a module's costly fixtures (real builds) are made once and its tests keep their
#: order, in the order tests/conftest.py sorts them (slow first); the deploy tests are spread
#: case by case.
TESTS_PARALLEL = ("-n", "auto", "--dist", "loadfile", "--no-loadscope-reorder")
DEPLOY_TESTS_PARALLEL = ("-n", "auto", "--dist", "load")


def _install(session: nox.Session, *groups: str) -> None:
    """Install layerkit (editable, with its local-stage and tasks extras) and dependency groups."""
    deps = [d for g in groups for d in nox.project.dependency_groups(PYPROJECT, g)]
    session.install("-e", ".[local,tasks]", *deps)


def _bytecode(session: nox.Session) -> dict[str, str | None]:
    """Environment that keeps compiled modules between runs, outside the checkout.

    The venvs are installed without bytecode and a machine may set PYTHONDONTWRITEBYTECODE:
    then every process the tests start compiles boto3, botocore and moto again (~1.7 s each).
    Here they are compiled once into .nox/.cache/pycache (PYTHONPYCACHEPREFIX) and read from
    there; layerkit's own builds compile with a clean environment and are not affected.
    """
    prefix = Path(session.cache_dir).resolve() / "pycache"
    return {"PYTHONDONTWRITEBYTECODE": None, "PYTHONPYCACHEPREFIX": str(prefix)}


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
    session.run(
        "pytest", "-m", "not aws", *TESTS_PARALLEL, *session.posargs, env=_bytecode(session)
    )


@nox.session
@nox.parametrize(
    ("layer", "runtime", "architecture"),
    LAYER_TARGETS,
    ids=["-".join(t) for t in LAYER_TARGETS],
)
def validate_layers(session: nox.Session, layer: str, runtime: str, architecture: str) -> None:
    """Build one layer for one of its own targets and prove it there: imports, smoke, ELF/glibc."""
    _install(session)
    arch = [] if architecture == "x86_64" else [f"--arch={architecture}"]
    session.run(
        "inv", "validate.layer", layer, f"--runtime={runtime}", *arch, env=_bytecode(session)
    )


@nox.session
def deploy_tests(session: nox.Session) -> None:
    """Deploy, re-deploy, fault-injection and rollback tests against moto (no AWS account).

    The shop project's end-to-end test also runs `sam validate --lint` on its packaged
    template: aws-sam-cli (the `sam` group) lives in a virtualenv of its own inside the session,
    as it pins its own boto3 and cfn-lint; LAYERKIT_SAM names its `sam`.
    """
    _install(session, "test")
    env = {"LAYERKIT_SAM": str(_sam_cli(session)), **_bytecode(session)}
    session.run("pytest", "-m", "aws", *DEPLOY_TESTS_PARALLEL, *session.posargs, env=env)


def _sam_cli(session: nox.Session) -> Path:
    """aws-sam-cli (the `sam` group) in a virtualenv of its own, kept with the session's."""
    sam = Path(session.create_tmp()).resolve() / "sam-venv"
    if not (sam / "bin" / "sam").exists():
        session.run("uv", "venv", "--quiet", str(sam))
        deps = nox.project.dependency_groups(PYPROJECT, "sam")
        session.run(
            "uv", "pip", "install", "--quiet", "--python", str(sam / "bin" / "python"), *deps
        )
    return sam / "bin" / "sam"


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks: cold-start imports and handler init, pip --target baseline vs layerkit (slow)."""
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
