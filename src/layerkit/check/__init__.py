"""Checks of a build: sizes and Lambda limits, ELF/glibc, imports, template, handlers, layers.

Every check says what it found as :class:`Finding` values (a :class:`Severity`, a subject, a
message); :func:`run` gathers the checks ``validate``, ``deploy`` and the build summary share
into one :class:`CheckReport`.
"""

from layerkit.check.findings import CheckReport, Finding, Severity
from layerkit.check.suite import run

__all__ = ["CheckReport", "Finding", "Severity", "run"]
