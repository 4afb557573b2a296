"""The local stage's saved state: a log of state-changing requests and a store of zips.

``state.json`` names the format; ``requests.jsonl`` holds one JSON object per request that
changed the moto server's state (``method``, ``url``, ``headers`` and the body, base64) — reads
(GET, HEAD) are not kept, and an upload to ``<bucket>/artifacts/<sha256>.zip`` is kept as a
reference (``artifact``) to ``artifacts/<sha256>.zip`` in the folder, stored once. Each line is
written with one ``write`` call on an append-only file (and ``fsync``), so a killed process
leaves whole lines — except the one it was writing: a cut last line (no newline) is a torn tail,
dropped with a note (:func:`parse_journal`), and everything before it is kept; the next write
cuts it off the file first. A read-only session (``writable=False``) writes nothing at all.
:func:`replay` sends the log to a fresh server, each stored zip verified by its sha256 on the
way (a mismatch is a note naming the zip and the releases that need it). Damage before the last
line (``null``, a wrong shape, another format, a missing zip) is one
:class:`~layerkit.errors.DeployError` paragraph that says what to run.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from layerkit.deploy.localinvoke import ArtifactStore, write_fix
from layerkit.deploy.releases import Drift, drift_of, release_from_json
from layerkit.errors import DeployError
from layerkit.project.stages import Stage

FORMAT = 2
STATE_FILE = "state.json"
REQUESTS = "requests.jsonl"
ARTIFACTS = "artifacts"
#: What layerkit before format 2 kept: moto's own recording, zips base64 inside it.
OLD_RECORDING = "moto-recording.jsonl"

_ARTIFACT_PATH = re.compile(r"^/[^/]+/artifacts/(?P<sha>[0-9a-f]{64})\.zip$")
_SKIPPED_METHODS = {"GET", "HEAD", "OPTIONS"}
_READ_ACTION = re.compile(rb"(?:^|&)Action=(?:List|Get|Describe)[A-Za-z]*(?:&|$)")
_DROPPED_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}
_RELEASE_PATH = re.compile(r"^/[^/]+/releases/[^/]+/(?P<id>[^/?]+)\.json$")


def damaged(state_dir: Path, where: Path, what: str) -> DeployError:
    """The one-paragraph error for saved state that cannot be used."""
    return DeployError(
        f"the local stage's saved state {where} {what}, so the local stage cannot be restored "
        f"from it. Delete {state_dir} (`rm -r {state_dir}`, or "
        "layerkit.deploy.localstage.reset_local_state) to start the local stage afresh — its "
        "releases are lost — and deploy again with `inv deploy --stage=local`."
    )


@dataclass(frozen=True)
class Entry:
    """One logged request."""

    method: str
    url: str  # path and query
    headers: dict[str, str]
    body: bytes
    artifact: str | None = None  # sha256 of a stored zip instead of ``body``

    def to_line(self) -> bytes:
        """The log line (JSON and a newline)."""
        data: dict[str, Any] = {"method": self.method, "url": self.url, "headers": self.headers}
        if self.artifact is not None:
            data["artifact"] = self.artifact
        else:
            data["body"] = base64.b64encode(self.body).decode("ascii")
        return (json.dumps(data, separators=(",", ":")) + "\n").encode()


def _entry(data: Any) -> Entry:
    if not isinstance(data, dict):
        raise ValueError(f"a line holds {type(data).__name__}, not a request object")
    method, url, headers = data.get("method"), data.get("url"), data.get("headers")
    if not isinstance(method, str) or not isinstance(url, str) or not isinstance(headers, dict):
        raise ValueError("a request line lacks its method, url or headers")
    artifact = data.get("artifact")
    if artifact is not None:
        if not isinstance(artifact, str) or not re.fullmatch(r"[0-9a-f]{64}", artifact):
            raise ValueError("an artifact reference is not a sha256")
        return Entry(method, url, {str(k): str(v) for k, v in headers.items()}, b"", artifact)
    body = data.get("body")
    if not isinstance(body, str):
        raise ValueError("a request line has no body")
    return Entry(method, url, {str(k): str(v) for k, v in headers.items()}, base64.b64decode(body))


@dataclass(frozen=True)
class TornTail:
    """A cut last line of the log: what a process killed while writing it left."""

    line: int  # its line number
    offset: int  # where it starts: the log is whole up to here
    size: int  # its bytes


@dataclass(frozen=True)
class Journal:
    """The parsed request log: its whole lines, and a torn tail if it has one."""

    entries: tuple[Entry, ...]
    torn: TornTail | None = None


class JournalDamage(ValueError):
    """A whole line of the log that is not a request (its 1-based number and why)."""

    def __init__(self, line: int, why: str) -> None:
        super().__init__(f"line {line} ({why})")
        self.line = line
        self.why = why


def parse_journal(data: bytes) -> Journal:
    """Parse the log's bytes: every whole line must be a request; a cut last line is torn.

    A line is whole when it ends in a newline (each is written with one ``write``). The last
    piece without one was being written when its process died: it is returned as
    :class:`TornTail` and left out, whatever it holds (JSON that happens to parse included).
    Raises :class:`JournalDamage` for the first whole line that is not a request.
    """
    cut = data.rfind(b"\n") + 1  # 0: no whole line at all
    body, tail = data[:cut], data[cut:]
    entries = []
    lines = body.split(b"\n")[:-1]
    for number, line in enumerate(lines, 1):
        try:
            entries.append(_entry(json.loads(line)))
        except (ValueError, TypeError) as exc:
            raise JournalDamage(number, str(exc)) from None
    torn = TornTail(len(lines) + 1, len(body), len(tail)) if tail else None
    return Journal(tuple(entries), torn)


def release_ids_by_artifact(entries: Iterable[Entry]) -> dict[str, tuple[str, ...]]:
    """Which recorded releases need each zip (sha256 -> release ids), read from the log.

    A release record put to ``releases/<stage>/<id>.json`` names its functions' code sha256 and
    layer version ARNs; a layer version's zip is the one its ``PublishLayerVersion`` named (by
    its S3 key). Pure: the log's bodies only, no server.
    """
    published: dict[str, str] = {}  # "name:number" -> sha256
    counts: dict[str, int] = {}
    needs: dict[str, list[str]] = {}
    for entry in entries:
        path = entry.url.split("?", 1)[0]
        if entry.method == "POST" and "/layers/" in path and path.endswith("/versions"):
            name = path.split("/layers/", 1)[1].rsplit("/versions", 1)[0]
            try:
                key = str(json.loads(entry.body).get("Content", {}).get("S3Key", ""))
            except (ValueError, AttributeError):
                continue
            found = _ARTIFACT_KEY.search(key)
            counts[name] = counts.get(name, 0) + 1
            if found:
                published[f"{name}:{counts[name]}"] = found["sha"]
            continue
        release = _RELEASE_PATH.match(path)
        if entry.method != "PUT" or not release:
            continue
        try:
            data = json.loads(entry.body)
            shas = [str(f["code_sha256"]) for f in data.get("functions", ())]
            for f in data.get("functions", ()):
                for arn in f.get("layers", ()):
                    name, _, number = str(arn).rpartition(":")
                    sha = published.get(f"{name.rsplit(':', 1)[-1]}:{number}")
                    if sha:
                        shas.append(sha)
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
        for sha in dict.fromkeys(shas):
            needs.setdefault(sha, []).append(release["id"])
    return {sha: tuple(ids) for sha, ids in needs.items()}


_ARTIFACT_KEY = re.compile(r"artifacts/(?P<sha>[0-9a-f]{64})\.zip$")
_ALIAS_PATH = re.compile(r"^/[^/]+/functions/(?P<fn>[^/]+)/aliases(?:/(?P<alias>[^/]+))?$")
_FUNCTION_PATH = re.compile(r"^/[^/]+/functions/(?P<fn>[^/]+)$")


def journal_drift(entries: Iterable[Entry], stage: Stage) -> Drift | None:
    """The stage's drift as its log tells it: the aliases' last moves against the newest release.

    Pure (no server, so ``status`` can say it cheaply): an alias is where its last logged
    ``CreateAlias``/``UpdateAlias`` put it (gone after ``DeleteAlias`` or ``DeleteFunction``);
    the newest release is the last record put under ``releases/<stage>/``.
    """
    aliases: dict[str, str | None] = {}
    newest: tuple[str, bytes] | None = None
    prefix = f"/{stage.bucket}/{stage.releases_prefix}"
    for entry in entries:
        path = unquote(entry.url.split("?", 1)[0])
        if entry.method == "PUT" and path.startswith(prefix) and path.endswith(".json"):
            release_id = path[len(prefix) : -len(".json")]
            if newest is None or release_id >= newest[0]:
                newest = (release_id, entry.body)
            continue
        found = _ALIAS_PATH.match(path)
        if found:
            try:
                body = json.loads(entry.body or b"{}")
            except ValueError:
                continue
            name = found["alias"] or (body.get("Name") if isinstance(body, dict) else None)
            if name != stage.alias:
                continue
            if entry.method == "DELETE":
                aliases[found["fn"]] = None
            elif isinstance(body, dict) and body.get("FunctionVersion"):
                aliases[found["fn"]] = str(body["FunctionVersion"])
            continue
        gone = _FUNCTION_PATH.match(path)
        if gone and entry.method == "DELETE":
            aliases[gone["fn"]] = None
    if newest is None:
        return None
    try:
        live = release_from_json(newest[1], f"{stage.releases_prefix}{newest[0]}.json")
    except DeployError:
        return None
    named = {f.function_name for f in live.functions}
    return drift_of(stage, live, {k: v for k, v in aliases.items() if k in named})


def write_failed(where: Path, exc: OSError) -> DeployError:
    """The one-paragraph error for a write of the local stage's state that the OS refused."""
    fix = write_fix(where.parent, exc)
    return DeployError(
        f"the local stage could not write {where} ({exc.strerror or exc}), so the change was "
        f"not made: {fix}, "
        "then run the command again. The saved state keeps everything written before (no "
        "half-written file is left), and `inv releases --stage=local` shows where the stage is."
    )


class StateDir:
    """The folder of one local stage's saved state.

    ``writable=False`` (a read-only command: releases, ``deploy --dry-run``): nothing in the
    folder is created, changed or removed; :meth:`append` refuses.
    """

    def __init__(self, root: Path, *, writable: bool = True) -> None:
        self.root = Path(root)
        self.writable = writable
        self.store = ArtifactStore(self.root / ARTIFACTS)
        self.notes: list[str] = []  # what reading the state found (a torn tail, a damaged zip)
        #: release id -> why it cannot run again (a stored zip it needs is damaged)
        self.unusable: dict[str, str] = {}
        self._torn: TornTail | None = None  # cut off the file before the next append
        self.write_error: DeployError | None = None  # the first append the OS refused

    @property
    def requests(self) -> Path:
        """The request log."""
        return self.root / REQUESTS

    @property
    def state_file(self) -> Path:
        """The format marker."""
        return self.root / STATE_FILE

    def remove_partial_zips(self) -> None:
        """Delete zips a killed run left half-written (the caller holds the folder)."""
        if self.writable and self.store.root.is_dir():
            for leftover in self.store.root.glob(".*.tmp"):
                leftover.unlink(missing_ok=True)

    def check_format(self) -> None:
        """Create the folder's format marker, or refuse a folder of another format."""
        old = self.root / OLD_RECORDING
        if old.exists():
            raise damaged(
                self.root,
                old,
                "was written by an older layerkit (moto's recording, with every zip inside "
                "it); this version keeps zips apart and cannot replay it",
            )
        if not self.state_file.exists():
            if self.requests.exists():
                raise damaged(self.root, self.state_file, "is missing next to requests.jsonl")
            if not self.writable:  # an empty stage: a read-only command creates nothing
                return
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                self.state_file.write_text(json.dumps({"format": FORMAT}) + "\n", encoding="utf-8")
            except OSError as exc:
                raise write_failed(self.state_file, exc) from None
            return
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise damaged(self.root, self.state_file, f"cannot be read ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("format"), int):
            raise damaged(self.root, self.state_file, "does not say which format it has")
        if data["format"] != FORMAT:
            raise damaged(
                self.root,
                self.state_file,
                f"has format {data['format']}, and this layerkit reads format {FORMAT}",
            )

    def read_journal(self) -> Journal:
        """The logged requests; a torn tail is noted (and cut off before the next append)."""
        if not self.requests.exists():
            return Journal(())
        try:
            data = self.requests.read_bytes()
        except OSError as exc:
            raise damaged(self.root, self.requests, f"cannot be read ({exc})") from None
        try:
            journal = parse_journal(data)
        except JournalDamage as exc:
            raise damaged(self.root, self.requests, f"is damaged at {exc}") from None
        for number, entry in enumerate(journal.entries, 1):
            if entry.artifact is not None and not self.store.has(entry.artifact):
                raise damaged(
                    self.root,
                    self.store.path(entry.artifact),
                    f"is missing (line {number} of requests.jsonl uploads it)",
                )
        if journal.torn is not None:
            self._torn = journal.torn
            self.notes.append(
                f"the local stage's log {self.requests} ended in a cut line (line "
                f"{journal.torn.line}, {journal.torn.size} bytes: a process was killed while "
                f"writing it); that line was dropped and the {len(journal.entries)} requests "
                "before it kept. The stage is where they left it; the next change cuts the "
                "line off the file."
            )
        return journal

    def entries(self) -> Iterator[Entry]:
        """The logged requests, in order; DeployError if a whole line is damaged."""
        yield from self.read_journal().entries

    def verify_artifacts(self, journal: Journal) -> tuple[str, ...]:
        """Hash every stored zip the log uploads; note each whose bytes differ from its name.

        Returns the damaged sha256s; each note names the zip, the releases that need it and
        the fix, and :attr:`unusable` maps each of those releases to its note.
        """
        needed = dict.fromkeys(e.artifact for e in journal.entries if e.artifact)
        bad = tuple(sha for sha in needed if sha and not self.store.verify(sha))
        if bad:
            by_sha = release_ids_by_artifact(journal.entries)
            for sha in bad:
                why = damaged_artifact(self.store, sha, by_sha.get(sha, ()))
                self.notes.append(why)
                for release_id in by_sha.get(sha, ()):
                    self.unusable.setdefault(release_id, why)
        return bad

    def append(self, entry: Entry) -> None:
        """Add one request to the log: one whole line, one write, then ``fsync``.

        A torn tail found when the log was read is cut off first. A write the OS refuses (a
        full disk) leaves the log as it was and raises :func:`write_failed`'s paragraph.
        """
        if not self.writable:
            raise DeployError(  # pragma: no cover - a read-only session records nothing
                f"the local stage {self.root} was opened read-only; nothing may be recorded."
            )
        line = entry.to_line()
        try:
            fd = os.open(self.requests, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            self.write_error = self.write_error or write_failed(self.requests, exc)
            raise self.write_error from None
        try:
            if self._torn is not None:
                os.ftruncate(fd, self._torn.offset)
                self._torn = None
            start = os.fstat(fd).st_size
            try:
                _write_line(fd, line)
                os.fsync(fd)
            except OSError as exc:
                os.ftruncate(fd, start)  # no half line: the log stays whole
                self.write_error = self.write_error or write_failed(self.requests, exc)
                raise self.write_error from None
        finally:
            os.close(fd)


def _write_line(fd: int, line: bytes) -> None:
    """Write all of ``line`` (one ``write`` unless the OS takes less)."""
    view = memoryview(line)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def damaged_artifact(store: ArtifactStore, sha: str, releases: tuple[str, ...]) -> str:
    """The paragraph for a stored zip whose bytes do not hash to its name."""
    if len(releases) > 1:
        needed = f"releases {', '.join(releases)} need it"
    elif releases:
        needed = f"release {releases[0]} needs it"
    else:
        needed = "no recorded release needs it"
    return (
        f"the local stage's stored zip {store.path(sha)} is damaged: its bytes do not hash to "
        f"its name (sha256 {sha[:12]}…), and {needed}; invoking or rolling back to a version "
        "made from it fails. Put the right zip back under that name (the build of that commit "
        "makes the same bytes), or delete the local stage's folder and deploy again."
    )


def replay(state: StateDir, endpoint: str) -> int:
    """Send the logged requests to the server at ``endpoint``; returns how many were sent."""
    parts = urlsplit(endpoint)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    count = 0
    journal = state.read_journal()
    state.verify_artifacts(journal)
    try:
        for entry in journal.entries:
            if entry.artifact and _put_in_process(entry, state):
                count += 1
                continue
            body = state.store.path(entry.artifact).read_bytes() if entry.artifact else entry.body
            headers = {k: v for k, v in entry.headers.items() if k.lower() not in _DROPPED_HEADERS}
            if entry.artifact:
                headers = {"Content-Type": "application/zip"}
            headers["Content-Length"] = str(len(body))
            connection.request(entry.method, entry.url, body=body, headers=headers)
            connection.getresponse().read()
            count += 1
    finally:
        connection.close()
    return count


def _put_in_process(entry: Entry, state: StateDir) -> bool:
    """Put a stored zip straight into the in-process moto S3 (no 45 MB through HTTP).

    The local stage's server runs in this process, so its backends are this process's. Returns
    False when moto's internals differ from what this expects; the caller then uses HTTP.
    """
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends
    except ImportError:  # pragma: no cover - another moto layout
        return False
    bucket, _, key = entry.url.split("?", 1)[0].lstrip("/").partition("/")
    data = state.store.path(str(entry.artifact)).read_bytes()
    try:
        s3_backends[DEFAULT_ACCOUNT_ID]["aws"].put_object(bucket, key, data)
    except Exception:  # any surprise from moto's internals: use HTTP instead
        return False
    return True


def recorder_for(state: StateDir, host: str, other: Callable[..., None]) -> Any:
    """A replacement for moto's ``recorder._record_request``: logs ``host``'s changes to ``state``.

    Requests to other hosts (another server in the process, moto's in-memory mock) go to
    ``other``, the recorder this one replaces.
    """

    def record(request: Any, body: bytes | None = None) -> None:
        if request.host != host:
            other(request, body)
            return
        if request.method in _SKIPPED_METHODS:
            return
        url = urlsplit(request.raw_url)
        path = url.path + (f"?{url.query}" if url.query else "")
        if url.path.startswith("/moto-api/") or url.path.endswith("/invocations"):
            return
        headers = {str(k): str(v) for k, v in request.headers.items()}
        found = _ARTIFACT_PATH.match(url.path)
        if request.method == "PUT" and found and state.store.has(found["sha"]):
            _keep(state, Entry("PUT", path, headers, b"", found["sha"]))
            return
        if body is None:
            length = int(request.headers.get("Content-Length") or 0)
            body = request.environ["wsgi.input"].read(length) if length else b""
            request.environ["wsgi.input"] = BytesIO(body)
        if _READ_ACTION.search(bytes(body or b"")):  # IAM's and STS's reads are POSTs too
            return
        _keep(state, Entry(request.method, path, headers, bytes(body or b"")))

    return record


def _keep(state: StateDir, entry: Entry) -> None:
    """Log ``entry`` before the server applies it; a refused write refuses the request.

    The refusal is a ClientError, which moto answers with a 400 that carries the paragraph
    (no retry, no server traceback); the request is not applied, so the server and its log
    stay the same stage. :attr:`StateDir.write_error` keeps the paragraph for the command.
    """
    from botocore.exceptions import ClientError

    try:
        state.append(entry)
    except DeployError as exc:
        error = {"Error": {"Code": "LocalStageLogNotWritten", "Message": str(exc)}}
        raise ClientError(error, "RecordRequest") from None
