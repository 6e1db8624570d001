"""Lazy boto3 clients, one per service per process; tests and `crm local` point them at moto.

boto3 clients are thread-safe; creating one costs ~50 ms, so they are made once and shared. The
endpoint comes from AWS_ENDPOINT_URL (boto3 reads it itself), which `crm local` sets to moto's server.
"""
from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from shared.settings import get_settings

_lock = threading.Lock()
_clients: dict[str, Any] = {}

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,  # above SQS's 20 s long poll
    max_pool_connections=32,
)


def client(service: str) -> Any:
    found = _clients.get(service)
    if found is None:
        with _lock:
            found = _clients.get(service)
            if found is None:
                found = boto3.client(service, region_name=get_settings().aws_region, config=_CONFIG)
                _clients[service] = found
    return found


def use_client(service: str, replacement: Any | None) -> None:
    """Swap a service's client (tests); None forgets it so the next call makes a new one."""
    with _lock:
        if replacement is None:
            _clients.pop(service, None)
        else:
            _clients[service] = replacement


def reset_clients() -> None:
    with _lock:
        _clients.clear()
