"""The build manifest: round trip, timings, and every kind of damage as one paragraph."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from layerkit.build.manifest import (
    MANIFEST,
    MANIFEST_FORMAT,
    ArtifactKind,
    ArtifactRecord,
    DamagedManifestError,
    artifact_intact,
    read_manifest,
    read_manifest_or_nothing,
    read_refusals,
    stat_fields,
    step_timings,
    write_manifest,
)

RECORD = ArtifactRecord(
    kind=ArtifactKind.LAYER,
    name="base",
    target="python3.9-x86_64",
    path="layers/base.zip",
    sha256="ab" * 32,
    zipped_bytes=5,
    unzipped_bytes=10,
    files=1,
    input_hash="cd" * 32,
    distributions={"six": "1.17.0"},
    layers=("core",),
    modules=("six",),
    slim=({"name": "tests", "removed_files": 1, "removed_bytes": 2, "examples": []},),
    bytecode={"mode": "all"},
    timings=(("install", 1.5), ("slim", 0.25), ("zip", 0.5)),
)


def written(tmp_path: Path) -> Path:
    write_manifest(tmp_path, "python3.9-x86_64", {RECORD.path: RECORD})
    return tmp_path / MANIFEST


def test_round_trip_keeps_every_field_and_the_step_order(tmp_path: Path) -> None:
    written(tmp_path)
    records = read_manifest(tmp_path)
    assert records == {RECORD.path: RECORD}
    assert records[RECORD.path].kind is ArtifactKind.LAYER
    assert step_timings(records) == {"layers/base.zip": {"install": 1.5, "slim": 0.25, "zip": 0.5}}
    assert list(step_timings(records)["layers/base.zip"]) == ["install", "slim", "zip"]
    assert records[RECORD.path].build_seconds == 2.25
    assert not list(tmp_path.glob("*.tmp"))


def test_no_manifest_is_nothing_built(tmp_path: Path) -> None:
    assert read_manifest(tmp_path) == {}


def _edit(path: Path, change: object) -> None:
    doc = json.loads(path.read_text())
    change(doc)  # type: ignore[operator]
    path.write_text(json.dumps(doc))


DAMAGES = {
    "truncated": (lambda p: p.write_text(p.read_text()[:150]), "is not valid JSON"),
    "empty": (lambda p: p.write_text(""), "is empty"),
    "null": (lambda p: p.write_text("null"), "holds null, not a build manifest"),
    "a list": (lambda p: p.write_text("[1, 2]"), "holds a list, not a build manifest"),
    "artifacts a list": (
        lambda p: _edit(p, lambda d: d.update(artifacts=[])),
        "an object without `artifacts`",
    ),
    "no name": (
        lambda p: _edit(p, lambda d: d["artifacts"]["layers/base.zip"].pop("name")),
        "entry 'layers/base.zip' has no `name`",
    ),
    "record is null": (
        lambda p: _edit(p, lambda d: d["artifacts"].update({"layers/base.zip": None})),
        "entry 'layers/base.zip' is null, not a record",
    ),
    "wrong type": (
        lambda p: _edit(p, lambda d: d["artifacts"]["layers/base.zip"].update(zipped_bytes="5")),
        'has `zipped_bytes` = "5", not a number',
    ),
    "unknown field": (
        lambda p: _edit(p, lambda d: d["artifacts"]["layers/base.zip"].update(input_digest="x")),
        "has a field `input_digest` this layerkit does not know",
    ),
    "another version": (
        lambda p: _edit(p, lambda d: d.update(format=MANIFEST_FORMAT + 1, layerkit="9.0")),
        f"written by layerkit 9.0 in manifest format {MANIFEST_FORMAT + 1}",
    ),
    "an older version": (
        lambda p: _edit(p, lambda d: d.pop("format")),
        "in manifest format 1;",
    ),
    "not utf-8": (lambda p: p.write_bytes(b"\xff\xfe{"), "cannot be read"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_manifest_is_one_paragraph_that_says_what_to_run(
    tmp_path: Path, damage: str
) -> None:
    path = written(tmp_path)
    spoil, expected = DAMAGES[damage]
    spoil(path)
    with pytest.raises(DamagedManifestError) as info:
        read_manifest(tmp_path)
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "`inv build.all`" in message
    assert "\n" not in message
    assert read_manifest_or_nothing(tmp_path) == {}


def test_an_intact_zip_is_known_by_size_and_time_without_reading_it(tmp_path: Path) -> None:
    zip_path = tmp_path / "layers" / "base.zip"
    zip_path.parent.mkdir()
    zip_path.write_bytes(b"12345")
    stat = zip_path.stat()
    record = ArtifactRecord(**{**RECORD.__dict__, **stat_fields(zip_path)})
    assert artifact_intact(tmp_path, record)  # the recorded sha256 is not this file's
    os.utime(zip_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert not artifact_intact(tmp_path, record)  # touched: the sha256 decides
    zip_path.write_bytes(b"123456")
    assert not artifact_intact(tmp_path, record)


def test_garbage_of_the_same_size_and_mtime_is_not_intact(tmp_path: Path) -> None:
    """Fresh is "hashes to the recorded sha256": the old mtime put back does not hide a rewrite."""
    zip_path = tmp_path / "layers" / "base.zip"
    zip_path.parent.mkdir()
    zip_path.write_bytes(b"12345")
    good = hashlib.sha256(b"12345").hexdigest()
    record = ArtifactRecord(**{**RECORD.__dict__, "sha256": good, **stat_fields(zip_path)})
    before = zip_path.stat()
    time.sleep(0.01)
    zip_path.write_bytes(b"XXXXX")  # same size, in place
    os.utime(zip_path, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime
    assert zip_path.stat().st_mtime_ns == record.mtime_ns
    assert not artifact_intact(tmp_path, record)
    zip_path.write_bytes(b"12345")  # the right bytes again: fresh by content, whatever the times
    assert artifact_intact(tmp_path, record)


def test_a_record_without_file_facts_is_hashed(tmp_path: Path) -> None:
    zip_path = tmp_path / "layers" / "base.zip"
    zip_path.parent.mkdir()
    zip_path.write_bytes(b"12345")
    info = zip_path.stat()
    old = ArtifactRecord(**{**RECORD.__dict__, "mtime_ns": info.st_mtime_ns})  # no ino/ctime
    assert not artifact_intact(tmp_path, old)  # RECORD's sha256 is not these bytes


def test_refusals_are_kept_until_the_artifact_is_described_again(tmp_path: Path) -> None:
    write_manifest(tmp_path, "t", {}, {"layers/base.zip": "over the limit"})
    assert read_refusals(tmp_path) == {"layers/base.zip": "over the limit"}
    write_manifest(tmp_path, "t", {})  # another artifact's record: the refusal stays
    assert read_refusals(tmp_path) == {"layers/base.zip": "over the limit"}
    assert read_manifest(tmp_path) == {}
    write_manifest(tmp_path, "t", {"layers/base.zip": RECORD})
    assert read_refusals(tmp_path) == {}
