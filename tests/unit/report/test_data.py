from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from layerkit.report.data import (
    LAMBDA_UNZIPPED_LIMIT,
    METADATA,
    attribute_files,
    build_report,
    check_manifest,
    distribution_sizes,
    report_changes,
    zip_package_sizes,
)
from tests.unit.report.manifests import make_manifest


def write(root: Path, rel: str, size: int) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def test_distribution_sizes_attribute_records_pycs_and_leftovers(tmp_path: Path) -> None:
    write(tmp_path, "pkg/__init__.py", 10)
    write(tmp_path, "pkg/__pycache__/__init__.cpython-39.pyc", 7)  # not in RECORD: its source's
    write(tmp_path, "pkg/data/extra.bin", 5)  # not in RECORD: its top-level folder's
    write(tmp_path, "pkg.libs/libblas.so", 100)
    write(tmp_path, "solo.py", 3)
    write(tmp_path, "solo.pyc", 2)  # sourceless-style legacy pyc
    write(tmp_path, "stray.txt", 1)
    info = tmp_path / "My_Pkg-1.0.dist-info"
    info.mkdir()
    (info / "RECORD").write_text(
        "pkg/__init__.py,sha256=a,10\npkg.libs/libblas.so,,\n"
        "My_Pkg-1.0.dist-info/RECORD,,\n../../bin/tool,,\n"
    )
    other = tmp_path / "solo-2.0.dist-info"
    other.mkdir()
    (other / "RECORD").write_text("solo.py,,\n")
    record_size = (info / "RECORD").stat().st_size
    sizes = distribution_sizes(tmp_path)
    assert sizes == {
        "my-pkg": 10 + 7 + 5 + 100 + record_size,
        "solo": 3 + 2 + (other / "RECORD").stat().st_size,
        "(other)": 1,
    }
    assert next(iter(sizes)) == "my-pkg"  # largest first


def test_files_split_by_distribution_and_top_level_package() -> None:
    files = [
        ("numpy/core/_multiarray.so", 50),
        ("numpy.libs/libopenblas.so", 30),
        ("numpy-2.0.dist-info/RECORD", 2),
        ("six.py", 4),
        ("__pycache__/six.cpython-39.pyc", 3),
    ]
    records = {
        "numpy-2.0.dist-info": ["numpy/core/_multiarray.so", "numpy.libs/libopenblas.so"],
        "six-1.17.0.dist-info": ["six.py"],
    }
    assert attribute_files(files, records) == {
        "numpy": {"numpy": 50, "numpy.libs": 30, METADATA: 2},
        "six": {"six": 7},
    }


def test_zip_package_sizes_reads_the_built_zip(tmp_path: Path) -> None:
    path = tmp_path / "layer.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("python/numpy/__init__.py", b"x" * 10)
        archive.writestr("python/numpy.libs/libblas.so", b"x" * 500)
        archive.writestr("python/six.py", b"x" * 40)
        archive.writestr(
            "python/numpy-2.0.dist-info/RECORD", "numpy/__init__.py,,\nnumpy.libs/libblas.so,,\n"
        )
        archive.writestr("python/six-1.17.0.dist-info/RECORD", "six.py,,\n")
    sizes = zip_package_sizes(path)
    assert list(sizes) == ["numpy", "six"]
    assert sizes["numpy"] == {"numpy.libs": 500, METADATA: 44, "numpy": 10}
    assert list(sizes["numpy"]) == ["numpy.libs", METADATA, "numpy"]  # largest first
    assert sizes["six"]["six"] == 40


def test_build_report_sums_functions_against_the_lambda_limit(manifest: dict) -> None:
    report = build_report(manifest)
    (entry,) = report["targets"]
    layers = {x["name"]: x for x in entry["layers"]}
    assert layers["core"]["headroom_bytes"] == 0
    assert not layers["core"]["over_budget"]
    assert layers["ml"]["over_budget"]
    assert layers["ml"]["headroom_bytes"] == -50_000_000
    assert layers["ml"]["upload_via_s3"]
    assert layers["ml"]["slim_removed_bytes"] == 50
    fns = {f["name"]: f for f in entry["functions"]}
    pred = fns["predictions"]
    assert pred["total_unzipped_bytes"] == 270_000_000
    assert pred["over_limit"]
    assert pred["headroom_bytes"] == LAMBDA_UNZIPPED_LIMIT - 270_000_000
    assert [p["name"] for p in pred["parts"]] == ["(function code)", "core", "ml"]
    assert fns["lonely"]["missing_layers"] == ["gone"]


def test_largest_distributions_are_by_size_not_by_name(manifest: dict) -> None:
    (entry,) = build_report(manifest)["targets"]
    aws = next(x for x in entry["layers"] if x["name"] == "aws")
    assert [d["name"] for d in aws["largest_distributions"]] == [
        "urllib3",
        "botocore",
        "boto3",
        "jmespath",
    ]
    assert aws["treemap"][0]["name"] == "urllib3"


def test_over_budget_reason_comes_from_the_project(manifest: dict) -> None:
    class Layer:
        name = "ml"
        over_budget_reason = "scipy ships 80 MB of compiled code"

    class Project:
        layers = (Layer(),)

    (entry,) = build_report(manifest, Project())["targets"]
    ml = next(x for x in entry["layers"] if x["name"] == "ml")
    assert ml["over_budget_reason"] == "scipy ships 80 MB of compiled code"


def test_every_target_is_reported_template_target_first() -> None:
    report = build_report([make_manifest(), make_manifest("python3.12-x86_64")])
    assert [t["target"] for t in report["targets"]] == ["python3.9-x86_64", "python3.12-x86_64"]


def test_changes_say_what_grew_and_by_how_much() -> None:
    old = build_report(make_manifest(ml_size=150_000_000))
    new = build_report(make_manifest(ml_size=160_000_000), previous=old)
    grew = [c for c in new["changes"] if c["delta"] > 0]
    assert (grew[0]["what"], grew[0]["measure"]) == ("layer ml", "unzipped")
    assert (grew[0]["before"], grew[0]["after"], grew[0]["delta"]) == (
        150_000_000,
        160_000_000,
        10_000_000,
    )
    assert {c["what"] for c in grew} == {"layer ml", "layer ml / ml-dist"}
    assert new["previous"] == old["build"]
    assert report_changes(old, old) == []


def test_a_distribution_gone_or_new_is_a_change() -> None:
    old = build_report(make_manifest())
    new = make_manifest()
    new["artifacts"]["layers/aws.zip"]["distribution_bytes"] = {"boto3": 500_000, "six": 1}
    changes = {c["what"]: c for c in report_changes(old, build_report(new))}
    assert changes["layer aws / six"]["before"] is None
    assert changes["layer aws / urllib3"]["after"] is None
    assert changes["layer aws / urllib3"]["delta"] == -3_400_000


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (None, "null"),
        ([], "list"),
        ({"layerkit": "0.1.0"}, "no `artifacts`"),
        ({"artifacts": {"layers/a.zip": None}}, "layers/a.zip is not an object"),
        ({"artifacts": {"layers/a.zip": {"kind": "layer"}}}, "layers/a.zip has no `name`"),
        (
            {"artifacts": {"layers/a.zip": {"name": "a", "unzipped_bytes": "big"}}},
            "`unzipped_bytes`",
        ),
        ({"artifacts": {"layers/a.zip": {"name": "a", "slim": {"x": 1}}}}, "`slim`"),
    ],
)
def test_check_manifest_names_the_damage(data: object, problem: str) -> None:
    message = check_manifest(data)
    assert message is not None
    assert problem in message


def test_check_manifest_accepts_a_real_one(manifest: dict) -> None:
    assert check_manifest(manifest) is None


def test_a_new_target_is_one_change_per_artifact() -> None:
    old = build_report(make_manifest())
    new = build_report([make_manifest(), make_manifest("python3.12-x86_64")], previous=old)
    added = [c for c in new["changes"] if c["target"] == "python3.12-x86_64"]
    assert {c["what"] for c in added} == {
        "layer aws",
        "layer core",
        "layer ml",
        "function predictions",
        "function lonely",
    }
    assert all(c["before"] is None for c in added)


def test_version_changes_name_each_moved_distribution_per_artifact() -> None:
    from layerkit.report.data import version_changes

    def report(core: dict, fn: dict, extra: bool = False) -> dict:
        layers = [{"name": "core", "distributions": core}]
        if extra:
            layers.append({"name": "new-layer", "distributions": {"six": "1.16.0"}})
        return {
            "targets": [
                {
                    "target": "python3.9-x86_64",
                    "layers": layers,
                    "functions": [{"name": "api", "distributions": fn}],
                }
            ]
        }

    before = report({"numpy": "2.0.2", "six": "1.17.0"}, {"ulid": "1.1"})
    after = report({"numpy": "1.26.4", "pytz": "2024.1"}, {"ulid": "1.1"}, extra=True)
    assert version_changes(before, after) == [
        {"target": "python3.9-x86_64", "what": "layer core", "distribution": "numpy",
         "before": "2.0.2", "after": "1.26.4"},
        {"target": "python3.9-x86_64", "what": "layer core", "distribution": "pytz",
         "before": None, "after": "2024.1"},
        {"target": "python3.9-x86_64", "what": "layer core", "distribution": "six",
         "before": "1.17.0", "after": None},
    ]  # fmt: skip  # the new layer is new as a whole; the function did not move
    assert version_changes(after, after) == []
