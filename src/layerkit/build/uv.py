"""Running uv: the one place layerkit starts the resolver/installer, always with argument lists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from layerkit.errors import LayerkitError, SpecError
from layerkit.redact import redact_text, redact_url
from layerkit.runtime.interpreters import uv_executable
from layerkit.runtime.target import Target


def uv_binary() -> str:
    """The uv executable: the one shipped with the ``uv`` package layerkit depends on."""
    found = uv_executable()
    if found is None:
        raise LayerkitError(
            "uv is not installed; layerkit resolves and installs with uv. Install the project "
            "(`python -m pip install -e .`), which brings uv with it."
        )
    return found


def target_args(target: Target, sdists: Iterable[str] = ()) -> list[str]:
    """Arguments that make uv resolve and install for the target, never for the host.

    Wheels only, except for the distributions in ``sdists`` (a layer's ``allow-sdist``), which
    uv then takes from their source distribution. The Python version carries the runtime's
    patch: ``3.9`` would mean 3.9.0 to uv.
    """
    args = [
        "--python-platform",
        target.uv_platform,
        "--python-version",
        target.python_full_version,
        "--only-binary",
        ":all:",
        # uv needs some interpreter to run; the markers come from --python-version/-platform.
        "--python",
        sys.executable,
    ]
    for name in sorted(sdists):
        args += ["--no-binary", name]
    return args


#: The line width uv is told it has: wide enough that no message of uv's is wrapped.
UV_COLUMNS = 100_000


def run_uv(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``uv ARGS`` in ``cwd``; never downloads interpreters; returns the finished process.

    ``--no-config``: a user's or project's uv.toml (annotation style, index, resolution
    strategy) must not change what a lock or a build contains from one machine to the next.
    The process's output comes back with every URL's credentials masked
    (:func:`layerkit.redact.redact_text`), so no log or message can carry them.
    """
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    # uv wraps its messages at COLUMNS; layerkit reads them, whatever the user's terminal width
    env["COLUMNS"] = str(UV_COLUMNS)
    proc = subprocess.run(
        [uv_binary(), "--no-config", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return subprocess.CompletedProcess(
        [redact_text(a) for a in proc.args],
        proc.returncode,
        redact_text(proc.stdout or ""),
        redact_text(proc.stderr or ""),
    )


# ---------------------------------------------------------------- indexes

#: uv's own default index; a lock records no index for what came from it.
PYPI_SIMPLE = "https://pypi.org/simple"
#: The strategy every resolution uses (uv's default, passed explicitly so that no environment
#: variable weakens it): a name found on one index is only ever taken from that index, the
#: extra (private) indexes are asked before the default one, so a public upload of a private
#: name cannot win (dependency confusion).
INDEX_STRATEGY = "first-index"

_NAMED_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)=(.+)$")
_VAR_RE = re.compile(r"\$\{([A-Z0-9_]+)\}")


@dataclass(frozen=True)
class Index:
    """One index (or find-links folder) as the project names it, and where it says so.

    ``url`` is kept as written: it may hold credentials or pip's ``${VAR}`` placeholders, so it
    is shown only through :attr:`shown`. ``name`` (from ``name=URL`` in layerkit's settings)
    lets uv read credentials from ``UV_INDEX_<NAME>_USERNAME`` / ``_PASSWORD``.
    """

    url: str
    where: str
    name: str = ""

    @classmethod
    def parse(cls, value: str, where: str) -> Index:
        """``URL`` or ``name=URL`` (the form layerkit's settings allow)."""
        found = _NAMED_RE.match(value.strip())
        if found and "://" not in found.group(1) and "://" in found.group(2):
            return cls(found.group(2).strip(), where, found.group(1))
        return cls(value.strip(), where)

    @property
    def shown(self) -> str:
        """The URL without credentials: what messages, logs and locks carry."""
        return redact_url(self.url)

    def expanded(self, environ: Mapping[str, str] | None = None) -> str:
        """The URL with ``${VAR}`` replaced from the environment (what uv is given)."""
        env = os.environ if environ is None else environ

        def value(m: re.Match[str]) -> str:
            if m.group(1) not in env:
                raise SpecError(
                    f"{self.where}: the index URL {self.shown} uses ${{{m.group(1)}}}, which is "
                    "not set; export it (or write the credentials in ~/.netrc instead)."
                )
            return env[m.group(1)]

        return _VAR_RE.sub(value, self.url)

    def arg(self, environ: Mapping[str, str] | None = None) -> str:
        """The value of uv's index option: ``name=URL`` or ``URL``."""
        url = self.expanded(environ)
        return f"{self.name}={url}" if self.name else url


@dataclass(frozen=True)
class Indexes:
    """Where a target's distributions come from: uv's default index, extras, find-links."""

    default: Index | None = None
    extra: tuple[Index, ...] = ()
    find_links: tuple[Index, ...] = ()

    @property
    def all(self) -> tuple[Index, ...]:
        """Every index and folder, extras first (the order uv asks them in)."""
        return (*self.extra, *((self.default,) if self.default else ()), *self.find_links)

    @property
    def default_url(self) -> str:
        """The default index's URL without credentials (PyPI's unless the project says else)."""
        return self.default.shown if self.default else PYPI_SIMPLE

    def args(self, environ: Mapping[str, str] | None = None) -> list[str]:
        """The index options for uv: strategy, default index, extra indexes, find-links folders."""
        args = ["--index-strategy", INDEX_STRATEGY]
        if self.default is not None:
            args += ["--default-index", self.default.arg(environ)]
        for index in self.extra:
            args += ["--index", index.arg(environ)]
        for folder in self.find_links:
            args += ["--find-links", folder.expanded(environ)]
        return args

    def shown(self) -> str:
        """The indexes asked, credentials masked, for messages: ``a, then b``."""
        urls = [i.shown for i in self.extra] + [self.default_url]
        urls += [f"{i.shown} (find-links)" for i in self.find_links]
        return ", then ".join(urls)
