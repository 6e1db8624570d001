"""The official Socket.io JavaScript client (v4, from npm through tests/js/package-lock.json) against the
real-time tier, over long-polling and websocket: what a browser or a Node integration runs, unchanged."""
from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.system.test_realtime_tier import (  # noqa: F401 - the tier's processes, shared fixtures
    WAIT,
    Workspace,
    _workspace,
    issuer,
    rt_env,
    tier,
)
from tests.system.test_serve import REPO, environment  # noqa: F401
from tests.system.test_worker_tier import moto_env  # noqa: F401

pytestmark = pytest.mark.system
JS = REPO / "tests" / "js"


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None or not (JS / "node_modules" / "socket.io-client").is_dir():
        pytest.fail("node and tests/js/node_modules are needed: `make test` runs `npm ci --prefix tests/js`")
    return found


@pytest.fixture(scope="module")
def workspace(tier: dict[str, Any]) -> Workspace:  # noqa: F811
    return _workspace(tier, "JS")


def _listen(node: str, url: str, key: str, transport: str, count: int = 1) -> subprocess.Popen[str]:
    return subprocess.Popen([node, str(JS / "listen.mjs"), url, key, str(count), transport], cwd=JS,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _lines(process: subprocess.Popen[str]) -> Iterator[str]:
    assert process.stdout is not None
    yield from (line.strip() for line in process.stdout)


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_the_official_js_client_hears_a_write(
    node: str, tier: dict[str, Any], workspace: Workspace, transport: str  # noqa: F811
) -> None:
    # GIVEN the JS client connected with an API key over one transport
    process = _listen(node, tier["a"].url, workspace.api_key, transport)
    try:
        lines = _lines(process)
        assert next(lines) == f"connected {transport}"

        # WHEN a contact is created through the API
        workspace.contact("Grace", email=f"grace-{transport}@example.com")

        # THEN the client prints the event log's event for it and exits
        event = json.loads(next(lines))
        assert process.wait(WAIT) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert (event["type"], event["data"]["object"]["email"]) == ("contact.created", f"grace-{transport}@example.com")
    assert event["workspace_id"] == workspace.workspace_id and isinstance(event["sequence"], int)


def test_the_js_client_sees_a_refusal_as_the_rest_problem(node: str, tier: dict[str, Any]) -> None:  # noqa: F811
    # GIVEN a key that does not exist WHEN the JS client connects
    process = _listen(node, tier["a"].url, "crm_not-a-key", "polling")
    output = process.communicate(timeout=WAIT)[0].strip()

    # THEN connect_error carries the problem the REST API would answer, as err.data
    assert process.returncode == 2, output
    assert output.startswith("connect_error "), output
    problem = json.loads(output.removeprefix("connect_error "))
    assert problem["status"] == 401 and problem["title"] and problem["type"]
