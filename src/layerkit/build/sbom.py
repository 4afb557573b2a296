"""What is in every artifact: a CycloneDX SBOM beside each zip, written from the lock offline.

For every layer and function zip of a build, ``<name>.cdx.json`` sits next to ``<name>.zip``: a
CycloneDX 1.5 JSON document whose subject is the zip (its sha256) and whose components are the
locked distributions the zip carries, each with its version, package URL (``pkg:pypi/…``), the
sha256 of the wheel it was installed from, where that wheel came from, and its licence as the
wheel's own metadata states it (``License-Expression``, else a short ``License`` field, else
the ``License ::`` classifiers). A function's SBOM also lists the layers it attaches, by their
zips' sha256, so one file answers "what runs in this function".

Nothing is downloaded and nothing is guessed: versions, hashes and addresses come from the
lock, licences from the ``METADATA`` files inside the zip. The documents carry no timestamp
and a serial number derived from the zip's sha256, so the same zip always has the same SBOM
bytes. An SBOM is written again only when the zip it describes changed.
"""

from __future__ import annotations

import json
import os
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.utils import canonicalize_name

from layerkit import __version__
from layerkit.build.lock import Lock, LockedPackage
from layerkit.build.manifest import ArtifactKind, ArtifactRecord
from layerkit.redact import redact_url

SPEC_VERSION = "1.5"
SUFFIX = ".cdx.json"
_NAMESPACE = uuid.UUID("6f1b2a53-3c1e-4c55-9a43-9d3c5e0f7a10")  # layerkit's SBOM serials
_CLASSIFIER = "License :: "


def sbom_path(zip_path: str) -> str:
    """The SBOM's path beside a zip's (``layers/x.zip`` -> ``layers/x.cdx.json``)."""
    return str(PurePosixPath(zip_path).with_suffix("")) + SUFFIX


def licence_of(metadata: str) -> dict[str, Any] | None:
    """A CycloneDX ``licenses`` entry from a wheel's METADATA text, or None when it names none.

    ``License-Expression`` (an SPDX expression) wins; then a one-line ``License`` field; then
    the ``License ::`` trove classifiers (their last part, e.g. "MIT License").
    """
    return _licence(HeaderParser().parsestr(metadata, headersonly=True))


def _licence(headers: Message) -> dict[str, Any] | None:
    """:func:`licence_of` of METADATA already parsed."""
    expression = (headers.get("License-Expression") or "").strip()
    if expression:
        return {"expression": expression}
    field = (headers.get("License") or "").strip()
    if field and "\n" not in field and len(field) <= 100 and field.upper() != "UNKNOWN":
        return {"license": {"name": field}}
    classifiers = [
        c.split("::")[-1].strip()
        for c in headers.get_all("Classifier") or []
        if c.startswith(_CLASSIFIER) and c.count("::") >= 2
    ]
    if classifiers:
        return {"license": {"name": " / ".join(dict.fromkeys(classifiers))}}
    return None


def licences_in_zip(archive: Path) -> dict[str, dict[str, Any]]:
    """Canonical distribution name -> its licence entry, read from the zip's dist-info folders."""
    found: dict[str, dict[str, Any]] = {}
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            path = PurePosixPath(name)
            if path.name != "METADATA" or not path.parent.name.endswith(".dist-info"):
                continue
            text = zf.read(name).decode("utf-8", "replace")
            headers = HeaderParser().parsestr(text, headersonly=True)
            dist = headers.get("Name") or path.parent.name.split("-", 1)[0]
            licence = _licence(headers)
            if licence is not None:
                found[canonicalize_name(dist)] = licence
    return found


def _component(pkg: LockedPackage, licence: Mapping[str, Any] | None) -> dict[str, Any]:
    purl = f"pkg:pypi/{pkg.name}@{pkg.version}"
    component: dict[str, Any] = {
        "type": "library",
        "bom-ref": purl,
        "name": pkg.name,
        "version": pkg.version,
        "purl": purl,
        "hashes": [{"alg": "SHA-256", "content": pkg.sha256}],
    }
    if licence is not None:
        component["licenses"] = [dict(licence)]
    # an SBOM is shared: credentials never reach it (the lock holds none either)
    component["externalReferences"] = [{"type": "distribution", "url": redact_url(pkg.wheel)}]
    if pkg.index:
        component["externalReferences"].append(
            {"type": "distribution-intake", "url": redact_url(pkg.index)}
        )
    return component


def document(
    record: ArtifactRecord,
    packages: Sequence[LockedPackage],
    licences: Mapping[str, Mapping[str, Any]],
    layers: Sequence[ArtifactRecord] = (),
) -> dict[str, Any]:
    """The CycloneDX document of one artifact. Pure: the same inputs give the same document.

    ``packages`` are the locked distributions the artifact carries, ``licences`` their licence
    entries by canonical name, ``layers`` the records of the layers a function attaches.
    """
    subject = f"{record.kind.value}:{record.name}"
    components = [_component(p, licences.get(p.name)) for p in sorted(packages, key=_by_name)]
    for layer in layers:
        components.append(
            {
                "type": "library",
                "bom-ref": f"layer:{layer.name}",
                "name": layer.name,
                "description": f"Lambda layer attached by {record.name} ({layer.path})",
                "hashes": [{"alg": "SHA-256", "content": layer.sha256}],
            }
        )
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(_NAMESPACE, record.sha256)}",
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "layerkit",
                                      "version": __version__}]},
            "component": {
                "type": "library" if record.kind == ArtifactKind.LAYER else "application",
                "bom-ref": subject,
                "name": record.name,
                "description": f"{record.path} for {record.target}",
                "hashes": [{"alg": "SHA-256", "content": record.sha256}],
            },
        },
        "components": components,
        "dependencies": [{"ref": subject, "dependsOn": [c["bom-ref"] for c in components]}],
    }  # fmt: skip


def _by_name(pkg: LockedPackage) -> str:
    return str(pkg.name)


def _described(path: Path) -> str | None:
    """The sha256 of the zip an SBOM file describes, or None when it cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return str(data["metadata"]["component"]["hashes"][0]["content"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def write_sboms(out: Path, records: Mapping[str, ArtifactRecord], lock: Lock) -> tuple[Path, ...]:
    """Write each artifact's SBOM that is missing or describes another zip; return them.

    Each file is written to a temporary name and renamed into place, so a reader never sees
    half a document.
    """
    by_name = {p.name: p for p in lock.packages}
    layers = {r.name: r for r in records.values() if r.kind == ArtifactKind.LAYER}
    written = []
    for path, record in sorted(records.items()):
        dest = out / sbom_path(path)
        zip_file = out / path
        if _described(dest) == record.sha256 or not zip_file.is_file():
            continue
        packages = [
            by_name[n] for n in map(canonicalize_name, record.distributions) if n in by_name
        ]
        attached = [layers[n] for n in record.layers if n in layers]
        attached = attached if record.kind == ArtifactKind.FUNCTION else []
        doc = document(record, packages, licences_in_zip(zip_file), attached)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(dest)
        written.append(dest)
    return tuple(written)
