from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from layerkit.errors import LayerkitError, ReportError
from layerkit.report.files import load_manifest, write_report
from tests.unit.report.manifests import make_manifest


def write_build(dist: Path, manifest: dict, sub: str | None = None) -> Path:
    folder = dist / sub if sub else dist
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(manifest, sort_keys=True))
    return folder


def test_write_report_is_self_contained(tmp_path: Path) -> None:
    dist = write_build(tmp_path / "dist", make_manifest())
    written = write_report(dist)
    data = json.loads(written.json_path.read_text())
    assert data["limit_bytes"] == 262_144_000
    page = written.html_path.read_text()
    assert "<svg" in page
    assert "<script" not in page
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page)
    assert "predictions" in page
    assert "ml-dist" in page
    assert not list(dist.glob(".*.tmp"))


def test_report_json_keeps_the_largest_first_despite_sort_keys(tmp_path: Path) -> None:
    dist = write_build(tmp_path / "dist", make_manifest())
    data = json.loads(write_report(dist).json_path.read_text())
    aws = next(x for x in data["targets"][0]["layers"] if x["name"] == "aws")
    assert [d["name"] for d in aws["largest_distributions"]][:2] == ["urllib3", "botocore"]


def test_every_built_target_and_the_build_info_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "locks").mkdir(parents=True)
    (root / "locks" / "python3.9-x86_64.toml").write_text("lock = 1\n")
    dist = write_build(root / "dist", make_manifest())
    write_build(dist, make_manifest("python3.12-x86_64"), sub="python3.12-x86_64")

    class Project:
        layers = ()

    Project.root = root  # type: ignore[attr-defined]
    report = write_report(dist, Project(), commit="abc123").report
    assert [t["target"] for t in report["targets"]] == ["python3.9-x86_64", "python3.12-x86_64"]
    assert report["build"]["commit"] == "abc123"
    # a target without a lock file has no hash rather than a made-up one
    assert report["build"]["locks"] == {
        "python3.9-x86_64": hashlib.sha256(b"lock = 1\n").hexdigest()
    }
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", report["build"]["date"])
    page = (dist / "report.html").read_text()
    assert "Targets side by side" in page
    assert "abc123" in page


def test_a_new_build_keeps_the_last_report_and_says_what_grew(tmp_path: Path) -> None:
    dist = write_build(tmp_path / "dist", make_manifest(ml_size=150_000_000))
    first = write_report(dist)
    assert first.previous_path is None
    again = write_report(dist)  # the same build again: nothing to compare, nothing rotated
    assert again.previous_path is None
    assert not (dist / "report.previous.json").exists()
    write_build(dist, make_manifest(ml_size=160_000_000))
    second = write_report(dist)
    assert second.previous_path == dist / "report.previous.json"
    previous = json.loads(second.previous_path.read_text())
    assert previous["build"]["id"] == first.report["build"]["id"]
    top = second.report["changes"][0]
    assert (top["what"], top["delta"]) == ("layer ml", 10_000_000)
    assert "What changed" in (dist / "report.html").read_text()
    # reporting the second build again still compares with the first
    assert write_report(dist).report["changes"] == second.report["changes"]


def test_the_report_lists_the_versions_that_moved(tmp_path: Path) -> None:
    first = make_manifest()
    first["artifacts"]["layers/aws.zip"]["distributions"] = {"boto3": "1.34.0", "six": "1.17.0"}
    dist = write_build(tmp_path / "dist", first)
    write_report(dist)
    second = make_manifest(ml_size=160_000_000)
    second["artifacts"]["layers/aws.zip"]["distributions"] = {"boto3": "1.35.1", "six": "1.17.0"}
    write_build(dist, second)
    report = write_report(dist).report
    assert report["version_changes"] == [
        {"target": "python3.9-x86_64", "what": "layer aws", "distribution": "boto3",
         "before": "1.34.0", "after": "1.35.1"},
    ]  # fmt: skip
    page = (dist / "report.html").read_text()
    assert "Versions that moved" in page
    assert "<td>1.34.0</td><td>1.35.1</td>" in page


@pytest.mark.parametrize(
    ("text", "phrase", "fix"),
    [
        # the build itself refuses a manifest that is not JSON: only a clean helps
        (
            '{"layerkit": "0.1.0", "artifacts": {"layers/a.zip": {"na',
            "not valid JSON",
            "run `inv clean` and then `inv build.all`.",
        ),
        ("null", "null", "run `inv build.all --force` to rebuild"),
        (
            '{"artifacts": {"layers/a.zip": {"kind": "layer", "unzipped_bytes": 1}}}',
            "no `name`",
            "run `inv build.all --force`",
        ),
        ("", "not valid JSON", "run `inv clean` and then `inv build.all`."),
    ],
    ids=["truncated", "null", "no-name", "empty"],
)
def test_a_damaged_manifest_is_one_paragraph_saying_what_to_run(
    tmp_path: Path, text: str, phrase: str, fix: str
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "manifest.json").write_text(text)
    with pytest.raises(ReportError) as info:
        write_report(dist)
    message = str(info.value)
    assert isinstance(info.value, LayerkitError)
    assert "\n" not in message
    assert str(dist / "manifest.json") in message
    assert phrase in message
    assert fix in message
    assert not (dist / "report.json").exists()  # nothing half-written


def test_a_damaged_manifest_of_another_target_names_its_runtime(tmp_path: Path) -> None:
    dist = write_build(tmp_path / "dist", make_manifest())
    (write_build(dist, {}, sub="python3.12-x86_64") / "manifest.json").write_text("[1")
    with pytest.raises(
        ReportError, match=r"`inv clean` and then `inv build\.all --runtime=python3\.12`"
    ):
        write_report(dist)


def test_no_build_says_to_build_first(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"Run `inv build\.all` first"):
        write_report(tmp_path)
    with pytest.raises(ReportError, match="does not exist"):
        load_manifest(tmp_path / "manifest.json")


def test_each_artifacts_sbom_is_linked_from_the_report(tmp_path: Path) -> None:
    dist = write_build(tmp_path / "dist", make_manifest())
    other = write_build(dist, make_manifest("python3.12-x86_64"), sub="python3.12-x86_64")
    for folder in (dist, other):
        (folder / "layers").mkdir(exist_ok=True)
        (folder / "layers" / "aws.cdx.json").write_text('{"components": [{}, {}, {}]}')
    written = write_report(dist)
    targets = {t["target"]: t for t in written.report["targets"]}
    aws = next(x for x in targets["python3.12-x86_64"]["layers"] if x["name"] == "aws")
    assert aws["sbom"] == {"path": "python3.12-x86_64/layers/aws.cdx.json", "components": 3}
    core = next(x for x in targets["python3.9-x86_64"]["layers"] if x["name"] != "aws")
    assert "sbom" not in core  # no SBOM beside its zip: no link to nothing
    page = written.html_path.read_text()
    assert 'href="layers/aws.cdx.json"' in page
    assert 'href="python3.12-x86_64/layers/aws.cdx.json"' in page
