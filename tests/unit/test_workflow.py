"""The CI workflow's safety rules: pinned actions, no persisted credentials, a keyed uv cache."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO

WORKFLOW = yaml.safe_load((REPO / ".github/workflows/ci.yml").read_text())
STEPS = [step for job in WORKFLOW["jobs"].values() for step in job["steps"]]


def test_every_action_is_pinned_to_a_commit_sha_with_its_tag() -> None:
    text = (REPO / ".github/workflows/ci.yml").read_text()
    uses = re.findall(r"uses: (\S+)(.*)", text)
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r" # v\d+\.\d+\.\d+", comment), action


def test_checkout_never_keeps_credentials() -> None:
    checkouts = [s for s in STEPS if s.get("uses", "").startswith("actions/checkout@")]
    assert len(checkouts) == len(WORKFLOW["jobs"])
    assert all(s["with"]["persist-credentials"] is False for s in checkouts)


def test_uv_cache_is_keyed_on_the_locks_and_pyproject() -> None:
    uv = [s for s in STEPS if s.get("uses", "").startswith("astral-sh/setup-uv@")]
    assert len(uv) == len(WORKFLOW["jobs"])
    for step in uv:
        assert step["with"]["enable-cache"] is True
        assert step["with"]["cache-dependency-glob"].split() == ["locks/*.toml", "pyproject.toml"]


def test_sessions_are_jobs_of_their_own() -> None:
    jobs = WORKFLOW["jobs"]
    assert {"lint", "tests", "validate_layers", "deploy_tests", "report"} <= set(jobs)
    matrix = jobs["validate_layers"]["strategy"]["matrix"]["session"]
    assert matrix == "${{ fromJSON(needs.sessions.outputs.validate) }}"
    assert WORKFLOW["env"]["NOX"].startswith("nox>=")
    assert 'uvx "$NOX" --list --json' in jobs["sessions"]["steps"][-1]["run"]
