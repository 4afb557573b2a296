"""AWS errors become one paragraph with the fix: an unreachable endpoint, no credentials."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from layerkit.deploy.clients import clients_for
from layerkit.deploy.deployer import deploy
from layerkit.errors import DeployError

from .helpers import STAGE, desired


@pytest.fixture
def fake_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no retries: the port is closed


def test_an_unreachable_endpoint_names_it_and_the_fix(fake_credentials, tmp_path: Path):
    stage = dataclasses.replace(STAGE, region="us-east-1", endpoint="http://127.0.0.1:9")
    clients = clients_for(stage)
    with pytest.raises(DeployError) as info:
        deploy(desired(tmp_path), clients, stage, owner="t")
    message = str(info.value)
    assert "nothing was changed" in message
    assert "The endpoint (http://127.0.0.1:9) cannot be reached" in message
    assert "`endpoint` of stage 'dev' in stages.toml" in message
    assert "--stage=local" in message
    assert "\n" not in message
