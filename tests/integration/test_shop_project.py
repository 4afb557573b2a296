"""The shop project (tests/projects/shop/): a SAM project as `sam init` and SAM's docs write one.

Two layers whose ContentUri is their source folder (no layer.toml, no layers/ settings), Globals,
a Stage parameter, four functions on three targets (python3.12 x86_64, python3.12 arm64 and
python3.13), two CodeUri folders sharing their last name (src/orders/api/, src/payments/api/),
a function using the runtime's boto3 with no layer carrying it, API events and an events/ folder.
A copy is locked and built with the `layerkit` command alone; the zips of every target are read.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from layerkit.cli import main

pytestmark = pytest.mark.integration

SHOP = Path(__file__).resolve().parents[1] / "projects" / "shop"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shop project, locked and built once for the tests of this module."""
    root = tmp_path_factory.mktemp("shop") / "shop"
    shutil.copytree(SHOP, root)
    assert main(["--project-dir", str(root), "lock"]) == 0
    # from a subfolder, as a user in src/orders/api/ would
    assert main(["--project-dir", str(root / "src" / "orders" / "api"), "build", "all"]) == 0
    return root


def names(archive: Path) -> set[str]:
    with zipfile.ZipFile(archive) as zf:
        return set(zf.namelist())


def test_every_target_of_the_template_is_locked_with_its_functions_requirements(
    shop: Path,
) -> None:
    locks = {p.name for p in (shop / "locks").glob("*.toml")}
    assert locks == {"python3.12-x86_64.toml", "python3.12-arm64.toml", "python3.13-x86_64.toml"}
    arm = (shop / "locks" / "python3.12-arm64.toml").read_text()
    assert '"function:PaymentsApiFunction"' in arm
    assert 'name = "pyjwt"' in arm  # the arm64 function's own requirement
    assert 'name = "tabulate"' not in arm  # the reports layer is python3.13 only
    assert "inv lock" not in arm  # files layerkit writes name no front door


def test_the_deploy_target_builds_in_dist(shop: Path) -> None:
    dist = shop / "dist"
    common = names(dist / "layers" / "common.zip")
    assert "python/ulid/__init__.py" in common
    assert any(n.startswith("python/dateutil/") for n in common)
    assert not (dist / "layers" / "reports.zip").exists()  # reports is python3.13 only
    orders = names(dist / "functions" / "OrdersApiFunction.zip")  # keyed by logical ID
    assert "app.py" in orders
    assert not any(n.startswith("ulid/") for n in orders)  # the layer carries it
    notifier = names(dist / "functions" / "notifier.zip")
    assert "app.py" in notifier
    assert not any(n.startswith("boto3/") for n in notifier)  # the runtime's own boto3
    assert not (dist / "functions" / "PaymentsApiFunction.zip").exists()  # it runs on arm64


def test_the_arm64_function_builds_with_its_own_requirements(shop: Path) -> None:
    out = shop / "dist" / "python3.12-arm64"
    assert "python/ulid/__init__.py" in names(out / "layers" / "common.zip")
    payments = names(out / "functions" / "PaymentsApiFunction.zip")
    assert "app.py" in payments
    assert "jwt/__init__.py" in payments  # PyJWT: the function's own requirement
    assert not (out / "functions" / "OrdersApiFunction.zip").exists()


def test_the_python313_function_gets_both_layers_built_for_it(shop: Path) -> None:
    out = shop / "dist" / "python3.13-x86_64"
    assert "python/tabulate/__init__.py" in names(out / "layers" / "reports.zip")
    # reports requires common (every function attaching it attaches common first): no overlap
    assert not any("dateutil" in n for n in names(out / "layers" / "reports.zip"))
    assert "app.py" in names(out / "functions" / "reports.zip")


def test_a_second_build_is_fresh(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["--project-dir", str(shop), "build", "all"]) == 0
    out = capsys.readouterr().out
    assert "(built)" not in out
    for key in ("python3.12-x86_64", "python3.12-arm64", "python3.13-x86_64"):
        assert f"({key})" in out
