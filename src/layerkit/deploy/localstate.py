"""The local stage's saved state: a log of state-changing requests and a store of zips.

``state.json`` names the format; ``requests.jsonl`` holds one JSON object per request that
changed the moto server's state (``method``, ``url``, ``headers`` and the body, base64) — reads
(GET, HEAD) are not kept, and an upload to ``<bucket>/artifacts/<sha256>.zip`` is kept as a
reference (``artifact``) to ``artifacts/<sha256>.zip`` in the folder, stored once. Each line is
written with one ``write`` call on an append-only file, so a killed process leaves whole lines.
:func:`replay` sends the log to a fresh server; damage of any kind (a cut line, ``null``, a
wrong shape, another format, a missing zip) is one :class:`~layerkit.errors.DeployError`
paragraph that says what to run.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from layerkit.deploy.localinvoke import ArtifactStore
from layerkit.errors import DeployError

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


class StateDir:
    """The folder of one local stage's saved state."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.store = ArtifactStore(self.root / ARTIFACTS)

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
        if self.store.root.is_dir():
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
            self.root.mkdir(parents=True, exist_ok=True)
            self.state_file.write_text(json.dumps({"format": FORMAT}) + "\n", encoding="utf-8")
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

    def entries(self) -> Iterator[Entry]:
        """The logged requests, in order; DeployError on the first damaged line."""
        if not self.requests.exists():
            return
        try:
            text = self.requests.read_bytes()
        except OSError as exc:
            raise damaged(self.root, self.requests, f"cannot be read ({exc})") from None
        if text and not text.endswith(b"\n"):
            raise damaged(self.root, self.requests, "ends in a cut line (it was truncated)")
        for number, line in enumerate(text.splitlines(), 1):
            try:
                entry = _entry(json.loads(line))
            except (ValueError, TypeError) as exc:
                raise damaged(
                    self.root, self.requests, f"is damaged at line {number} ({exc})"
                ) from None
            if entry.artifact is not None and not self.store.has(entry.artifact):
                raise damaged(
                    self.root,
                    self.store.path(entry.artifact),
                    f"is missing (line {number} of requests.jsonl uploads it)",
                )
            yield entry

    def append(self, entry: Entry) -> None:
        """Add one request to the log (one write on an append-only file)."""
        fd = os.open(self.requests, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, entry.to_line())
        finally:
            os.close(fd)


def replay(state: StateDir, endpoint: str) -> int:
    """Send the logged requests to the server at ``endpoint``; returns how many were sent."""
    parts = urlsplit(endpoint)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    count = 0
    try:
        for entry in state.entries():
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
            state.append(Entry("PUT", path, headers, b"", found["sha"]))
            return
        if body is None:
            length = int(request.headers.get("Content-Length") or 0)
            body = request.environ["wsgi.input"].read(length) if length else b""
            request.environ["wsgi.input"] = BytesIO(body)
        if _READ_ACTION.search(bytes(body or b"")):  # IAM's and STS's reads are POSTs too
            return
        state.append(Entry(request.method, path, headers, bytes(body or b"")))

    return record
