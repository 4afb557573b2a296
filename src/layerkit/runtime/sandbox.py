"""A docker-free Lambda look-alike: real zips unzipped in order, the target interpreter, fresh.

:func:`prepare` lays a sandbox out on disk like a Lambda execution environment: each layer zip
unzipped into ``opt/`` in the order the function lists them (a later layer's file overwrites an
earlier one's, as on Lambda), the function package into ``task/`` (``/var/task``). :func:`invoke`
then starts the TARGET runtime's interpreter fresh, isolated from the host (``-I -S``: no
``PYTHON*`` variables, no user or interpreter site-packages, no ``.pth`` files), puts Lambda's
search path in place (``task/``, ``opt/python/lib/pythonX.Y/site-packages``, ``opt/python``, then
the interpreter's standard library), imports the handler (timed: init), calls it with the event and
a context object (timed: duration) and reads the result from a side-channel file, so the handler's
prints cannot corrupt it. :func:`run_code` runs a script with the same setup; import checks, smoke
tests and cold-start benchmarks all go through it.

What is deliberately not emulated: Lambda's ``/var/runtime`` (the runtime's own boto3) is left off
the path, so a function that forgets the layer carrying its SDK fails here instead of silently
using a copy that AWS changes without notice; ``/var/task`` and ``/opt`` are not made read-only
(``-B`` and ``PYTHONDONTWRITEBYTECODE=1`` keep Python from writing bytecode there, as on Lambda);
and the memory limit is checked after the fact against the child's peak RSS instead of by a
cgroup (a function above its ``MemorySize`` fails with ``Runtime.OutOfMemory``, like on Lambda).
"""

from __future__ import annotations

import json
import shutil
import signal
import stat
import subprocess
import tempfile
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from layerkit.errors import SandboxError
from layerkit.project.spec import Project
from layerkit.runtime.target import Target, find_interpreter

BOOTSTRAP = Path(__file__).with_name("_bootstrap.py")

#: The environment every sandboxed process gets (plus the per-sandbox paths and names).
DEFAULT_REGION = "us-east-1"
FAKE_CREDENTIALS: Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "layerkit-sandbox",
}
#: Extra seconds the parent waits beyond a function's timeout (init runs before the timer starts).
INIT_ALLOWANCE_S = 30.0
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

    def report_line(self) -> str:
        """Lambda's REPORT line: ``REPORT Init Duration: 812.40 ms Duration: 35.10 ms ...``."""
        return (
            f"REPORT Init Duration: {self.init_ms:.2f} ms Duration: {self.duration_ms:.2f} ms "
            f"Max Memory Used: {self.max_memory_mb} MB"
        )


@dataclass(frozen=True)
class Sandbox:
    """A prepared execution environment on disk."""

    opt: Path  # layers unzipped here in order (later overwrites earlier)
    task: Path  # the function package
    interpreter: Path  # absolute path of the target runtime's interpreter
    target: Target

    @property
    def root(self) -> Path:
        """The folder holding ``opt/``, ``task/``, ``runtime/``, ``tmp/`` and ``home/``."""
        return self.opt.parent

    @property
    def runtime_dir(self) -> Path:
        """``LAMBDA_RUNTIME_DIR``: holds the bootstrap script and per-run files."""
        return self.root / "runtime"

    @property
    def search_path(self) -> tuple[Path, ...]:
        """Lambda's ``sys.path`` entries in front of the standard library, in order."""
        return (
            self.task,
            self.opt
            / "python"
            / "lib"
            / f"python{self.target.python_version_text}"
            / "site-packages",
            self.opt / "python",
        )


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
) -> Sandbox:
    """Lay out a sandbox in ``workdir`` (which must be empty or missing) and return it.

    ``layer_zips`` are unzipped into ``opt/`` in order, a later layer's files overwriting an
    earlier one's; ``function`` (a zip, a folder that is copied, or None for layer-only checks)
    goes into ``task/``. ``interpreter`` is the target runtime's interpreter (see
    :func:`layerkit.runtime.target.find_interpreter`). ``skip_bytecode`` leaves every ``.pyc`` out.
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
    sandbox = Sandbox(workdir / "opt", workdir / "task", Path(interpreter), target)
    for folder in (
        sandbox.opt,
        sandbox.task,
        sandbox.runtime_dir,
        workdir / "tmp",
        workdir / "home",
    ):
        folder.mkdir(parents=True, exist_ok=True)
    for layer_zip in layer_zips:
        extract_zip(Path(layer_zip), sandbox.opt, skip_bytecode=skip_bytecode)
    if function is not None:
        _copy_function(Path(function), sandbox.task, skip_bytecode)
    shutil.copyfile(BOOTSTRAP, sandbox.runtime_dir / "bootstrap.py")
    return sandbox


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
    root = sandbox.root
    region = (extra or {}).get("AWS_REGION", DEFAULT_REGION)
    env = {
        "PATH": f"{sandbox.opt / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "LD_LIBRARY_PATH": f"{sandbox.task}:{sandbox.task / 'lib'}:{sandbox.opt / 'lib'}",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": str(root / "home"),
        "TMPDIR": str(root / "tmp"),
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


def invoke(
    sandbox: Sandbox,
    handler: str,
    event: Any,
    *,
    function_name: str = "local",
    memory_mb: int = 128,
    timeout_s: float = 60,
    env: Mapping[str, str] | None = None,
) -> InvokeResult:
    """Start a fresh process, import ``handler`` (``module.function``) and call it with ``event``.

    A handler exception, an import error, a timeout, a crash of the process or a peak RSS above
    ``memory_mb`` come back as ``ok=False`` with Lambda's error shape in ``response``; only a
    sandbox that cannot run at all raises :class:`~layerkit.errors.SandboxError`.
    """
    try:
        event_text = json.dumps(event)
    except (TypeError, ValueError) as exc:
        raise SandboxError(
            f"the test event is not JSON-serialisable ({exc}); fix the event."
        ) from None
    run_dir = _run_dir(sandbox)
    event_path = run_dir / "event.json"
    event_path.write_text(event_text, encoding="utf-8")
    result_path = run_dir / "result.json"
    config = _write_config(
        run_dir, sandbox, handler=handler, event_path=str(event_path), timeout_s=timeout_s
    )
    environment = sandbox_environment(
        sandbox, function_name=function_name, memory_mb=memory_mb, handler=handler, extra=env
    )
    try:
        proc = subprocess.run(
            _command(sandbox, "invoke", str(config), str(result_path)),
            env=environment,
            cwd=sandbox.task,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout_s + INIT_ALLOWANCE_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        logs = (
            exc.output.decode("utf-8", "replace") if isinstance(exc.output, bytes) else exc.output
        )
        return InvokeResult(
            ok=False,
            response=_error(
                "Sandbox.Timedout",
                f"Task timed out after {timeout_s:.2f} seconds (the process did not answer the "
                f"timer and was killed after {timeout_s + INIT_ALLOWANCE_S:.0f} s)",
            ),
            init_ms=0.0,
            duration_ms=(timeout_s + INIT_ALLOWANCE_S) * 1000,
            max_memory_mb=0,
            logs=logs or "",
        )
    except OSError as exc:
        raise SandboxError(
            f"could not start {sandbox.interpreter} ({exc}); check that the "
            f"{sandbox.target.runtime} interpreter is installed."
        ) from None
    if not result_path.is_file():
        return InvokeResult(
            ok=False,
            response=_error(
                "Runtime.ExitError",
                f"Runtime exited with error: {_exit_reason(proc.returncode)} (no result was "
                "written; see the logs)",
            ),
            init_ms=0.0,
            duration_ms=0.0,
            max_memory_mb=0,
            logs=proc.stdout,
        )
    data = json.loads(result_path.read_text(encoding="utf-8"))
    ok = bool(data["ok"])
    response = data["response"]
    max_memory = int(data.get("max_memory_mb", 0))
    if max_memory > memory_mb:
        ok = False
        response = _error(
            "Runtime.OutOfMemory",
            f"Runtime exited with error: the process used {max_memory} MB, more than the "
            f"function's {memory_mb} MB (MemorySize); Lambda would kill it.",
        )
    return InvokeResult(
        ok=ok,
        response=response,
        init_ms=float(data["init_ms"]),
        duration_ms=float(data["duration_ms"]),
        max_memory_mb=max_memory,
        logs=proc.stdout,
    )


def run_code(
    sandbox: Sandbox,
    code: str | Path,
    *,
    timeout_s: float = 300,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    function_name: str = "local",
    memory_mb: int = 128,
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
        )
    except subprocess.TimeoutExpired:
        raise SandboxError(
            f"{script.name} ran for more than {timeout_s:.0f} s in the {sandbox.target.runtime} "
            "sandbox and was killed; look for a hang (a network call, a lock) or raise the timeout."
        ) from None
    except OSError as exc:
        raise SandboxError(
            f"could not start {sandbox.interpreter} ({exc}); check that the "
            f"{sandbox.target.runtime} interpreter is installed."
        ) from None


def invoke_function(
    project: Project,
    function: str,
    event: Any,
    out_dir: Path,
    *,
    interpreter: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> InvokeResult:
    """Invoke a built function as Lambda would: its layers in the template's order, its zip.

    ``out_dir`` is the build output holding ``layers/<name>.zip`` and ``functions/<name>.zip``
    (``build.require_fresh(project).out_dir``). Memory size, timeout and handler come from
    template.yaml; the sandbox lives in a temporary folder removed afterwards.
    """
    fn = project.function(function)
    zips = [Path(out_dir) / "layers" / f"{name}.zip" for name in fn.layers]
    package = Path(out_dir) / "functions" / f"{fn.name}.zip"
    for path in (*zips, package):
        if not path.is_file():
            raise SandboxError(
                f"{path} does not exist: function {fn.name} needs it; build first "
                "(`inv build.all`)."
            )
    interpreter = interpreter or find_interpreter(fn.target, cwd=project.root)
    with tempfile.TemporaryDirectory(prefix=f"layerkit-invoke-{fn.name}-") as tmp:
        sandbox = prepare(Path(tmp) / "sandbox", zips, package, interpreter, fn.target)
        return invoke(
            sandbox,
            fn.handler,
            event,
            function_name=fn.name,
            memory_mb=fn.memory_size,
            timeout_s=fn.timeout,
            env=env,
        )
