"""FeatureEngineering on the host: deterministic, batch-independent features; clear 400s."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.functions.loading import load_module

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
FN_DIR = FUNCTIONS / "feature_engineering"

GOOD = {
    "customer_id": 7,
    "signup_date": "2024-01-05",  # a Friday
    "age": 59,
    "income": 125000.0,
    "plan": "standard",
    "monthly_spend": 250.0,
}


def load(name: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(path.parent))
    return load_module(name, path)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load("feature_engineering_app", FN_DIR / "app.py", monkeypatch)


def features(app: ModuleType, *records: dict[str, Any]) -> list[dict[str, float]]:
    response = app.lambda_handler({"records": list(records)}, None)
    assert response["statusCode"] == 200
    return [dict(zip(response["columns"], row, strict=True)) for row in response["features"]]


def test_known_record_maps_to_known_features(app: ModuleType) -> None:
    (row,) = features(app, GOOD)
    assert row == pytest.approx(
        {
            "age": 0.5,
            "income": 0.5,
            "monthly_spend": 0.5,
            "signup_year": 24 / 30,
            "signup_month": 0.0,
            "signup_dayofweek": 4 / 6,
            "plan_basic": 0.0,
            "plan_standard": 1.0,
            "plan_premium": 0.0,
        }
    )


def test_features_do_not_depend_on_the_rest_of_the_batch(app: ModuleType) -> None:
    others = [
        {**GOOD, "customer_id": 8, "age": 99, "income": 1.0, "plan": "premium"},
        {**GOOD, "customer_id": 9, "age": 18, "monthly_spend": 0.0, "plan": "basic"},
    ]
    alone = features(app, GOOD)
    in_batch = features(app, *others, GOOD)
    assert in_batch[-1] == alone[0]
    assert features(app, GOOD) == alone


def test_out_of_range_values_are_clipped_and_unknown_plans_encode_as_zeros(
    app: ModuleType,
) -> None:
    (row,) = features(app, {**GOOD, "age": 130, "income": 1e9, "plan": "gold"})
    assert (row["age"], row["income"]) == (1.0, 1.0)
    assert (row["plan_basic"], row["plan_standard"], row["plan_premium"]) == (0.0, 0.0, 0.0)


def test_missing_optional_numbers_take_their_declared_default(app: ModuleType) -> None:
    row = {k: v for k, v in GOOD.items() if k != "monthly_spend"}
    (features_row,) = features(app, {**row, "income": None})
    assert features_row["monthly_spend"] == 0.0
    assert features_row["income"] == pytest.approx(40_000 / 250_000)


def test_ids_and_columns_come_back_in_order(app: ModuleType) -> None:
    response = app.lambda_handler({"records": [GOOD, {**GOOD, "customer_id": 3}]}, None)
    assert response["ids"] == [7, 3]
    assert response["columns"] == list(app.FEATURE_NAMES)
    assert all(len(row) == len(app.FEATURE_NAMES) for row in response["features"])


@pytest.mark.parametrize(
    ("event", "text"),
    [
        ([], "records"),
        ({"features": []}, "records"),
        ({"records": ["x"]}, "record 0 is not an object"),
        ({"records": [GOOD, {**GOOD, "age": None}]}, "record 1: age is required"),
        ({"records": [{**GOOD, "age": "old"}]}, "age must be a finite number"),
        ({"records": [{**GOOD, "income": float("nan")}]}, "income must be a finite number"),
        ({"records": [{**GOOD, "signup_date": "soon"}]}, "signup_date must be an ISO 8601"),
        ({"records": [{**GOOD, "plan": 3}]}, "plan must be a string"),
    ],
)
def test_bad_events_get_a_400_naming_the_record(app: ModuleType, event: Any, text: str) -> None:
    response = app.lambda_handler(event, None)
    assert response["statusCode"] == 400
    assert text in response["error"]


def test_takes_data_validation_output_as_its_event(
    app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    validation = load("dv_app_for_fe", FUNCTIONS / "data_validation" / "app.py", monkeypatch)
    event = json.loads((FUNCTIONS / "data_validation" / "events" / "basic.json").read_text())
    validated = validation.lambda_handler(event, None)
    response = app.lambda_handler(validated, None)
    assert response["statusCode"] == 200
    assert response["ids"] == [1, 2, 3]


def test_the_shipped_events_behave_as_documented(app: ModuleType) -> None:
    basic = json.loads((FN_DIR / "events" / "basic.json").read_text())
    assert app.lambda_handler(basic, None)["statusCode"] == 200
    malformed = json.loads((FN_DIR / "events" / "malformed.json").read_text())
    assert app.lambda_handler(malformed, None)["statusCode"] == 400


@pytest.mark.integration
def test_runs_in_the_sandbox_with_the_built_layers_and_matches_the_host(
    app: ModuleType, run_function: Any
) -> None:
    event = json.loads((FN_DIR / "events" / "basic.json").read_text())
    result = run_function("feature_engineering", event)
    assert result.ok, result.response
    on_host = app.lambda_handler(event, None)
    assert result.response["columns"] == on_host["columns"]
    for lambda_row, host_row in zip(result.response["features"], on_host["features"], strict=True):
        assert lambda_row == pytest.approx(host_row, abs=1e-12)
