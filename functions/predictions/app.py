"""Predictions: churn probabilities from the scikit-learn model shipped in this package.

Event: FeatureEngineering's response, or any object with
  {"columns": [feature names], "features": [[float, ...], ...], "ids": [...] (optional)}

Response:
  {"statusCode": 200, "model": {"sklearn_version": ..., "sha256": ...},
   "predictions": [{"id": ..., "churn_probability": 0.42, "churn": false}, ...]}
  {"statusCode": 400, "error": "..."}   the event is malformed
  {"statusCode": 500, "error": "..."}   the model cannot be used (missing, or trained with
                                        another scikit-learn than the one in the layers)

The model (model/model.joblib) and its metadata (model/model.json) are written by
``scripts/train.py``, run by ``inv build.model`` under the target runtime with the built layers,
so the pickle matches the layer's scikit-learn. A pickle from another scikit-learn version may
load with a warning and predict wrongly, so this handler refuses it instead of unpickling it.
Set MODEL_DIR to load the model from another folder.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import sklearn

logger = logging.getLogger(__name__)
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

MODEL_DIR = Path(os.environ.get("MODEL_DIR") or Path(__file__).with_name("model"))


def load_model(model_dir: Path) -> tuple[Any, dict[str, Any], str | None]:
    """(model, metadata, problem): the model is None and problem says why if it is unusable."""
    try:
        metadata = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problem = f"no usable model metadata in {model_dir}/model.json ({exc})"
        return None, {}, f"{problem}; run `inv build.model`"
    trained_with = metadata.get("sklearn_version")
    if trained_with != sklearn.__version__:
        return (
            None,
            metadata,
            f"the model was trained with scikit-learn {trained_with} but this runtime has "
            f"{sklearn.__version__}; retrain it with `inv build.model` against the current layers",
        )
    try:
        model = joblib.load(model_dir / "model.joblib")
    except Exception as exc:  # any unpickling failure makes the model unusable
        return None, metadata, f"cannot load {model_dir}/model.joblib: {exc!r}"
    return model, metadata, None


MODEL, METADATA, MODEL_PROBLEM = load_model(MODEL_DIR)
if MODEL_PROBLEM:
    logger.error("model unusable: %s", MODEL_PROBLEM)


class BadEvent(ValueError):
    """The event cannot be scored."""


def to_frame(event: Any, feature_names: list[str]) -> tuple[pd.DataFrame, list[Any]]:
    """The features as a frame in the model's column order, and the ids; BadEvent if malformed."""
    if not isinstance(event, dict):
        raise BadEvent('the event must be an object with "columns" and "features"')
    columns, rows = event.get("columns"), event.get("features")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise BadEvent('"columns" must be a list of feature names')
    if not isinstance(rows, list):
        raise BadEvent('"features" must be a list of rows (lists of numbers)')
    missing = [c for c in feature_names if c not in columns]
    unexpected = [c for c in columns if c not in feature_names]
    if missing or unexpected or len(set(columns)) != len(columns):
        raise BadEvent(
            f"the columns do not match the model's: missing {missing}, unexpected {unexpected}; "
            f"the model takes {feature_names}"
        )
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise BadEvent(f"feature row {index} must be a list of {len(columns)} numbers")
        for value in row:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BadEvent(f"feature row {index} holds {value!r}, not a number")
            if not math.isfinite(value):
                raise BadEvent(f"feature row {index} holds {value!r}, not a finite number")
    ids = event.get("ids")
    if ids is None:
        ids = list(range(len(rows)))
    if not isinstance(ids, list) or len(ids) != len(rows):
        raise BadEvent('"ids", when given, must be a list with one id per feature row')
    frame = pd.DataFrame(rows, columns=columns, dtype=float)
    return frame[feature_names], ids


def predict(frame: pd.DataFrame, ids: list[Any]) -> list[dict[str, Any]]:
    """One prediction per row: the churn probability and the label at the model's threshold."""
    if not len(frame):
        return []
    threshold = float(METADATA.get("threshold", 0.5))
    probabilities = MODEL.predict_proba(frame)[:, 1]
    return [
        {"id": ids[n], "churn_probability": round(float(p), 6), "churn": bool(p >= threshold)}
        for n, p in enumerate(probabilities)
    ]


def lambda_handler(event: Any, context: Any | None) -> dict[str, Any]:
    """Score the event's feature rows (see the module docstring)."""
    if MODEL_PROBLEM:
        return {"statusCode": 500, "error": MODEL_PROBLEM}
    try:
        frame, ids = to_frame(event, list(METADATA["feature_names"]))
    except BadEvent as exc:
        logger.warning("rejected event: %s", exc)
        return {"statusCode": 400, "error": str(exc)}
    predictions = predict(frame, ids)
    logger.info("scored %d rows", len(predictions))
    return {
        "statusCode": 200,
        "model": {
            "sklearn_version": METADATA["sklearn_version"],
            "sha256": METADATA.get("model_sha256"),
        },
        "predictions": predictions,
    }
