"""A shared build cache: artifacts whose input hash matches are downloaded instead of built.

An entry is two objects under one key, the artifact's input hash (which already covers the lock
slice, layer.toml and requirements, sources, the layers it requires, the layerkit version, the
build format, the host's zlib and strip, and the target)::

    <prefix>/<target>/<layers|functions>/<name>/<input hash>.zip    the built zip
    <prefix>/<target>/<layers|functions>/<name>/<input hash>.json   its manifest record

The zip is uploaded first and the record last, so the record marks a complete entry. An entry is
used only if its record parses, names the same artifact, target and input hash, and the zip has
the recorded size and sha256, opens, and holds the recorded number of files and unzipped bytes.
The zip is downloaded under a temporary name next to its destination and renamed into place only
after those checks. Anything else (a corrupt zip, a zip without record, a record without zip, an
unreachable store) is ignored with a warning and the artifact is built as if there were no
cache; a cache can make a build faster, never wrong.

Where entries live is a :class:`CacheStore` (get/put of named blobs): :class:`S3Store` for
``s3://BUCKET/PREFIX`` and :class:`FolderStore` for a local folder (``file:///path``). Which
store a build uses comes from :func:`cache_url`: the ``--cache`` option, else the
``LAYERKIT_CACHE`` environment variable, else ``cache`` in ``[tool.layerkit]`` of
``pyproject.toml``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from layerkit.build.archive import sha256_file
from layerkit.build.manifest import ArtifactRecord
from layerkit.errors import CacheError, SpecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_VAR = "LAYERKIT_CACHE"
PYPROJECT = "pyproject.toml"
#: What ``--cache`` accepts to switch a configured cache off for one build.
OFF = frozenset({"", "none", "off", "no"})


class CacheStore(Protocol):
    """Named blobs, each written whole: where cache entries live."""

    def where(self, key: str) -> str:
        """The URL of ``key``, for messages."""
        ...

    def get(self, key: str, dest: Path) -> bool:
        """Write the blob ``key`` to ``dest``; False when there is none. Raises CacheError."""
        ...

    def exists(self, key: str) -> bool:
        """Whether the blob ``key`` exists. Raises CacheError."""
        ...

    def put(self, key: str, source: Path) -> None:
        """Store the file ``source`` as ``key`` (replacing it). Raises CacheError."""
        ...


@dataclass(frozen=True)
class FolderStore:
    """Entries as files below a local (or mounted network) folder."""

    root: Path

    def where(self, key: str) -> str:
        """The URL of ``key``."""
        return (self.root / key).as_uri()

    def get(self, key: str, dest: Path) -> bool:
        """Copy ``key`` to ``dest``; False when absent."""
        try:
            shutil.copyfile(self.root / key, dest)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise CacheError(f"{self.where(key)}: {exc}") from exc
        return True

    def exists(self, key: str) -> bool:
        """Whether ``key`` is there."""
        return (self.root / key).is_file()

    def put(self, key: str, source: Path) -> None:
        """Copy ``source`` to ``key`` under a temporary name, then rename it into place."""
        path = self.root / key
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tmp)
            os.replace(tmp, path)
        except OSError as exc:
            raise CacheError(f"{self.where(key)}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class S3Store:
    """Entries as objects under ``prefix`` in an S3 bucket (any boto3 S3 client)."""

    client: Any
    bucket: str
    prefix: str = ""

    def _key(self, key: str) -> str:
        return f"{self.prefix.strip('/')}/{key}" if self.prefix.strip("/") else key

    def where(self, key: str) -> str:
        """``s3://bucket/prefix/key``."""
        return f"s3://{self.bucket}/{self._key(key)}"

    def _call(self, key: str, call: Callable[[], Any]) -> Any:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call()
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise CacheError(f"{self.where(key)}: {exc}") from exc
        except (BotoCoreError, Boto3Error) as exc:  # Boto3Error: S3UploadFailedError
            raise CacheError(f"{self.where(key)}: {exc}") from exc

    def get(self, key: str, dest: Path) -> bool:
        """Download ``key`` to ``dest``; False when there is no such object."""
        done = self._call(
            key,
            lambda: self.client.download_file(self.bucket, self._key(key), str(dest)) or True,
        )
        return bool(done)

    def exists(self, key: str) -> bool:
        """Whether the object exists (a HEAD request)."""
        found = self._call(
            key, lambda: self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        )
        return found is not None

    def put(self, key: str, source: Path) -> None:
        """Upload ``source`` as ``key`` (multipart for large zips; S3 makes it visible whole)."""
        self._call(key, lambda: self.client.upload_file(str(source), self.bucket, self._key(key)))


# ---------------------------------------------------------------- which store


def _configured(root: Path) -> tuple[str | None, str]:
    path = root / PYPROJECT
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, str(path)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}.") from None
    value = data.get("tool", {}).get("layerkit", {}).get("cache")
    if value is not None and not isinstance(value, str):
        raise SpecError(
            f"{path}: [tool.layerkit] cache must be a string such as "
            f'"s3://my-bucket/layerkit-cache" (got {value!r}).'
        )
    return value, f"{path} [tool.layerkit] cache"


def cache_url(
    root: Path, option: str | None = None, environ: Mapping[str, str] = os.environ
) -> tuple[str | None, str]:
    """The cache URL a build uses and where it was set: (url or None, source).

    ``option`` (``--cache``) wins, then ``LAYERKIT_CACHE``, then ``[tool.layerkit] cache`` in
    ``pyproject.toml``. ``none``/``off``/an empty value switches the cache off.
    """
    if option is not None:
        url, source = option, "--cache"
    elif ENV_VAR in environ:
        url, source = environ[ENV_VAR], ENV_VAR
    else:
        url, source = _configured(root)
    if url is None or url.strip().lower() in OFF:
        return None, source
    return url.strip(), source


def open_store(url: str, source: str = "--cache", *, s3_client: Any = None) -> CacheStore:
    """The store for ``s3://BUCKET/PREFIX``, ``file:///path`` or a plain folder path.

    The S3 client, unless given, comes from the standard AWS chain (``AWS_PROFILE``,
    ``AWS_REGION``, ``AWS_ENDPOINT_URL``).
    """
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise SpecError(
                f"{source}: {url!r} names no bucket; write s3://BUCKET/PREFIX, for example "
                "s3://acme-build-cache/layerkit."
            )
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        return S3Store(s3_client, parsed.netloc, parsed.path.strip("/"))
    if parsed.scheme == "file":
        return FolderStore(Path(unquote(parsed.path)))
    if parsed.scheme == "" and url:
        return FolderStore(Path(url).expanduser().resolve())
    raise SpecError(
        f"{source}: {url!r} is not a cache layerkit can use; write s3://BUCKET/PREFIX, "
        "file:///path/to/folder, or none to build without a cache."
    )


# ---------------------------------------------------------------- entries


@dataclass(frozen=True)
class CacheKey:
    """What an entry is for: one artifact of one target, built from one input hash."""

    kind: str  # "layer" / "function"
    name: str
    path: str  # layers/<name>.zip, as in the manifest
    target: str  # target key, python3.9-x86_64
    input_hash: str

    @property
    def base(self) -> str:
        """``<target>/<layers|functions>/<name>/<input hash>``."""
        folder = self.path.rsplit("/", 1)[0]
        return f"{self.target}/{folder}/{self.name}/{self.input_hash}"

    @property
    def zip_key(self) -> str:
        """The key of the entry's zip."""
        return f"{self.base}.zip"

    @property
    def record_key(self) -> str:
        """The key of the entry's manifest record."""
        return f"{self.base}.json"


class Lookup(Enum):
    """What a cache lookup found."""

    HIT = "hit"  # a verified entry; the zip is in place
    MISS = "miss"  # no entry at all
    IGNORED = "ignored"  # a corrupt or partial entry, or an unreachable store (warned)


#: ``note(step, detail)``: progress for the artifact being built ("cache" or "warning").
Note = Callable[[str, str], None]


def _temp(dest: Path, suffix: str) -> Path:
    """A temporary name beside ``dest`` that a killed build's sweep removes (``.*.tmp``)."""
    return dest.with_name(f".{dest.name}.{os.getpid()}.{suffix}.tmp")


def _problem(record: ArtifactRecord, key: CacheKey, zip_path: Path) -> str | None:
    """Why the downloaded zip and record are not the entry for ``key`` (None: they are)."""
    wanted = (key.kind, key.name, key.path, key.target, key.input_hash)
    got = (record.kind, record.name, record.path, record.target, record.input_hash)
    if got != wanted:
        return f"its record describes {got[2]} for {got[3]} from input hash {got[4][:12]}…"
    size = zip_path.stat().st_size
    if size != record.zipped_bytes:
        return f"the zip has {size:,} bytes, its record says {record.zipped_bytes:,}"
    digest = sha256_file(zip_path)
    if digest != record.sha256:
        return f"the zip's sha256 is {digest[:12]}…, its record says {record.sha256[:12]}…"
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        return f"the zip does not open ({exc})"
    unzipped = sum(i.file_size for i in infos)
    if (len(infos), unzipped) != (record.files, record.unzipped_bytes):
        return (
            f"the zip holds {len(infos)} files and {unzipped:,} bytes, its record says "
            f"{record.files} and {record.unzipped_bytes:,}"
        )
    return None


def restore(
    store: CacheStore, out: Path, key: CacheKey, note: Note
) -> tuple[Lookup, ArtifactRecord | None]:
    """Put the cached artifact for ``key`` at ``out/key.path`` if a verified entry exists.

    Returns (HIT, record) with the zip renamed into place, or (MISS/IGNORED, None) with nothing
    in ``out`` changed. Every ignored entry is reported through ``note("warning", ...)``.
    """
    dest = out / key.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    record_tmp, zip_tmp = _temp(dest, "record"), _temp(dest, "cache")
    try:
        try:
            if not store.get(key.record_key, record_tmp):
                if store.exists(key.zip_key):
                    note(
                        "warning",
                        f"ignored the partial cache entry {store.where(key.zip_key)}: it has no "
                        "record (an upload that did not finish); building instead.",
                    )
                    return Lookup.IGNORED, None
                note("cache", f"miss ({store.where(key.base)})")
                return Lookup.MISS, None
            try:
                record = ArtifactRecord.from_json(json.loads(record_tmp.read_text("utf-8")))
            except (ValueError, TypeError, AttributeError) as exc:
                note(
                    "warning",
                    f"ignored the cache entry {store.where(key.record_key)}: the record is not "
                    f"a layerkit manifest record ({exc}); building instead.",
                )
                return Lookup.IGNORED, None
            if not store.get(key.zip_key, zip_tmp):
                note(
                    "warning",
                    f"ignored the partial cache entry {store.where(key.record_key)}: its zip "
                    f"{store.where(key.zip_key)} is missing; building instead.",
                )
                return Lookup.IGNORED, None
        except CacheError as exc:
            note("warning", f"the build cache could not be read ({exc}); building instead.")
            return Lookup.IGNORED, None
        try:
            problem = _problem(record, key, zip_tmp)
        except (TypeError, ValueError) as exc:  # a record with fields of the wrong type
            problem = f"its record is malformed ({exc})"
        if problem is not None:
            note(
                "warning",
                f"ignored the corrupt cache entry {store.where(key.zip_key)}: {problem}; "
                "building instead (the build replaces the entry).",
            )
            return Lookup.IGNORED, None
        os.replace(zip_tmp, dest)
        note("cache", f"hit {store.where(key.zip_key)} (sha256 {record.sha256[:12]}…, verified)")
        return Lookup.HIT, record
    finally:
        record_tmp.unlink(missing_ok=True)
        zip_tmp.unlink(missing_ok=True)


def share(store: CacheStore, out: Path, key: CacheKey, record: ArtifactRecord, note: Note) -> bool:
    """Upload a built artifact and then its record; a failure is a warning, never an error."""
    record_tmp = _temp(out / key.path, "record")
    try:
        record_tmp.write_text(json.dumps(record.to_json(), sort_keys=True) + "\n", "utf-8")
        store.put(key.zip_key, out / key.path)
        store.put(key.record_key, record_tmp)  # last: the record marks a complete entry
    except CacheError as exc:
        note("warning", f"could not upload to the build cache ({exc}); the build itself is fine.")
        return False
    finally:
        record_tmp.unlink(missing_ok=True)
    note("cache", f"uploaded to {store.where(key.zip_key)}")
    return True


def through(
    store: CacheStore | None,
    out: Path,
    key: CacheKey,
    build: Callable[[], ArtifactRecord],
    note: Note,
    *,
    lookup: bool = True,
) -> tuple[ArtifactRecord, Lookup | None]:
    """The build's one hook per artifact: the cached record, or ``build()`` and share it.

    With no store, this is ``build()``. With ``lookup=False`` (a forced rebuild) the cache is
    not read, but what is built is still uploaded. Returns the record and what the lookup
    found (None: no lookup).
    """
    if store is None:
        return build(), None
    found = None
    if lookup:
        found, record = restore(store, out, key, note)
        if record is not None:
            return record, found
    record = build()
    share(store, out, key, record, note)
    return record, found
