"""One result type for every check: a :class:`Finding` with a :class:`Severity`, in a report.

Sizes, Lambda limits, ELF files, imports, the template and handlers all say what they found the
same way, so ``validate``, ``deploy``'s refusal and the build summary read one
:class:`CheckReport` and never compare severity strings.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@functools.total_ordering
class Severity(enum.Enum):
    """How bad a finding is, ordered ``INFO < WARNING < ERROR``; only an error fails a check."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        """0 for info, 1 for warning, 2 for error."""
        return _RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __str__(self) -> str:
        return self.value


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclass(frozen=True)
class Finding:
    """One thing a check found about one subject.

    ``subject`` is what it is about: an artifact (``layers/base.zip``), a file
    (``template.yaml``, ``python/pkg/_x.so``), a function or a layer. ``code`` names the rule
    (``W3005``, ``layer-over-limit``); ``path`` and ``line`` locate it in a file when it has one.
    """

    severity: Severity
    subject: str
    message: str
    code: str | None = None
    path: str | None = None
    line: int | None = None

    @property
    def location(self) -> str:
        """``path:line``, ``path`` or, without a file, the subject."""
        if self.path is None:
            return self.subject
        return self.path if self.line is None else f"{self.path}:{self.line}"

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


@dataclass(frozen=True)
class CheckReport:
    """The findings of one or more checks, in the order they were found."""

    findings: tuple[Finding, ...] = ()

    @classmethod
    def of(cls, *groups: Iterable[Finding]) -> CheckReport:
        """A report of every finding in ``groups``, errors first (otherwise in order)."""
        found = [f for group in groups for f in group]
        return cls(tuple(sorted(found, key=lambda f: -f.severity.rank)))

    @property
    def errors(self) -> tuple[Finding, ...]:
        """The findings that fail the check."""
        return self.at(Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """The findings worth reading that fail nothing."""
        return self.at(Severity.WARNING)

    @property
    def ok(self) -> bool:
        """Whether nothing is an error."""
        return not self.errors

    def at(self, severity: Severity) -> tuple[Finding, ...]:
        """The findings of exactly ``severity``."""
        return tuple(f for f in self.findings if f.severity is severity)

    def worst(self, subject: str) -> Severity | None:
        """The most severe finding's severity for ``subject`` (None: nothing found about it)."""
        found = [f.severity for f in self.findings if f.subject == subject]
        return max(found) if found else None

    @property
    def by_subject(self) -> Mapping[str, tuple[Finding, ...]]:
        """The findings grouped by subject, subjects in the order first found."""
        groups: dict[str, list[Finding]] = {}
        for f in self.findings:
            groups.setdefault(f.subject, []).append(f)
        return {subject: tuple(found) for subject, found in groups.items()}

    def merge(self, *others: CheckReport) -> CheckReport:
        """One report of this report's findings and the others', errors first."""
        return CheckReport.of(self.findings, *(o.findings for o in others))

    def __add__(self, other: CheckReport) -> CheckReport:
        return self.merge(other)

    def counts(self) -> str:
        """``"2 errors, 1 warning"``: the errors and warnings, for a one-line verdict."""
        parts = []
        for severity, found in ((Severity.ERROR, self.errors), (Severity.WARNING, self.warnings)):
            parts.append(f"{len(found)} {severity}{'' if len(found) == 1 else 's'}")
        return ", ".join(parts)
