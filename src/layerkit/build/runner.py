"""Running the build steps: one artifact's steps in order, independent artifacts side by side.

:func:`run_job` runs an artifact's steps, times each one and emits a :class:`BuildEvent` when a
step starts and when it ends. :func:`run_jobs` runs many artifacts on a pool of threads (each
step mostly waits for a subprocess: uv, the target interpreter, strip), starting an artifact
only when everything it needs is built: a layer after the layers it requires, a function after
every layer. What each artifact produces does not depend on what runs beside it.

When a step fails or the build is interrupted, the other artifacts stop at their next step,
nothing they half-made is kept (their staging folders are removed by their builders), and the
first failure is raised. An interrupt is a :class:`BuildInterrupted`, a ``KeyboardInterrupt``
whose message says what was being built.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from layerkit.build.manifest import ArtifactRecord
from layerkit.build.steps import Job, Step, base_record


class EventKind(str, Enum):
    """What a progress event reports."""

    FRESH = "fresh"  # the artifact is up to date: nothing to do
    QUEUED = "queued"  # the artifact will be built (its ``total`` steps are known)
    STARTED = "started"  # a step begins (``detail`` is its purpose)
    FINISHED = "finished"  # a step ended (``detail`` is what it did)
    BUILT = "built"  # the artifact's zip and manifest record are in place

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class BuildEvent:
    """A progress event of one artifact.

    ``step`` is the step's NAME (``install``, ``slim``, ``bytecode``, ``import-check``,
    ``zip``; ``copy``, ``imports`` for a function; ``cache`` when a build cache is asked), or
    ``fresh`` / ``queued`` / ``done`` for the artifact as a whole. ``done`` of ``total`` steps
    are finished. ``elapsed`` is the seconds since the artifact's build started (for BUILT: the
    seconds its steps took); ``seconds`` is a FINISHED step's own time. Events of different
    artifacts interleave when they build side by side.
    """

    artifact: str  # "layer core-data-science" / "function predictions"
    step: str
    detail: str = ""
    kind: EventKind = EventKind.FINISHED
    done: int = 0
    total: int = 0
    elapsed: float = 0.0
    seconds: float = 0.0


Progress = Callable[[BuildEvent], None]


def no_progress(event: BuildEvent) -> None:
    """Discard progress events."""


class BuildInterrupted(KeyboardInterrupt):
    """The build was interrupted (Ctrl-C); the message says what was being built."""


class Cancelled(Exception):
    """Raised in an artifact's build when another one failed: stop at the next step."""


class Tracker:
    """Serialises progress events from many threads and remembers each artifact's step."""

    def __init__(self, progress: Progress):
        self._progress = progress
        self._lock = threading.Lock()
        self.current: dict[str, str] = {}

    def emit(self, event: BuildEvent) -> None:
        """Pass ``event`` on, one at a time, noting which step each artifact is in."""
        with self._lock:
            if event.kind == EventKind.STARTED:
                self.current[event.artifact] = f"{event.step}, step {event.done + 1}/{event.total}"
            elif event.kind == EventKind.BUILT:
                self.current.pop(event.artifact, None)
            self._progress(event)

    def interrupted(self) -> BuildInterrupted:
        """The interrupt, naming what was being built."""
        with self._lock:
            doing = [f"{label} ({step})" for label, step in self.current.items()]
        what = " and ".join(doing) if doing else "planning the build"
        return BuildInterrupted(
            f"interrupted while building {what}; nothing half-written was kept (what was being "
            "built is neither in the manifest nor in dist/, and its staging folder is removed). "
            "Run the build again to finish it."
        )


def run_job(
    job: Job, steps: Sequence[Step], tracker: Tracker, cancel: threading.Event
) -> ArtifactRecord:
    """Run ``steps`` for ``job`` in order; return the artifact's manifest record."""
    label, total = job.planned.label, len(steps)
    fields: dict[str, Any] = base_record(job)
    timings: list[tuple[str, float]] = []
    started = time.monotonic()
    for index, step in enumerate(steps):
        if cancel.is_set():
            raise Cancelled(label)
        now = time.monotonic()
        tracker.emit(
            BuildEvent(
                label, step.NAME, step.PURPOSE, EventKind.STARTED, index, total, now - started
            )
        )
        outcome = step.run(job, fields)
        seconds = time.monotonic() - now
        fields.update(outcome.record)
        timings.append((step.NAME, round(seconds, 3)))
        tracker.emit(
            BuildEvent(
                label,
                step.NAME,
                outcome.detail,
                EventKind.FINISHED,
                index + 1,
                total,
                time.monotonic() - started,
                seconds,
            )
        )
    return ArtifactRecord(**fields, timings=tuple(timings))


Item = TypeVar("Item", bound=Hashable)
Result = TypeVar("Result")


class Finished:
    """Which items are finished, for the ones that started before what they need had finished.

    :meth:`mark` is called when an item's result is recorded; :meth:`wait` blocks a worker
    until the items it names are marked, and raises :class:`Cancelled` as soon as the build is
    cancelled (a failure elsewhere, an interrupt).
    """

    def __init__(self, cancel: threading.Event):
        self._cancel = cancel
        self._events: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()

    def _event(self, item: Hashable) -> threading.Event:
        with self._lock:
            return self._events.setdefault(item, threading.Event())

    def mark(self, item: Hashable) -> None:
        """``item`` is finished and its result recorded."""
        self._event(item).set()

    def wait(self, items: Iterable[Hashable], label: str) -> None:
        """Block until every one of ``items`` is finished; Cancelled if the build stops first."""
        for item in items:
            event = self._event(item)
            while not event.wait(0.05):
                if self._cancel.is_set():
                    raise Cancelled(label)
        if self._cancel.is_set():
            raise Cancelled(label)


def default_jobs() -> int:
    """How many artifacts build at once: one per core."""
    return max(1, os.cpu_count() or 1)


def run_jobs(
    items: Sequence[Item],
    needs: Mapping[Item, frozenset[Item]],
    work: Callable[[Item], Callable[[], Result]],
    done: Callable[[Item, Result], None],
    cancel: threading.Event,
    jobs: int,
    *,
    early: frozenset[Item] = frozenset(),
) -> None:
    """Run every item, at most ``jobs`` at once, each after the items it ``needs``.

    ``work(item)`` is called in this thread when the item starts and returns what runs in a
    worker thread; ``done(item, result)`` is called in this thread when it is finished. An
    item in ``early`` starts as soon as what it needs has *started* and waits by itself before
    the part of its work that reads them (:class:`Finished`); as every item it needs already
    holds a worker, none of them can be waiting for its slot. The first failure sets
    ``cancel``, waits for the running items to stop and is raised.
    """
    pending = list(items)
    running: dict[Future[Result], Item] = {}
    finished: set[Item] = set()

    def startable(item: Item) -> bool:
        needed = needs.get(item, frozenset())
        if item in early:
            return needed <= finished | set(running.values())
        return needed <= finished

    with ThreadPoolExecutor(max(1, jobs), thread_name_prefix="layerkit-build") as pool:
        try:
            while pending or running:
                # one at a time: an early item may start once the one before it has
                while (
                    len(running) < max(1, jobs)
                    and (ready := next((i for i in pending if startable(i)), None)) is not None
                ):
                    pending.remove(ready)
                    running[pool.submit(work(ready))] = ready
                if not running:
                    raise RuntimeError(f"build order has a cycle among {pending}")
                completed, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(completed, key=lambda f: items.index(running[f])):
                    item = running.pop(future)
                    done(item, future.result())
                    finished.add(item)
        except BaseException:
            cancel.set()
            wait(running)
            for future, item in running.items():  # what finished well beside the failure is kept
                if future.exception() is None:
                    done(item, future.result())
            raise
