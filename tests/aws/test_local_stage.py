"""The local stage runs the deployed code, keeps zips apart from its log, and survives damage."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from layerkit.deploy.deployer import deploy, invoke_on_stage, open_stage, rollback, unlock
from layerkit.deploy.localstage import local_stage
from layerkit.deploy.localstate import REQUESTS, STATE_FILE
from layerkit.deploy.releases import list_releases
from layerkit.deploy.stagelock import acquire, read_lock
from layerkit.errors import DeployError
from layerkit.project.stages import Stage, get_stage

from .conftest import REPO_ROOT, TODAY, Builder, Clock, pinned_lifecycle, tiny_zip

pytestmark = pytest.mark.aws

STAGE = get_stage(REPO_ROOT, "local")


@pytest.fixture
def local_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials and a cache of our own: the local stage needs neither."""
    for key in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))


def with_code(desired, function: str, code: str, root: Path):
    """``desired`` with ``function``'s zip replaced by one holding app.py = ``code``."""
    path = tiny_zip(root / f"{function}-{hashlib.sha256(code.encode()).hexdigest()[:8]}.zip",
                    {"app.py": code})  # fmt: skip
    data = path.read_bytes()
    functions = tuple(
        dataclasses.replace(
            fn, zip_path=path, sha256=hashlib.sha256(data).hexdigest(), zipped_bytes=len(data)
        )
        if fn.name == function
        else fn
        for fn in desired.functions
    )
    return dataclasses.replace(desired, functions=functions)


BROKEN = "raise RuntimeError('cannot load the model')\ndef lambda_handler(event, context):\n    return 1\n"


def run(desired, clients, stage: Stage = STAGE, **kwargs):
    kwargs.setdefault("today", TODAY)
    kwargs.setdefault("lifecycle", pinned_lifecycle)
    return deploy(desired, clients, stage, owner="pytest", now=kwargs.pop("now", Clock()), **kwargs)


def test_a_handler_raising_on_import_fails_the_deploy_and_the_alias_stays(
    local_env, tmp_path, builder
):
    state = tmp_path / "state"
    clock = Clock()
    with local_stage(STAGE, state) as stage_run:
        run(builder.desired(), stage_run.clients, now=clock)
        broken = with_code(builder.desired(), "one", BROKEN, tmp_path / "broken")
        with pytest.raises(DeployError) as info:
            run(broken, stage_run.clients, now=clock)
        lam = stage_run.clients.lambda_
        assert lam.get_alias(FunctionName="local-one", Name="live")["FunctionVersion"] == "1"
        assert read_lock(stage_run.clients.s3, STAGE) is None
    message = str(info.value)
    assert "health check of local-one:2 failed (Unhandled)" in message
    assert "RuntimeError: cannot load the model" in message
    assert "The stage runs exactly what it ran before this deploy." in message
    with local_stage(STAGE, state) as stage_run:  # and so it stays after a replay
        assert len(list_releases(stage_run.clients.s3, STAGE)) == 1
        result = invoke_on_stage(stage_run.clients, STAGE, "one", {})
    assert (result.ok, result.payload, result.version) == (True, "1", "1")


def test_invoke_on_the_local_stage_runs_the_version_asked_for(local_env, tmp_path, builder):
    clock = Clock()
    with local_stage(STAGE, tmp_path / "state") as stage_run:
        run(builder.desired(), stage_run.clients, now=clock)
        run(builder.desired(functions={"one": "2"}), stage_run.clients, now=clock)
        clients = stage_run.clients
        live = invoke_on_stage(clients, STAGE, "one:live", {"x": 1})
        first = invoke_on_stage(clients, STAGE, "one:1", {})
        two = invoke_on_stage(clients, STAGE, "two", {"x": 1})
    assert (live.payload, live.version) == ("2", "2")
    assert "\tMemory Size: 256 MB\t" in live.logs
    assert "REPORT RequestId: " in live.logs
    assert (first.payload, first.version) == ("1", "1")
    assert two.ok
    assert two.payload == "1"
    with pytest.raises(DeployError, match="names no function"):
        invoke_on_stage(clients, STAGE, ":live", {})


def test_an_event_over_six_mb_is_lambdas_413(local_env, tmp_path, builder):
    from botocore.exceptions import ClientError

    with local_stage(STAGE, tmp_path / "state") as stage_run:
        run(builder.desired(), stage_run.clients, now=Clock())
        lam = stage_run.clients.lambda_
        with pytest.raises(ClientError) as info:
            lam.invoke(FunctionName="local-one", Payload=json.dumps({"x": "y" * (7 << 20)}))
        small = lam.invoke(FunctionName="local-one", Payload=b"{}")
    assert info.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "FunctionError" not in small


def test_a_rollback_to_a_release_whose_version_fails_is_refused(local_env, tmp_path, builder):
    clock = Clock()
    unchecked = dataclasses.replace(STAGE, health_check=False)
    with local_stage(STAGE, tmp_path / "state") as stage_run:
        clients = stage_run.clients
        broken = with_code(builder.desired(), "one", BROKEN, tmp_path / "broken")
        bad = run(broken, clients, stage=unchecked, now=clock).result.release
        run(builder.desired(), clients, now=clock)
        with pytest.raises(DeployError) as info:
            rollback(clients, STAGE, bad.release_id, owner="pytest", now=clock)
        alias = clients.lambda_.get_alias(FunctionName="local-one", Name="live")
        assert alias["FunctionVersion"] == "2"
        assert len(list_releases(clients.s3, STAGE)) == 2
    assert "refused, nothing was changed" in str(info.value)
    assert "RuntimeError: cannot load the model" in str(info.value)


def test_zips_are_stored_once_outside_the_request_log(local_env, tmp_path, builder):
    state = tmp_path / "state"
    clock = Clock()
    big = tiny_zip(tmp_path / "big" / "core.zip", {"python/core/blob.txt": "x" * 3_000_000})
    desired = builder.desired()
    data = big.read_bytes()
    core = dataclasses.replace(
        desired.layers[0], zip_path=big, sha256=hashlib.sha256(data).hexdigest(),
        zipped_bytes=len(data),
    )  # fmt: skip
    layers = (core, *desired.layers[1:])
    desired = dataclasses.replace(desired, layers=layers)
    for _ in range(2):  # the second start replays the first; its deploy has nothing to do
        with local_stage(STAGE, state) as stage_run:
            run(desired, stage_run.clients, now=clock)
    stored = sorted(p.name for p in (state / "artifacts").iterdir())
    expected = sorted({f"{a.sha256}.zip" for a in (*desired.layers, *desired.functions)})
    assert stored == expected
    log = (state / REQUESTS).read_text()
    assert (state / REQUESTS).stat().st_size < 100_000  # the 3 MB zip is not in it
    assert all(json.loads(line)["method"] not in ("GET", "HEAD") for line in log.splitlines())


def _deployed_state(tmp_path: Path, builder: Builder) -> Path:
    state = tmp_path / "state"
    with local_stage(STAGE, state) as stage_run:
        run(builder.desired(), stage_run.clients)
    return state


def _cut_inside(path: Path) -> None:
    """A line cut short before the last one (a torn last line is dropped: test_state_faults)."""
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:2], lines[2][:-40] + b"\n", *lines[3:]]))


DAMAGES = {
    "log cut before its last line": (REQUESTS, _cut_inside, "at line 3"),
    "log line null": (REQUESTS, lambda p: p.write_text(p.read_text() + "null\n"), "line "),
    "log wrong shape": (REQUESTS, lambda p: p.write_text('{"method": 1}\n'), "at line 1"),
    "log not json": (REQUESTS, lambda p: p.write_text("{]\n"), "at line 1"),
    "state empty": (STATE_FILE, lambda p: p.write_text(""), "cannot be read"),
    "state null": (STATE_FILE, lambda p: p.write_text("null"), "does not say which format"),
    "state wrong shape": (STATE_FILE, lambda p: p.write_text("[1]"), "does not say which format"),
    "state other version": (STATE_FILE, lambda p: p.write_text('{"format": 99}'), "format 99"),
    "state missing": (STATE_FILE, lambda p: p.unlink(), "is missing next to requests.jsonl"),
    "old layerkit": ("moto-recording.jsonl", lambda p: p.write_text("{}\n"), "older layerkit"),
    "zip missing": ("artifacts", lambda p: next(p.iterdir()).unlink(), "is missing (line"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_saved_state_is_one_paragraph_saying_what_to_run(
    local_env, tmp_path, builder, damage
):
    state = _deployed_state(tmp_path, builder)
    name, spoil, what = DAMAGES[damage]
    spoil(state / name)
    with pytest.raises(DeployError) as info, local_stage(STAGE, state):
        pass
    message = str(info.value)
    assert what in message
    assert "\n" not in message
    assert f"Delete {state}" in message
    assert "inv deploy --stage=local" in message


_KILLED_WHILE_LOCKED = """
import os, signal, sys
from pathlib import Path
import datetime as dt
from layerkit.deploy.localstage import local_stage
from layerkit.deploy.stagelock import acquire
from layerkit.project.stages import get_stage
stage = get_stage(Path(sys.argv[1]), "local")
with local_stage(stage, Path(sys.argv[2])) as run:
    acquire(run.clients.s3, stage, "killed-process", "deploy", dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc))
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_lock_of_a_killed_run_is_removed_and_named_by_the_next_command(
    local_env, tmp_path, builder
):
    state = _deployed_state(tmp_path, builder)
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_WHILE_LOCKED, str(REPO_ROOT), str(state)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stderr
    with local_stage(STAGE, state) as stage_run:
        assert read_lock(stage_run.clients.s3, STAGE) is None
        notes = " ".join(stage_run.notes)
        assert "removed the deploy lock of killed-process" in notes
        assert "Every alias is where release" in notes
        again = run(builder.desired(), stage_run.clients)  # and the stage is usable at once
        assert again.steps == ()


def test_unlock_and_open_stage(local_env, tmp_path):
    (tmp_path / "stages.toml").write_text((REPO_ROOT / "stages.toml").read_text())
    with open_stage(tmp_path, "local") as session:
        assert session.stage.local
        assert session.endpoint
        assert unlock(session.clients, session.stage) is None
        acquire(session.clients.s3, session.stage, "someone", "deploy", Clock()())
        removed = unlock(session.clients, session.stage)
        assert removed is not None
        assert removed.owner == "someone"
        assert read_lock(session.clients.s3, session.stage) is None


def test_opening_the_stage_adds_nothing_to_its_log(local_env, tmp_path, builder):
    state = _deployed_state(tmp_path, builder)
    size = (state / REQUESTS).stat().st_size
    for _ in range(2):
        with local_stage(STAGE, state) as opened:
            list_releases(opened.clients.s3, STAGE)
            opened.clients.lambda_.list_functions()
    assert (state / REQUESTS).stat().st_size == size
