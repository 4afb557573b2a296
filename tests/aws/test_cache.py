"""The shared build cache in S3 (moto), through the real build pipeline (installs faked).

One machine builds and fills the cache; a fresh clone of the same project with an empty dist/
downloads every artifact instead of building it, byte for byte; corrupt or partial entries are
ignored with a warning and rebuilt.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from layerkit.build import cache as C
from layerkit.build import pipeline as B
from layerkit.build.manifest import read_manifest
from layerkit.build.tools import Tools
from layerkit.project.spec import load_project
from tests.unit.build.fakes import FakeInstaller, fail_on, fake_tools
from tests.unit.build.test_pipeline import locked

from .conftest import REGION

pytestmark = pytest.mark.aws

BUCKET = "team-build-cache"
URL = f"s3://{BUCKET}/layerkit"
ARTIFACTS = ("layers/base.zip", "layers/top.zip", "functions/fn.zip")


@pytest.fixture
def s3(aws_env: None):
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def first(make_project: Callable[..., Path]) -> Path:
    root = make_project()
    locked(load_project(root))
    return root


def clone(root: Path, dest: Path) -> Path:
    """A fresh checkout of the same project: its files, no dist/."""
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns("dist"))
    return dest


def build(root: Path, s3, **kwargs):
    events: list[B.BuildEvent] = []
    store = C.open_store(URL, s3_client=s3)
    kwargs.setdefault("tools", fake_tools())
    result = B.build(load_project(root), cache=store, progress=events.append, **kwargs)
    return result, events


def no_install() -> Tools:
    """Tools whose installer fails: a cache hit must not install anything."""
    return fake_tools(FakeInstaller(fail=fail_on("", AssertionError("a cache hit installed"))))


def keys(s3) -> set[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", ())
    return {o["Key"] for o in listed}


def test_a_miss_builds_and_uploads_then_a_fresh_clone_downloads_identical_zips(first, s3, tmp_path):
    built, events = build(first, s3)
    assert built.built == ARTIFACTS
    assert built.cached == ()
    assert {e.step for e in events} >= {"install", "zip", "cache"}
    assert not [e for e in events if e.step == "warning"]
    entries = {k for k in keys(s3) if k.startswith("layerkit/python3.9-x86_64/")}
    assert len(entries) == 2 * len(ARTIFACTS)  # a zip and a record each

    again = clone(first, tmp_path / "clone")
    hit, events = build(again, s3, tools=no_install())
    assert hit.built == ()
    assert hit.cached == ARTIFACTS
    assert dict(hit.records) == dict(built.records)
    assert read_manifest(hit.out_dir) == read_manifest(built.out_dir)
    for path in ARTIFACTS:
        assert (hit.out_dir / path).read_bytes() == (built.out_dir / path).read_bytes()
    assert not {e.step for e in events} & {"install", "zip", "warning"}
    # and the downloaded build is simply current
    current = B.plan(load_project(again), hit.target, tool_versions=fake_tools().versions())
    assert {p.state for p in current.artifacts} == {"fresh"}


def test_a_corrupt_entry_is_ignored_with_a_warning_rebuilt_and_replaced(first, s3, tmp_path):
    built, _ = build(first, s3, functions=False)
    (key,) = [k for k in keys(s3) if k.endswith(".zip") and "/layers/top/" in k]
    good = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=good[: len(good) // 2])

    again = clone(first, tmp_path / "clone")
    result, events = build(again, s3, functions=False)
    assert result.cached == ("layers/base.zip",)
    assert result.built == ("layers/top.zip",)
    (warning,) = [e for e in events if e.step == "warning"]
    assert warning.artifact == "layer top"
    assert "ignored the corrupt cache entry" in warning.detail
    assert (result.out_dir / "layers/top.zip").read_bytes() == good
    # the rebuild replaced the broken entry
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == good
    assert result.records["layers/top.zip"] == built.records["layers/top.zip"]


@pytest.mark.parametrize(
    "drop", [".json", ".zip"], ids=["zip-without-record", "record-without-zip"]
)
def test_a_partial_entry_is_ignored_with_a_warning(first, s3, tmp_path, drop):
    build(first, s3, functions=False)
    (key,) = [k for k in keys(s3) if k.endswith(drop) and "/layers/base/" in k]
    s3.delete_object(Bucket=BUCKET, Key=key)

    result, events = build(clone(first, tmp_path / "clone"), s3, functions=False)
    assert result.built == ("layers/base.zip",)
    assert result.cached == ("layers/top.zip",)
    (warning,) = [e for e in events if e.step == "warning"]
    assert "partial cache entry" in warning.detail
    assert key in keys(s3)  # filled in again by the rebuild


def test_a_forced_build_does_not_read_the_cache_but_fills_it(first, s3, tmp_path):
    build(first, s3, functions=False)
    result, events = build(clone(first, tmp_path / "clone"), s3, functions=False, force=True)
    assert result.cached == ()
    assert result.built == ("layers/base.zip", "layers/top.zip")
    assert [e.detail.split()[0] for e in events if e.step == "cache"] == ["uploaded", "uploaded"]


def test_an_unreachable_bucket_warns_and_builds(first, s3):
    store = C.open_store("s3://no-such-bucket/x", s3_client=s3)
    events: list[B.BuildEvent] = []
    result = B.build(
        load_project(first),
        cache=store,
        functions=False,
        progress=events.append,
        tools=fake_tools(),
    )
    assert result.built == ("layers/base.zip", "layers/top.zip")
    warnings = [e.detail for e in events if e.step == "warning"]
    assert warnings
    assert all("no-such-bucket" in w for w in warnings)
