"""A build manifest like the real one: three layers (one over budget), two functions."""

from __future__ import annotations

from typing import Any


def _layer(name: str, size: int, budget: int, zipped: int = 1, dists: dict | None = None) -> dict:
    return {
        "kind": "layer",
        "name": name,
        "target": "python3.9-x86_64",
        "sha256": f"sha-{name}-{size}",
        "zipped_bytes": zipped,
        "unzipped_bytes": size,
        "files": 3,
        "budget": budget,
        "distribution_bytes": dists or {name + "-dist": size},
        "bytecode": {"mode": "all", "compiled_files": 5, "added_bytes": 10},
        "slim": [
            {"name": "tests", "removed_files": 2, "removed_bytes": 50, "examples": []},
            {"name": "docs", "removed_files": 0, "removed_bytes": 0, "examples": []},
        ],
        "layers": [],
    }


def make_manifest(target: str = "python3.9-x86_64", ml_size: int = 150_000_000) -> dict[str, Any]:
    """A manifest; ``ml_size`` changes one layer, to compare two builds."""
    artifacts = {
        # sort_keys order is alphabetical; by size urllib3 comes first
        "layers/aws.zip": _layer(
            "aws",
            6_000_000,
            50_000_000,
            dists={
                "boto3": 500_000,
                "botocore": 2_000_000,
                "jmespath": 100_000,
                "urllib3": 3_400_000,
            },
        ),
        "layers/core.zip": _layer("core", 100_000_000, 100_000_000),
        "layers/ml.zip": _layer("ml", ml_size, 100_000_000, zipped=60_000_000),
        "functions/predictions.zip": {
            "kind": "function",
            "name": "predictions",
            "target": "python3.9-x86_64",
            "sha256": "sha-fn",
            "zipped_bytes": 1000,
            "unzipped_bytes": 20_000_000,
            "files": 2,
            "layers": ["core", "ml"],
        },
        "functions/lonely.zip": {
            "kind": "function",
            "name": "lonely",
            "target": "python3.9-x86_64",
            "sha256": "sha-lonely",
            "zipped_bytes": 10,
            "unzipped_bytes": 10,
            "layers": ["core", "gone"],
        },
    }
    for rec in artifacts.values():
        rec["target"] = target
    return {"layerkit": "0.1.0", "artifacts": artifacts}
