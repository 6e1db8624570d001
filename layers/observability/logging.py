"""JSON logs to stdout through powertools Logger (CloudWatch reads stdout)."""
from __future__ import annotations

import logging
from functools import lru_cache

from aws_lambda_powertools import Logger

from shared.settings import get_settings


@lru_cache(maxsize=1)
def get_logger() -> Logger:
    logger = Logger(service="crm", level=get_settings().log_level, use_rfc3339=True)
    # One JSON line per event: the server may configure the root logger with its own format.
    logging.getLogger("crm").propagate = False
    return logger


def configure_process_logging() -> None:
    """Processes other than the HTTP server (worker, relay): every module logger as one JSON line."""
    import sys

    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(LambdaPowertoolsFormatter(service="crm", use_rfc3339=True))
    logging.basicConfig(level=get_settings().log_level, handlers=[handler], force=True)
    for noisy in ("botocore", "urllib3", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
