from __future__ import annotations

import ast
import importlib.util
from datetime import date
from pathlib import Path

from layerkit.runtime.lifecycle import lifecycle_source, lifecycle_table, runtime_lifecycle

TABLE = {
    "python3.9": {
        "deprecated": "2025-12-15",
        "create-block": "2026-06-01",
        "update-block": "2026-07-01",
        "successor": "python3.14",
    },
    "python3.14": {"deprecated": None, "create-block": None, "update-block": None},
}


def test_lifecycle_states_follow_the_dates() -> None:
    before = runtime_lifecycle("python3.9", date(2025, 12, 14), TABLE)
    assert (before.is_deprecated, before.blocked_for_create, before.blocked_for_update) == (
        False,
        False,
        False,
    )
    between = runtime_lifecycle("python3.9", date(2026, 6, 1), TABLE)
    assert (between.is_deprecated, between.blocked_for_create, between.blocked_for_update) == (
        True,
        True,
        False,
    )
    after = runtime_lifecycle("python3.9", date(2026, 7, 1), TABLE)
    assert after.blocked_for_update
    assert after.create_blocked == date(2026, 6, 1)
    assert after.successor == "python3.14"


def test_runtimes_without_dates_or_not_in_the_table_are_live() -> None:
    for runtime in ("python3.14", "python9.99"):
        status = runtime_lifecycle(runtime, date(2030, 1, 1), TABLE)
        assert not status.is_deprecated
        assert not status.blocked_for_create
        assert not status.blocked_for_update


def test_the_dates_come_from_cfn_lints_data() -> None:
    assert "python3.9" in lifecycle_table()
    status = runtime_lifecycle("python3.9", date(2026, 11, 24))
    assert status.deprecated is not None
    assert status.is_deprecated
    assert status.create_blocked is not None
    assert status.update_blocked is not None
    assert status.source == lifecycle_source()
    assert status.source.startswith("cfn-lint ")
    assert "runtime lifecycle data" in status.source


def module_level_imports(module: str, seen: set[str] | None = None) -> set[str]:
    """Every module ``module`` imports at module level, following layerkit's own (statically)."""
    seen = set() if seen is None else seen
    if module in seen:
        return set()
    seen.add(module)
    spec = importlib.util.find_spec(module)
    assert spec is not None
    assert spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:  # module level only: imports inside functions run at call time
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            found.add(name)
            if name.startswith("layerkit"):
                parts = name.split(".")
                for i in range(2, len(parts) + 1):  # a package's __init__ runs too
                    found |= module_level_imports(".".join(parts[:i]), seen)
    return found


def test_the_lifecycle_module_and_the_deploy_planner_load_neither_cfn_lint_nor_boto3() -> None:
    for module in ("layerkit.runtime.lifecycle", "layerkit.deploy.planner"):
        tops = {name.split(".")[0] for name in module_level_imports(module)}
        assert not tops & {"cfnlint", "boto3", "botocore"}, module


def test_one_deprecation_notice_reads_well_on_every_day() -> None:
    from layerkit.runtime.lifecycle import deprecation_notice

    table = {
        "python3.9": {
            "deprecated": "2025-12-15",
            "create-block": "2026-06-01",
            "update-block": "2026-07-01",
            "successor": "python3.14",
        }
    }

    def notice(day: date) -> str | None:
        return deprecation_notice("python3.9", runtime_lifecycle("python3.9", day, table), day)

    assert notice(date(2025, 1, 1)) is None  # not deprecated yet: nothing to say
    before = notice(date(2026, 1, 1))
    assert before is not None
    assert before.startswith("runtime python3.9 is deprecated since 2025-12-15: AWS blocks ")
    assert "creating functions on it from 2026-06-01 and updating them from 2026-07-01" in before
    between = notice(date(2026, 6, 15))
    assert between is not None
    assert (
        "AWS has blocked creating functions on it since 2026-06-01 and blocks updating them "
        "from 2026-07-01" in between
    )
    after = notice(date(2026, 8, 1))
    assert after is not None
    assert "has blocked creating functions on it since 2026-06-01 and updating them since" in after
    for text in (before, between, after):
        assert "AWS names python3.14 as its successor." in text
        assert "creates" not in text  # the deploy's old wording
        assert text.count("AWS ") == 2  # "AWS blocks ... and ..." once, the successor once
