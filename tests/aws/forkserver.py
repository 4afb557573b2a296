"""A fork server for the deploy tests' child processes: layerkit, moto and boto3 imported once.

The fault matrix runs a deploy in another process and kills it (SIGKILL, SIGINT) at each step.
Started with ``python -c``, every such child spends seconds importing layerkit, moto, boto3 and
the test module (whose collection-time trace runs a whole deploy) before its deploy starts.
This server imports them once; each request forks a child that runs the given ``python -c``
code with ``sys.argv`` set, its stdout and stderr in files, and answers with the child's exit
code as :func:`subprocess.run` gives it (``-9`` for SIGKILL). The child is a real process: its
own pid, its own OS locks, killable without touching the test process.

Protocol (one JSON line each way, over the server's stdin and stdout): the request
``{"code", "argv", "cwd", "stdout", "stderr", "env"}``, the answer ``{"returncode"}``.
Run as ``python -m tests.aws.forkserver <module>...``: the modules to import before serving
(one that fails to import is left to the child, which then reports the error itself).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

#: What the deploy tests' children import; the server imports these before serving.
PRELOAD = (
    "boto3",
    "botocore.session",
    "moto.server",
    "layerkit.deploy.deployer",
    "layerkit.deploy.executor",
    "layerkit.deploy.localstage",
    "layerkit.project.stages",
    "tests.aws.conftest",
    "tests.aws.test_faults",
)


def _print_exception() -> None:  # pragma: no cover - runs in the child
    """The traceback ``python -c`` prints: without this module's frame."""
    kind, value, tb = sys.exc_info()
    assert kind is not None
    assert value is not None
    assert tb is not None
    sys.excepthook(kind, value.with_traceback(tb.tb_next), tb.tb_next)


def _run_child(request: Mapping[str, Any]) -> None:  # pragma: no cover - runs in the child
    """In the forked child: run the request's code as ``python -c`` would, then exit."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        sys.stdin = open(os.devnull)  # noqa: SIM115 - the child's whole life
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["-c", *request["argv"]]
        try:
            exec(compile(request["code"], "<string>", "exec"), {"__name__": "__main__"})
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except KeyboardInterrupt:  # as python does: the traceback, then die of SIGINT (-2)
            _print_exception()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:
            _print_exception()
            code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _warm() -> None:
    """Parse the lambda, s3 and iam models once in the local stage's loader: children inherit it."""
    from layerkit.deploy.localstage import local_session

    session = local_session("us-east-1")
    for service in ("lambda", "s3", "iam"):
        session.client(service, endpoint_url="http://127.0.0.1:9")


def serve(preload: Sequence[str], requests: IO[str], answers: IO[str]) -> None:
    """Import ``preload``, then fork one child per request line and answer with its exit code."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the test process's to handle
    for module in preload:
        # one that fails is imported again by the child, which then reports the error itself
        with contextlib.suppress(Exception):
            importlib.import_module(module)
    with contextlib.suppress(Exception):
        _warm()
    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            _run_child(request)
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        answers.flush()


class ForkServer:
    """The test side: one server process, requests one at a time (thread-safe)."""

    def __init__(self, root: Path, scratch: Path, preload: Sequence[str] = PRELOAD) -> None:
        self._scratch = scratch
        self._count = 0
        self._lock = threading.Lock()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.aws.forkserver", *preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,  # python -m puts it first on sys.path, as the children's code does
        )
        assert self._process.stdout is not None
        ready = self._process.stdout.readline()
        if not ready:
            raise RuntimeError("the fork server exited before it was ready")

    def run(
        self, argv: Sequence[str], *, cwd: Path | str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Like ``subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
        text=True)`` for ``argv = [sys.executable, "-c", code, *args]``, in a forked child."""
        _executable, flag, code, *args = argv
        if flag != "-c":
            raise ValueError(f"the fork server runs `python -c` children only, not {argv!r}")
        with self._lock:
            self._count += 1
            out = self._scratch / f"child-{self._count}.out"
            err = self._scratch / f"child-{self._count}.err"
            request = {
                "code": code,
                "argv": list(args),
                "cwd": str(cwd or os.getcwd()),
                "stdout": str(out),
                "stderr": str(err),
                "env": dict(os.environ),
            }
            assert self._process.stdin is not None
            assert self._process.stdout is not None
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            answer = self._process.stdout.readline()
            if not answer:
                raise RuntimeError("the fork server died")
            returncode = json.loads(answer)["returncode"]
        stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
        out.unlink()
        err.unlink()
        return subprocess.CompletedProcess(argv, returncode, stdout, stderr)

    def close(self) -> None:
        """Stop the server (it exits when its stdin closes)."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        shutil.rmtree(self._scratch, ignore_errors=True)


if __name__ == "__main__":
    # the answers keep the real stdout; anything else printed goes to stderr
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    serve(sys.argv[1:], sys.stdin, answers)
