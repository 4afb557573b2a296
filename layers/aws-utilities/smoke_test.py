"""Smoke test of the aws-utilities layer, run inside the sandbox on the target runtime.

For every botocore service the layer keeps (LAYERKIT_BOTOCORE_SERVICES, comma-separated, set by
layerkit from layer.toml's slim.botocore-services; when unset: every service the layer ships),
create a client with a region and dummy credentials, and send one request with no required
input all the way through botocore's serializer, endpoint rules and SigV4 signer; a
`before-send` hook captures the signed request and stops it, so no network is used. Also checks
boto3 resources and an S3 presigned URL. Exits non-zero with a message on failure.
"""

import os
import sys

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import UnknownServiceError

REGION = "us-east-1"
CREDENTIALS = {
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}
PREFIXES = ("List", "Describe", "Get")


class Captured(Exception):
    """Raised by the before-send hook to stop a request once it is signed."""

    def __init__(self, request):
        super().__init__(request.url)
        self.request = request


def stop_before_send(request, **kwargs):
    raise Captured(request)


def failures_for(session, service, called):
    try:
        client = session.client(
            service, config=Config(retries={"max_attempts": 1}, connect_timeout=1)
        )
    except UnknownServiceError as exc:
        return [f"{service}: no client ({exc})"]
    model = client.meta.service_model
    names = list(model.operation_names)
    if not names:
        return [f"{service}: the service model has no operations"]
    simple = [
        name
        for name in names
        if name.startswith(PREFIXES)
        and not (model.operation_model(name).input_shape or _Empty).required_members
    ]
    if not simple:
        return []  # nothing to call without input; the client and model loaded
    operation = sorted(simple, key=lambda n: (not n.startswith("List"), len(n), n))[0]
    method = getattr(client, botocore.xform_name(operation))
    client.meta.events.register_first("before-send", stop_before_send)
    try:
        method()
    except Captured as captured:
        request = captured.request
        if "Authorization" not in request.headers and "X-Amz-Signature" not in request.url:
            return [f"{service}.{operation}: the request was not signed"]
        if not request.url.startswith("https://"):
            return [f"{service}.{operation}: unexpected endpoint {request.url}"]
        called.append(f"{service}.{operation}")
        return []
    except Exception as exc:  # a slimmed-away endpoint ruleset, serializer data ...
        return [f"{service}.{operation}: {type(exc).__name__}: {exc}"]
    return [f"{service}.{operation}: the request was not stopped before sending"]


class _Empty:
    required_members = ()


def main():
    wanted = [s.strip() for s in os.environ.get("LAYERKIT_BOTOCORE_SERVICES", "").split(",")]
    wanted = [s for s in wanted if s]
    session = boto3.session.Session(region_name=REGION, **CREDENTIALS)
    available = set(session.get_available_services())
    services = wanted or sorted(available)
    problems = [
        f"{s}: kept in layer.toml but not in the layer" for s in wanted if s not in available
    ]
    called = []
    for service in services:
        if service in available:
            problems.extend(failures_for(session, service, called))
    for service in sorted(set(services) & set(session.get_available_resources())):
        try:
            session.resource(service)
        except Exception as exc:
            problems.append(f"boto3.resource({service!r}): {type(exc).__name__}: {exc}")
    if "s3" in available:
        s3 = session.client("s3", config=Config(signature_version="s3v4"))
        url = s3.generate_presigned_url(
            "get_object", Params={"Bucket": "example-bucket", "Key": "a/b.csv"}, ExpiresIn=60
        )
        if "X-Amz-Signature=" not in url:
            problems.append(f"s3 presigned URL is not signed: {url}")
    if problems:
        sys.exit("aws-utilities smoke test failed:\n  " + "\n  ".join(problems))
    print(
        f"aws-utilities OK: boto3 {boto3.__version__}, botocore {botocore.__version__}, "
        f"{len(services)} services; signed without sending: {', '.join(called)}"
    )


if __name__ == "__main__":
    main()
