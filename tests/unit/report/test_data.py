from __future__ import annotations

import json
import re
from pathlib import Path

from layerkit.report.data import (
    LAMBDA_UNZIPPED_LIMIT,
    build_report,
    distribution_sizes,
    render_table,
    write_report,
)


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


def manifest() -> dict:
    def layer(name: str, size: int, budget: int, zipped: int = 1) -> dict:
        return {
            "kind": "layer",
            "name": name,
            "target": "python3.9-x86_64",
            "zipped_bytes": zipped,
            "unzipped_bytes": size,
            "files": 3,
            "budget": budget,
            "distribution_bytes": {name + "-dist": size},
            "bytecode": {"mode": "all", "compiled_files": 5, "added_bytes": 10},
            "slim": [{"name": "tests", "removed_files": 2, "removed_bytes": 50, "examples": []}],
            "layers": [],
        }

    return {
        "layerkit": "0.1.0",
        "artifacts": {
            "layers/core.zip": layer("core", 100_000_000, 100_000_000),
            "layers/ml.zip": layer("ml", 150_000_000, 100_000_000, zipped=60_000_000),
            "functions/predictions.zip": {
                "kind": "function",
                "name": "predictions",
                "target": "python3.9-x86_64",
                "zipped_bytes": 1000,
                "unzipped_bytes": 20_000_000,
                "files": 2,
                "layers": ["core", "ml"],
            },
            "functions/lonely.zip": {
                "kind": "function",
                "name": "lonely",
                "target": "python3.9-x86_64",
                "zipped_bytes": 10,
                "unzipped_bytes": 10,
                "layers": ["core", "gone"],
            },
        },
    }


def test_build_report_sums_functions_against_the_lambda_limit() -> None:
    report = build_report(manifest())
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


def test_render_table_shows_every_artifact_and_the_verdicts() -> None:
    text = render_table(manifest())
    assert re.search(r"ml\s+150\.0\s+100\.0\s+-50\.0", text)
    assert "OVER, upload via S3" in text
    assert re.search(r"predictions\s+20\.0\s+core \+ ml\s+270\.0\s+262\.1", text)
    assert re.search(r"tests\s+0\.0+\s+0\.0+", text)


def test_write_report_is_self_contained(tmp_path: Path) -> None:
    json_path, html_path = write_report(manifest(), None, tmp_path / "dist")
    data = json.loads(json_path.read_text())
    assert data["limit_bytes"] == 262_144_000
    page = html_path.read_text()
    assert "<svg" in page
    assert "<script" not in page
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page)
    assert "predictions" in page
    assert "ml-dist" in page
    assert not list((tmp_path / "dist").glob(".*.tmp"))
