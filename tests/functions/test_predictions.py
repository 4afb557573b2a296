"""Predictions on the host, with a model trained on the host by the same training script.

The committed model is trained for the target runtime's scikit-learn; the host's differs, which
is exactly what the handler must refuse (tested below) rather than unpickle.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.functions.loading import load_module

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
FN_DIR = FUNCTIONS / "predictions"


load = load_module


@pytest.fixture(scope="module")
def host_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    train = load("predictions_train_script", FN_DIR / "scripts" / "train.py")
    fe_app = FUNCTIONS / "feature_engineering" / "app.py"
    assert (
        train.main(["--out", str(out), "--feature-engineering", str(fe_app), "--rows", "500"]) == 0
    )
    return out


def load_app(monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> ModuleType:
    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    monkeypatch.syspath_prepend(str(FN_DIR))
    return load("predictions_app", FN_DIR / "app.py")


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, host_model: Path) -> ModuleType:
    return load_app(monkeypatch, host_model)


def event() -> dict[str, Any]:
    return json.loads((FN_DIR / "events" / "basic.json").read_text())


def test_predicts_one_probability_per_row_with_ids(app: ModuleType) -> None:
    response = app.lambda_handler(event(), None)
    assert response["statusCode"] == 200
    predictions = response["predictions"]
    assert [p["id"] for p in predictions] == [1, 2, 3]
    assert all(0.0 <= p["churn_probability"] <= 1.0 for p in predictions)
    assert all(p["churn"] == (p["churn_probability"] >= 0.5) for p in predictions)
    assert response["model"]["sha256"] == app.METADATA["model_sha256"]


def test_column_order_in_the_event_does_not_matter(app: ModuleType) -> None:
    original = event()
    order = list(reversed(range(len(original["columns"]))))
    shuffled = {
        "ids": original["ids"],
        "columns": [original["columns"][i] for i in order],
        "features": [[row[i] for i in order] for row in original["features"]],
    }
    assert app.lambda_handler(shuffled, None) == app.lambda_handler(original, None)


def test_without_ids_rows_are_numbered(app: ModuleType) -> None:
    body = {k: v for k, v in event().items() if k != "ids"}
    assert [p["id"] for p in app.lambda_handler(body, None)["predictions"]] == [0, 1, 2]


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"columns": ["age"]}, "missing"),
        ({"columns": None}, '"columns"'),
        ({"features": "x"}, '"features"'),
        ({"features": [[0.1]]}, "feature row 0 must be a list of 9 numbers"),
        ({"features": [["a"] * 9]}, "not a number"),
        ({"features": [[float("inf")] * 9]}, "not a finite number"),
        ({"ids": [1]}, '"ids"'),
    ],
)
def test_malformed_events_get_a_400(app: ModuleType, change: dict[str, Any], text: str) -> None:
    response = app.lambda_handler({**event(), **change}, None)
    assert response["statusCode"] == 400
    assert text in response["error"]


def test_a_model_from_another_scikit_learn_is_refused_without_unpickling(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, host_model: Path
) -> None:
    metadata = json.loads((host_model / "model.json").read_text())
    (tmp_path / "model.json").write_text(json.dumps({**metadata, "sklearn_version": "0.0.1"}))
    (tmp_path / "model.joblib").write_bytes(b"not a pickle")
    app = load_app(monkeypatch, tmp_path)
    response = app.lambda_handler(event(), None)
    assert response["statusCode"] == 500
    assert "scikit-learn 0.0.1" in response["error"]
    assert "inv build.model" in response["error"]


def test_a_missing_model_is_a_clear_500(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    app = load_app(monkeypatch, tmp_path / "nowhere")
    response = app.lambda_handler(event(), None)
    assert response["statusCode"] == 500
    assert "model.json" in response["error"]


def test_the_committed_model_takes_the_features_feature_engineering_makes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(FUNCTIONS / "feature_engineering"))
    features = load("fe_app_for_predictions", FUNCTIONS / "feature_engineering" / "app.py")
    committed = json.loads((FN_DIR / "model" / "model.json").read_text())
    assert tuple(committed["feature_names"]) == features.FEATURE_NAMES
    assert (FN_DIR / "model" / "model.joblib").stat().st_size < 100_000


def test_the_malformed_event_is_rejected(app: ModuleType) -> None:
    malformed = json.loads((FN_DIR / "events" / "malformed.json").read_text())
    assert app.lambda_handler(malformed, None)["statusCode"] == 400


@pytest.mark.integration
def test_the_targets_model_loads_and_predicts_in_the_sandbox(
    run_function: Any, built_on: Any
) -> None:
    """python3.9 runs the committed model; python3.12 the one trained by python3.12."""
    result = run_function("predictions", event())
    assert result.ok, result.response
    assert result.response["statusCode"] == 200, result.response
    shipped = json.loads((built_on.model_dir / "model.json").read_text())
    assert shipped["python_version"] == built_on.target.python_version_text
    assert result.response["model"]["sha256"] == shipped["model_sha256"]
    if built_on.target.runtime == "python3.9":  # the template's target ships the committed one
        committed = json.loads((FN_DIR / "model" / "model.json").read_text())
        assert result.response["model"]["sha256"] == committed["model_sha256"]
    assert [p["id"] for p in result.response["predictions"]] == [1, 2, 3]


@pytest.mark.integration
def test_the_pipeline_runs_end_to_end_in_the_sandbox(run_function: Any) -> None:
    raw = json.loads((FUNCTIONS / "data_validation" / "events" / "basic.json").read_text())
    validated = run_function("data_validation", raw).response
    engineered = run_function("feature_engineering", validated).response
    scored = run_function("predictions", engineered).response
    assert scored["statusCode"] == 200, scored
    assert len(scored["predictions"]) == validated["valid_count"] == 3


@pytest.mark.integration
def test_retraining_with_the_built_layers_reproduces_the_committed_model(
    built: Any, tmp_path: Path
) -> None:
    from model_training import model_is_current, read_model_info, train_model

    layers = built.unzipped_layers("predictions", tmp_path / "layers")
    model = train_model(built.project, tmp_path / "model", built.interpreter, layers)
    fresh = read_model_info(model.parent)
    committed = read_model_info(FN_DIR / "model")
    assert fresh is not None
    assert committed is not None
    assert fresh.sklearn_version == committed.sklearn_version, "retrain: `inv build.model`"
    assert fresh.sha256 == committed.sha256
    assert model.read_bytes() == (FN_DIR / "model" / "model.joblib").read_bytes()
    assert model_is_current(FN_DIR / "model", fresh.sklearn_version, "3.9")
