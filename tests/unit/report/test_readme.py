"""README figures generated between markers, and checked against what they come from."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from layerkit.errors import ReportError
from layerkit.report.readme import (
    blocks,
    main,
    replace_block,
    sizes_block,
    versions_block,
    versions_from_locks,
)
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def lock(*packages: tuple[str, str]) -> str:
    body = "".join(f'[[package]]\nname = "{n}"\nversion = "{v}"\n\n' for n, v in packages)
    return f"version = 1\n\n{body}"


def report(over: bool = True) -> dict[str, object]:
    layer = {
        "name": "ml", "unzipped_bytes": 105_700_000, "budget": 100_000_000,
        "over_budget": over, "over_budget_reason": "scipy" if over else None,
    }  # fmt: skip
    small = {"name": "aws", "unzipped_bytes": 8_800_000, "budget": 50_000_000,
             "over_budget": False}  # fmt: skip
    return {"targets": [{"target": "python3.12-x86_64", "layers": [small, layer]}]}


def test_a_block_is_rewritten_and_nothing_else() -> None:
    text = "intro\n<!-- layerkit:x -->\nold\n<!-- /layerkit:x -->\noutro\n"
    new = replace_block(text, "x", "new figure")
    assert new == "intro\n<!-- layerkit:x -->\nnew figure\n<!-- /layerkit:x -->\noutro\n"
    assert blocks(new) == {"x": "new figure\n"}
    with pytest.raises(ReportError, match="no block 'y'"):
        replace_block(text, "y", "z")


def test_the_sizes_block_names_each_layer_its_budget_the_day_and_the_machine() -> None:
    text = " ".join(
        sizes_block(report(), "python3.12-x86_64", dt.date(2026, 12, 7), "a box").split()
    )
    assert "measured 2026-12-07 on a box" in text
    assert "aws 8.8 MB (budget 50.0 MB)" in text
    assert "ml 105.7 MB (over its 100.0 MB budget, accepted in its layer.toml)" in text
    with pytest.raises(ReportError, match=r"no target python3\.9-x86_64"):
        sizes_block(report(), "python3.9-x86_64", dt.date(2026, 12, 7), "a box")


def test_the_versions_block_says_what_moves_what_is_new_and_what_stays() -> None:
    old = lock(("numpy", "2.0.2"), ("scipy", "1.13.1"), ("gone", "1"))
    new = lock(("numpy", "2.0.2"), ("scipy", "1.18.1"), ("narwhals", "2.29.0"))
    text = " ".join(versions_block(old, new, "py39", "py312").split())
    assert "scipy 1.13.1 -> 1.18.1." in text
    assert "New on py312: narwhals 2.29.0." in text
    assert "Only on py39: gone 1." in text
    assert "The same on both: numpy 2.0.2." in text


def test_the_readmes_version_figures_are_the_committed_locks() -> None:
    found = {n: b for n, b in blocks(README).items() if n.startswith("versions-")}
    assert found, "the README keeps its version moves in a generated block"
    for name, body in found.items():
        old, new = name.removeprefix("versions-").split("..")
        assert body == versions_from_locks(REPO, old, new), (
            f"README block {name} disagrees with locks/: run `inv readme`"
        )


def test_the_readmes_size_figures_carry_their_date_and_machine() -> None:
    found = {n: b for n, b in blocks(README).items() if n.startswith("sizes-")}
    assert found, "the README keeps measured sizes in a generated block"
    layers = sorted(
        p.name for p in (REPO / "layers").iterdir() if (p / "requirements.txt").is_file()
    )
    assert layers
    for name, body in found.items():
        text = " ".join(body.split())
        assert re.search(r"measured \d{4}-\d{2}-\d{2} on a \d+-core \w+ machine", text), name
        for layer in layers:  # every layer, with a size in MB
            assert re.search(rf"{layer} \d+\.\d MB", text), (name, layer)


def test_the_script_rewrites_in_place_and_says_so(tmp_path: Path, capsys) -> None:
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "a.toml").write_text(lock(("six", "1.16.0")))
    (tmp_path / "locks" / "b.toml").write_text(lock(("six", "1.17.0")))
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- layerkit:versions-a..b -->\n<!-- /layerkit:versions-a..b -->\n")
    assert main([str(readme), "--report", str(tmp_path / "none.json")]) == 0
    assert "six 1.16.0 -> 1.17.0" in readme.read_text()
    assert main([str(readme), "--report", str(tmp_path / "none.json")]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("already current")


def test_the_bench_block_is_a_table_of_medians_ratios_and_sizes_with_its_day() -> None:
    from layerkit.report.readme import bench_block

    results = {
        "sizes": {"pip-target": {"a": 300_000_000, "b": 22_600_000},
                  "layerkit": {"a": 200_000_000, "b": 9_300_000}},
        "times": {
            "pandas|pip-target": 3.599, "pandas|layerkit": 0.671,
            "boto3 + s3 client|pip-target": "FAIL (No module named 'botocore.docs')",
            "boto3 + s3 client|layerkit": 0.617,
        },
    }  # fmt: skip
    text = bench_block(results, dt.date(2026, 12, 2), "a 2-core x86_64 machine")
    lines = text.splitlines()
    assert lines[0].startswith("Measured 2026-12-02 on a 2-core x86_64 machine")
    assert "| pip --target with find/delete cleanup (no bytecode) | layerkit | |" in text
    assert "| `import pandas` | 3.599 s | 0.671 s | 5.4x faster |" in lines
    assert (
        "| `import boto3` + s3 client | fails (No module named 'botocore.docs') | 0.617 s | |"
        in lines
    )
    assert lines[-1] == "| 2 layers, unzipped | 322.6 MB | 209.3 MB | |"
    assert "seed" not in text.lower()


def test_the_readmes_bench_table_names_the_baseline_and_its_day() -> None:
    body = blocks(README)["bench-pip-target"]
    assert re.match(r"Measured \d{4}-\d{2}-\d{2} on a \d+-core \w+ machine", body)
    assert "pip --target with find/delete cleanup" in body
