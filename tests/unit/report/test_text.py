from __future__ import annotations

import re

from layerkit.report.data import build_report
from layerkit.report.text import render_table
from tests.unit.report.manifests import make_manifest


def test_render_table_shows_every_artifact_and_the_verdicts(manifest: dict) -> None:
    text = render_table(manifest)
    assert re.search(r"ml\s+150\.0\s+100\.0\s+-50\.0", text)
    assert "OVER, upload via S3" in text
    assert re.search(r"predictions\s+20\.0\s+core \+ ml\s+270\.0\s+262\.1", text)
    assert re.search(r"tests\s+0\.0+\s+0\.0+", text)


def test_tables_fit_100_columns_even_verbose(manifest: dict) -> None:
    for verbose in (False, True):
        lines = render_table(manifest, verbose=verbose).splitlines()
        assert max(len(line) for line in lines) <= 100


def test_largest_distributions_by_size(manifest: dict) -> None:
    text = render_table(manifest)
    assert re.search(r"urllib3 3\.4 .*\n +botocore 2\.0\n +boto3 0\.5\n", text)
    assert "jmespath" not in text  # the fourth is only in --verbose
    assert "jmespath" in render_table(manifest, verbose=True)


def test_slim_table_lists_only_passes_that_removed_something(manifest: dict) -> None:
    assert not re.search(r"^docs\b", render_table(manifest), re.M)
    assert re.search(r"^docs\s+-\s+-\s+-", render_table(manifest, verbose=True), re.M)


def test_what_grew_is_listed_after_a_second_build() -> None:
    old = build_report(make_manifest(ml_size=150_000_000))
    new = build_report(make_manifest(ml_size=160_000_000), previous=old)
    text = render_table(new)
    assert re.search(r"python3\.9-x86_64\s+layer ml\s+150\.0\s+160\.0\s+\+10\.0", text)
    assert "ml / ml-dist" not in text  # per distribution only with --verbose
    assert "ml / ml-dist" in render_table(new, verbose=True)
