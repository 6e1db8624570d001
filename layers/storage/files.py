"""The files bucket: put files and streams, read objects as streaming text, presigned URLs.

Every key starts with the workspace id (`<workspace_id>/imports/<id>/source.csv`), so a key a client
names can be checked to be its own. Objects are streamed, never read whole into memory.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO, Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from layers.aws.clients import client
from shared.settings import get_settings

DEFAULT_EXPIRY_SECONDS = 3600
_BUFFER = 64 * 1024
# 8 MiB parts, two in flight: a large upload holds ~16 MiB, not boto3's default of ten parts at once.
_TRANSFER = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024, max_concurrency=2)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str | None


def bucket() -> str:
    return get_settings().files_bucket


def workspace_key(workspace_id: str, *parts: str) -> str:
    """`<workspace_id>/<part>/<part>...`: the only shape of key this layer writes."""
    return "/".join((workspace_id, *parts))


def in_workspace(workspace_id: str, key: str) -> bool:
    """Is `key` inside the workspace's prefix (and free of tricks like `..`)?"""
    parts = key.split("/")
    return len(parts) > 1 and parts[0] == workspace_id and all(p not in ("", ".", "..") for p in parts[1:])


def put_stream(key: str, stream: IO[bytes], *, content_type: str = "application/octet-stream",
               retention: str | None = None) -> None:
    """Upload a binary stream; boto3 switches to a multipart upload for large ones. `retention="7d"` tags the
    object for the bucket's 7-day lifecycle rule (stacks/data.yaml); untagged objects go after 30 days."""
    extra = {"ContentType": content_type}
    if retention is not None:
        extra["Tagging"] = f"retention={retention}"
    client("s3").upload_fileobj(stream, bucket(), key, ExtraArgs=extra, Config=_TRANSFER)


def put_bytes(key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
    put_stream(key, io.BytesIO(data), content_type=content_type)


def head(key: str) -> ObjectInfo | None:
    """The object's size and type, or None when there is no such object."""
    try:
        found = client("s3").head_object(Bucket=bucket(), Key=key)
    except ClientError as error:
        if _status(error) in (403, 404):
            return None
        raise
    return ObjectInfo(key, int(found["ContentLength"]), found.get("ContentType"))


def read_head(key: str, size: int) -> bytes:
    """The first `size` bytes of an object (a sample to sniff), b"" when it is empty or missing."""
    try:
        found = client("s3").get_object(Bucket=bucket(), Key=key, Range=f"bytes=0-{max(size, 1) - 1}")
    except ClientError as error:
        if _status(error) in (404, 416):
            return b""
        raise
    return found["Body"].read()  # type: ignore[no-any-return]


def open_binary(key: str, *, offset: int = 0) -> IO[bytes]:
    """A buffered binary reader over the object from byte `offset` (empty past the end)."""
    params: dict[str, Any] = {"Bucket": bucket(), "Key": key}
    if offset:
        params["Range"] = f"bytes={offset}-"
    try:
        body = client("s3").get_object(**params)["Body"]
    except ClientError as error:
        if offset and _status(error) == 416:  # the offset is the end of the object: nothing is left
            return io.BytesIO(b"")
        raise
    return io.BufferedReader(_RawBody(body), buffer_size=_BUFFER)


def open_text(key: str, *, offset: int = 0, encoding: str = "utf-8-sig", newline: str | None = "") -> io.TextIOWrapper:
    """The object as a streaming text reader (newline="" keeps line endings, as csv.reader wants)."""
    return io.TextIOWrapper(open_binary(key, offset=offset), encoding=encoding, newline=newline)


def download_url(key: str, *, expires_in: int = DEFAULT_EXPIRY_SECONDS, file_name: str | None = None) -> str:
    """A presigned GET of the object, valid for `expires_in` seconds."""
    params: dict[str, Any] = {"Bucket": bucket(), "Key": key}
    if file_name:
        params["ResponseContentDisposition"] = f'attachment; filename="{file_name}"'
    return client("s3").generate_presigned_url(  # type: ignore[no-any-return]
        "get_object", Params=params, ExpiresIn=expires_in)


def upload_url(key: str, *, expires_in: int = DEFAULT_EXPIRY_SECONDS) -> str:
    """A presigned PUT to the key, valid for `expires_in` seconds (the client sends the file as the body)."""
    return client("s3").generate_presigned_url(  # type: ignore[no-any-return]
        "put_object", Params={"Bucket": bucket(), "Key": key}, ExpiresIn=expires_in)


def delete(key: str) -> None:
    client("s3").delete_object(Bucket=bucket(), Key=key)


class _RawBody(io.RawIOBase):
    """botocore's StreamingBody as a raw stream, so io.BufferedReader / TextIOWrapper can sit on it."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
