r"""Reading ``requirements.txt`` files as pip reads them, every error at file:line.

Supported: one PEP 508 requirement per line (extras and markers included), ``\`` continuations,
comments, ``--hash=sha256:...`` after a requirement (what ``pip-compile --generate-hashes``
writes; the lock checks the locked wheel against it), ``-r FILE`` and ``-c FILE`` (relative to the
file that names them, any depth), and the index lines ``-i/--index-url``, ``--extra-index-url`` and
``-f/--find-links``. Refused in one paragraph each: editable installs, VCS and direct URLs and
every other pip option. A URL is never echoed with its credentials (:mod:`layerkit.redact`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from layerkit.errors import SpecError
from layerkit.redact import redact_text, redact_url


class LineKind(enum.Enum):
    """What one line of a requirements file asks for."""

    REQUIREMENT = "requirement"
    CONSTRAINT = "constraint"  # from a -c file: limits a version, pulls nothing in
    INDEX_URL = "index-url"
    EXTRA_INDEX_URL = "extra-index-url"
    FIND_LINKS = "find-links"

    @property
    def is_index(self) -> bool:
        """Whether the line names where distributions come from (not what is required)."""
        return self in (LineKind.INDEX_URL, LineKind.EXTRA_INDEX_URL, LineKind.FIND_LINKS)


@dataclass(frozen=True)
class LineRequirement:
    """One line of a requirements file, remembered with where it came from.

    For a requirement or constraint, ``text`` is the PEP 508 requirement without pip's options
    and ``hashes`` the sha256 digests its ``--hash`` options allow; for an index line, ``text``
    is the URL as written (``${VAR}`` unexpanded, credentials included: print it only through
    :func:`layerkit.redact.redact_url`) and ``name`` is empty.
    """

    name: NormalizedName
    text: str
    path: Path
    line: int
    hashes: tuple[str, ...] = ()
    kind: LineKind = LineKind.REQUIREMENT

    @property
    def where(self) -> str:
        """``path:line`` for messages."""
        return f"{self.path}:{self.line}"

    @property
    def is_requirement(self) -> bool:
        """Whether the line requires a distribution (not a constraint or an index line)."""
        return self.kind is LineKind.REQUIREMENT


_INDEX_OPTIONS = {
    "-i": LineKind.INDEX_URL,
    "--index-url": LineKind.INDEX_URL,
    "--extra-index-url": LineKind.EXTRA_INDEX_URL,
    "-f": LineKind.FIND_LINKS,
    "--find-links": LineKind.FIND_LINKS,
}
_FILE_OPTIONS = {"-r": False, "--requirement": False, "-c": True, "--constraint": True}
_VCS_RE = re.compile(r"^(?:[A-Za-z0-9._-]+\s*@\s*)?(git|hg|svn|bzr)\+", re.IGNORECASE)
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
_HASH_RE = re.compile(r"^(sha256|sha384|sha512|md5|sha1|sha224):([0-9a-fA-F]+)$")


def logical_lines(text: str) -> list[tuple[int, str]]:
    r"""``(first line number, text)`` per logical line: comments cut, ``\`` lines joined."""
    found: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT_RE.sub("", raw)
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        joined = " ".join(part.strip() for part in pending).strip()
        pending = []
        if joined:
            found.append((start, joined))
    if pending:
        joined = " ".join(part.strip() for part in pending).strip()
        if joined:
            found.append((start, joined))
    return found


def _split_option(line: str) -> tuple[str, str]:
    """``--opt=value`` or ``--opt value`` or ``-ovalue`` -> ``(option, value)``."""
    if line.startswith("--"):
        option, sep, value = line.partition("=")
        if not sep:
            option, _, value = line.partition(" ")
        return option.strip(), value.strip()
    if len(line) > 2 and line[2] not in " =":
        return line[:2], line[2:].strip()
    return line[:2], line[2:].lstrip(" =").strip()


def _requirement(
    body: str, path: Path, number: int, kind: LineKind
) -> tuple[Requirement, LineRequirement]:
    """One requirement line with its per-requirement options (only ``--hash``)."""
    shown = redact_text(body)
    tokens = body.split()
    first_option = next((i for i, t in enumerate(tokens) if t.startswith("--")), len(tokens))
    text = " ".join(tokens[:first_option])
    options = tokens[first_option:]
    hashes: list[str] = []
    i = 0
    while i < len(options):
        option, value = _split_option(options[i])
        if option == "--hash" and not value and i + 1 < len(options):
            value = options[i + 1]
            i += 1
        i += 1
        if option != "--hash":
            raise SpecError(
                f"{path}:{number}: the option {option!r} after a requirement is not supported "
                f"here ({shown!r}); keep the requirement and its --hash=sha256:... options only."
            )
        found = _HASH_RE.match(value)
        if found is None:
            raise SpecError(
                f"{path}:{number}: {value!r} is not a hash; write --hash=sha256:<64 hex digits> "
                "(what `pip hash` or `pip-compile --generate-hashes` print)."
            )
        if found.group(1) == "sha256":
            hashes.append(found.group(2).lower())
    if options and not hashes:
        raise SpecError(
            f"{path}:{number}: {text!r} lists hashes, but no sha256 one; the lock checks each "
            "wheel's sha256, so add its --hash=sha256:... (`pip hash FILE` prints it)."
        )
    if _VCS_RE.match(text):
        raise SpecError(
            f"{path}:{number}: VCS requirement {redact_text(text)!r} is not supported: a lock "
            "pins a released wheel and its sha256. Build the wheel, publish it on an index "
            "(then add --extra-index-url) or put it in a folder (--find-links), and require it "
            "by name and version."
        )
    try:
        parsed = Requirement(text)
    except InvalidRequirement as exc:
        why = redact_text(str(exc).splitlines()[0])
        raise SpecError(
            f"{path}:{number}: malformed requirement {shown!r}: {why}. Write "
            "a PEP 508 requirement such as `pandas>=2.2,<3`."
        ) from None
    if parsed.url:
        raise SpecError(
            f"{path}:{number}: direct URL requirement {redact_text(text)!r} is not supported: "
            "a lock pins a name, a version and the index it came from. Put the wheel in a "
            "folder and add `--find-links <folder>` (or publish it on an index and add "
            f"`--extra-index-url`), then require `{parsed.name}==<version>`."
        )
    req = LineRequirement(canonicalize_name(parsed.name), text, path, number, tuple(hashes), kind)
    return parsed, req


def parse_requirements(
    text: str,
    path: Path,
    *,
    real: Path | None = None,
    constraint: bool = False,
    _seen_files: tuple[Path, ...] = (),
) -> tuple[LineRequirement, ...]:
    """Parse the text of a requirements file; ``path`` is what messages call it.

    ``-r``/``-c`` files are read relative to ``real`` (the file on disk; default ``path``) and
    named relative to ``path``. With ``constraint``, every requirement is a constraint (a ``-c``
    file). A package required twice is refused; so is an option pip has that layerkit does not
    pass on (editable installs, ``--pre``, ``--trusted-host`` ...).
    """
    found: list[LineRequirement] = []
    seen: dict[NormalizedName, LineRequirement] = {}
    on_disk = real if real is not None else path
    kind = LineKind.CONSTRAINT if constraint else LineKind.REQUIREMENT
    for number, line in logical_lines(text):
        if line.startswith("-"):
            option, value = _split_option(line)
            if option in _INDEX_OPTIONS:
                if not value:
                    raise SpecError(f"{path}:{number}: {option} needs a URL or folder after it.")
                found.append(
                    LineRequirement(
                        NormalizedName(""), value, path, number, (), _INDEX_OPTIONS[option]
                    )
                )
                continue
            if option in _FILE_OPTIONS:
                included = _included(value, option, path, on_disk, number, _seen_files)
                for req in _read_included(
                    included,
                    path,
                    on_disk,
                    value,
                    constraint or _FILE_OPTIONS[option],
                    (*_seen_files, on_disk),
                ):
                    _keep_once(req, seen)
                    found.append(req)
                continue
            if option in ("-e", "--editable"):
                raise SpecError(
                    f"{path}:{number}: editable install {redact_text(value)!r} is not supported: "
                    "a layer ships built wheels. Build the project into a wheel and require it by "
                    "name and version (with --find-links <folder> if it is not on an index)."
                )
            raise SpecError(
                f"{path}:{number}: pip option {redact_text(line)!r} is not supported here; "
                "a requirements file may hold requirements (with --hash), -r, -c, --index-url, "
                "--extra-index-url and --find-links lines."
            )
        _, req = _requirement(line, path, number, kind)
        _keep_once(req, seen)
        found.append(req)
    return tuple(found)


def _keep_once(req: LineRequirement, seen: dict[NormalizedName, LineRequirement]) -> None:
    """Refuse a package required twice (in one file or through -r); constraints may repeat."""
    if not req.is_requirement:
        return
    if req.name in seen:
        first = seen[req.name]
        at = f"line {first.line}" if first.path == req.path else first.where
        raise SpecError(
            f"{req.where}: {req.name} is already required at {at}; keep one line per package."
        )
    seen[req.name] = req


def _included(
    value: str, option: str, path: Path, on_disk: Path, number: int, chain: tuple[Path, ...]
) -> Path:
    if not value:
        raise SpecError(f"{path}:{number}: {option} needs a file name after it.")
    if "://" in value:
        raise SpecError(
            f"{path}:{number}: {option} {redact_url(value)} names a URL; name a file beside "
            f"{path.name} instead (a lock reads its inputs from the project)."
        )
    included = on_disk.parent / value
    if not included.is_file():
        raise SpecError(
            f"{path}:{number}: {option} {value}: {path.parent / value} does not exist (it is "
            f"read relative to {path}); fix the file name."
        )
    if included.resolve() in {p.resolve() for p in (*chain, on_disk)}:
        raise SpecError(
            f"{path}:{number}: {option} {value} includes a file that includes it back; "
            "remove one of the two lines."
        )
    return included


def _read_included(
    included: Path,
    path: Path,
    on_disk: Path,
    value: str,
    constraint: bool,
    chain: tuple[Path, ...],
) -> tuple[LineRequirement, ...]:
    display = Path(_normal(path.parent / value))
    try:
        text = included.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{display}: not UTF-8 text ({exc}); save it as UTF-8.") from None
    return parse_requirements(
        text, display, real=included, constraint=constraint, _seen_files=chain
    )


def _normal(path: Path) -> str:
    """``a/b/../c`` -> ``a/c`` without touching the disk."""
    parts: list[str] = []
    for part in path.as_posix().split("/"):
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts) or "."


def read_requirements(path: Path, display: Path | None = None) -> tuple[LineRequirement, ...]:
    """Read and parse a requirements file; a missing file means no requirements."""
    if not path.is_file():
        return ()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{display or path}: not UTF-8 text ({exc}); save it as UTF-8.") from None
    return parse_requirements(text, display or path, real=path)


def settings_index_lines(
    index_url: str,
    extra_index_urls: Sequence[str],
    find_links: Sequence[str],
    path: Path,
    text: str,
) -> tuple[LineRequirement, ...]:
    """A settings file's index keys (layer.toml's) as index lines, each at the line of its key."""

    def line_of(key: str) -> int:
        found = re.search(rf"^\s*{re.escape(key)}\s*=", text, re.MULTILINE)
        return text.count("\n", 0, found.start()) + 1 if found else 0

    keyed = [("index-url", LineKind.INDEX_URL, [index_url] if index_url else [])]
    keyed += [("extra-index-urls", LineKind.EXTRA_INDEX_URL, list(extra_index_urls))]
    keyed += [("find-links", LineKind.FIND_LINKS, list(find_links))]
    return tuple(
        LineRequirement(NormalizedName(""), value.strip(), path, line_of(key), (), kind)
        for key, kind, values in keyed
        for value in values
        if value.strip()
    )


def redacted_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    """A settings table with the credentials of its index keys masked (what a digest may read)."""
    out = dict(data)
    for key in ("index-url", "extra-index-urls", "find-links"):
        value = out.get(key)
        if isinstance(value, str):
            out[key] = redact_url(value)
        elif isinstance(value, list):
            out[key] = [redact_url(v) if isinstance(v, str) else v for v in value]
    return out


def requirement_lines(lines: Sequence[LineRequirement]) -> tuple[LineRequirement, ...]:
    """The lines that require a distribution (no constraints, no index lines)."""
    return tuple(r for r in lines if r.is_requirement)


def canonical_text(requirements: Sequence[LineRequirement]) -> str:
    """The lines that can change a lock, one a line: what every input hash of requirements reads.

    Comments, blank lines, trailing spaces and line positions do not count, so a comment-only
    edit of a requirements.txt leaves its locks and builds fresh. A requirement reads as its
    PEP 508 text (plus its sorted hashes, when it has any); a constraint and an index line carry
    their kind, and an index URL is read without its credentials (a hash of a password is not
    stored in a lock).
    """
    out = []
    for r in requirements:
        if r.kind is LineKind.REQUIREMENT:
            out.append(r.text + "".join(f" --hash=sha256:{h}" for h in sorted(r.hashes)))
        elif r.kind is LineKind.CONSTRAINT:
            out.append(f"-c {r.text}")
        else:
            out.append(f"--{r.kind.value} {redact_url(r.text)}")
    return "\n".join(out)
