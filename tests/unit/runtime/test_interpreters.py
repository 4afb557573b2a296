"""Interpreter discovery with fakes: no interpreter is started."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from layerkit.errors import InterpreterNotFoundError
from layerkit.runtime.interpreters import (
    PROBE,
    Tools,
    find_interpreter,
    pyenv_candidates,
)
from layerkit.runtime.target import Target

PY39 = Target("python3.9")


class FakeMachine:
    """Executables that answer the probe with (real path, version); uv answering `python find`."""

    def __init__(
        self,
        pythons: Mapping[str, tuple[str, tuple[int, int]]],
        uv_finds: str | None = None,
    ) -> None:
        self.pythons = pythons
        self.uv_finds = uv_finds
        self.calls: list[tuple[list[str], Path | None]] = []

    def run(self, args: Sequence[str], cwd: Path | None) -> tuple[int, str]:
        self.calls.append((list(args), cwd))
        if args[0] == "/fake/uv":
            assert list(args[1:3]) == ["python", "find"]
            return (0, self.uv_finds + "\n") if self.uv_finds else (2, "")
        assert list(args[1:]) == ["-c", PROBE]
        if args[0] not in self.pythons:
            return 127, ""
        real, version = self.pythons[args[0]]
        return 0, f"{real}\n{version}\n"


def tools(
    machine: FakeMachine,
    on_path: Mapping[str, str] | None = None,
    pyenv_root: Path | None = None,
    uv: str | None = "/fake/uv",
) -> Tools:
    return Tools(
        which=lambda name: (on_path or {}).get(name),
        run=machine.run,
        environ={"PYENV_ROOT": str(pyenv_root)} if pyenv_root else {},
        home=lambda: Path("/nonexistent-home"),
        uv=lambda: uv,
    )


def pyenv_version(root: Path, name: str, version: str = "3.9") -> Path:
    executable = root / "versions" / name / "bin" / f"python{version}"
    executable.parent.mkdir(parents=True)
    executable.write_text("")
    return executable


def test_path_wins_and_is_resolved_to_the_real_executable(tmp_path: Path) -> None:
    machine = FakeMachine({"/shims/python3.9": ("/opt/py/3.9.18/bin/python3.9", (3, 9))})
    found = find_interpreter(
        PY39, cwd=tmp_path, tools=tools(machine, {"python3.9": "/shims/python3.9"})
    )
    assert found == Path("/opt/py/3.9.18/bin/python3.9")
    # asked from the project folder first: a pyenv shim reads .python-version there
    assert machine.calls[0][1] == tmp_path


def test_a_path_python_of_another_version_is_skipped_for_pyenv(tmp_path: Path) -> None:
    newest = pyenv_version(tmp_path, "3.9.18")
    pyenv_version(tmp_path, "3.9.2")
    pyenv_version(tmp_path, "3.10.13", "3.10")
    machine = FakeMachine(
        {
            "/usr/bin/python3.9": ("/usr/bin/python3.9", (3, 11)),  # a mislabelled link
            str(newest): (str(newest), (3, 9)),
        }
    )
    found = find_interpreter(
        PY39, tools=tools(machine, {"python3.9": "/usr/bin/python3.9"}, pyenv_root=tmp_path)
    )
    assert found == newest


def test_pyenv_installs_are_listed_newest_first_and_only_for_the_version(tmp_path: Path) -> None:
    a = pyenv_version(tmp_path, "3.9.2")
    b = pyenv_version(tmp_path, "3.9.18")
    pyenv_version(tmp_path, "3.10.13", "3.10")
    (tmp_path / "versions" / "3.9-dev").mkdir()  # no executable: not a candidate
    assert pyenv_candidates("3.9", tools(FakeMachine({}), pyenv_root=tmp_path)) == (b, a)
    assert pyenv_candidates("3.9", tools(FakeMachine({}), pyenv_root=tmp_path / "none")) == ()


def test_a_uv_managed_python_is_found_last(tmp_path: Path) -> None:
    managed = "/root/.local/share/uv/python/cpython-3.9.21-linux-x86_64-gnu/bin/python3.9"
    machine = FakeMachine({managed: (managed, (3, 9))}, uv_finds=managed)
    found = find_interpreter(PY39, tools=tools(machine, pyenv_root=tmp_path))
    assert found == Path(managed)
    assert machine.calls[0][0][:3] == ["/fake/uv", "python", "find"]


def test_none_found_says_how_to_install_one(tmp_path: Path) -> None:
    machine = FakeMachine({})
    with pytest.raises(InterpreterNotFoundError) as info:
        find_interpreter(PY39, tools=tools(machine, pyenv_root=tmp_path, uv=None))
    message = str(info.value)
    assert "python3.9" in message
    assert "`uv python install 3.9`" in message
    assert "`pyenv install 3.9`" in message
    assert "\n" not in message


def test_a_uv_that_finds_nothing_is_not_an_error_of_its_own(tmp_path: Path) -> None:
    with pytest.raises(InterpreterNotFoundError, match=r"uv python install 3\.9"):
        find_interpreter(PY39, tools=tools(FakeMachine({}), pyenv_root=tmp_path))
