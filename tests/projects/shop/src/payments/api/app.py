import json
import os

import jwt
from ulid import ULID


def lambda_handler(event, context):
    order_id = (event.get("pathParameters") or {}).get("id", "unknown")
    body = json.loads(event.get("body") or "{}")
    payment = {"id": str(ULID()), "order": order_id, "amount": body.get("amount", 0)}
    receipt = jwt.encode(payment, os.environ.get("RECEIPT_KEY", "dev-key"), algorithm="HS256")
    return {"statusCode": 200, "body": json.dumps({**payment, "receipt": receipt})}
