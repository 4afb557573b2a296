"""The file edits of a runtime upgrade (``upgrade-runtime python3.12``), as pure text functions.

An upgrade changes three kinds of setting and nothing else, keeping every comment, quote style
and line of the files it touches:

- ``template.yaml``: each ``Runtime`` (``Globals.Function`` and any function's own) becomes the
  new runtime, and each layer resource's ``CompatibleRuntimes`` lists the new runtime instead of
  the old ones (the layer version published for the new target is built for it alone);
- each ``layers/<name>/layer.toml``: ``runtimes`` gains the new runtime, first (the old ones stay,
  so the old target can still be built and compared until you remove it).

The template is located with ruamel.yaml (line and column of every value) and edited as text,
so only the runtime tokens change; layer.toml is edited with tomlkit, which keeps comments.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerkit.errors import SpecError

FUNCTION_TYPES = frozenset({"AWS::Serverless::Function", "AWS::Lambda::Function"})
LAYER_TYPES = frozenset({"AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"})


@dataclass(frozen=True)
class TextEdit:
    """Replace ``text[start:end]`` (the old value, as written) with ``new``."""

    start: int
    end: int
    old: str
    new: str
    where: str  # e.g. "Globals.Function.Runtime", for the dry-run listing

    def describe(self) -> str:
        """One line for the dry-run listing."""
        return f"{self.where}: {self.old} -> {self.new}"


@dataclass(frozen=True)
class FileChange:
    """A file's text before and after an upgrade, and what changed in it."""

    path: Path
    before: str
    after: str
    changes: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """True when the upgrade changes the file."""
        return self.before != self.after


def _load_round_trip(text: str, path: Path) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="rt")
    try:
        return yaml.load(text)
    except YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({exc}); fix the file and run again.") from None


def _scalar_end(text: str, start: int) -> int:
    """Where the plain or quoted flow/block scalar that begins at ``start`` ends."""
    if text[start] in "\"'":
        return text.index(text[start], start + 1) + 1
    end = start
    while end < len(text) and text[end] not in ",]\n\r#" and not text[end].isspace():
        end += 1
    return end


class _Locator:
    """Offsets in the template text of the values ruamel.yaml located by line and column."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.line_starts = [0]
        for line in text.splitlines(keepends=True):
            self.line_starts.append(self.line_starts[-1] + len(line))

    def offset(self, line_col: tuple[int, int]) -> int:
        line, col = line_col
        return self.line_starts[line] + col

    def edit(self, first: tuple[int, int], last: tuple[int, int], new: str, where: str) -> TextEdit:
        start, last_start = self.offset(first), self.offset(last)
        end = _scalar_end(self.text, last_start)
        return TextEdit(start, end, self.text[start:end], new, where)


def _runtime_edit(loc: _Locator, mapping: Any, new: str, where: str) -> Iterator[TextEdit]:
    value = mapping.get("Runtime")
    if isinstance(value, str) and value != new:
        at = mapping.lc.value("Runtime")
        yield loc.edit(at, at, new, where)


def _compatible_edit(loc: _Locator, props: Any, new: str, where: str) -> Iterator[TextEdit]:
    runtimes = props.get("CompatibleRuntimes")
    if not hasattr(runtimes, "lc") or not runtimes or list(runtimes) == [new]:
        return
    if not all(isinstance(r, str) for r in runtimes):
        return
    # the list becomes [new]: replace from its first item to the end of its last one (in a
    # block list that takes the "\n  - " between the items with it)
    first, last = runtimes.lc.item(0), runtimes.lc.item(len(runtimes) - 1)
    yield loc.edit(first, last, new, where)


def template_edits(text: str, path: Path, new: str) -> tuple[TextEdit, ...]:
    """Every runtime value of a SAM/CloudFormation template that an upgrade to ``new`` changes."""
    doc = _load_round_trip(text, path)
    if not hasattr(doc, "get"):
        raise SpecError(f"{path}: expected a mapping at the top of the template.")
    loc = _Locator(text)
    edits: list[TextEdit] = []
    fn_globals = (doc.get("Globals") or {}).get("Function")
    if hasattr(fn_globals, "lc"):
        edits += _runtime_edit(loc, fn_globals, new, "Globals.Function.Runtime")
    for logical_id, resource in (doc.get("Resources") or {}).items():
        props = resource.get("Properties") if hasattr(resource, "get") else None
        if not hasattr(props, "lc"):
            continue
        if resource.get("Type") in FUNCTION_TYPES:
            edits += _runtime_edit(loc, props, new, f"{logical_id}.Runtime")
        elif resource.get("Type") in LAYER_TYPES:
            edits += _compatible_edit(loc, props, new, f"{logical_id}.CompatibleRuntimes")
    return tuple(edits)


def apply_edits(text: str, edits: Iterable[TextEdit]) -> str:
    """Apply :func:`template_edits` to the text they were computed from."""
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.new + text[edit.end :]
    return text


def upgrade_template(path: Path, new: str) -> FileChange:
    """The template at ``path`` with every Runtime and CompatibleRuntimes moved to ``new``."""
    before = path.read_text(encoding="utf-8")
    edits = template_edits(before, path, new)
    return FileChange(path, before, apply_edits(before, edits), tuple(e.describe() for e in edits))


def upgrade_layer_toml(path: Path, new: str) -> FileChange:
    """``layer.toml`` at ``path`` with ``new`` added first to its ``runtimes`` (comments kept)."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    before = path.read_text(encoding="utf-8")
    try:
        doc = tomlkit.parse(before)
    except TOMLKitError as exc:
        raise SpecError(f"{path}: not valid TOML ({exc}); fix the file and run again.") from None
    runtimes = doc.get("runtimes", ["python3.9"])
    if not isinstance(runtimes, list) or not all(isinstance(r, str) for r in runtimes):
        raise SpecError(f"{path}: `runtimes` must be a list of runtime names.")
    if new in runtimes:
        return FileChange(path, before, before, ())
    updated = [new, *runtimes]
    array = tomlkit.item(updated)
    if "runtimes" in doc:  # keep the line's trailing comment
        array.trivia.comment_ws = doc["runtimes"].trivia.comment_ws
        array.trivia.comment = doc["runtimes"].trivia.comment
    doc["runtimes"] = array
    change = f"runtimes: {', '.join(runtimes)} -> {', '.join(updated)}"
    return FileChange(path, before, tomlkit.dumps(doc), (change,))


@dataclass(frozen=True)
class VersionMove:
    """A distribution whose locked version differs between two targets (None: not locked)."""

    name: str
    before: str | None
    after: str | None

    def describe(self) -> str:
        """``numpy 2.0.2 -> 2.2.6``, ``+ tzdata 2025.2``, ``- urllib3 1.26.20``."""
        if self.before is None:
            return f"+ {self.name} {self.after}"
        if self.after is None:
            return f"- {self.name} {self.before}"
        return f"{self.name} {self.before} -> {self.after}"


def version_moves(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[VersionMove, ...]:
    """What a runtime change moves: every distribution locked differently, sorted by name."""
    return tuple(
        VersionMove(name, before.get(name), after.get(name))
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    )
