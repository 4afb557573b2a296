"""In-memory Lambda and S3 with the calls layerkit's deploy makes: no moto, no network.

They keep state the way AWS does (layer versions, ``$LATEST`` and published versions, aliases,
objects with ETags and conditional puts/deletes) and raise botocore's ClientError with AWS's
error codes, so executor, rollback and stage-lock code runs unchanged against them.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import ClientError

REGION, ACCOUNT = "us-east-1", "123456789012"


def client_error(code: str, operation: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": f"{code} ({operation})"},
         "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )  # fmt: skip


class _Paginator:
    def __init__(self, pages: Callable[..., Iterator[dict[str, Any]]]) -> None:
        self._pages = pages

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return self._pages(**kwargs)


class FakeS3:
    class exceptions:
        class NoSuchKey(ClientError):
            pass

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.calls: list[str] = []

    def put_object(self, Bucket: str, Key: str, Body: Any, IfNoneMatch: str | None = None,
                   **_: Any) -> dict[str, Any]:  # fmt: skip
        self.calls.append(f"s3.PutObject {Key}")
        data = Body if isinstance(Body, bytes) else Body.read()
        if IfNoneMatch == "*" and (Bucket, Key) in self.objects:
            raise client_error("PreconditionFailed", "PutObject", 412)
        etag = f'"{hashlib.md5(data).hexdigest()}"'
        self.objects[(Bucket, Key)] = (data, etag)
        return {"ETag": etag}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if (Bucket, Key) not in self.objects:
            raise self.exceptions.NoSuchKey(
                {"Error": {"Code": "NoSuchKey", "Message": Key}}, "GetObject"
            )
        data, etag = self.objects[(Bucket, Key)]
        return {"Body": io.BytesIO(data), "ETag": etag}

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if (Bucket, Key) not in self.objects:
            raise client_error("404", "HeadObject", 404)
        return {"ETag": self.objects[(Bucket, Key)][1]}

    def delete_object(self, Bucket: str, Key: str, IfMatch: str | None = None) -> dict[str, Any]:
        self.calls.append(f"s3.DeleteObject {Key}")
        found = self.objects.get((Bucket, Key))
        if IfMatch is not None and (found is None or found[1] != IfMatch):
            raise client_error("PreconditionFailed", "DeleteObject", 412)
        self.objects.pop((Bucket, Key), None)
        return {}

    def get_paginator(self, name: str) -> _Paginator:
        assert name == "list_objects_v2"

        def pages(Bucket: str, Prefix: str = "") -> Iterator[dict[str, Any]]:
            keys = sorted(k for b, k in self.objects if b == Bucket and k.startswith(Prefix))
            yield {"Contents": [{"Key": k} for k in keys]}

        return _Paginator(pages)

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for _, k in self.objects if k.startswith(prefix))


class FakeLambda:
    """Functions, versions, aliases and layer versions; ``invoke`` answers via ``handlers``."""

    def __init__(self, s3: FakeS3) -> None:
        self.s3 = s3
        self.tags: dict[str, dict[str, str]] = {}  # function name -> its tags
        self.layers: dict[str, dict[int, dict[str, Any]]] = {}
        self.functions: dict[str, dict[str, Any]] = {}  # name -> {"$LATEST": cfg, "1": cfg}
        self.aliases: dict[tuple[str, str], str] = {}
        self.calls: list[str] = []
        #: function name -> handler(version config, payload) -> (ok, payload bytes)
        self.handlers: dict[str, Callable[[dict[str, Any], bytes], tuple[bool, bytes]]] = {}
        self.fail: dict[str, BaseException] = {}  # operation -> what the next call raises

    # -- helpers
    def _call(self, operation: str) -> None:
        self.calls.append(operation)
        if operation in self.fail:
            raise self.fail.pop(operation)

    def _code(self, bucket: str, key: str) -> str:
        data, _ = self.s3.objects[(bucket, key)]
        return base64.b64encode(hashlib.sha256(data).digest()).decode()

    def _function(self, name: str) -> dict[str, Any]:
        if name not in self.functions:
            raise client_error("ResourceNotFoundException", "GetFunction", 404)
        return self.functions[name]

    def _resolve(self, name: str, qualifier: str | None) -> dict[str, Any]:
        if qualifier is None and ":" in name:
            name, qualifier = name.split(":", 1)
        versions = self._function(name)
        qualifier = qualifier or "$LATEST"
        version = self.aliases.get((name, qualifier), qualifier)
        if version not in versions:
            raise client_error("ResourceNotFoundException", "GetFunctionConfiguration", 404)
        return versions[version]

    def state(self) -> dict[str, Any]:
        """Everything, for before/after comparisons."""
        return copy.deepcopy(
            {"layers": self.layers, "functions": self.functions, "aliases": self.aliases}
        )

    # -- layers
    def publish_layer_version(self, LayerName: str, Content: dict[str, str],
                              **_: Any) -> dict[str, Any]:  # fmt: skip
        self._call("PublishLayerVersion")
        versions = self.layers.setdefault(LayerName, {})
        number = max(versions, default=0) + 1
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{LayerName}:{number}"
        sha = self._code(Content["S3Bucket"], Content["S3Key"])
        versions[number] = {"LayerVersionArn": arn, "Version": number,
                            "Content": {"CodeSha256": sha}}  # fmt: skip
        return copy.deepcopy(versions[number])

    def delete_layer_version(self, LayerName: str, VersionNumber: int) -> dict[str, Any]:
        self._call("DeleteLayerVersion")
        self.layers.get(LayerName, {}).pop(VersionNumber, None)
        return {}

    def get_layer_version(self, LayerName: str, VersionNumber: int) -> dict[str, Any]:
        return copy.deepcopy(self.layers[LayerName][VersionNumber])

    def get_paginator(self, name: str) -> _Paginator:
        assert name == "list_layer_versions"

        def pages(LayerName: str) -> Iterator[dict[str, Any]]:
            if LayerName not in self.layers:
                raise client_error("ResourceNotFoundException", "ListLayerVersions", 404)
            yield {"LayerVersions": [{"Version": v} for v in self.layers[LayerName]]}

        return _Paginator(pages)

    # -- functions
    def create_function(self, FunctionName: str, Code: dict[str, str], Layers: list[str],
                        Environment: dict[str, Any], Architectures: list[str],
                        **config: Any) -> dict[str, Any]:  # fmt: skip
        self._call("CreateFunction")
        config.pop("Publish", None)
        self.tags[FunctionName] = dict(config.pop("Tags", {}))
        self.functions[FunctionName] = {"$LATEST": {
            "FunctionName": FunctionName, "Version": "$LATEST",
            "CodeSha256": self._code(Code["S3Bucket"], Code["S3Key"]),
            "Layers": [{"Arn": a} for a in Layers], "Environment": Environment,
            "Architectures": Architectures, **config,
        }}  # fmt: skip
        return copy.deepcopy(self.functions[FunctionName]["$LATEST"])

    def update_function_code(self, FunctionName: str, S3Bucket: str, S3Key: str,
                             Architectures: list[str]) -> dict[str, Any]:  # fmt: skip
        self._call("UpdateFunctionCode")
        latest = self._function(FunctionName)["$LATEST"]
        latest.update(CodeSha256=self._code(S3Bucket, S3Key), Architectures=Architectures)
        return copy.deepcopy(latest)

    def update_function_configuration(self, FunctionName: str, Layers: list[str],
                                      **config: Any) -> dict[str, Any]:  # fmt: skip
        self._call("UpdateFunctionConfiguration")
        latest = self._function(FunctionName)["$LATEST"]
        latest.update(config, Layers=[{"Arn": a} for a in Layers])
        return copy.deepcopy(latest)

    def get_function(self, FunctionName: str) -> dict[str, Any]:
        return {
            "Configuration": copy.deepcopy(self._resolve(FunctionName, None)),
            "Tags": dict(self.tags.get(FunctionName, {})),
        }

    def get_function_configuration(self, FunctionName: str,
                                   Qualifier: str | None = None) -> dict[str, Any]:  # fmt: skip
        return copy.deepcopy(self._resolve(FunctionName, Qualifier))

    def publish_version(self, FunctionName: str, CodeSha256: str) -> dict[str, Any]:
        self._call("PublishVersion")
        versions = self._function(FunctionName)
        if versions["$LATEST"]["CodeSha256"] != CodeSha256:
            raise client_error("InvalidParameterValueException", "PublishVersion")
        number = str(max((int(v) for v in versions if v != "$LATEST"), default=0) + 1)
        versions[number] = {**copy.deepcopy(versions["$LATEST"]), "Version": number}
        return copy.deepcopy(versions[number])

    def delete_function(self, FunctionName: str) -> dict[str, Any]:
        self._call("DeleteFunction")
        self._function(FunctionName)
        del self.functions[FunctionName]
        self.aliases = {k: v for k, v in self.aliases.items() if k[0] != FunctionName}
        return {}

    def get_waiter(self, name: str) -> Any:
        fake = self

        class Waiter:
            def wait(self, FunctionName: str, WaiterConfig: dict[str, int]) -> None:
                fake._function(FunctionName)

        return Waiter()

    def invoke(self, FunctionName: str, Payload: bytes, **_: Any) -> dict[str, Any]:
        self._call("Invoke")
        config = self._resolve(FunctionName, None)
        handler = self.handlers.get(config["FunctionName"], lambda c, p: (True, b'"ok"'))
        ok, body = handler(config, Payload)
        response: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(body)}
        if not ok:
            response["FunctionError"] = "Unhandled"
        return response

    # -- aliases
    def create_alias(self, FunctionName: str, Name: str, FunctionVersion: str) -> dict[str, Any]:
        self._call("CreateAlias")
        if (FunctionName, Name) in self.aliases:
            raise client_error("ResourceConflictException", "CreateAlias", 409)
        self.aliases[(FunctionName, Name)] = FunctionVersion
        return {"FunctionVersion": FunctionVersion}

    def update_alias(self, FunctionName: str, Name: str, FunctionVersion: str) -> dict[str, Any]:
        self._call("UpdateAlias")
        if (FunctionName, Name) not in self.aliases:
            raise client_error("ResourceNotFoundException", "UpdateAlias", 404)
        self.aliases[(FunctionName, Name)] = FunctionVersion
        return {"FunctionVersion": FunctionVersion}

    def get_alias(self, FunctionName: str, Name: str) -> dict[str, Any]:
        if (FunctionName, Name) not in self.aliases:
            raise client_error("ResourceNotFoundException", "GetAlias", 404)
        return {"FunctionVersion": self.aliases[(FunctionName, Name)]}

    def delete_alias(self, FunctionName: str, Name: str) -> dict[str, Any]:
        self._call("DeleteAlias")
        if self.aliases.pop((FunctionName, Name), None) is None:
            raise client_error("ResourceNotFoundException", "DeleteAlias", 404)
        return {}


def error_payload(error_type: str, message: str) -> bytes:
    """Lambda's error shape as an invoke payload."""
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()
