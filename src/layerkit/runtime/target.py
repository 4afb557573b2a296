"""What a build targets: a Lambda runtime and an architecture, and what follows from them.

Target knowledge is kept as data (:data:`RUNTIMES`: each runtime's Python version with its
patch, its OS and that OS's glibc; the manylinux platforms uv knows), in the spirit of
chalice's ``_RUNTIME_GLIBC`` table. Everything here is pure; finding the target's interpreter on
this machine is :mod:`layerkit.runtime.interpreters` (``find_interpreter`` is re-exported here for
the callers that import it with Target).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from packaging import tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from layerkit.errors import SpecError
from layerkit.runtime.interpreters import find_interpreter  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class Runtime:
    """What a Lambda Python runtime is: its interpreter version, its OS and that OS's glibc."""

    python: tuple[int, int, int]  # the interpreter's version, patch included
    os: str
    glibc: tuple[int, int]


#: The one table of Lambda Python runtimes (README "Runtimes"). The patch version is what the
#: resolver evaluates ``python_full_version`` markers with: uv reads ``3.9`` as 3.9.0, which makes
#: it skip releases that exclude early patches (cryptography 48+ declares ``!=3.9.0,!=3.9.1``).
#: Lambda moves to newer patches of the same minor on its own; a newer patch than listed here only
#: admits more releases, never fewer.
RUNTIMES: dict[str, Runtime] = {
    "python3.9": Runtime((3, 9, 23), "Amazon Linux 2", (2, 26)),
    "python3.10": Runtime((3, 10, 18), "Amazon Linux 2", (2, 26)),
    "python3.11": Runtime((3, 11, 13), "Amazon Linux 2", (2, 26)),
    "python3.12": Runtime((3, 12, 11), "Amazon Linux 2023", (2, 34)),
    "python3.13": Runtime((3, 13, 7), "Amazon Linux 2023", (2, 34)),
    "python3.14": Runtime((3, 14, 0), "Amazon Linux 2023", (2, 34)),
}

#: glibc of the OS under each Lambda Python runtime, derived from :data:`RUNTIMES`.
RUNTIME_GLIBC: dict[str, tuple[int, int]] = {name: rt.glibc for name, rt in RUNTIMES.items()}

#: Lambda architecture name -> machine name used in wheel tags and ELF headers.
ARCHITECTURES: dict[str, str] = {"x86_64": "x86_64", "arm64": "aarch64"}

#: manylinux glibc minors that ``uv --python-platform`` accepts (uv 0.9 to 0.13 at least).
UV_MANYLINUX_MINORS: tuple[int, ...] = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)

_RUNTIME_RE = re.compile(r"^python3\.(\d+)$")


@dataclass(frozen=True, order=True)
class Target:
    """A Lambda runtime plus architecture, for example ``python3.9`` on ``x86_64``."""

    runtime: str
    architecture: str = "x86_64"

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            known = ", ".join(RUNTIMES)
            raise SpecError(
                f"unknown Lambda runtime {self.runtime!r}; layerkit knows {known}. "
                "Set a supported runtime in template.yaml or layer.toml."
            )
        if self.architecture not in ARCHITECTURES:
            raise SpecError(
                f"unknown Lambda architecture {self.architecture!r}; use x86_64 or arm64."
            )

    @classmethod
    def parse(cls, text: str) -> Target:
        """Parse ``python3.9`` or ``python3.9-x86_64`` (the form used in folder names)."""
        runtime, _, arch = text.partition("-")
        return cls(runtime, arch or "x86_64")

    @property
    def key(self) -> str:
        """Stable identifier used in folder and lock file names: ``python3.9-x86_64``."""
        return f"{self.runtime}-{self.architecture}"

    @property
    def python_version(self) -> tuple[int, int]:
        """The interpreter version, for example ``(3, 9)``."""
        match = _RUNTIME_RE.match(self.runtime)
        assert match is not None  # guaranteed by __post_init__
        return (3, int(match.group(1)))

    @property
    def python_version_text(self) -> str:
        """The interpreter version as text, for example ``"3.9"``."""
        return "{}.{}".format(*self.python_version)

    @property
    def python_full_version(self) -> str:
        """The runtime's interpreter version with its patch, for example ``"3.9.23"``."""
        return "{}.{}.{}".format(*RUNTIMES[self.runtime].python)

    @property
    def os(self) -> str:
        """The runtime's operating system, for example ``"Amazon Linux 2"``."""
        return RUNTIMES[self.runtime].os

    @property
    def glibc_text(self) -> str:
        """The glibc version as text, for example ``"2.26"``."""
        return "{}.{}".format(*self.glibc)

    @property
    def description(self) -> str:
        """``python3.9 (x86_64, Amazon Linux 2, glibc 2.26)`` for messages."""
        return f"{self.runtime} ({self.machine}, {self.os}, glibc {self.glibc_text})"

    @property
    def glibc(self) -> tuple[int, int]:
        """The glibc version of the runtime's OS."""
        return RUNTIME_GLIBC[self.runtime]

    @property
    def machine(self) -> str:
        """The machine name in wheel tags and ELF headers (``x86_64`` or ``aarch64``)."""
        return ARCHITECTURES[self.architecture]

    @property
    def uv_platform(self) -> str:
        """The ``--python-platform`` for uv: the oldest manylinux uv knows that covers the runtime.

        uv has no ``manylinux_2_24``/``_2_26``: for Amazon Linux 2 (glibc 2.26) this is
        ``manylinux_2_28``, so that uv also sees the 2_24 and 2_26 wheels that load there. It
        sees 2_27/2_28 wheels too, which do not: the lock keeps only wheels :func:`wheel_fits`
        accepts and resolves again without the releases that have none (see build/lock.py).
        """
        minor = min(m for m in UV_MANYLINUX_MINORS if m >= self.glibc[1])
        return f"{self.machine}-manylinux_2_{minor}"

    @functools.cached_property
    def tag_priority(self) -> tuple[tags.Tag, ...]:
        """Every wheel tag this runtime loads, the most specific first (as pip orders them)."""
        platforms = [f"manylinux_2_{m}_{self.machine}" for m in range(self.glibc[1], 4, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        platforms += [f"{name}_{self.machine}" for m, name in legacy.items() if m <= self.glibc[1]]
        interpreter = "cp{}{}".format(*self.python_version)
        found = list(
            tags.cpython_tags(
                self.python_version, abis=[interpreter, "abi3", "none"], platforms=platforms
            )
        )
        found += tags.compatible_tags(self.python_version, interpreter, platforms)
        return tuple(dict.fromkeys(found))

    @functools.cached_property
    def supported_tags(self) -> frozenset[tags.Tag]:
        """Every wheel tag an interpreter of this runtime loads on this runtime's OS."""
        return frozenset(self.tag_priority)

    @property
    def marker_environment(self) -> dict[str, str]:
        """PEP 508 marker values of this runtime, for evaluating dependencies' markers."""
        return {
            "implementation_name": "cpython",
            "implementation_version": self.python_full_version,
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": self.python_full_version,
            "python_version": self.python_version_text,
            "sys_platform": "linux",
        }


def wheel_fits(filename: str, target: Target) -> bool:
    """Whether the wheel ``filename`` installs and loads on ``target``.

    >>> wheel_fits("numpy-2.0.2-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    ...            Target("python3.9"))
    True
    """
    try:
        _, _, _, wheel_tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise SpecError(f"not a wheel file name: {filename!r} ({exc})") from exc
    return not wheel_tags.isdisjoint(target.supported_tags)


def best_wheel(filenames: Iterable[str], target: Target) -> str | None:
    """Of several wheel file names, the one ``target`` prefers (its most specific tag), or None.

    >>> best_wheel(["c-1-cp39-abi3-manylinux_2_28_x86_64.whl",
    ...             "c-1-cp39-abi3-manylinux_2_17_x86_64.whl"], Target("python3.9"))
    'c-1-cp39-abi3-manylinux_2_17_x86_64.whl'
    """
    rank = {tag: i for i, tag in enumerate(target.tag_priority)}
    scored = []
    for name in filenames:
        try:
            wheel_tags = parse_wheel_filename(name)[3]
        except InvalidWheelFilename:
            continue
        best = min((rank[t] for t in wheel_tags if t in rank), default=None)
        if best is not None:
            scored.append((best, name))
    return min(scored)[1] if scored else None


def wheel_tags_text(filename: str) -> str:
    """The platform tags of a wheel file name, for error messages."""
    return (
        filename.removesuffix(".whl").split("-", 2)[-1] if filename.endswith(".whl") else filename
    )
