"""Where `crm local`'s stand-in for AWS (moto's server) is, for the commands run beside it.

`crm local` starts moto on a free port with made-up credentials, in its own environment: another shell's
`crm dlq list` knew neither and failed (NoCredentialsError, or real AWS). So `crm local` records the
endpoint, region, credentials and queue URLs in `.crm-local/aws.json` (git-ignored, like the rest of
`.crm-local/`) while it runs, and removes it when it stops; a command given no AWS endpoint of its own
uses what is recorded there.
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from layers.queue.sqs import Queues

FILE_NAME = "aws.json"
_ENV = {  # environment variable -> key in the file
    "AWS_ENDPOINT_URL": "endpoint_url",
    "AWS_DEFAULT_REGION": "region",
    "AWS_ACCESS_KEY_ID": "access_key_id",
    "AWS_SECRET_ACCESS_KEY": "secret_access_key",
    "JOBS_QUEUE_URL": "jobs_queue_url",
    "JOBS_DLQ_URL": "jobs_dlq_url",
    "JOBS_BULK_QUEUE_URL": "jobs_bulk_queue_url",
    "JOBS_BULK_DLQ_URL": "jobs_bulk_dlq_url",
    "FILES_BUCKET": "files_bucket",
}


class NotRunning(RuntimeError):
    """The record names an endpoint nothing answers at: the `crm local` that wrote it is gone."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(f"nothing answers at {endpoint}, which {FILE_NAME} names: is crm local still running?")
        self.endpoint = endpoint


def record(directory: Path, queues: Queues, *, files_bucket: str) -> Path:
    """Write what a command needs to reach this process's AWS stand-in (readable by the owner only)."""
    path = directory / FILE_NAME
    data: dict[str, Any] = {
        "pid": os.getpid(),
        "endpoint_url": os.environ["AWS_ENDPOINT_URL"],
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        "access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
        "secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
        "jobs_queue_url": queues.jobs_url,
        "jobs_dlq_url": queues.dlq_url,
        "jobs_bulk_queue_url": queues.bulk_url,
        "jobs_bulk_dlq_url": queues.bulk_dlq_url,
        "files_bucket": files_bucket,
    }
    path.touch(mode=0o600)
    path.write_text(json.dumps(data, indent=2))
    return path


def forget(directory: Path) -> None:
    """Remove the record, if it is this process's (another `crm local` may have written its own since)."""
    path = directory / FILE_NAME
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def use_recorded(directory: Path) -> str | None:
    """When this environment names no AWS endpoint and `crm local` recorded one, use it with the
    credentials, queues and bucket recorded beside it; the endpoint used, or None. NotRunning when
    nothing answers at the recorded endpoint."""
    if os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("CRM_ENV", "local") != "local":
        return None
    try:
        data = json.loads((directory / FILE_NAME).read_text())
    except (OSError, ValueError):
        return None
    endpoint = str(data["endpoint_url"])
    if not _answers(endpoint):
        raise NotRunning(endpoint)  # at once, rather than after botocore's retries
    os.environ.pop("AWS_SESSION_TOKEN", None)  # credentials of a real account have no business here
    for variable, key in _ENV.items():
        if data.get(key):
            os.environ[variable] = str(data[key])
    return endpoint


def _answers(endpoint: str) -> bool:
    address = urlsplit(endpoint)
    try:
        with socket.create_connection((address.hostname or "127.0.0.1", address.port or 80), timeout=2):
            return True
    except OSError:
        return False
