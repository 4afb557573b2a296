"""Fixtures for running the three functions for real on each target runtime (python3.9 and
python3.12): the layers, the model and the packages built for it, in the Lambda sandbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from layerkit.runtime.sandbox import InvokeResult, invoke, prepare
from layerkit.runtime.target import Target
from tests.shared_build import PY39, TARGETS, Built, shared_builds


@pytest.fixture(scope="session")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Target], Built]:
    """This repository built once per run for a target (see :mod:`tests.shared_build`)."""
    return shared_builds(tmp_path_factory)


@pytest.fixture(scope="session")
def built(builds: Callable[[Target], Built]) -> Built:
    """The python3.9 build (the template's target)."""
    return builds(PY39)


@pytest.fixture(params=TARGETS, ids=[t.runtime for t in TARGETS])
def built_on(request: pytest.FixtureRequest, builds: Callable[[Target], Built]) -> Built:
    """The build for each target runtime in turn."""
    return builds(request.param)


@pytest.fixture
def run_function(
    built_on: Built, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., InvokeResult]:
    """Invoke a built function in a fresh sandbox: its layers in order, its zip, the runtime."""
    built = built_on

    def run(name: str, event: Any, env: dict[str, str] | None = None) -> InvokeResult:
        fn = built.project.function(name)
        sandbox = prepare(
            tmp_path_factory.mktemp(f"sandbox-{name}"),
            built.layer_zips(name),
            built.result.out_dir / "functions" / f"{name}.zip",
            built.interpreter,
            built.target,
        )
        return invoke(
            sandbox,
            fn.handler,
            event,
            function_name=name,
            memory_mb=fn.memory_size,
            timeout_s=fn.timeout,
            env=env,
        )

    return run
