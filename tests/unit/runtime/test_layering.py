"""runtime/ sits below project/ and build/: the sandbox takes what it runs as plain data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import imported_modules

RUNTIME = Path(__file__).resolve().parents[3] / "src" / "layerkit" / "runtime"
MODULES = sorted(f"layerkit.runtime.{p.stem}" for p in RUNTIME.glob("*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_runtime_imports_neither_project_nor_build(module: str) -> None:
    found = imported_modules(module)  # every import, those inside functions included
    above = sorted(
        m for m in found if m.startswith(("layerkit.project", "layerkit.build", "layerkit.check"))
    )
    assert above == [], f"{module} imports {above}"


def test_the_walker_sees_the_runtime_modules() -> None:
    assert "layerkit.runtime.sandbox" in MODULES
    assert "layerkit.runtime.layercache" in imported_modules("layerkit.runtime.sandbox")
