"""The step cache: whole entries only, damaged ones ignored, least recently used trimmed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from layerkit.build.memo import ENV_VAR, NoMemo, StepCache, memo_key, step_cache


def test_a_kept_result_comes_back(tmp_path: Path) -> None:
    cache = StepCache(tmp_path)
    key = memo_key("deflate", "1.3", b"\x00" * 32)
    assert cache.get(key) is None
    cache.put(key, b"payload")
    assert cache.get(key) == b"payload"
    assert cache.size() > len(b"payload")  # the header is counted too
    assert not list(tmp_path.rglob("*.tmp"))


def test_every_input_is_part_of_the_key() -> None:
    assert memo_key("pyc", "ab", "c") != memo_key("pyc", "a", "bc")  # length-prefixed
    assert memo_key("pyc", "a") != memo_key("strip", "a")
    assert memo_key("pyc", "a") == memo_key("pyc", b"a")


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-1],  # truncated (a full disk, a killed writer)
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # one bit flipped
        lambda data: b"XXXXXX" + data[6:],  # not an entry at all
    ],
)
def test_a_damaged_entry_is_a_miss_and_is_removed(tmp_path: Path, damage) -> None:
    cache = StepCache(tmp_path)
    key = memo_key("strip", "x")
    cache.put(key, b"stripped bytes")
    entry = tmp_path / key[:2] / key
    entry.write_bytes(damage(entry.read_bytes()))
    assert cache.get(key) is None
    assert not entry.exists()
    cache.put(key, b"stripped bytes")  # computed again and rewritten
    assert cache.get(key) == b"stripped bytes"


def test_trim_removes_the_least_recently_used_first(tmp_path: Path) -> None:
    cache = StepCache(tmp_path)
    keys = [memo_key("k", str(i)) for i in range(4)]
    for age, key in enumerate(keys):
        cache.put(key, b"x" * 1000)
        os.utime(tmp_path / key[:2] / key, (1_000_000 + age, 1_000_000 + age))
    assert cache.get(keys[0]) is not None  # used now: the newest
    one = (tmp_path / keys[0][:2] / keys[0]).stat().st_size
    removed = cache.trim(limit=2 * one)
    assert removed == 2 * one
    assert [cache.get(k) is not None for k in keys] == [True, False, False, True]


def test_a_cache_that_cannot_be_written_only_misses(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    cache = StepCache(tmp_path / "file")
    cache.put(memo_key("k"), b"data")  # no error
    assert cache.get(memo_key("k")) is None
    assert cache.trim(0) == 0


def test_switched_off_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "off")
    assert isinstance(step_cache(tmp_path), NoMemo)
    monkeypatch.delenv(ENV_VAR)
    assert step_cache(tmp_path) == StepCache(tmp_path / "steps")
    none = NoMemo()
    none.put("k", b"x")
    assert none.get("k") is None
    assert none.trim() == 0


@pytest.mark.parametrize("value", ["disabled", "/tmp/steps", "2"])
def test_a_value_neither_on_nor_off_is_refused_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    from layerkit.errors import SpecError

    monkeypatch.setenv(ENV_VAR, value)
    with pytest.raises(SpecError, match=r"LAYERKIT_STEP_CACHE=.* is neither on nor off.*off"):
        step_cache(tmp_path)
    for on in ("1", "on", "TRUE", " yes "):
        monkeypatch.setenv(ENV_VAR, on)
        assert step_cache(tmp_path) == StepCache(tmp_path / "steps")
