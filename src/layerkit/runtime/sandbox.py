"""A docker-free Lambda look-alike: real zips unzipped in order, the target interpreter, fresh.

:func:`prepare` lays a sandbox out on disk like a Lambda execution environment: each layer zip
unzipped into ``opt/`` in the order the function lists them (a later layer's file overwrites an
earlier one's, as on Lambda), the function package into ``task/`` (``/var/task``). :func:`invoke`
then starts the TARGET runtime's interpreter fresh, isolated from the host (``-I -S``: no
``PYTHON*`` variables, no user or interpreter site-packages, no ``.pth`` files), puts Lambda's
search path in place (``task/``, ``opt/python/lib/pythonX.Y/site-packages``, ``opt/python``, the
runtime's SDK, then the interpreter's standard library), imports the handler (timed: init),
calls it with the event and a context object (timed: duration) and reads the result from a
side-channel file, so the handler's prints cannot corrupt it. :func:`run_code` runs a script
with the same setup; import checks, smoke tests and cold-start benchmarks all go through it.

With a ``cache`` folder (:mod:`layerkit.runtime.layercache`; :func:`invoke_zips` and the local
stage always pass one) ``opt/`` and ``task/`` are the cached trees of the zips, so nothing is
unzipped twice; without one they are fresh copies. Either way they are read-only, as ``/opt`` and
``/var/task`` are on Lambda, and so is ``HOME``: only ``tmp/`` (``TMPDIR``) can be written, up to
the function's ephemeral storage (512 MB by default). :mod:`layerkit.runtime.isolation` enforces
that in a private mount namespace where the host allows one (read-only bind mounts, even for
root; the host's ``/opt`` covered by the sandbox's read-only ``opt/``; ``tmp/`` a size-limited
tmpfs), else with permission bits and a watched ``tmp/``.

The runtime's own SDK (Lambda's ``/var/runtime``: boto3, botocore and their dependencies, the
versions :mod:`layerkit.runtime.sdk` records per runtime) goes on the search path after the
layers when ``prepare`` is given ``runtime_sdk``: a function that imports boto3 without a layer
works as on Lambda, and a layer's own boto3 wins.

Lambda's limits are enforced by the parent while it waits: init (importing the handler) over
10 s, the function's ``Timeout`` ("Task timed out after N.NN seconds") and its ``MemorySize``
(the child's RSS is watched; above it the process is killed and the invoke fails with
``Runtime.OutOfMemory``). Payloads: an event over 6 MB is refused before anything runs
(:class:`PayloadTooLargeError`, Lambda's ``RequestEntityTooLargeException``), a response over
6 MB is ``Function.ResponseSizeTooLarge``. :meth:`InvokeResult.report_line` is Lambda's REPORT
line (Duration, Billed Duration, Memory Size, Max Memory Used, Init Duration).

What is not emulated: the limits are watched by polling (every few milliseconds) rather than by
a cgroup, so a burst of allocation can overshoot the limit briefly before the process is killed;
the runtime SDK's versions are those AWS documented when the table was read, and AWS moves them
without notice.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from layerkit.errors import SandboxError
from layerkit.runtime import isolation, layercache
from layerkit.runtime.target import Target, find_interpreter

BOOTSTRAP = Path(__file__).with_name("_bootstrap.py")

#: The environment every sandboxed process gets (plus the per-sandbox paths and names).
DEFAULT_REGION = "us-east-1"
FAKE_CREDENTIALS: Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "layerkit-sandbox",
}
#: Lambda's limit on the init phase (importing the handler's module) of an on-demand function.
INIT_LIMIT_S = 10.0
#: Extra seconds the parent waits beyond a function's timeout for the child's own timer to fire.
TIMEOUT_GRACE_S = 1.0
_POLL_S = 0.005
_TMP_POLL_S = 0.1
#: Lambda's default ephemeral storage (/tmp) in MB; a function's EphemeralStorage raises it.
DEFAULT_EPHEMERAL_MB = 512
#: Lambda's limit on a synchronous invoke's request payload ("6 MB"): 6,291,456 bytes.
REQUEST_LIMIT_BYTES = 6 * 1024 * 1024
#: Lambda's limit on a synchronous invoke's response, as its error message states it.
RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024 + 100
#: Logs kept of one invocation: the last 4 MB (a handler printing 70 MB gets the tail).
LOG_LIMIT_BYTES = 4 * 1024 * 1024
_INTERPRETER_FLAGS = ("-I", "-S", "-B", "-u", "-X", "utf8")


@dataclass(frozen=True)
class InvokeResult:
    """What one invocation returned, with the numbers Lambda's REPORT line shows."""

    ok: bool
    response: Any  # the handler's return value, or {"errorMessage", "errorType", "stackTrace"}
    init_ms: float  # importing the handler's module
    duration_ms: float  # calling the handler
    max_memory_mb: int  # peak RSS of the process
    logs: str  # what the handler printed or logged (stdout and stderr, interleaved)
    memory_size_mb: int = 128  # the function's MemorySize
    request_id: str = ""

    @property
    def billed_ms(self) -> int:
        """Lambda bills the duration rounded up to the next millisecond."""
        return max(1, math.ceil(self.duration_ms))

    def report_line(self) -> str:
        """Lambda's REPORT line, tab-separated: ``REPORT RequestId: … Duration: 35.10 ms …``."""
        fields = [
            f"REPORT RequestId: {self.request_id or '-'}",
            f"Duration: {self.duration_ms:.2f} ms",
            f"Billed Duration: {self.billed_ms} ms",
            f"Memory Size: {self.memory_size_mb} MB",
            f"Max Memory Used: {self.max_memory_mb} MB",
            f"Init Duration: {self.init_ms:.2f} ms",
        ]
        return "\t".join(fields)


@dataclass(frozen=True)
class Sandbox:
    """A prepared execution environment on disk."""

    opt: Path  # layers unzipped here in order (later overwrites earlier)
    task: Path  # the function package
    interpreter: Path  # absolute path of the target runtime's interpreter
    target: Target
    workdir: Path | None = None  # None: the parent of opt/
    runtime_sdk: Path | None = None  # the runtime's own boto3 (Lambda's /var/runtime), or None

    @property
    def root(self) -> Path:
        """The folder holding ``runtime/``, ``tmp/`` and ``home/`` (and unless cached, the rest)."""
        return self.workdir or self.opt.parent

    @property
    def runtime_dir(self) -> Path:
        """``LAMBDA_RUNTIME_DIR``: holds the bootstrap script and per-run files."""
        return self.root / "runtime"

    @property
    def tmp(self) -> Path:
        """The function's ``/tmp`` (``TMPDIR``): the only writable folder of the sandbox."""
        return self.root / "tmp"

    @property
    def home(self) -> Path:
        """``HOME``: exists, and cannot be written (as on Lambda)."""
        return self.root / "home"

    @property
    def search_path(self) -> tuple[Path, ...]:
        """Lambda's ``sys.path`` entries in front of the standard library, in order.

        The runtime's own SDK (``/var/runtime`` on Lambda) comes after every layer, so a layer
        that carries boto3 wins over it, as on Lambda.
        """
        site = self.opt / "python" / "lib" / f"python{self.target.python_version_text}"
        entries = [self.task, site / "site-packages", self.opt / "python"]
        if self.runtime_sdk is not None:
            entries.append(self.runtime_sdk)
        return tuple(entries)


def _safe_member(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name or (path.parts[:1] == ("",)):
        raise SandboxError(
            f"{archive}: entry {name!r} is an absolute path or climbs out with `..`; Lambda "
            "would not extract it where you expect. Rebuild the zip with layerkit "
            "(`inv build.all`)."
        )
    return path


def extract_zip(archive: Path, dest: Path, *, skip_bytecode: bool = False) -> tuple[str, ...]:
    """Unzip ``archive`` into ``dest`` over whatever is there; return the file names written.

    Entries with absolute or ``..`` paths and symbolic links are refused. With ``skip_bytecode``
    ``__pycache__`` folders and ``.pyc`` files are left out (cold-start comparisons).
    """
    written: list[str] = []
    try:
        zf = zipfile.ZipFile(archive)
    except (OSError, zipfile.BadZipFile) as exc:
        raise SandboxError(f"{archive}: not a readable zip file ({exc}); rebuild it.") from None
    with zf:
        for info in zf.infolist():
            rel = _safe_member(info.filename, archive)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise SandboxError(
                    f"{archive}: entry {info.filename!r} is a symbolic link; layerkit archives "
                    "hold regular files only. Rebuild the zip with layerkit."
                )
            if skip_bytecode and ("__pycache__" in rel.parts or rel.suffix == ".pyc"):
                continue
            target = dest.joinpath(*rel.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir():
                raise SandboxError(
                    f"{archive}: file {info.filename!r} would replace a folder that an earlier "
                    "layer put at the same path; Lambda would fail to extract it."
                )
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            if mode & 0o777:
                target.chmod(mode & 0o777 | 0o600)
            written.append(str(rel))
    return tuple(written)


def _copy_function(function: Path, task: Path, skip_bytecode: bool) -> None:
    if function.is_dir():
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(function, task, dirs_exist_ok=True, ignore=ignore)
    elif function.is_file():
        extract_zip(function, task, skip_bytecode=skip_bytecode)
    else:
        raise SandboxError(
            f"function package {function} does not exist; build it (`inv build.functions`) or "
            "pass the function's folder."
        )


def prepare(
    workdir: Path,
    layer_zips: Sequence[Path],
    function: Path | None,
    interpreter: Path,
    target: Target,
    *,
    skip_bytecode: bool = False,
    cache: Path | None = None,
    runtime_sdk: Path | None = None,
) -> Sandbox:
    """Lay out a sandbox in ``workdir`` (which must be empty or missing) and return it.

    ``layer_zips`` are unzipped into ``opt/`` in order, a later layer's files overwriting an
    earlier one's; ``function`` (a zip, a folder that is copied, or None for layer-only checks)
    goes into ``task/``. ``interpreter`` is the target runtime's interpreter (see
    :func:`layerkit.runtime.target.find_interpreter`). ``skip_bytecode`` leaves every ``.pyc`` out.
    With ``cache`` (not combined with ``skip_bytecode``), ``opt/`` and a zipped ``task/`` are the
    shared read-only trees of :mod:`layerkit.runtime.layercache` instead of fresh copies;
    without it they are fresh copies, made read-only all the same (``/opt`` and ``/var/task`` are
    read-only on Lambda). ``runtime_sdk`` (see :mod:`layerkit.runtime.sdk`) goes on the search
    path after ``opt/python``, where Lambda's ``/var/runtime`` sits.
    """
    workdir = Path(workdir).absolute()
    if workdir.exists() and any(workdir.iterdir()):
        raise SandboxError(
            f"sandbox folder {workdir} is not empty; pass a fresh temporary folder so no file "
            "from an earlier run can hide a missing one."
        )
    if not Path(interpreter).is_absolute() or not Path(interpreter).is_file():
        raise SandboxError(
            f"interpreter {interpreter} is not an absolute path to an existing file; resolve "
            f"it with layerkit.runtime.target.find_interpreter(Target({target.runtime!r}))."
        )
    if cache is not None and not skip_bytecode:
        sandbox = _cached_sandbox(workdir, layer_zips, function, Path(interpreter), target, cache)
    else:
        sandbox = Sandbox(workdir / "opt", workdir / "task", Path(interpreter), target)
        for folder in (sandbox.opt, sandbox.task):
            folder.mkdir(parents=True, exist_ok=True)
        for layer_zip in layer_zips:
            extract_zip(Path(layer_zip), sandbox.opt, skip_bytecode=skip_bytecode)
        if function is not None:
            _copy_function(Path(function), sandbox.task, skip_bytecode)
        for folder in (sandbox.opt, sandbox.task):
            layercache.make_read_only(folder)
    if runtime_sdk is not None:
        if not Path(runtime_sdk).is_dir():
            raise SandboxError(
                f"the runtime SDK folder {runtime_sdk} does not exist; make it with "
                "layerkit.build.sdk.runtime_sdk_dir(target, cache)."
            )
        sandbox = dataclasses.replace(sandbox, runtime_sdk=Path(runtime_sdk).absolute())
    for folder in (sandbox.runtime_dir, sandbox.tmp, sandbox.home):
        folder.mkdir(parents=True, exist_ok=True)
    sandbox.home.chmod(0o555)  # HOME exists and cannot be written, as on Lambda
    shutil.copyfile(BOOTSTRAP, sandbox.runtime_dir / "bootstrap.py")
    return sandbox


def _cached_sandbox(
    workdir: Path,
    layer_zips: Sequence[Path],
    function: Path | None,
    interpreter: Path,
    target: Target,
    cache: Path,
) -> Sandbox:
    """A sandbox whose ``opt/`` (and zipped ``task/``) are read-only trees from the cache."""
    opt = layercache.merged([Path(z) for z in layer_zips], cache)
    if function is not None and Path(function).is_file():
        task = layercache.extracted(Path(function), cache)
    else:
        task = workdir / "task"
        task.mkdir(parents=True, exist_ok=True)
        if function is not None:
            _copy_function(Path(function), task, False)
    return Sandbox(opt, task, interpreter, target, workdir=workdir)


def sandbox_environment(
    sandbox: Sandbox,
    *,
    function_name: str = "local",
    memory_mb: int = 128,
    handler: str = "",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of the sandboxed process: Lambda's variables and nothing from the host.

    Fake credentials are always set (the execution role's are on Lambda; the sandbox has no
    network, and the host's real credentials must never reach code under test); ``extra``
    overrides anything, credentials and region included.
    """
    region = (extra or {}).get("AWS_REGION", DEFAULT_REGION)
    env = {
        "PATH": f"{sandbox.opt / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "LD_LIBRARY_PATH": f"{sandbox.task}:{sandbox.task / 'lib'}:{sandbox.opt / 'lib'}",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": str(sandbox.home),
        "TMPDIR": str(sandbox.tmp),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(sandbox.task),
        "LAMBDA_RUNTIME_DIR": str(sandbox.runtime_dir),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{sandbox.target.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{uuid.uuid4().hex}",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        **FAKE_CREDENTIALS,
    }
    if handler:
        env["_HANDLER"] = handler
    env.update(extra or {})
    return env


def _command(sandbox: Sandbox, *args: str) -> list[str]:
    return [
        str(sandbox.interpreter),
        *_INTERPRETER_FLAGS,
        str(sandbox.runtime_dir / "bootstrap.py"),
        *args,
    ]


def _run_dir(sandbox: Sandbox) -> Path:
    run_dir = sandbox.runtime_dir / "runs" / uuid.uuid4().hex
    run_dir.mkdir(parents=True)
    return run_dir


def _write_config(run_dir: Path, sandbox: Sandbox, **fields: Any) -> Path:
    config = {"path": [str(p) for p in sandbox.search_path], **fields}
    path = run_dir / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal: {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def _error(error_type: str, message: str) -> dict[str, Any]:
    return {"errorMessage": message, "errorType": error_type, "stackTrace": []}


@dataclass(frozen=True)
class _Limits:
    """What the parent enforces while the child runs."""

    init_s: float  # importing the handler
    timeout_s: float  # calling it (the function's Timeout)
    memory_mb: int  # the function's MemorySize
    tmp: Path | None = None  # a /tmp the parent must watch (no size-limited mount), or None
    tmp_mb: int = DEFAULT_EPHEMERAL_MB  # the function's EphemeralStorage


@dataclass(frozen=True)
class _Exit:
    """How a watched child ended: its status, or the limit it broke (then it was killed)."""

    returncode: int
    broke: str | None  # "init", "timeout", "memory", "storage" or None
    peak_rss_mb: int
    elapsed_s: float


def _rss_mb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return (int(line.split()[1]) + 1023) // 1024
    except (OSError, ValueError):
        pass
    return 0


def _watch(proc: subprocess.Popen[bytes], init_marker: Path, limits: _Limits) -> _Exit:
    """Wait for ``proc``, killing it when it breaks Lambda's init, timeout or memory limit."""
    started = time.monotonic()
    init_done: float | None = None
    peak = 0
    broke: str | None = None
    next_tmp_check = started
    while proc.poll() is None:
        now = time.monotonic()
        peak = max(peak, _rss_mb(proc.pid))
        if init_done is None and init_marker.exists():
            init_done = now
        over_tmp = False
        if limits.tmp is not None and now >= next_tmp_check:
            next_tmp_check = now + _TMP_POLL_S
            over_tmp = isolation.tree_mb(limits.tmp) > limits.tmp_mb
        if peak > limits.memory_mb:
            broke = "memory"
        elif over_tmp:
            broke = "storage"
        elif init_done is None and now - started > limits.init_s:
            broke = "init"
        elif init_done is not None and now - init_done > limits.timeout_s + TIMEOUT_GRACE_S:
            broke = "timeout"
        if broke is not None:
            proc.kill()
            proc.wait()
            break
        time.sleep(_POLL_S)
    # a burst of writes between two looks (only walked when no limit was broken already)
    if broke is None and limits.tmp is not None and isolation.tree_mb(limits.tmp) > limits.tmp_mb:
        broke = "storage"
    return _Exit(proc.returncode, broke, peak, time.monotonic() - started)


class PayloadTooLargeError(SandboxError):
    """The event is larger than Lambda accepts for a synchronous invoke (HTTP 413)."""

    error_type = "RequestEntityTooLargeException"


def request_payload(event: Any) -> bytes:
    """The event as Lambda receives it (JSON, UTF-8), refused above Lambda's 6 MB request limit.

    Raises :class:`PayloadTooLargeError` (Lambda's ``RequestEntityTooLargeException``) before
    anything runs, so an oversized event fails at once instead of after a long run.
    """
    try:
        data = json.dumps(event).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise SandboxError(
            f"the test event is not JSON-serialisable ({exc}); fix the event."
        ) from None
    if len(data) > REQUEST_LIMIT_BYTES:
        raise PayloadTooLargeError(
            f"RequestEntityTooLargeException: the event is {len(data):,} bytes; Lambda refuses "
            f"a synchronous invoke whose request is larger than {REQUEST_LIMIT_BYTES:,} bytes "
            "(6 MB). Send a smaller event, or put the data in S3 and pass its key."
        )
    return data


def _prepare_invocation(
    sandbox: Sandbox, handler: str, event: Any, timeout_s: float
) -> tuple[Path, Path, Path]:
    """Write the event and config of one invocation: (config, result file, init marker)."""
    event_bytes = request_payload(event)
    run_dir = _run_dir(sandbox)
    event_path = run_dir / "event.json"
    event_path.write_bytes(event_bytes)
    init_marker = run_dir / "init.done"
    config = _write_config(
        run_dir,
        sandbox,
        handler=handler,
        event_path=str(event_path),
        timeout_s=timeout_s,
        init_marker=str(init_marker),
        response_limit=RESPONSE_LIMIT_BYTES,
    )
    return config, run_dir / "result.json", init_marker


def _layout(sandbox: Sandbox, tmp_mb: int) -> isolation.Layout:
    """The folders :mod:`layerkit.runtime.isolation` protects for one child of ``sandbox``."""
    read_only = [sandbox.opt, sandbox.task, sandbox.home]
    if sandbox.runtime_sdk is not None:
        read_only.append(sandbox.runtime_sdk)
    visible = (sandbox.root, Path(sandbox.interpreter), Path(sandbox.interpreter).resolve())
    return isolation.Layout(
        tuple(read_only), sandbox.tmp, tmp_mb, sandbox.opt, sandbox.task, visible
    )


def _start(
    sandbox: Sandbox, command: list[str], env: Mapping[str, str], log: Path, preexec: Any
) -> Any:
    try:
        with log.open("wb") as out:
            return subprocess.Popen(
                command,
                env=dict(env),
                cwd=sandbox.task,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=preexec,
            )
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxError(
            f"could not start {sandbox.interpreter} ({exc}); check that the "
            f"{sandbox.target.runtime} interpreter is installed."
        ) from None


def _limit_error(ended: _Exit, limits: _Limits, request_id: str) -> dict[str, Any]:
    """Lambda's error for a process killed at a limit."""
    if ended.broke == "memory":
        return _error(
            "Runtime.OutOfMemory",
            f"RequestId: {request_id} Error: Runtime exited with error: signal: killed "
            f"(the process used more than the function's {limits.memory_mb} MB, its MemorySize)",
        )
    if ended.broke == "storage":
        return _error(
            "Runtime.ExitError",
            f"RequestId: {request_id} Error: the function wrote more than its "
            f"{limits.tmp_mb} MB of /tmp (its EphemeralStorage); on Lambda the write fails with "
            "OSError: [Errno 28] No space left on device",
        )
    if ended.broke == "init":
        return _error(
            "Sandbox.Timedout",
            f"INIT phase timed out after {limits.init_s:.2f} seconds: importing the handler's "
            "module took longer than Lambda allows (move slow work out of import time or into "
            "the handler)",
        )
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    return _error(
        "Sandbox.Timedout",
        f"{stamp}Z {request_id} Task timed out after {limits.timeout_s:.2f} seconds",
    )


def _outcome(
    ended: _Exit, result_path: Path, logs: str, limits: _Limits, request_id: str
) -> InvokeResult:
    """The InvokeResult of a finished child: its result file, or the limit or crash."""
    data: dict[str, Any] = {}
    if result_path.is_file():
        data = json.loads(result_path.read_text(encoding="utf-8"))
    peak = max(ended.peak_rss_mb, int(data.get("max_memory_mb", 0)))
    base = {
        "init_ms": float(data.get("init_ms", 0.0)),
        "duration_ms": float(data.get("duration_ms", 0.0)),
        "max_memory_mb": peak,
        "logs": logs,
        "memory_size_mb": limits.memory_mb,
        "request_id": str(data.get("request_id", request_id)),
    }
    if ended.broke is not None and not (ended.broke == "timeout" and data):
        if ended.broke == "init":
            base["init_ms"] = limits.init_s * 1000
        elif ended.broke == "timeout":
            base["duration_ms"] = limits.timeout_s * 1000
        return InvokeResult(ok=False, response=_limit_error(ended, limits, request_id), **base)
    if not data:
        message = (
            f"Runtime exited with error: {_exit_reason(ended.returncode)} (no result was "
            "written; see the logs)"
        )
        return InvokeResult(ok=False, response=_error("Runtime.ExitError", message), **base)
    if peak > limits.memory_mb:
        message = (
            f"Runtime exited with error: the process used {peak} MB, more than the "
            f"function's {limits.memory_mb} MB (MemorySize); Lambda would kill it."
        )
        return InvokeResult(ok=False, response=_error("Runtime.OutOfMemory", message), **base)
    return InvokeResult(ok=bool(data["ok"]), response=data["response"], **base)


def invoke(
    sandbox: Sandbox,
    handler: str,
    event: Any,
    *,
    function_name: str = "local",
    memory_mb: int = 128,
    timeout_s: float = 60,
    env: Mapping[str, str] | None = None,
    init_limit_s: float = INIT_LIMIT_S,
    version: str = "$LATEST",
    ephemeral_storage_mb: int = DEFAULT_EPHEMERAL_MB,
) -> InvokeResult:
    """Start a fresh process, import ``handler`` (``module.function``) and call it with ``event``.

    A handler exception, an import error, an init over ``init_limit_s``, a timeout, a crash of
    the process or an RSS above ``memory_mb`` come back as ``ok=False`` with Lambda's error shape
    in ``response``, and so does a response over Lambda's 6 MB (``Function.ResponseSizeTooLarge``)
    or a ``/tmp`` over ``ephemeral_storage_mb``; an event over 6 MB raises
    :class:`PayloadTooLargeError` (``RequestEntityTooLargeException``) before anything starts,
    and a sandbox that cannot run at all raises :class:`~layerkit.errors.SandboxError`.
    """
    config, result_path, init_marker = _prepare_invocation(sandbox, handler, event, timeout_s)
    request_id = str(uuid.uuid4())
    extra = {"AWS_LAMBDA_FUNCTION_VERSION": version, **(env or {})}
    environment = sandbox_environment(
        sandbox, function_name=function_name, memory_mb=memory_mb, handler=handler, extra=extra
    )
    mode, preexec = isolation.isolation(_layout(sandbox, ephemeral_storage_mb))
    watched = sandbox.tmp if mode is isolation.Isolation.PERMISSIONS else None
    limits = _Limits(init_limit_s, timeout_s, memory_mb, watched, ephemeral_storage_mb)
    log = result_path.with_name("output.log")
    command = _command(sandbox, "invoke", str(config), str(result_path), request_id)
    ended = _watch(_start(sandbox, command, environment, log, preexec), init_marker, limits)
    return _outcome(ended, result_path, _read_logs(log), limits, request_id)


def _read_logs(log: Path) -> str:
    """What the process printed: all of it, or its last :data:`LOG_LIMIT_BYTES` with a note."""
    size = log.stat().st_size
    with log.open("rb") as fh:
        if size <= LOG_LIMIT_BYTES:
            return fh.read().decode("utf-8", "replace")
        fh.seek(size - LOG_LIMIT_BYTES)
        tail = fh.read().decode("utf-8", "replace")
    return f"[layerkit: {size - LOG_LIMIT_BYTES:,} bytes of earlier output not shown]\n{tail}"


def run_code(
    sandbox: Sandbox,
    code: str | Path,
    *,
    timeout_s: float = 300,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    function_name: str = "local",
    memory_mb: int = 128,
    ephemeral_storage_mb: int = DEFAULT_EPHEMERAL_MB,
) -> subprocess.CompletedProcess[str]:
    """Run a script (a path) or Python source (a string) as ``__main__`` inside the sandbox.

    Same interpreter, isolation, search path and environment as :func:`invoke`; ``args`` become
    ``sys.argv[1:]``. Returns the completed process (stdout and stderr captured separately);
    a process that outlives ``timeout_s`` is killed and raises
    :class:`~layerkit.errors.SandboxError`.
    """
    run_dir = _run_dir(sandbox)
    if isinstance(code, Path):
        script = code.absolute()
        if not script.is_file():
            raise SandboxError(f"script {script} does not exist.")
    else:
        script = run_dir / "main.py"
        script.write_text(code, encoding="utf-8")
    config = _write_config(run_dir, sandbox)
    environment = sandbox_environment(
        sandbox, function_name=function_name, memory_mb=memory_mb, extra=env
    )
    _, preexec = isolation.isolation(_layout(sandbox, ephemeral_storage_mb))
    try:
        return subprocess.run(
            _command(sandbox, "run", str(config), str(script), *args),
            env=environment,
            cwd=sandbox.task,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout_s,
            check=False,
            preexec_fn=preexec,
        )
    except subprocess.TimeoutExpired:
        raise SandboxError(
            f"{script.name} ran for more than {timeout_s:.0f} s in the {sandbox.target.runtime} "
            "sandbox and was killed; look for a hang (a network call, a lock) or raise the timeout."
        ) from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxError(
            f"could not start {sandbox.interpreter} ({exc}); check that the "
            f"{sandbox.target.runtime} interpreter is installed."
        ) from None


def remembered_interpreter(
    target: Target,
    project_root: Path,
    cache: Path,
    find: Callable[..., Path] = find_interpreter,
) -> Path:
    """:func:`find_interpreter`, remembered in ``cache`` (resolving a pyenv shim takes ~1 s).

    A remembered path is used only while it is still an executable named for the runtime's
    Python version (``python3.9``); otherwise the interpreter is looked up again.
    """
    memo = Path(cache) / "interpreters.json"
    key = f"{target.runtime}|{Path(project_root).absolute()}"
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    known = known if isinstance(known, dict) else {}
    found = known.get(key)
    name = f"python{target.python_version_text}"
    if isinstance(found, str) and Path(found).name.startswith(name) and os.access(found, os.X_OK):
        return Path(found)
    resolved = find(target, cwd=project_root)
    known[key] = str(resolved)
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_name(f".interpreters.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(known), encoding="utf-8")
    tmp.replace(memo)
    return resolved


@dataclass(frozen=True)
class FunctionZip:
    """A function package and the settings Lambda runs it with."""

    path: Path
    handler: str
    target: Target
    memory_mb: int
    timeout_s: float
    ephemeral_storage_mb: int = DEFAULT_EPHEMERAL_MB


def invoke_zips(
    layer_zips: Sequence[Path],
    function: FunctionZip,
    event: Any,
    interpreter: Path,
    cache: Path,
    *,
    function_name: str,
    env: Mapping[str, str] | None = None,
    version: str = "$LATEST",
    runtime_sdk: Path | None = None,
) -> InvokeResult:
    """One invocation of ``function`` over ``layer_zips`` in a throw-away sandbox.

    ``opt/`` and ``task/`` come from the read-only ``cache``; the rest of the sandbox lives in a
    temporary folder removed afterwards. ``runtime_sdk``: the runtime's own boto3 folder
    (:func:`layerkit.build.sdk.runtime_sdk_dir`), behind the layers.
    """
    request_payload(event)  # an oversized event fails before anything is unzipped
    with tempfile.TemporaryDirectory(prefix=f"layerkit-invoke-{function_name}-") as tmp:
        sandbox = prepare(
            Path(tmp) / "sandbox", layer_zips, function.path, interpreter, function.target,
            cache=cache, runtime_sdk=runtime_sdk,
        )  # fmt: skip
        return invoke(
            sandbox,
            function.handler,
            event,
            function_name=function_name,
            memory_mb=function.memory_mb,
            timeout_s=function.timeout_s,
            env=env,
            version=version,
            ephemeral_storage_mb=function.ephemeral_storage_mb,
        )
