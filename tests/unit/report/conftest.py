"""The report tests' manifest fixture."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.report.manifests import make_manifest


@pytest.fixture
def manifest() -> dict[str, Any]:
    """A manifest like the real one: three layers (one over budget), two functions."""
    return make_manifest()
