import json
import os

import boto3

sns = boto3.client("sns")


def lambda_handler(event, context):
    order_id = (event.get("pathParameters") or {}).get("id", "unknown")
    sns.publish(TopicArn=os.environ["TOPIC_ARN"], Message=json.dumps({"order": order_id}))
    return {"statusCode": 202, "body": json.dumps({"notified": order_id})}
