"""The local stage's saved state under faults: each case asserts the state it leaves behind.

Beside the fault matrix (test_faults.py), over the same recorded stage: a torn last line of the
request log, a damaged stored zip, a deploy killed between its alias moves (drift), a full disk
during a deploy, and commands that must write nothing (a dry run, a no-op deploy, a refused
rollback, releases). Each checks the artifact bytes, the releases, the aliases and the log.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import shutil
import signal
from pathlib import Path

import pytest

from layerkit import commands
from layerkit.deploy import localinvoke, localstate
from layerkit.deploy.deployer import deploy, invoke_on_stage, rollback
from layerkit.deploy.localstage import STATE_DIR, local_stage, saved_state_notes
from layerkit.deploy.localstate import REQUESTS, Entry, StateDir, journal_drift, parse_journal
from layerkit.deploy.releases import list_releases, read_drift
from layerkit.deploy.stagelock import read_lock
from layerkit.errors import DeployError
from layerkit.project.stages import get_stage

from .conftest import REPO_ROOT, TODAY, Clock, pinned_lifecycle, stage_state
from .test_faults import (
    LOCAL,
    OUTCOME,
    _child,
    _later_clock,
    change,
    deploy_with,
    local_copy,
    recorded_before,
)

pytestmark = pytest.mark.aws

__all__ = ["local_copy", "recorded_before"]  # the fixtures, shared with the fault matrix


def snapshot(folder: Path, *, lock_file: bool = True) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes (``lock_file``: the OS lock's note too)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and (lock_file or p.name != ".in-use")
    }


def aliases_of(state: dict) -> dict[str, str]:
    return {name: fn["aliases"].get("live") for name, fn in state["functions"].items()}


def aliases(clients) -> dict[str, str]:
    return {
        name: fn["aliases"].get("live") for name, fn in stage_state(clients)["functions"].items()
    }


# ------------------------------------------------------------------------- a torn log tail


def test_a_torn_last_line_is_dropped_with_a_note_and_every_release_kept(local_copy):
    builder, state = local_copy
    with local_stage(LOCAL, state) as opened:
        before = stage_state(opened.clients)
    log = state / REQUESTS
    whole = log.read_bytes()
    torn = Entry("PUT", f"/{LOCAL.bucket}/locks/test.lock", {}, b'{"owner": "x"}').to_line()
    log.write_bytes(whole + torn[:25])  # a process killed while writing its line

    with local_stage(LOCAL, state, writable=False) as opened:  # releases, deploy --dry-run
        notes = " ".join(opened.notes)
        assert stage_state(opened.clients) == before
    assert "ended in a cut line" in notes
    assert "that line was dropped" in notes
    assert log.read_bytes() == whole + torn[:25]  # a read-only command cut nothing
    assert len(before["releases"]) == 1

    with local_stage(LOCAL, state) as opened:  # a deploy: the tail is cut, the change kept
        assert stage_state(opened.clients) == before
        deploy_with(opened.clients, change(builder), now=_later_clock())
        after = stage_state(opened.clients)
    journal = parse_journal(log.read_bytes())  # every line whole: the cut piece is gone
    assert journal.torn is None
    assert log.read_bytes().startswith(whole)
    assert len(journal.entries) > len(parse_journal(whole).entries)
    with local_stage(LOCAL, state) as reopened:
        assert reopened.notes == ()
        assert stage_state(reopened.clients) == after
    assert len(after["releases"]) == 2


# ------------------------------------------------------------------------- a damaged stored zip


def test_a_damaged_stored_zip_is_named_with_the_releases_that_need_it(local_copy):
    _, state = local_copy
    with local_stage(LOCAL, state) as opened:
        before = stage_state(opened.clients)
        (release,) = list_releases(opened.clients.s3, LOCAL)
    code = next(f for f in release.functions if f.function == "one").code_sha256
    stored = state / "artifacts" / f"{code}.zip"
    damaged = bytes(b ^ 0xFF for b in stored.read_bytes())
    stored.write_bytes(damaged)
    log = (state / REQUESTS).read_bytes()

    with local_stage(LOCAL, state) as opened:
        notes = " ".join(opened.notes)
        with pytest.raises(DeployError) as info:
            invoke_on_stage(opened.clients, LOCAL, "one", {})
        after = stage_state(opened.clients)
    # the releases and aliases are kept; the code moto hashed from the damaged zip is not
    assert after["releases"] == before["releases"]
    assert aliases_of(after) == aliases_of(before)
    assert (
        after["functions"]["test-one"]["latest"]["CodeSha256"]
        != (before["functions"]["test-one"]["latest"]["CodeSha256"])
    )
    assert f"stored zip {stored} is damaged" in notes
    assert f"release {release.release_id} needs it" in notes
    assert "Put the right zip back under that name" in notes
    assert f"({stored}) is damaged" in str(info.value)
    assert stored.read_bytes() == damaged  # named, not deleted: the user decides
    assert (state / REQUESTS).read_bytes() == log


@pytest.mark.parametrize("health_check", [False, True])
def test_a_rollback_to_a_release_whose_stored_zip_is_damaged_is_refused(local_copy, health_check):
    builder, state = local_copy
    with local_stage(LOCAL, state) as opened:
        (first,) = list_releases(opened.clients.s3, LOCAL)
        deploy_with(opened.clients, change(builder), now=_later_clock())
    # the core layer's first version: only the first release needs it (the change publishes 2)
    core = hashlib.sha256((builder.root / "v1" / "layers" / "core.zip").read_bytes()).hexdigest()
    stored = state / "artifacts" / f"{core}.zip"
    stored.write_bytes(bytes(b ^ 0xFF for b in stored.read_bytes()))
    files = snapshot(state, lock_file=False)
    stage = dataclasses.replace(LOCAL, health_check=health_check)

    with local_stage(stage, state) as opened:
        before = stage_state(opened.clients)
        assert set(opened.unusable) == {first.release_id}
        with pytest.raises(DeployError) as info:
            rollback(opened.clients, stage, first.release_id, unusable=opened.unusable)
        after = stage_state(opened.clients)
    message = str(info.value)
    assert f"not rolling stage 'test' back to release {first.release_id}" in message
    assert f"stored zip {stored} is damaged" in message
    assert "Nothing was changed." in message
    assert after == before  # no alias moved, no lock left, no release recorded
    assert snapshot(state, lock_file=False) == files


# ------------------------------------------------------------------------- drift


MOVES = [
    i for i, s in enumerate(OUTCOME.steps, 1) if type(s).__name__ in ("MoveAlias", "CreateAlias")
]


def test_a_deploy_killed_between_alias_moves_is_drift_until_a_rollback_resolves_it(local_copy):
    builder, state = local_copy
    with local_stage(LOCAL, state) as opened:
        (release,) = list_releases(opened.clients.s3, LOCAL)
        before = aliases(opened.clients)
    child = _child(builder.root, state, "change", MOVES[2])  # killed before the third move
    assert child.returncode == -signal.SIGKILL, child.stderr
    log = (state / REQUESTS).read_bytes()

    for _ in range(2):  # read-only commands show it, and showing it does not resolve it
        with local_stage(LOCAL, state, writable=False) as opened:
            clients = opened.clients
            drift = read_drift(clients.lambda_, LOCAL, list_releases(clients.s3, LOCAL))
            dry = deploy(change(builder), clients, LOCAL, dry_run=True, now=_later_clock(),
                         today=TODAY, lifecycle=pinned_lifecycle)  # fmt: skip
            notes = " ".join(opened.notes)
        assert drift is not None
        assert drift.release_id == release.release_id
        moved = {f.function_name: (f.alias_version, f.release_version) for f in drift.functions}
        assert moved == {"test-one": ("2", "1"), "test-two": ("2", "1")}  # 2 of 3 moved
        assert any(
            w.startswith("drift: stage test differs from its last release") for w in dry.warnings
        )
        assert "found the deploy lock of child" in notes
        assert "the next deploy or rollback removes it" in notes
        assert (state / REQUESTS).read_bytes() == log
    from_log = journal_drift(StateDir(state, writable=False).read_journal().entries, LOCAL)
    assert from_log == drift  # what status says, from the files alone

    with local_stage(LOCAL, state) as opened:  # rollback offers the last release
        outcome = rollback(opened.clients, LOCAL, owner="pytest", now=_later_clock())
    assert outcome.target.release_id == release.release_id
    with local_stage(LOCAL, state) as reopened:
        clients = reopened.clients
        assert aliases(clients)["test-one"] == before["test-one"]
        assert aliases(clients)["test-two"] == before["test-two"]
        history = list_releases(clients.s3, LOCAL)
        assert read_drift(clients.lambda_, LOCAL, history) is None
        assert read_lock(clients.s3, LOCAL) is None
    assert [r.kind.value for r in history] == ["deploy", "rollback"]
    assert journal_drift(StateDir(state).read_journal().entries, LOCAL) is None


# ------------------------------------------------------------------------- a full disk


def test_a_full_disk_while_storing_a_zip_names_the_folder_and_leaves_the_stage(
    local_copy, monkeypatch
):
    builder, state = local_copy
    store = state / "artifacts"
    zips = snapshot(store)

    def full(path: Path, data: bytes) -> None:
        path.write_bytes(data[:10])  # the disk took a little, then filled up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(localinvoke, "_write_synced", full)
    with local_stage(LOCAL, state) as opened:
        before = stage_state(opened.clients)
        with pytest.raises(DeployError) as info:
            deploy_with(opened.clients, change(builder), now=_later_clock())
    message = str(info.value)
    assert f"could not store {OUTCOME.steps[0].key.split('/')[-1]} in {store}" in message
    assert f"Free space on the disk that holds {store} (`df -h {store}`" in message
    assert "The stage runs exactly what it ran before this deploy." in message
    assert snapshot(store) == zips  # no .tmp, no new zip
    monkeypatch.undo()
    with local_stage(LOCAL, state) as reopened:
        assert stage_state(reopened.clients) == before


def test_a_full_disk_while_logging_names_the_log_and_keeps_it_whole(local_copy, monkeypatch):
    builder, state = local_copy
    real = localstate._write_line
    writes = iter(range(1000))

    def fills_up(fd: int, line: bytes) -> None:
        if next(writes) >= 2:  # the lock and the first upload are logged, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, line)

    with local_stage(LOCAL, state) as opened:
        before = stage_state(opened.clients)
        monkeypatch.setattr(localstate, "_write_line", fills_up)
        with pytest.raises(DeployError) as info:
            deploy_with(opened.clients, change(builder), now=_later_clock())
    monkeypatch.undo()
    message = str(info.value)
    first = message.splitlines()[0]
    assert f"the local stage could not write {state / REQUESTS} (No space left on device)" in first
    assert f"free space on the disk that holds {state}" in first
    assert parse_journal((state / REQUESTS).read_bytes()).torn is None  # whole lines only
    with local_stage(LOCAL, state) as reopened:  # the stage the log kept: as before
        after = stage_state(reopened.clients)
        assert "removed the deploy lock of pytest" in " ".join(reopened.notes)
    assert after == before


# ------------------------------------------------------------------------- writes nothing


def test_a_dry_run_a_no_op_deploy_and_a_refused_rollback_write_nothing(local_copy, tmp_path):
    builder, state = local_copy
    fresh = tmp_path / "fresh"
    with local_stage(LOCAL, fresh, writable=False) as opened:
        planned = deploy_with(opened.clients, builder.desired(), dry_run=True)
    assert planned.steps
    assert not fresh.exists()  # not even the folder

    everything = snapshot(state)
    with local_stage(LOCAL, state, writable=False) as opened:
        assert deploy_with(opened.clients, change(builder), dry_run=True).steps
    assert snapshot(state) == everything  # the OS lock's file included

    with local_stage(LOCAL, state) as opened:
        clients = opened.clients
        before = stage_state(clients)
        assert deploy_with(clients, builder.desired()).steps == ()  # the build it runs
        with pytest.raises(DeployError, match="nothing to roll back to"):
            rollback(clients, LOCAL, owner="pytest", now=_later_clock())
        (release,) = list_releases(clients.s3, LOCAL)
        again = rollback(clients, LOCAL, release.release_id, owner="pytest", now=_later_clock())
        assert again.release is None
        assert stage_state(clients) == before
    assert snapshot(state, lock_file=False) == {
        k: v for k, v in everything.items() if k != ".in-use"
    }


def test_releases_and_status_show_drift_and_write_nothing(tmp_path, monkeypatch, builder):
    for key in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO_ROOT / "stages.toml", root / "stages.toml")
    stage = get_stage(root, "local")
    state = root / STATE_DIR
    clock = Clock()
    with local_stage(stage, state) as opened:
        for version in ("1", "2"):
            deploy(builder.desired(functions={"one": version}), opened.clients, stage,
                   owner="pytest", now=clock, today=TODAY, lifecycle=pinned_lifecycle)  # fmt: skip
        assert commands._local_stage_notes(root) == ()  # no drift yet
        opened.clients.lambda_.update_alias(
            FunctionName="local-one", Name="live", FunctionVersion="1"
        )
    everything = snapshot(state)

    out = commands.releases(root, stage="local")
    assert len(out.releases) == 2
    assert out.drift is not None
    assert "local-one is on 1, the release says 2" in out.drift
    assert out.render().splitlines()[-1] == out.drift
    status_lines = commands._local_stage_notes(root)
    assert status_lines == (out.drift,)
    assert saved_state_notes(root, stage) == status_lines
    assert snapshot(state) == everything  # releases and status wrote nothing
