"""DataValidation on the host: the schema checks, the event shapes, and the S3 CSV path (moto)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.functions.loading import load_module

FN_DIR = Path(__file__).resolve().parents[2] / "functions" / "data_validation"

GOOD = {
    "customer_id": 1,
    "signup_date": "2024-01-05",
    "age": 30,
    "income": 52000.5,
    "plan": "basic",
    "monthly_spend": 20,
}


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(FN_DIR))
    return load_module("data_validation_app", FN_DIR / "app.py")


def record(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


def errors_of(response: dict[str, Any]) -> list[tuple[int | None, str | None]]:
    return [(e["row"], e["column"]) for e in response["errors"]]


def test_valid_records_come_back_normalised(app: ModuleType) -> None:
    response = app.lambda_handler({"records": [record(), record(customer_id=2, income=None)]}, None)
    assert response["statusCode"] == 200
    assert (response["valid_count"], response["invalid_count"], response["errors"]) == (2, 0, [])
    assert response["records"][0] == {**GOOD, "monthly_spend": 20.0}
    assert response["records"][1]["income"] is None


@pytest.mark.parametrize(
    ("changes", "column", "text"),
    [
        ({"age": 17}, "age", "outside the range"),
        ({"age": True}, "age", "boolean"),
        ({"age": "x"}, "age", "expected an integer"),
        ({"age": 30.5}, "age", "expected an integer"),
        ({"age": None}, "age", "missing"),
        ({"income": -1}, "income", "outside the range"),
        ({"income": "lots"}, "income", "expected a number"),
        ({"plan": "gold"}, "plan", "is not one of"),
        ({"signup_date": "2024-02-30"}, "signup_date", "ISO 8601"),
        ({"signup_date": 20240105}, "signup_date", "ISO 8601"),
        ({"customer_id": 0}, "customer_id", "outside the range"),
        ({"age": {"nested": 1}}, "age", "expected an integer"),
    ],
)
def test_each_bad_value_is_reported_by_row_and_column(
    app: ModuleType, changes: dict[str, Any], column: str, text: str
) -> None:
    rows = [record(), record(**{"customer_id": 2, **changes})]
    response = app.lambda_handler({"records": rows}, None)
    assert response["statusCode"] == 200
    assert response["valid_count"] == 1
    assert errors_of(response) == [(1, column)]
    assert text in response["errors"][0]["error"]
    assert response["records"] == [app.validate([record()], app.SCHEMA)["records"][0]]


def test_duplicates_and_non_objects_are_invalid_rows(app: ModuleType) -> None:
    rows = [record(), record(), "not an object", None, record(customer_id=3)]
    response = app.lambda_handler({"records": rows}, None)
    assert errors_of(response) == [(1, "customer_id"), (2, None), (3, None)]
    assert [r["customer_id"] for r in response["records"]] == [1, 3]
    assert response["invalid_count"] == 3


def test_a_missing_required_column_invalidates_every_row(app: ModuleType) -> None:
    rows = [{k: v for k, v in record(customer_id=i).items() if k != "plan"} for i in (1, 2)]
    response = app.lambda_handler({"records": rows}, None)
    assert errors_of(response) == [(None, "plan")]
    assert response["valid_count"] == 0


def test_optional_column_may_be_absent_and_extra_columns_are_listed(app: ModuleType) -> None:
    row = {k: v for k, v in record(note="hi").items() if k != "monthly_spend"}
    response = app.lambda_handler({"records": [row]}, None)
    assert response["valid_count"] == 1
    assert response["ignored_columns"] == ["note"]
    assert "note" not in response["records"][0]


def test_an_empty_batch_is_valid(app: ModuleType) -> None:
    response = app.lambda_handler({"records": []}, None)
    assert (response["statusCode"], response["total"], response["errors"]) == (200, 0, [])


@pytest.mark.parametrize(
    "event",
    [
        [],
        "records",
        {},
        {"records": {"a": 1}},
        {"records": [], "s3": {"bucket": "b", "key": "k"}},
        {"s3": {"bucket": "b"}},
        {"s3": "s3://b/k"},
    ],
)
def test_malformed_events_get_a_400_not_an_exception(app: ModuleType, event: Any) -> None:
    response = app.lambda_handler(event, None)
    assert response["statusCode"] == 400
    assert "records" in response["error"] or "s3" in response["error"]


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(
            Bucket="input", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield client


CSV = (
    "customer_id,signup_date,age,income,plan,monthly_spend\n"
    "1,2024-01-05,30,52000.5,basic,20\n"
    "2,2024-02-01,41,,premium,\n"
    "3,2024-02-01,12,1000,basic,5\n"
)


def test_a_csv_object_in_s3_is_read_and_validated(app: ModuleType, s3: Any) -> None:
    s3.put_object(Bucket="input", Key="in/batch.csv", Body=CSV.encode())
    response = app.lambda_handler({"s3": {"bucket": "input", "key": "in/batch.csv"}}, None)
    assert response["statusCode"] == 200
    assert (response["total"], response["valid_count"]) == (3, 2)
    assert errors_of(response) == [(2, "age")]
    assert response["records"][1] == {
        "customer_id": 2,
        "signup_date": "2024-02-01",
        "age": 41,
        "income": None,
        "plan": "premium",
        "monthly_spend": None,
    }


def test_a_missing_s3_object_is_a_404(app: ModuleType, s3: Any) -> None:
    response = app.lambda_handler({"s3": {"bucket": "input", "key": "nope.csv"}}, None)
    assert response["statusCode"] == 404
    assert "s3://input/nope.csv" in response["error"]


def test_an_s3_object_over_the_size_limit_is_refused(
    app: ModuleType, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.put_object(Bucket="input", Key="big.csv", Body=CSV.encode())
    monkeypatch.setattr(app, "MAX_OBJECT_BYTES", 10)
    response = app.lambda_handler({"s3": {"bucket": "input", "key": "big.csv"}}, None)
    assert response["statusCode"] == 413


def test_the_shipped_events_behave_as_documented(app: ModuleType) -> None:
    def load(name: str) -> Any:
        return json.loads((FN_DIR / "events" / name).read_text())

    basic = app.lambda_handler(load("basic.json"), None)
    assert (basic["statusCode"], basic["invalid_count"]) == (200, 0)
    invalid = app.lambda_handler(load("invalid_records.json"), None)
    assert (invalid["statusCode"], invalid["valid_count"]) == (200, 0)
    assert app.lambda_handler(load("malformed.json"), None)["statusCode"] == 400


@pytest.mark.integration
def test_runs_in_the_sandbox_with_the_built_layers(run_function: Any) -> None:
    event = json.loads((FN_DIR / "events" / "basic.json").read_text())
    result = run_function("data_validation", event)
    assert result.ok, result.response
    assert result.response["statusCode"] == 200
    assert result.response["valid_count"] == 3


@pytest.mark.integration
def test_reads_s3_in_the_sandbox_through_the_aws_utilities_layer(run_function: Any) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket="input")
        client.put_object(Bucket="input", Key="batch.csv", Body=CSV.encode())
        result = run_function(
            "data_validation",
            {"s3": {"bucket": "input", "key": "batch.csv"}},
            env={"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1"},
        )
    finally:
        server.stop()
    assert result.ok, result.response
    assert (result.response["total"], result.response["valid_count"]) == (3, 2)
