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
