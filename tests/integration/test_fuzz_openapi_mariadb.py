"""The schemathesis run of tests/functional/test_fuzz_openapi.py, on MariaDB and Redis.

SQLite compares any text with any text; MariaDB does not (ids are ascii_bin, so a non-ASCII id was an
"Illegal mix of collations" 500 on every route that takes one), has its own JSON, FULLTEXT and DECIMAL, and
real Redis answers the limits and idempotency keys. The same operations and examples, against the real stack:
this module's conftest (tests/integration/conftest.py) points the app at a scratch MariaDB database and Redis
before each case's workspace is provisioned.
"""
from __future__ import annotations

from tests.functional.test_fuzz_openapi import (  # noqa: F401 - pytest collects the test and its fixtures here
    offline_aws,
    test_every_operation_answers_as_documented,
    workspace,
)
