"""What a package index offers: each release's files and each release's dependencies.

The lock asks it two questions uv does not answer in a form it can use: which releases of a
distribution have a wheel that loads on the target (to leave out the others), and what a locked
distribution requires (to name the chain behind a conflict). :class:`PackageIndex` is the small
protocol the lock depends on; :class:`PyPI` reads pypi.org's simple index (PEP 691 JSON) and the
wheels' metadata files (PEP 658), and tests hand in fakes.
"""

from __future__ import annotations

import email.parser
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Protocol

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

PYPI = "https://pypi.org"


@dataclass(frozen=True)
class IndexFile:
    """One file of one release: a wheel or an sdist."""

    filename: str
    url: str = ""
    sha256: str = ""
    size: int = 0
    requires_python: str = ""
    yanked: bool = False

    @property
    def is_wheel(self) -> bool:
        """Whether the file is a wheel (else an sdist)."""
        return self.filename.endswith(".whl")

    @property
    def version(self) -> Version | None:
        """The release the file belongs to, read from its name (None: not a wheel or sdist)."""
        try:
            if self.is_wheel:
                return parse_wheel_filename(self.filename)[1]
            return parse_sdist_filename(self.filename)[1]
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            return None


class PackageIndex(Protocol):
    """The two questions the lock asks an index."""

    def files(self, name: str) -> tuple[IndexFile, ...]:
        """Every file of every release of ``name`` (empty when the index cannot be reached)."""
        ...

    def requires_dist(self, name: str, version: str) -> tuple[str, ...]:
        """The ``Requires-Dist`` lines of one release (empty when unknown)."""
        ...


def _get_json(url: str, accept: str = "application/json") -> dict[str, object]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=20) as resp:
            data = json.load(resp)
    except (urllib.error.URLError, OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class PyPI:
    """pypi.org's simple index (PEP 691 JSON) and wheel metadata (PEP 658), cached per instance."""

    def __init__(self, base: str = PYPI) -> None:
        self.base = base.rstrip("/")
        self._files: dict[str, tuple[IndexFile, ...]] = {}
        self._requires: dict[tuple[str, str], tuple[str, ...]] = {}

    def files(self, name: str) -> tuple[IndexFile, ...]:
        """Every file of every release of ``name``, from the simple index."""
        key = canonicalize_name(name)
        if key not in self._files:
            data = _get_json(f"{self.base}/simple/{key}/", "application/vnd.pypi.simple.v1+json")
            found = []
            raw_files = data.get("files", [])
            for f in raw_files if isinstance(raw_files, list) else []:
                if not isinstance(f, dict) or "filename" not in f:
                    continue
                hashes = f.get("hashes") or {}
                found.append(
                    IndexFile(
                        filename=str(f["filename"]),
                        url=str(f.get("url", "")),
                        sha256=str(hashes.get("sha256", "")) if isinstance(hashes, dict) else "",
                        size=int(f.get("size") or 0),
                        requires_python=str(f.get("requires-python") or ""),
                        yanked=bool(f.get("yanked")),
                    )
                )
            self._files[key] = tuple(found)
        return self._files[key]

    def requires_dist(self, name: str, version: str) -> tuple[str, ...]:
        """The ``Requires-Dist`` lines of one release, from a wheel's PEP 658 metadata file."""
        key = (canonicalize_name(name), version)
        if key not in self._requires:
            wheels = [
                f for f in self.files(name) if f.is_wheel and str(f.version) == version and f.url
            ]
            lines: list[str] = []
            for f in wheels[:1]:  # every wheel of a release declares the same dependencies
                try:
                    with urllib.request.urlopen(f"{f.url}.metadata", timeout=20) as resp:
                        text = resp.read().decode("utf-8", "replace")
                except (urllib.error.URLError, OSError):
                    break
                lines = email.parser.Parser().parsestr(text).get_all("Requires-Dist") or []
            self._requires[key] = tuple(str(x) for x in lines)
        return self._requires[key]
