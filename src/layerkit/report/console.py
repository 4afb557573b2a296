"""What a person sees while layerkit works: live progress, streamed steps, warnings, tables.

:class:`Terminal` is the one renderer the command line plugs into the library's callbacks: pass
``terminal.progress`` as a build's ``progress=`` and ``terminal.step`` as a deploy's step
callback, print warnings with :meth:`Terminal.warning` and tables with :meth:`Terminal.table`.

On an interactive terminal (or with ``FORCE_COLOR``) it uses colour; on an interactive terminal
outside CI it redraws a live view — a line per artifact with its current step, elapsed time and
done/total — between :meth:`Terminal.tracking` entering and leaving. In CI logs and pipes it
prints plain lines instead. ``NO_COLOR`` turns colour off everywhere. On a terminal, warnings
wrap to its width; anywhere else (a CI log, a pipe, a file) every event and message is one line
however long, and no line ends with spaces, so grepping a log for an artifact finds all of it.
Tables fit 100 columns, and the same message for several artifacts in a row ("fresh: up to
date") is printed once.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from layerkit.report.text import WIDTH, report_tables, table

FINISHED = frozenset({"done", "fresh", "failed", "skipped"})  # steps that end an artifact
#: Kinds of build events that announce work (a step starting, an artifact queued): shown in
#: the live view, never as a plain line (the step's end is its line).
ANNOUNCING = frozenset({"started", "queued"})
COLLAPSIBLE = frozenset({"fresh", "skipped"})  # the same words for every artifact: one line


def writes_to_terminal(console: Console) -> bool:
    """Whether ``console`` writes to a real terminal (not a pipe, a file or a CI log)."""
    if not console.is_terminal:
        return False
    try:
        return bool(console.file.isatty())
    except (AttributeError, OSError, ValueError):
        return False


_TRAILING = re.compile(r"[ \t]+((?:\x1b\[[0-9;]*m)*)$")


def strip_trailing(line: str) -> str:
    """``line`` without the spaces at its end (kept colour codes after them stay)."""
    return _TRAILING.sub(r"\1", line)


class Level(Enum):
    """How much a message matters; decides its prefix and colour."""

    INFO = "info"
    NOTE = "note"
    WARNING = "warning"
    ERROR = "error"


_STYLE = {Level.INFO: "", Level.NOTE: "cyan", Level.WARNING: "yellow", Level.ERROR: "bold red"}


@runtime_checkable
class ProgressEvent(Protocol):
    """What the renderer needs from a progress event.

    ``layerkit.build.pipeline.BuildEvent`` has these and ``detail``; an event may also carry
    ``done`` and ``total`` (artifacts finished and planned) and ``elapsed`` (seconds the
    artifact has taken); the renderer uses them when present and counts or times itself if not.
    A build event has a ``kind`` (:class:`layerkit.build.runner.EventKind`) instead: its
    ``done``/``total`` count the artifact's steps, so the renderer counts artifacts itself and
    takes ``elapsed`` only from the event that ends the artifact (kind ``built``).
    """

    @property
    def artifact(self) -> str:
        """``layer core-data-science`` / ``function predictions``."""
        ...

    @property
    def step(self) -> str:
        """The step now running (``install``, ``slim``, ``zip``) or ``done``/``fresh``."""
        ...


class Describable(Protocol):
    """A deploy step: anything with a one-line description."""

    def describe(self) -> str:
        """One line saying what the step does or did."""
        ...


@dataclass
class _Row:
    artifact: str
    step: str
    detail: str
    started: float
    elapsed: float | None = None  # frozen when the artifact finished or the event said so
    finished: bool = False


class Terminal:
    """Renders progress, deploy steps, messages and tables to one rich console.

    ``console``: where to print (default: stdout, colour and width detected by rich);
    ``verbose``: step details in the live view and every detail of tables; ``live``: force the
    live view on or off (default: on for an interactive terminal outside CI); ``clock``: seconds,
    for the elapsed times (tests pass a fake); ``wrap``: hard-wrap long lines to the width
    (default: only when the console writes to a real terminal; a log gets one line per event).
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        verbose: bool = False,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        wrap: bool | None = None,
    ) -> None:
        self.console = console or Console()
        self.wrap = wrap if wrap is not None else writes_to_terminal(self.console)
        if not self.wrap:
            self.console.soft_wrap = True  # one line per event, however long
        self.verbose = verbose
        self.live = (
            live if live is not None else self.console.is_interactive and not os.environ.get("CI")
        )
        self._clock = clock
        self._rows: dict[str, _Row] = {}
        self._seen: set[tuple[str, str, str]] = set()
        self._pending: tuple[str, str, list[str]] | None = None  # (step, detail, artifacts)
        self._said: set[str] = set()
        self._title = ""
        self._total: int | None = None
        self._done: int | None = None
        self._started = clock()
        self._live: Live | None = None
        self._tracking = False
        self._lock = threading.RLock()

    # -- progress ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def tracking(self, title: str, total: int | None = None) -> Iterator[Terminal]:
        """Show progress for one piece of work (a build, a deploy) until the block ends.

        ``total`` is how many artifacts or steps are planned, if known. Live on a terminal;
        plain lines otherwise. Collapsed messages are printed when the block ends.
        """
        self._title, self._total, self._done = title, total, None
        self._rows, self._started, self._tracking = {}, self._clock(), True
        if self.live:
            self._live = Live(
                get_renderable=self._render,
                console=self.console,
                refresh_per_second=4,
                transient=False,
            )
            self._live.start()
        try:
            yield self
        finally:
            if self._live is not None:
                self._live.refresh()
                self._live.stop()
                self._live = None
            self.flush()
            self._tracking = False

    def progress(self, event: ProgressEvent) -> None:
        """Take one progress event (the callback a build or validation reports to).

        Safe to call from several threads (a build that runs artifacts in parallel).
        """
        with self._lock:
            self._progress(event)

    def _progress(self, event: ProgressEvent) -> None:
        detail = str(getattr(event, "detail", "") or "")
        now = self._clock()
        row = self._rows.get(event.artifact)
        if row is None or row.finished:
            row = self._rows[event.artifact] = _Row(event.artifact, event.step, detail, now)
        row.step, row.detail = event.step, detail
        kind = getattr(event, "kind", None)
        if kind is None:
            elapsed = getattr(event, "elapsed", None)
            done, total = getattr(event, "done", None), getattr(event, "total", None)
        else:  # a build event: steps of one artifact, not the build's counts
            built = str(kind) == "built"
            elapsed = getattr(event, "elapsed", None) if built else None
            done = total = None
        if elapsed is not None:
            row.elapsed = float(elapsed)
        if event.step in FINISHED:
            row.finished = True
            if row.elapsed is None and event.step not in COLLAPSIBLE:  # fresh took no time
                row.elapsed = now - row.started
        if done is not None:
            self._done = int(done)
        if total is not None:
            self._total = int(total)
        if self._live is not None:
            self._live.refresh()
            return
        if kind is not None and str(kind) in ANNOUNCING:
            return  # a plain line per step is written when the step ends
        key = (event.artifact, event.step, detail)
        if key in self._seen and event.step in FINISHED:
            return  # the same artifact reported fresh again (validation builds layer by layer)
        self._seen.add(key)
        self._plain(row)

    __call__ = progress

    def _counts(self) -> tuple[int, int | None]:
        done = (
            self._done
            if self._done is not None
            else sum(r.finished for r in list(self._rows.values()))
        )
        total = self._total if self._total is not None else None
        return done, total

    def _plain(self, row: _Row) -> None:
        """A line per event; "fresh: up to date" for several artifacts in a row: one line."""
        pending = self._pending
        if pending and (pending[0], pending[1]) == (row.step, row.detail):
            pending[2].append(row.artifact)
            return
        self.flush()
        if row.step in COLLAPSIBLE and self._tracking:  # held until the block ends at the latest
            self._pending = (row.step, row.detail, [row.artifact])
        else:
            self._line(row.artifact, row.step, row.detail, row)

    def _line(self, who: str, step: str, detail: str, row: _Row | None) -> None:
        done, total = self._counts()
        tail = []
        if total:
            tail.append(f"{done}/{total}")
        if row is not None and row.finished and row.elapsed is not None:
            tail.append(f"{row.elapsed:.1f}s")
        text = Text()
        text.append(f"[{who}] ", style="bold")
        text.append(step, style="green" if step in FINISHED else "cyan")
        if detail:
            text.append(f": {detail}")
        if tail:
            text.append(f"  ({', '.join(tail)})", style="dim")
        self._print(text)

    def _print(self, text: Text) -> None:
        """One line: folded at the width on a terminal, never broken in a log."""
        if self.wrap:
            self.console.print(text, overflow="fold")
        else:
            self.console.print(text, soft_wrap=True)

    def flush(self) -> None:
        """Print what is held back to be collapsed (called when a block or a message ends it)."""
        pending, self._pending = self._pending, None
        if not pending:
            return
        step, detail, who = pending
        if len(who) == 1:
            self._line(who[0], step, detail, self._rows.get(who[0]))
            return
        names = ", ".join(who)
        self._line(f"{len(who)} artifacts", step, f"{detail}: {names}" if detail else names, None)

    def _render(self) -> RenderableType:
        done, total = self._counts()
        clock = time.strftime("%M:%S", time.gmtime(self._clock() - self._started))
        head = Text.assemble(
            (self._title or "working", "bold"),
            f"  {done}/{total}" if total else f"  {done} done",
            (f"  {clock}", "dim"),
        )
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="ellipsis", no_wrap=True, ratio=1)
        grid.add_column(justify="right", no_wrap=True)
        now = self._clock()
        for row in list(self._rows.values()):  # a snapshot: the refresh thread reads it
            seconds = row.elapsed if row.finished else now - row.started
            failed = row.step == "failed"
            mark = ("✗ " if failed else "✓ ") if row.finished else "… "
            style = ("red" if failed else "green") if row.finished else "cyan"
            grid.add_row(
                Text(mark + row.artifact),
                Text(row.step, style=style),
                Text(row.detail, style="dim"),
                Text("" if seconds is None else f"{seconds:5.1f}s", style="dim"),
            )
        return Group(head, grid)

    # -- deploy steps, messages, tables ----------------------------------------------------------

    def step(self, step: Describable | str) -> None:
        """Print a deploy step as it happens (anything with ``describe()``, or a line)."""
        with self._lock:
            self.flush()
            line = step if isinstance(step, str) else step.describe()
            self._done = (self._done or 0) + 1
            prefix = f"[{self._done}/{self._total}] " if self._total else ""
            self._print(Text.assemble((prefix, "dim"), line))

    def message(self, text: str, level: Level = Level.INFO) -> None:
        """A sentence for the user (wrapped on a terminal, one line in a log); said once."""
        if text in self._said:
            return
        self._said.add(text)
        self.flush()
        out = Text()
        if level is not Level.INFO:
            out.append(f"{level.value}: ", style=_STYLE[level])
        out.append(text.rstrip())
        self.console.print(out, soft_wrap=not self.wrap)  # words wrap on a terminal only

    def warning(self, text: str) -> None:
        """``warning: ...``, wrapped to the terminal's width."""
        self.message(text, Level.WARNING)

    def error(self, text: str) -> None:
        """``error: ...`` (for the command line to print before it exits)."""
        self.message(text, Level.ERROR)

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None
    ) -> None:
        """An aligned table, at most 100 columns wide (numbers right-aligned)."""
        self.print(table(headers, rows, title))

    def print(self, renderable: RenderableType) -> None:
        """Any rich renderable or text (tables at most 100 columns wide, no trailing spaces)."""
        self.flush()
        if self.wrap:
            self.console.print(renderable, width=min(self.console.width, WIDTH))
            return
        with self.console.capture() as captured:
            self.console.print(renderable, width=WIDTH)
        for line in captured.get().splitlines():
            self.console.print(Text.from_ansi(strip_trailing(line)), soft_wrap=True)

    def report(self, report: Mapping[str, Any]) -> None:
        """The size report's tables (``verbose``: every column, slim pass and change)."""
        for item in report_tables(report, verbose=self.verbose):
            self.print(item)
