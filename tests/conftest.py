"""Fixtures shared by every tier.

The functional tier runs on one SQLite file and one in-process fake Redis per test process, and
isolates tests by *workspace* (each test provisions its own), which is exactly what tenancy
guarantees. The integration tier swaps in the real MariaDB and Redis (tests/integration/conftest.py).
"""
from __future__ import annotations

import os
import tempfile

# Settings are read lazily, but set the environment before anything imports the app.
_TMP = tempfile.mkdtemp(prefix="crm-tests-")
os.environ["CRM_ENV"] = "test"
os.environ.pop("FIREBASE_AUTH_EMULATOR_HOST", None)
os.environ.setdefault("CURSOR_SECRET", "test-cursor-secret")
os.environ["DATABASE_URL"] = f"sqlite:///{_TMP}/crm.db"
os.environ.pop("REDIS_URL", None)
os.environ["FIREBASE_PROJECT_ID"] = "crm-test"
os.environ["ACCESS_LOG"] = "false"
# AWS is moto (in process, or its threaded server): never a real account, whatever the shell has.
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "JOBS_QUEUE_URL", "JOBS_DLQ_URL",
              "JOBS_BULK_QUEUE_URL", "JOBS_BULK_DLQ_URL", "JOBS_BULK_QUEUE_NAME"):
    os.environ.pop(_name, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ["WEBHOOK_ALLOWED_PRIVATE_CIDRS"] = '["127.0.0.0/8"]'  # local receivers; SSRF tests clear it
# Every test request comes from one address, and the integration tier shares one Redis with other runs: the
# app under test gets a failed-authentication budget no suite spends (tests/functional/test_auth_throttle.py
# builds the same middleware with a small one).
os.environ["AUTH_FAILURE_LIMIT"] = "1000000"
# An import chunk ends after IMPORT_CHUNK_ROWS rows or IMPORT_CHUNK_SECONDS of wall-clock time: with the
# time budget out of reach, how many chunks (jobs) an import takes depends on the rows alone, not on how
# fast this machine is. The test of the time cut drives it with a fake clock (shared.clock.use_monotonic).
os.environ["IMPORT_CHUNK_SECONDS"] = "86400"

from collections.abc import Iterator  # noqa: E402

import fakeredis  # noqa: E402
import pytest  # noqa: E402

from layers.auth.firebase import FirebaseVerifier  # noqa: E402
from layers.auth.verifier import use_verifier  # noqa: E402
from layers.aws.clients import client, reset_clients, use_client  # noqa: E402
from layers.cache.client import use_redis  # noqa: E402
from layers.db.engine import get_engine  # noqa: E402
from layers.db.migrate import upgrade  # noqa: E402
from layers.queue.relay import Relay  # noqa: E402
from layers.queue.sqs import Queues, create_queues, use_queues  # noqa: E402
from layers.runtime.inline import InlineQueue  # noqa: E402
from shared.settings import get_settings, reset_settings  # noqa: E402
from tests.support.api import Api, provision  # noqa: E402
from tests.support.firebase_keys import FirebaseTestIssuer  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _database() -> Iterator[None]:
    reset_settings()
    upgrade(get_engine())
    yield


@pytest.fixture(autouse=True)
def fake_redis() -> Iterator[fakeredis.FakeRedis]:
    """A fresh in-process Redis per test: no cache, limit or key leaks between tests."""
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    use_redis(client)
    yield client
    use_redis(None)


@pytest.fixture(scope="session")
def firebase_issuer() -> Iterator[FirebaseTestIssuer]:
    """Signs ID tokens with a test key; the verifier fetches its certificate from a local server."""
    issuer = FirebaseTestIssuer(project_id="crm-test")
    verifier = FirebaseVerifier(project_id=issuer.project_id, certs_url=issuer.certs_url)
    use_verifier(verifier)
    yield issuer
    use_verifier(None)
    verifier.close()
    issuer.close()


@pytest.fixture
def api() -> Api:
    """A fresh workspace with an admin API key, driven through chalice.test.Client."""
    return provision()


@pytest.fixture
def other_api() -> Api:
    """A second, unrelated workspace — for the tenancy tests."""
    return provision(name="Other")


@pytest.fixture
def aws() -> Iterator[Queues]:
    """moto in process: the jobs and bulk queues with their DLQs (redrive after 3 receives) and the files bucket."""
    from moto import mock_aws

    with mock_aws():
        reset_clients()
        queues = create_queues(max_receives=3, visibility_timeout=30)
        use_queues(queues)
        client("s3").create_bucket(Bucket=get_settings().files_bucket)
        yield queues
        use_queues(None)
        reset_clients()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's HTTP server: presigned URLs are fetched over HTTP, which in-process mock_aws cannot answer."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_over_http(aws: Queues, moto_server: str) -> Iterator[str]:
    """The files bucket on moto's server, our S3 client pointed at it."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    if get_settings().files_bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=get_settings().files_bucket)
    use_client("s3", s3)
    yield moto_server
    use_client("s3", None)


@pytest.fixture
def jobs() -> InlineQueue:
    """Outbox rows straight to their handlers, in this thread: `jobs.run()` after a request.

    Rows other tests of this process left unpublished are set aside first, so a test sees its own jobs."""
    import app

    Relay(lambda bodies: None).drain()
    return InlineQueue(app.app)
