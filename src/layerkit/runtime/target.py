"""What a build targets: a Lambda runtime and an architecture, and what follows from them.

Target knowledge is kept as data (the glibc each runtime's OS ships, the manylinux platforms uv
knows), in the spirit of chalice's ``_RUNTIME_GLIBC`` table. Everything here is pure; finding the
target's interpreter on this machine is :mod:`layerkit.runtime.interpreters` (``find_interpreter``
is re-exported here for the callers that import it with Target).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from packaging import tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from layerkit.errors import SpecError
from layerkit.runtime.interpreters import find_interpreter

__all__ = [
    "ARCHITECTURES",
    "RUNTIME_GLIBC",
    "UV_MANYLINUX_MINORS",
    "Target",
    "find_interpreter",
    "wheel_fits",
    "wheel_tags_text",
]

#: glibc of the OS under each Lambda Python runtime (Amazon Linux 2: 2.26, AL2023: 2.34).
RUNTIME_GLIBC: dict[str, tuple[int, int]] = {
    "python3.9": (2, 26),
    "python3.10": (2, 26),
    "python3.11": (2, 26),
    "python3.12": (2, 34),
    "python3.13": (2, 34),
    "python3.14": (2, 34),
}

#: Lambda architecture name -> machine name used in wheel tags and ELF headers.
ARCHITECTURES: dict[str, str] = {"x86_64": "x86_64", "arm64": "aarch64"}

#: manylinux glibc minors that ``uv --python-platform`` accepts (uv 0.9+).
UV_MANYLINUX_MINORS: tuple[int, ...] = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)

_RUNTIME_RE = re.compile(r"^python3\.(\d+)$")


@dataclass(frozen=True, order=True)
class Target:
    """A Lambda runtime plus architecture, for example ``python3.9`` on ``x86_64``."""

    runtime: str
    architecture: str = "x86_64"

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIME_GLIBC:
            known = ", ".join(RUNTIME_GLIBC)
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
    def glibc(self) -> tuple[int, int]:
        """The glibc version of the runtime's OS."""
        return RUNTIME_GLIBC[self.runtime]

    @property
    def machine(self) -> str:
        """The machine name in wheel tags and ELF headers (``x86_64`` or ``aarch64``)."""
        return ARCHITECTURES[self.architecture]

    @property
    def uv_platform(self) -> str:
        """The ``--python-platform`` for uv: the newest manylinux uv knows that the runtime loads.

        uv has no ``manylinux_2_26``; for Amazon Linux 2 that means ``manylinux_2_17``, a strict
        subset of what loads, and :func:`wheel_fits` checks the wheels uv picked besides.
        """
        minor = max(m for m in UV_MANYLINUX_MINORS if m <= self.glibc[1])
        return f"{self.machine}-manylinux_2_{minor}"

    @functools.cached_property
    def supported_tags(self) -> frozenset[tags.Tag]:
        """Every wheel tag an interpreter of this runtime loads on this runtime's OS."""
        platforms = [f"manylinux_2_{m}_{self.machine}" for m in range(self.glibc[1], 4, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        platforms += [f"{name}_{self.machine}" for m, name in legacy.items() if m <= self.glibc[1]]
        interpreter = "cp{}{}".format(*self.python_version)
        found = set(
            tags.cpython_tags(
                self.python_version, abis=[interpreter, "abi3", "none"], platforms=platforms
            )
        )
        found.update(tags.compatible_tags(self.python_version, interpreter, platforms))
        return frozenset(found)


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


def wheel_tags_text(filename: str) -> str:
    """The platform tags of a wheel file name, for error messages."""
    return (
        filename.removesuffix(".whl").split("-", 2)[-1] if filename.endswith(".whl") else filename
    )
