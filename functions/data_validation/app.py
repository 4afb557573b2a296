"""Placeholder handler until the functions land (issue 5)."""

import logging

import pandas as pd

logger = logging.getLogger()


def lambda_handler(event, context):
    frame = pd.DataFrame(event.get("records", []))
    logger.info("received %d records", len(frame))
    return {"records": len(frame)}
