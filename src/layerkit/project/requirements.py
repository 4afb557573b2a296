"""Reading ``requirements.txt`` files: one PEP 508 requirement per line, errors at file:line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from layerkit.errors import SpecError


@dataclass(frozen=True)
class LineRequirement:
    """One requirement line, remembered with where it came from."""

    name: NormalizedName
    text: str
    path: Path
    line: int

    @property
    def where(self) -> str:
        """``path:line`` for messages."""
        return f"{self.path}:{self.line}"


def parse_requirements(text: str, path: Path) -> tuple[LineRequirement, ...]:
    """Parse the text of a requirements file; ``path`` is only used in messages.

    Blank lines and comments are skipped. pip options (``-r``, ``--index-url`` ...) are refused:
    a layer's inputs are its requirement lines and nothing else, so the lock sees all of them.
    """
    found: list[LineRequirement] = []
    seen: dict[NormalizedName, LineRequirement] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            raise SpecError(
                f"{path}:{number}: pip option {line!r} is not supported here; list one "
                "requirement per line (for example `pandas>=2.2`)."
            )
        try:
            parsed = Requirement(line)
        except InvalidRequirement as exc:
            raise SpecError(
                f"{path}:{number}: malformed requirement {line!r}: {exc}. Write a PEP 508 "
                "requirement such as `pandas>=2.2,<3`."
            ) from None
        if parsed.url:
            raise SpecError(
                f"{path}:{number}: direct URL requirement {line!r} is not supported; name a "
                "version from PyPI instead."
            )
        req = LineRequirement(canonicalize_name(parsed.name), line, path, number)
        if req.name in seen:
            raise SpecError(
                f"{path}:{number}: {parsed.name} is already required at line "
                f"{seen[req.name].line}; keep one line per package."
            )
        seen[req.name] = req
        found.append(req)
    return tuple(found)


def read_requirements(path: Path, display: Path | None = None) -> tuple[LineRequirement, ...]:
    """Read and parse a requirements file; a missing file means no requirements."""
    if not path.is_file():
        return ()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{display or path}: not UTF-8 text ({exc}); save it as UTF-8.") from None
    return parse_requirements(text, display or path)


def canonical_text(requirements: Sequence[LineRequirement]) -> str:
    """The requirement lines alone, one a line: what every input hash of requirements reads.

    Comments, blank lines, trailing spaces and line positions do not count, so a comment-only
    edit of a requirements.txt leaves its locks and builds fresh.
    """
    return "\n".join(r.text for r in requirements)
