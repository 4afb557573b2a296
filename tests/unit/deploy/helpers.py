"""Real tiny zips and the stage used by the executor, rollback and stage-lock unit tests."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import zipfile
from pathlib import Path

from layerkit.deploy.clients import Clients
from layerkit.deploy.models import DesiredState, FunctionArtifact, LayerArtifact
from layerkit.project.stages import Stage

from .fakes import FakeLambda, FakeS3

STAGE = Stage(name="dev", bucket="b", alias="live", role="arn:aws:iam::123456789012:role/r",
              prefix="dev-")  # fmt: skip
USES = {"one": ("core", "utils"), "two": ("core", "ml", "utils")}


def fake_clients() -> Clients:
    s3 = FakeS3()
    return Clients(lambda_=FakeLambda(s3), s3=s3)


def _zip(path: Path, text: str) -> tuple[Path, str, int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("x.py", date_time=(2020, 1, 1, 0, 0, 0)), text)
    data = path.read_bytes()
    return path, hashlib.sha256(data).hexdigest(), len(data)


def desired(root: Path, layers: dict[str, str] | None = None,
            functions: dict[str, str] | None = None) -> DesiredState:  # fmt: skip
    layer_v = {"core": "1", "ml": "1", "utils": "1", **(layers or {})}
    fn_v = {"one": "1", "two": "1", **(functions or {})}
    made_layers = []
    for name, v in layer_v.items():
        path, sha, size = _zip(root / f"l-{name}-{v}.zip", f"{name} {v}")
        made_layers.append(LayerArtifact(name, path, sha, size, ("python3.12",), ("x86_64",), name))
    made_functions = []
    for name, v in fn_v.items():
        path, sha, size = _zip(root / f"f-{name}-{v}.zip", f"{name} {v}")
        made_functions.append(FunctionArtifact(
            name=name, logical_id=name.title(), zip_path=path, sha256=sha,
            handler="app.handler", runtime="python3.12", architecture="x86_64",
            memory_size=256, timeout=30, layers=USES[name], environment={"A": "1"},
            zipped_bytes=size,
        ))  # fmt: skip
    return DesiredState(tuple(made_layers), tuple(made_functions), "c0ffee")


class Clock:
    def __init__(self) -> None:
        self._ticks = itertools.count()

    def __call__(self) -> dt.datetime:
        start = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc)
        return start + dt.timedelta(seconds=next(self._ticks))
