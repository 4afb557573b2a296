"""The local stage's store and request log, without a server."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from layerkit.deploy.localinvoke import ArtifactStore, _invocation_target
from layerkit.deploy.localstate import Entry, StateDir
from layerkit.deploy.stageinvoke import function_spec
from layerkit.errors import DeployError

from .helpers import STAGE


def test_the_store_keeps_a_zip_once_under_its_sha256_and_refuses_other_bytes(tmp_path: Path):
    store = ArtifactStore(tmp_path / "artifacts")
    data = b"PK zip bytes"
    sha = hashlib.sha256(data).hexdigest()
    body = io.BytesIO(data)
    assert store.put(sha, body) == store.path(sha)
    assert body.tell() == 0  # rewound for the upload that follows
    assert store.path(sha).read_bytes() == data
    with pytest.raises(DeployError, match="other bytes than its name says"):
        store.put("0" * 64, b"something else")
    assert sorted(p.name for p in store.root.iterdir()) == [f"{sha}.zip"]


def test_the_log_round_trips_and_keeps_artifacts_as_references(tmp_path: Path):
    state = StateDir(tmp_path / "state")
    state.check_format()
    sha = hashlib.sha256(b"zip").hexdigest()
    state.store.put(sha, b"zip")
    entries = [
        Entry("PUT", f"/bucket/artifacts/{sha}.zip", {"Content-Type": "application/zip"}, b"",
              sha),
        Entry("POST", "/2015-03-31/functions", {"X": "1"}, b'{"FunctionName": "f"}'),
    ]  # fmt: skip
    for entry in entries:
        state.append(entry)
    assert list(state.entries()) == entries
    first = state.requests.read_text().splitlines()[0]
    assert '"body"' not in first
    assert f'"artifact":"{sha}"' in first


def test_a_missing_log_and_a_fresh_folder_are_an_empty_stage(tmp_path: Path):
    state = StateDir(tmp_path / "new")
    state.check_format()
    assert list(state.entries()) == []
    assert (tmp_path / "new" / "state.json").read_text() == '{"format": 2}\n'


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h/2015-03-31/functions/f/invocations", ("f", None)),
        ("http://h/2015-03-31/functions/f/invocations?Qualifier=live", ("f", "live")),
        ("http://h/2015-03-31/functions/f%3A3/invocations", ("f", "3")),
        ("http://h/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af%3A2"
         "/invocations", ("arn:aws:lambda:us-east-1:1:function:f", "2")),
        ("http://h/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af"
         "/invocations", ("arn:aws:lambda:us-east-1:1:function:f", None)),
    ],
)  # fmt: skip
def test_an_invoke_url_names_the_function_and_qualifier(url, expected):
    assert _invocation_target(url) == expected


def test_function_spec_defaults_to_the_stage_alias():
    assert function_spec("one", STAGE) == ("one", "dev-one", "live")
    assert function_spec("data_validation:7", STAGE) == (
        "data_validation",
        "dev-data-validation",
        "7",
    )
    for bad in ("", ":live", "one:"):
        with pytest.raises(DeployError, match="names no function"):
            function_spec(bad, STAGE)


# ------------------------------------------------------------------ the log as a journal

import base64  # noqa: E402
import errno  # noqa: E402
import json  # noqa: E402

from layerkit.deploy import localinvoke, localstate  # noqa: E402
from layerkit.deploy.localstate import (  # noqa: E402
    JournalDamage,
    TornTail,
    journal_drift,
    parse_journal,
    release_ids_by_artifact,
)


def _line(method: str, url: str, body: bytes = b"") -> bytes:
    return Entry(method, url, {}, body).to_line()


A = _line("POST", "/2015-03-31/functions", b'{"FunctionName": "f"}')
B = _line("PUT", "/b/locks/dev.lock", b"{}")


def test_a_journal_of_whole_lines_has_no_torn_tail():
    journal = parse_journal(A + B)
    assert [e.method for e in journal.entries] == ["POST", "PUT"]
    assert journal.torn is None
    assert parse_journal(b"").entries == ()


@pytest.mark.parametrize("cut", [1, 10, len(B) - 1])
def test_a_cut_last_line_is_dropped_and_every_line_before_it_kept(cut: int):
    journal = parse_journal(A + B[:cut])
    assert [e.method for e in journal.entries] == ["POST"]
    assert journal.torn == TornTail(line=2, offset=len(A), size=cut)


def test_a_last_line_without_its_newline_is_torn_even_if_it_parses():
    journal = parse_journal(A + B[:-1])  # the JSON is whole, the write was not
    assert len(journal.entries) == 1
    assert journal.torn == TornTail(2, len(A), len(B) - 1)
    only = parse_journal(b"\0\0\0")  # a crash can leave zeros where the line was to be
    assert (only.entries, only.torn) == ((), TornTail(1, 0, 3))


def test_damage_before_the_last_line_is_not_a_torn_tail():
    with pytest.raises(JournalDamage) as info:
        parse_journal(A + A[:-20] + b"\n" + B)
    assert info.value.line == 2
    with pytest.raises(JournalDamage, match="line 1"):
        parse_journal(b"null\n" + A)


def test_reading_a_torn_log_notes_it_and_the_next_append_cuts_it_off(tmp_path: Path):
    state = StateDir(tmp_path)
    state.check_format()
    state.requests.write_bytes(A + B[:15])
    assert len(list(state.entries())) == 1
    assert "ended in a cut line (line 2, 15 bytes" in state.notes[0]
    assert "the 1 requests before it kept" in state.notes[0]
    assert state.requests.read_bytes() == A + B[:15]  # reading wrote nothing
    state.append(Entry("DELETE", "/b/locks/dev.lock", {}, b""))
    data = state.requests.read_bytes()
    assert data.startswith(A)
    assert data.endswith(b"\n")
    assert [e.method for e in parse_journal(data).entries] == ["POST", "DELETE"]


def test_a_refused_append_leaves_the_log_whole_and_names_the_folder_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    state = StateDir(tmp_path)
    state.check_format()
    state.append(Entry("POST", "/x", {}, b"1"))
    before = state.requests.read_bytes()

    def full(fd: int, line: bytes) -> None:
        import os

        os.write(fd, line[:7])  # the disk took part of the line, then filled up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(localstate, "_write_line", full)
    with pytest.raises(DeployError) as info:
        state.append(Entry("POST", "/y", {}, b"2"))
    assert state.requests.read_bytes() == before
    message = str(info.value)
    assert f"could not write {state.requests} (No space left on device)" in message
    assert f"free space on the disk that holds {tmp_path} (`df -h {tmp_path}`" in message
    assert "\n" not in message
    assert state.write_error is not None


def test_a_read_only_state_creates_nothing(tmp_path: Path):
    state = StateDir(tmp_path / "none", writable=False)
    state.check_format()
    state.remove_partial_zips()
    assert list(state.entries()) == []
    assert not (tmp_path / "none").exists()


def test_a_full_disk_while_storing_a_zip_leaves_no_tmp_and_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store = ArtifactStore(tmp_path / "artifacts")
    data = b"PK a zip"
    sha = hashlib.sha256(data).hexdigest()

    def full(path: Path, body: bytes) -> None:
        path.write_bytes(body[:3])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(localinvoke, "_write_synced", full)
    with pytest.raises(DeployError) as info:
        store.put(sha, data)
    assert list(store.root.iterdir()) == []
    message = str(info.value)
    assert f"could not store {sha}.zip in {store.root} (No space left on device)" in message
    assert "nothing half-written was left there" in message
    assert f"Free space on the disk that holds {store.root}" in message


def test_a_damaged_stored_zip_fails_verification_and_a_good_upload_replaces_it(tmp_path: Path):
    store = ArtifactStore(tmp_path / "artifacts")
    data = b"PK the zip"
    sha = hashlib.sha256(data).hexdigest()
    store.put(sha, data)
    store.path(sha).write_bytes(b"PK garbage")
    fresh = ArtifactStore(store.root)  # another process: nothing verified yet
    assert not fresh.verify(sha)
    with pytest.raises(DeployError, match="is damaged: its bytes do not hash to sha256"):
        localinvoke.stored_zip(fresh, sha, "the code of f:1")
    fresh.put(sha, data)
    assert store.path(sha).read_bytes() == data
    assert fresh.verify(sha)


def _release(release_id: str, functions: dict[str, tuple[str, str, list[str]]]) -> bytes:
    """A release record's JSON: function name -> (version, code sha256, layer ARNs)."""
    return json.dumps({
        "schema": 1, "release_id": release_id, "stage": STAGE.name, "created": "2026-11-01",
        "commit": None, "kind": "deploy", "layers": [], "rolled_back_to": None,
        "layerkit": "0", "functions": [
            {"function": n, "function_name": n, "version": v, "code_sha256": sha,
             "handler": "app.h", "runtime": "python3.12", "architecture": "x86_64",
             "memory_size": 128, "timeout": 3, "role": "r", "environment": [],
             "layers": layers}
            for n, (v, sha, layers) in functions.items()
        ],
    }).encode()  # fmt: skip


def _journal_of_two_releases() -> list[Entry]:
    code, layer = "c" * 64, "1" * 64
    arn = "arn:aws:lambda:us-east-1:1:layer:dev-core:1"
    publish = json.dumps({"Content": {"S3Bucket": "b", "S3Key": f"artifacts/{layer}.zip"}})
    return [
        Entry("POST", "/2018-10-31/layers/dev-core/versions", {}, publish.encode()),
        Entry("POST", "/2015-03-31/functions/dev-one/aliases", {},
              b'{"Name": "live", "FunctionVersion": "1"}'),
        Entry("PUT", "/b/releases/dev/r1.json", {}, _release("r1", {"dev-one": ("1", code, [arn])})),
        Entry("PUT", "/2015-03-31/functions/dev-one/aliases/live", {},
              b'{"FunctionVersion": "2"}'),
        Entry("PUT", "/b/releases/dev/r2.json", {}, _release("r2", {"dev-one": ("2", "d" * 64, [arn])})),
    ]  # fmt: skip


def test_the_releases_needing_a_zip_are_read_from_the_log():
    needs = release_ids_by_artifact(_journal_of_two_releases())
    assert needs["c" * 64] == ("r1",)
    assert needs["1" * 64] == ("r1", "r2")  # the layer version's zip
    assert needs["d" * 64] == ("r2",)


def test_drift_is_read_from_the_log_alone():
    entries = _journal_of_two_releases()
    assert journal_drift(entries, STAGE) is None  # the alias is where r2 put it
    moved = Entry("PUT", "/2015-03-31/functions/dev-one/aliases/live", {},
                  b'{"FunctionVersion": "3"}')  # fmt: skip
    drift = journal_drift([*entries, moved], STAGE)
    assert drift is not None
    assert drift.release_id == "r2"
    assert [(f.function_name, f.alias_version, f.release_version) for f in drift.functions] == [
        ("dev-one", "3", "2")
    ]
    back = Entry("PUT", "/2015-03-31/functions/dev-one/aliases/live", {},
                 b'{"FunctionVersion": "2"}')  # fmt: skip
    assert journal_drift([*entries, moved, back], STAGE) is None
    other = Entry("PUT", "/2015-03-31/functions/dev-one/aliases/canary", {},
                  b'{"FunctionVersion": "9"}')  # fmt: skip
    assert journal_drift([*entries, other], STAGE) is None  # another alias is no drift


def test_an_entry_line_round_trips_its_body():
    line = Entry("POST", "/x", {"A": "b"}, b"\x00\xff").to_line()
    assert json.loads(line)["body"] == base64.b64encode(b"\x00\xff").decode()
    assert parse_journal(line).entries[0].body == b"\x00\xff"


def test_a_stage_folder_the_os_will_not_write_is_one_paragraph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import dataclasses

    from layerkit.deploy import localstage

    def read_only(path: Path, refuse):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(localstage, "exclusive", read_only)
    local = dataclasses.replace(STAGE, local=True)
    with pytest.raises(DeployError) as info, localstage.local_stage(local, tmp_path / "s"):
        pass  # pragma: no cover - refused before the server starts
    message = str(info.value)
    assert f"could not write {tmp_path / 's' / '.in-use'} (Read-only file system)" in message
    assert f"make {tmp_path / 's'} writable" in message
    assert "\n" not in message
