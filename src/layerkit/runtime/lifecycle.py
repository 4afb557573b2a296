"""Where a Lambda runtime is in its lifecycle: cfn-lint's maintained dates, read at call time.

AWS deprecates a runtime, then blocks creating functions on it, then blocks updating them. The
dates move, so layerkit copies none of them: it reads cfn-lint's ``LmbdRuntimeLifecycle.json``
(the table cfn-lint's own W2531/E2531/E2533 rules use) from the installed cfn-lint when asked.
cfn-lint is imported only then, so modules that take a :class:`RuntimeStatus` as data (the
deploy planner) import nothing of it.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from layerkit.errors import CheckError

#: The package and file of cfn-lint's runtime lifecycle table.
LIFECYCLE_DATA = ("cfnlint.data.AdditionalSpecs", "LmbdRuntimeLifecycle.json")

Table = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class RuntimeStatus:
    """Where a Lambda runtime is in its lifecycle on a given day, and where the dates come from."""

    runtime: str
    deprecated: date | None
    create_blocked: date | None
    update_blocked: date | None
    successor: str | None
    is_deprecated: bool
    blocked_for_create: bool
    blocked_for_update: bool
    source: str = "runtime lifecycle data"  # for messages: "cfn-lint 1.58.0 runtime lifecycle data"


class Lifecycle(Protocol):
    """What :func:`deprecation_notice` and the deploy planner read of a runtime's lifecycle.

    A :class:`RuntimeStatus`, or anything with the same dates and flags (tests pass their own).
    """

    @property
    def deprecated(self) -> date | None: ...  # noqa: D102
    @property
    def create_blocked(self) -> date | None: ...  # noqa: D102
    @property
    def update_blocked(self) -> date | None: ...  # noqa: D102
    @property
    def successor(self) -> str | None: ...  # noqa: D102
    @property
    def is_deprecated(self) -> bool: ...  # noqa: D102
    @property
    def blocked_for_create(self) -> bool: ...  # noqa: D102
    @property
    def blocked_for_update(self) -> bool: ...  # noqa: D102


def _blocks(status: Lifecycle, today: date) -> str:
    """``AWS has blocked creating functions on it since D1 and blocks updating them from D2``."""
    parts, said = [], ""
    for day, action in (
        (status.create_blocked, "creating functions on it"),
        (status.update_blocked, "updating them"),
    ):
        if day is None:
            continue
        verb, word = ("has blocked", "since") if day <= today else ("blocks", "from")
        parts.append(f"{'' if verb == said else verb + ' '}{action} {word} {day}")
        said = verb
    return f"AWS {' and '.join(parts)}" if parts else ""


def deprecation_notice(
    runtime: str,
    status: Lifecycle,
    today: date,
    source: str = "runtime lifecycle data",
    *,
    validated: tuple[str, ...] = (),
    template: str = "template.yaml",
) -> str | None:
    """The one wording of "this runtime is deprecated": the dates, their source, the way out.

    None for a runtime that is not deprecated or blocked on ``today``. ``validated``: the other
    runtimes the project's layers are built and validated for (named as the way out);
    ``source`` names where the dates come from. Every command that warns about a runtime's
    lifecycle (build, validate, deploy) says this sentence, once.
    """
    if not (status.is_deprecated or status.blocked_for_create or status.blocked_for_update):
        return None
    blocks = _blocks(status, today)
    since = f" since {status.deprecated}" if status.deprecated else ""
    others = f" ({', '.join(validated)} is built and validated too)" if validated else ""
    successor = f"; AWS names {status.successor} as its successor" if status.successor else ""
    return (
        f"runtime {runtime} is deprecated{since}"
        + (f": {blocks}" if blocks else "")
        + f" ({source}). The way out is one setting: Runtime in {template} Globals.Function, "
        f"with the layers' CompatibleRuntimes{others}{successor}."
    )


def _date(text: Any) -> date | None:
    return date.fromisoformat(text) if isinstance(text, str) and text else None


@functools.lru_cache(maxsize=1)
def lifecycle_table() -> Table:
    """cfn-lint's runtime lifecycle data: runtime -> deprecated/create-block/update-block dates.

    The file is found next to the installed cfn-lint without importing it (importing cfn-lint
    loads every rule: seconds), falling back to importing its data package.
    """
    package, name = LIFECYCLE_DATA
    spec = importlib.util.find_spec(package.split(".")[0])
    if spec is None:
        raise CheckError(
            "cfn-lint is not installed, and layerkit reads the Lambda runtime lifecycle from "
            "its data; install it (`uv pip install cfn-lint`, a dependency of layerkit)."
        )
    folders = list(spec.submodule_search_locations or ())
    candidates = [Path(f, *package.split(".")[1:], name) for f in folders]
    found = next((p for p in candidates if p.is_file()), None)
    if found is not None:
        text = found.read_text(encoding="utf-8")
    else:  # pragma: no cover - cfn-lint installed as a zip
        text = importlib.resources.files(package).joinpath(name).read_text(encoding="utf-8")
    data: Table = json.loads(text)
    return data


def lifecycle_source() -> str:
    """Where the lifecycle dates come from, for messages (names the installed cfn-lint)."""
    return f"cfn-lint {importlib.metadata.version('cfn-lint')} runtime lifecycle data"


def runtime_lifecycle(runtime: str, today: date, table: Table | None = None) -> RuntimeStatus:
    """The lifecycle of ``runtime`` on ``today`` (a runtime not in the table is live).

    ``table`` replaces cfn-lint's data (tests pass a fixed one); without it the installed
    cfn-lint is read, and named in :attr:`RuntimeStatus.source`.
    """
    source = "the given lifecycle table" if table is not None else lifecycle_source()
    entry = (lifecycle_table() if table is None else table).get(runtime, {})
    deprecated = _date(entry.get("deprecated"))
    create_blocked = _date(entry.get("create-block"))
    update_blocked = _date(entry.get("update-block"))
    return RuntimeStatus(
        runtime=runtime,
        deprecated=deprecated,
        create_blocked=create_blocked,
        update_blocked=update_blocked,
        successor=entry.get("successor"),
        is_deprecated=deprecated is not None and deprecated <= today,
        blocked_for_create=create_blocked is not None and create_blocked <= today,
        blocked_for_update=update_blocked is not None and update_blocked <= today,
        source=source,
    )
