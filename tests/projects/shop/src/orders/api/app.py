import json
import os
from datetime import datetime, timezone

from ulid import ULID


def lambda_handler(event, context):
    body = json.loads(event.get("body") or "{}")
    order = {
        "id": str(ULID()),
        "items": body.get("items", []),
        "stage": os.environ.get("STAGE", "dev"),
        "created": datetime.now(timezone.utc).isoformat(),
    }
    return {"statusCode": 201, "body": json.dumps(order)}
