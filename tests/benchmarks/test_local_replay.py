"""Opening the local stage after ten deploys: its saved state replays in ≤ 1 s (target).

Ten deploys of the deploy tests' scenario (a layer and a function changing each time, one
larger layer of a few MB carried throughout), then the time to replay the saved state into a
fresh moto server (:func:`layerkit.deploy.localstate.replay`) and to open the whole stage.
Run with ``nox -s bench``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import time
from pathlib import Path
from typing import Any

import pytest

from layerkit.deploy.deployer import deploy
from layerkit.deploy.localstage import local_stage
from layerkit.deploy.localstate import StateDir, replay
from layerkit.project.stages import get_stage
from tests.aws.conftest import Builder, Clock, pinned_lifecycle, tiny_zip

pytestmark = pytest.mark.benchmark(group="local-stage", disable_gc=False, warmup=False)

ROOT = Path(__file__).resolve().parents[2]
TARGET_S = 1.0
DEPLOYS = 10


def _with_big_layer(desired: Any, big: Path) -> Any:
    data = big.read_bytes()
    core = dataclasses.replace(desired.layers[0], zip_path=big, zipped_bytes=len(data),
                               sha256=hashlib.sha256(data).hexdigest())  # fmt: skip
    return dataclasses.replace(desired, layers=(core, *desired.layers[1:]))


def test_replay_after_ten_deploys(benchmark: Any, tmp_path: Path, capsys: Any) -> None:
    stage = get_stage(ROOT, "local")
    state = tmp_path / "state"
    builder, clock = Builder(tmp_path / "build"), Clock()
    big = tiny_zip(
        tmp_path / "big.zip", {f"python/big/m{i}.py": str(i) * 50_000 for i in range(80)}
    )
    with local_stage(stage, state) as opened:
        for n in range(1, DEPLOYS + 1):
            desired = builder.desired(layers={"utils": str(n)}, functions={"one": str(n)},
                                      only=("one", "two", "three"))  # fmt: skip
            deploy(_with_big_layer(desired, big), opened.clients, stage, owner="bench", now=clock,
                   today=dt.date(2026, 11, 1), lifecycle=pinned_lifecycle)  # fmt: skip
    log_bytes = (state / "requests.jsonl").stat().st_size
    store_bytes = sum(p.stat().st_size for p in (state / "artifacts").iterdir())
    servers: list[Any] = []

    def fresh_server() -> tuple[tuple[str], dict[str, Any]]:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        servers.append(server)
        host, port = server.get_host_and_port()
        return (f"http://{host}:{port}",), {}

    def replay_into(endpoint: str) -> None:
        assert replay(StateDir(state), endpoint) > 0

    try:
        benchmark.pedantic(replay_into, setup=fresh_server, rounds=5, iterations=1)
    finally:
        for server in servers:
            server.stop()
    started = time.perf_counter()
    with local_stage(stage, state) as opened:
        assert opened.clients.lambda_.get_alias(FunctionName="local-one", Name="live")
    open_s = time.perf_counter() - started
    replay_s = benchmark.stats.stats.median
    benchmark.extra_info.update(open_s=round(open_s, 3), log_bytes=log_bytes,
                                store_bytes=store_bytes, target_s=TARGET_S)  # fmt: skip
    with capsys.disabled():
        print(
            f"\nlocal stage after {DEPLOYS} deploys: replay {replay_s:.2f} s (target {TARGET_S} s),"
            f" whole open {open_s:.2f} s; request log {log_bytes:,} bytes, zips stored once "
            f"{store_bytes:,} bytes"
        )
