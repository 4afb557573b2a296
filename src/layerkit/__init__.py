"""layerkit: build, slim, validate and deploy AWS Lambda layers and functions."""

from __future__ import annotations

__version__ = "0.1.0"
