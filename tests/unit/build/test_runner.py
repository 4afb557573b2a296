"""Running artifacts side by side: early starts, waiting for what is needed, cancelling."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from layerkit.build.runner import Cancelled, Finished, run_jobs


class Board:
    """Records what happened, in order, across worker threads."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.lock = threading.Lock()

    def say(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)


def run(
    work: dict[str, Callable[[], str]],
    needs: dict[str, frozenset[str]],
    *,
    early: frozenset[str] = frozenset(),
    jobs: int = 2,
    cancel: threading.Event | None = None,
) -> dict[str, str]:
    results: dict[str, str] = {}
    outcome: list[BaseException] = []

    def go() -> None:
        try:
            run_jobs(
                list(work),
                needs,
                lambda item: work[item],
                results.__setitem__,
                cancel or threading.Event(),
                jobs,
                early=early,
            )
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=go)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "run_jobs did not finish: a deadlock"
    if outcome:
        raise outcome[0]
    return results


def test_an_early_item_works_beside_what_it_needs_and_waits_before_reading_it() -> None:
    board, cancel = Board(), threading.Event()
    finished = Finished(cancel)
    release = threading.Event()

    def core() -> str:
        board.say("core started")
        assert release.wait(10)
        board.say("core done")
        return "core"

    def ml() -> str:
        board.say("ml started")  # before core is done: its first steps need nothing of core
        release.set()
        finished.wait(["core"], "layer ml")
        board.say("ml read core")
        return "ml"

    results: dict[str, str] = {}

    def done(item: str, result: str) -> None:
        results[item] = result
        finished.mark(item)

    run_jobs(
        ["core", "ml"],
        {"core": frozenset(), "ml": frozenset({"core"})},
        lambda item: {"core": core, "ml": ml}[item],
        done,
        cancel,
        2,
        early=frozenset({"ml"}),
    )
    assert results == {"core": "core", "ml": "ml"}
    assert board.lines.index("ml started") < board.lines.index("core done")
    assert board.lines.index("core done") < board.lines.index("ml read core")


def test_without_early_an_item_starts_after_what_it_needs_finished() -> None:
    board = Board()
    work = {
        "core": lambda: board.say("core ran") or "core",
        "ml": lambda: board.say("ml ran") or "ml",
    }
    run(work, {"ml": frozenset({"core"})})
    assert board.lines == ["core ran", "ml ran"]


def test_an_early_item_never_takes_the_slot_of_what_it_needs() -> None:
    board = Board()
    work = {
        "ml": lambda: board.say("ml ran") or "ml",  # listed first, still started second
        "core": lambda: board.say("core ran") or "core",
    }
    run(work, {"ml": frozenset({"core"})}, early=frozenset({"ml"}), jobs=1)
    assert board.lines == ["core ran", "ml ran"]


def test_a_failure_cancels_the_item_waiting_for_it_and_is_raised() -> None:
    cancel = threading.Event()
    finished = Finished(cancel)
    waiting = threading.Event()
    outcome: list[str] = []

    def core() -> str:
        assert waiting.wait(10)
        raise RuntimeError("core broke")

    def ml() -> str:
        waiting.set()
        try:
            finished.wait(["core"], "layer ml")
        except Cancelled:
            outcome.append("ml cancelled")
            raise
        return "ml"

    with pytest.raises(RuntimeError, match="core broke"):
        run(
            {"core": core, "ml": ml},
            {"ml": frozenset({"core"})},
            early=frozenset({"ml"}),
            cancel=cancel,
        )
    assert outcome == ["ml cancelled"]


def test_waiting_after_a_cancel_raises_at_once() -> None:
    cancel = threading.Event()
    finished = Finished(cancel)
    finished.mark("core")
    cancel.set()
    with pytest.raises(Cancelled, match="layer ml"):
        finished.wait(["core"], "layer ml")
