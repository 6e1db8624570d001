"""AI runs on MariaDB: the migration's tables and the contacts' ai_score, runs paged newest first per person,
usage summed in SQL, the budget check, the apply claimed once, the nightly sweep's query, and another
workspace that cannot see or apply a run."""
from __future__ import annotations

from typing import Any

from functions.ai.service import score_changed_contacts
from tests.support.api import Api, Reply


def ok(reply: Reply, status: int = 200) -> Any:
    assert reply.status == status, reply.raw
    return reply.json


def test_runs_usage_budget_apply_and_tenancy_on_mariadb(api: Api, other_api: Api) -> None:
    # GIVEN a workspace that applies lead scores by hand, with three contacts
    ok(api.request("PUT", "/v1/ai/settings", {"auto_apply": {"lead_score": False}, "monthly_budget": "5"}))
    people = [ok(api.post("/v1/contacts", {"first_name": f"P{i}", "job_title": "CTO"}), 201) for i in range(3)]

    # WHEN each is scored and summarised
    runs = [ok(api.post("/v1/ai/lead-scores", {"contact_id": p["id"]})) for p in people]
    ok(api.post("/v1/ai/summaries", {"object_type": "contacts", "record_id": people[0]["id"]}))

    # THEN the runs page newest first, two at a time, each once
    seen: list[str] = []
    cursor = None
    while True:
        page = ok(api.get("/v1/ai/runs?limit=2&feature=lead_score" + (f"&cursor={cursor}" if cursor else "")))
        seen += [r["id"] for r in page["data"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == [r["id"] for r in reversed(runs)]
    # AND usage groups them in SQL
    usage = ok(api.get("/v1/ai/usage"))
    assert {u["key"]: u["runs"] for u in usage["by_feature"]} == {"lead_score": 3, "summary": 1}
    # AND a run applies once; the score is stored and sortable
    ok(api.post(f"/v1/ai/runs/{runs[0]['id']}/apply"))
    assert api.post(f"/v1/ai/runs/{runs[0]['id']}/apply").status == 409
    found = ok(api.post("/v1/contacts/search", {"sorts": [{"property": "ai_score", "direction": "desc"}],
                                                "filter_groups": [{"filters": [
                                                    {"property": "ai_score", "operator": "HAS_PROPERTY"}]}]}))
    assert [c["id"] for c in found["data"]] == [people[0]["id"]]
    # AND another workspace neither sees nor applies the runs
    assert ok(other_api.get("/v1/ai/runs"))["data"] == []
    assert other_api.get(f"/v1/ai/runs/{runs[1]['id']}").status == 404
    assert other_api.post(f"/v1/ai/runs/{runs[1]['id']}/apply").status == 404
    # AND the nightly sweep scores the unscored ones on MariaDB too
    score_changed_contacts(limit=100_000)
    assert ok(api.get(f"/v1/contacts/{people[2]['id']}"))["ai_score"] is not None


def test_a_spent_budget_is_429_on_mariadb(api: Api) -> None:
    # GIVEN a budget of zero
    ok(api.request("PUT", "/v1/ai/settings", {"monthly_budget": "0"}))
    person = ok(api.post("/v1/contacts", {"first_name": "A"}), 201)
    # WHEN a run is asked for THEN 429 with Retry-After
    reply = api.post("/v1/ai/lead-scores", {"contact_id": person["id"]})
    assert reply.status == 429 and reply.header("Retry-After")
