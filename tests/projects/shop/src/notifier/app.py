import json
import os

import boto3

sns = boto3.client("sns")


def lambda_handler(event, context):
    order_id = (event.get("pathParameters") or {}).get("id")
    if order_id is None:  # not an API request for an order: nothing to publish
        return {"statusCode": 400, "body": json.dumps({"error": "no order id in the path"})}
    sns.publish(TopicArn=os.environ["TOPIC_ARN"], Message=json.dumps({"order": order_id}))
    return {"statusCode": 202, "body": json.dumps({"notified": order_id})}
