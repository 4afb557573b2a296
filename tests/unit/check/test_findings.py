from __future__ import annotations

import dataclasses

import pytest

from layerkit.check.findings import CheckReport, Finding, Severity

E = Finding(Severity.ERROR, "layers/a.zip", "over budget", code="budget")
W = Finding(Severity.WARNING, "template.yaml", "deprecated", code="lifecycle", path="template.yaml")
NOTE = Finding(Severity.INFO, "layers/a.zip", "upload through S3", code="s3-upload")
L = Finding(Severity.ERROR, "template.yaml", "cfn-lint E3030: bad", "E3030", "template.yaml", 12)


def test_severities_are_ordered_info_warning_error() -> None:
    assert Severity.INFO < Severity.WARNING < Severity.ERROR
    assert max([Severity.WARNING, Severity.ERROR, Severity.INFO]) is Severity.ERROR
    assert sorted(Severity, reverse=True) == [Severity.ERROR, Severity.WARNING, Severity.INFO]
    assert str(Severity.WARNING) == "warning"
    with pytest.raises(TypeError):
        _ = Severity.ERROR < "error"  # type: ignore[operator]


def test_a_finding_is_frozen_and_reads_as_location_and_message() -> None:
    assert str(E) == "layers/a.zip: over budget"  # no file: the subject
    assert str(W) == "template.yaml: deprecated"
    assert str(L) == "template.yaml:12: cfn-lint E3030: bad"
    with pytest.raises(dataclasses.FrozenInstanceError):
        E.message = "x"  # type: ignore[misc]


def test_a_report_puts_errors_first_and_keeps_the_order_within_a_severity() -> None:
    report = CheckReport.of([NOTE, W], [E, L])
    assert report.findings == (E, L, W, NOTE)
    assert report.errors == (E, L)
    assert report.warnings == (W,)
    assert report.at(Severity.INFO) == (NOTE,)
    assert not report.ok
    assert report.counts() == "2 errors, 1 warning"


def test_worst_per_subject_never_lets_a_note_hide_an_error() -> None:
    report = CheckReport.of([NOTE, E, W])
    assert report.worst("layers/a.zip") is Severity.ERROR
    assert report.worst("template.yaml") is Severity.WARNING
    assert report.worst("functions/fn.zip") is None
    assert report.by_subject == {"layers/a.zip": (E, NOTE), "template.yaml": (W,)}


def test_reports_merge_into_one() -> None:
    sizes, template = CheckReport.of([NOTE]), CheckReport.of([W, L])
    merged = sizes.merge(template)
    assert merged == sizes + template
    assert merged.findings == (L, W, NOTE)
    assert CheckReport().ok
    assert CheckReport.of([W, NOTE]).ok  # warnings and notes fail nothing
    assert CheckReport().merge().findings == ()
