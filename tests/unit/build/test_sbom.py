"""CycloneDX SBOMs from the lock: valid against the schema, reproducible, written beside zips."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from layerkit.build import lock as L
from layerkit.build import pipeline as B
from layerkit.build.manifest import ArtifactKind, ArtifactRecord
from layerkit.build.sbom import document, licence_of, sbom_path, write_sboms
from layerkit.project.spec import Project, load_project
from layerkit.runtime.target import Target
from tests.unit.build.fakes import FakeInstaller, fake_tools

T = Target("python3.9")


def pkg(name: str, version: str = "1.0", url: str = "", by: str = "layer:x") -> L.LockedPackage:
    wheel = url or f"https://files.example/{name}-{version}-py3-none-any.whl"
    return L.LockedPackage(name, version, wheel, "ab" * 32, 10, (by,))  # type: ignore[arg-type]


def record(kind: str = "layer", name: str = "x", **extra: object) -> ArtifactRecord:
    return ArtifactRecord(
        kind=ArtifactKind(kind), name=name, target=T.key, path=f"{kind}s/{name}.zip",
        sha256="cd" * 32, zipped_bytes=1, unzipped_bytes=2, files=1, input_hash="ef" * 32,
        **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def valid(doc: dict) -> None:
    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(doc))
    assert error is None, error


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("Name: a\nLicense-Expression: MIT OR Apache-2.0\nLicense: ignored\n",
         {"expression": "MIT OR Apache-2.0"}),
        ("Name: a\nLicense: BSD-3-Clause\n", {"license": {"name": "BSD-3-Clause"}}),
        ("Name: a\nLicense: UNKNOWN\nClassifier: License :: OSI Approved :: MIT License\n",
         {"license": {"name": "MIT License"}}),
        ("Name: a\nClassifier: Programming Language :: Python\n", None),
    ],
)  # fmt: skip
def test_the_licence_comes_from_the_wheels_own_metadata(metadata: str, expected: object) -> None:
    assert licence_of(metadata) == expected


def test_a_layer_document_lists_each_locked_wheel_and_is_valid_cyclonedx() -> None:
    packages = [pkg("six", "1.16.0"), pkg("pytz", "2024.1")]
    doc = document(record(), packages, {"six": {"expression": "MIT"}})
    valid(doc)
    assert doc["metadata"]["component"]["hashes"] == [{"alg": "SHA-256", "content": "cd" * 32}]
    assert [c["purl"] for c in doc["components"]] == [
        "pkg:pypi/pytz@2024.1",
        "pkg:pypi/six@1.16.0",
    ]
    six = doc["components"][1]
    assert six["hashes"] == [{"alg": "SHA-256", "content": "ab" * 32}]
    assert six["licenses"] == [{"expression": "MIT"}]
    assert "licenses" not in doc["components"][0]  # none stated: none invented
    assert doc == document(record(), list(reversed(packages)), {"six": {"expression": "MIT"}})


def test_credentials_in_a_wheel_url_never_reach_the_sbom() -> None:
    private = pkg("internal", url="https://deploy:s3cret@pypi.corp.example/p/internal-1.0.whl")
    text = json.dumps(document(record(), [private], {}))
    assert "s3cret" not in text
    assert "deploy" not in text
    assert "https://***@pypi.corp.example/p/internal-1.0.whl" in text


def test_the_index_a_wheel_came_from_is_named_without_credentials() -> None:
    private = L.LockedPackage(
        "internal", "1.0", "https://pkgs.example/internal-1.0-py3-none-any.whl", "ab" * 32, 1,
        ("layer:x",), index="https://bot:tok@pkgs.example/simple/",
    )  # type: ignore[arg-type]  # fmt: skip
    doc = document(record(), [private], {})
    valid(doc)
    refs = doc["components"][0]["externalReferences"]
    assert refs[1] == {"type": "distribution-intake", "url": "https://***@pkgs.example/simple/"}


def test_a_function_document_names_the_layers_it_attaches() -> None:
    layer = record("layer", "base")
    doc = document(record("function", "api", layers=("base",)), [pkg("ulid")], {}, [layer])
    valid(doc)
    assert doc["metadata"]["component"]["type"] == "application"
    refs = doc["dependencies"][0]["dependsOn"]
    assert refs == ["pkg:pypi/ulid@1.0", "layer:base"]
    assert doc["components"][1]["hashes"][0]["content"] == layer.sha256


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Project:
    p = load_project(make_project())
    L.write_lock(
        p,
        L.Lock(T, L.input_hashes(p), (pkg("pytz", by="layer:top"), pkg("six", by="layer:base"))),  # type: ignore[arg-type]
    )
    return p


def test_every_build_leaves_an_sbom_beside_each_zip(project: Project) -> None:
    installer = FakeInstaller(extra={"six-1.0.dist-info/METADATA": "Name: six\nLicense: MIT\n"})
    result = B.build(project, functions=False, tools=fake_tools(installer))
    out = result.out_dir
    top = json.loads((out / sbom_path("layers/top.zip")).read_text())
    assert (
        top["metadata"]["component"]["hashes"][0]["content"]
        == result.records["layers/top.zip"].sha256
    )
    assert [c["name"] for c in top["components"]] == ["pytz"]
    base = json.loads((out / "layers" / "base.cdx.json").read_text())
    assert base["components"][0]["licenses"] == [{"license": {"name": "MIT"}}]
    before = (out / "layers" / "base.cdx.json").stat().st_mtime_ns
    assert write_sboms(out, result.records, L.read_lock(project, T)) == ()  # nothing changed
    assert (out / "layers" / "base.cdx.json").stat().st_mtime_ns == before
    B.clean(project, "base")
    assert not (out / "layers" / "base.cdx.json").exists()
