"""Record-level visibility: when the workspace turns it on, a member (role `member`) sees only records
they or a teammate own — on every read path — and cannot reach the others by id on any write path.
Owners, admins, viewers (read-only) and API keys see everything. Plus the owner filters of lists and
searches (`owned_by=me|my_team`).

People sign in with real (test-signed) Firebase ID tokens. The routes other capabilities add (timeline,
associations, the deals board) are checked once they exist: until then those tests skip, by name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import fakeredis
import pytest

from shared.ids import new_id
from tests.support.api import Api, Reply
from tests.support.firebase_keys import FirebaseTestIssuer
from tests.support.people import invite


def assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.header("Content-Type") == "application/problem+json"
    return reply.json  # type: ignore[no-any-return]


def ids(reply: Reply) -> set[str]:
    assert reply.status == 200, reply.raw
    return {row["id"] for row in reply.json["data"]}


def route_exists(pattern: str) -> bool:
    """Whether the app has a route whose template matches `pattern` (a regex over the whole template)."""
    import app

    return any(re.fullmatch(pattern, path) for path in app.app.routes)


def require_route(pattern: str) -> None:
    if not route_exists(pattern):
        pytest.skip("route not built yet")


def created(reply: Reply) -> dict[str, Any]:
    assert reply.status == 201, reply.raw
    return reply.json  # type: ignore[no-any-return]


@dataclass
class World:
    """A workspace with visibility restricted: Alice and Bob share a team, Carol is on her own."""

    admin_key: Api
    alice: Api
    bob: Api
    carol: Api
    viewer: Api
    admin: Api
    team_id: str
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # a, b, c (by owner), n (no owner)
    companies: dict[str, dict[str, Any]] = field(default_factory=dict)  # ka (Alice's), kc (Carol's)

    def contact(self, key: str) -> str:
        return str(self.contacts[key]["id"])

    @property
    def everyone(self) -> list[Api]:
        return [self.alice, self.bob, self.carol, self.viewer, self.admin, self.admin_key]


@pytest.fixture
def world(api: Api, firebase_issuer: FirebaseTestIssuer) -> World:
    alice, bob, carol = (invite(api, firebase_issuer, "member") for _ in range(3))
    viewer, admin = invite(api, firebase_issuer, "viewer"), invite(api, firebase_issuer, "admin")
    team = created(api.post("/v1/teams", {"name": "East", "member_ids": [alice.owner_user_id, bob.owner_user_id]}))
    world = World(api, alice, bob, carol, viewer, admin, team["id"])
    world.companies = {
        "ka": created(api.post("/v1/companies", {"name": "Alpha Ltd", "owner_id": alice.owner_user_id})),
        "kc": created(api.post("/v1/companies", {"name": "Carol Corp", "owner_id": carol.owner_user_id})),
    }
    company = world.companies["ka"]["id"]
    for key, owner, last_name in (("a", alice, "Avery"), ("b", bob, "Baker"), ("c", carol, "Zephyrine"),
                                  ("n", None, "Nobody")):
        body = {"first_name": "Pat", "last_name": last_name, "email": f"{key}-{new_id().lower()}@example.com",
                "owner_id": owner.owner_user_id if owner else None, "company_id": company}
        world.contacts[key] = created(api.post("/v1/contacts", body))
    assert api.patch("/v1/workspace", {"restrict_member_visibility": True}).status == 200
    return world


# ---- the standard record routes ----------------------------------------------------------------------
def test_lists_show_a_member_only_their_and_their_teammates_records(world: World) -> None:
    # GIVEN contacts owned by Alice, Bob (her teammate), Carol, and nobody
    everything = {world.contact(k) for k in "abcn"}
    # WHEN each person and the API key list contacts and companies
    # THEN members see their team's records; viewers, admins and API keys see everything
    assert ids(world.alice.get("/v1/contacts")) == {world.contact("a"), world.contact("b")}
    assert ids(world.bob.get("/v1/contacts")) == {world.contact("a"), world.contact("b")}
    assert ids(world.carol.get("/v1/contacts")) == {world.contact("c")}
    for unrestricted in (world.viewer, world.admin, world.admin_key):
        assert ids(unrestricted.get("/v1/contacts?include_archived=true")) == everything
    assert ids(world.alice.get("/v1/companies")) == {world.companies["ka"]["id"]}
    assert ids(world.carol.get("/v1/companies")) == {world.companies["kc"]["id"]}
    assert len(ids(world.viewer.get("/v1/companies"))) == 2


def test_a_member_pages_through_exactly_their_visible_records(world: World) -> None:
    # GIVEN ten more contacts for Carol and three for Bob
    for i in range(10):
        created(world.admin_key.post("/v1/contacts", {"first_name": f"C{i}", "owner_id": world.carol.owner_user_id}))
    for i in range(3):
        created(world.admin_key.post("/v1/contacts", {"first_name": f"B{i}", "owner_id": world.bob.owner_user_id}))
    # WHEN Alice pages through contacts two at a time
    seen: list[str] = []
    cursor = None
    while True:
        page = world.alice.get("/v1/contacts?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        seen += [row["owner_id"] for row in page.json["data"]]
        cursor = page.json["next_cursor"]
        if cursor is None:
            break
    # THEN she gets her and Bob's five, each once, and nothing of Carol's
    assert sorted(seen) == sorted([world.alice.owner_user_id] + [world.bob.owner_user_id] * 4)


def test_get_of_an_invisible_record_is_404_even_when_an_admin_filled_the_cache(
    world: World, fake_redis: fakeredis.FakeRedis
) -> None:
    # GIVEN Carol's contact, read by an admin (so the record cache holds it)
    carols = world.contact("c")
    assert world.admin.get(f"/v1/contacts/{carols}").status == 200
    assert any(carols in key for key in fake_redis.keys("rec:*"))
    # WHEN Alice reads it, also asking for archived records, and reads her teammate's
    # THEN Carol's does not exist for her; Bob's does; the viewer reads both
    assert_problem(world.alice.get(f"/v1/contacts/{carols}"), 404)
    assert_problem(world.alice.get(f"/v1/contacts/{carols}?include_archived=true"), 404)
    assert world.alice.get(f"/v1/contacts/{world.contact('b')}").status == 200
    assert world.viewer.get(f"/v1/contacts/{carols}").status == 200
    # AND Alice's cold read (nothing cached) is refused the same way
    fake_redis.flushall()
    assert_problem(world.alice.get(f"/v1/contacts/{carols}"), 404)
    assert_problem(world.alice.get(f"/v1/companies/{world.companies['kc']['id']}"), 404)


def test_search_never_returns_invisible_records(world: World) -> None:
    # GIVEN Carol's contact
    carol = world.contacts["c"]
    searches: list[dict[str, Any]] = [
        {"filter_groups": [{"filters": [{"property": "id", "operator": "EQ", "value": carol["id"]}]}]},
        {"filter_groups": [{"filters": [{"property": "email", "operator": "EQ", "value": carol["email"]}]}]},
        {"filter_groups": [{"filters": [{"property": "owner_id", "operator": "EQ",
                                         "value": world.carol.owner_user_id}]}]},
        {"query": "Zephyrine"},
        {"query": "Pat", "include_archived": True, "sorts": [{"property": "last_name", "direction": "desc"}]},
        {"filter_groups": [{"filters": [{"property": "company_id", "operator": "EQ",
                                         "value": world.companies["ka"]["id"]}]}]},
    ]
    for body in searches:
        # WHEN Alice runs the search THEN she never gets Carol's contact, while the viewer does
        found = ids(world.alice.post("/v1/contacts/search", body))
        assert carol["id"] not in found, body
        assert found <= {world.contact("a"), world.contact("b")}, body
        assert carol["id"] in ids(world.viewer.post("/v1/contacts/search", body)), body


def test_history_of_an_invisible_record_is_404(world: World) -> None:
    # GIVEN Carol's contact, with some history
    carols = world.contact("c")
    world.admin_key.patch(f"/v1/contacts/{carols}", {"job_title": "CEO"})
    # WHEN Alice asks for its history, and for her own contact's
    # THEN Carol's is 404 and hers works
    assert_problem(world.alice.get(f"/v1/contacts/{carols}/history"), 404)
    assert world.alice.get(f"/v1/contacts/{world.contact('a')}/history").status == 200


def test_every_write_to_an_invisible_record_is_404_and_changes_nothing(world: World) -> None:
    # GIVEN Carol's contact (and an archived one of hers)
    carols = world.contact("c")
    archived = created(world.admin_key.post("/v1/contacts", {"first_name": "Old",
                                                             "owner_id": world.carol.owner_user_id}))
    assert world.admin_key.delete(f"/v1/contacts/{archived['id']}").status == 204
    before = world.admin_key.get(f"/v1/contacts/{carols}").json
    # WHEN Alice updates, archives and restores them, singly and in batches
    single = [world.alice.patch(f"/v1/contacts/{carols}", {"job_title": "Hacked"}),
              world.alice.delete(f"/v1/contacts/{carols}"),
              world.alice.post(f"/v1/contacts/{archived['id']}/restore")]
    update = world.alice.post("/v1/contacts/batch/update", {"inputs": [
        {"id": carols, "job_title": "Hacked"}, {"id": world.contact("a"), "job_title": "Mine"}]})
    archive = world.alice.post("/v1/contacts/batch/archive", {"inputs": [{"id": carols}]})
    # THEN every single write is 404, each batch input on Carol's is a 404 result (hers succeed),
    # and Carol's contacts are unchanged
    for reply in single:
        assert_problem(reply, 404)
    assert update.status == 207 and [r["status"] for r in update.json["results"]] == [404, 200]
    assert archive.status == 207 and [r["status"] for r in archive.json["results"]] == [404]
    assert world.admin_key.get(f"/v1/contacts/{carols}").json == before
    assert world.admin_key.get(f"/v1/contacts/{archived['id']}?include_archived=true").json["archived_at"]


def test_company_contacts_show_only_visible_contacts_of_visible_companies(world: World) -> None:
    # GIVEN Alice's company with contacts of Alice, Bob, Carol and nobody; and Carol's company
    alphas = world.companies["ka"]["id"]
    # WHEN Alice lists each company's contacts
    own = world.alice.get(f"/v1/companies/{alphas}/contacts")
    other = world.alice.get(f"/v1/companies/{world.companies['kc']['id']}/contacts")
    # THEN she sees her team's contacts of her company, and Carol's company does not exist for her
    assert ids(own) == {world.contact("a"), world.contact("b")}
    assert_problem(other, 404)
    assert len(ids(world.viewer.get(f"/v1/companies/{alphas}/contacts"))) == 4


def test_unowned_records_are_visible_only_to_unrestricted_roles(world: World) -> None:
    # GIVEN a contact without an owner
    nobodys = world.contact("n")
    # WHEN a member and a viewer read it THEN only the viewer sees it
    assert_problem(world.alice.get(f"/v1/contacts/{nobodys}"), 404)
    assert world.viewer.get(f"/v1/contacts/{nobodys}").status == 200


def test_a_restricted_member_owns_what_they_create_and_cannot_give_records_away(world: World) -> None:
    # GIVEN Alice, restricted to her team's records
    # WHEN she creates contacts without an owner, for Bob, and for Carol; and hands her own to Carol
    mine = world.alice.post("/v1/contacts", {"first_name": "New"})
    bobs = world.alice.post("/v1/contacts", {"first_name": "ForBob", "owner_id": world.bob.owner_user_id})
    carols = world.alice.post("/v1/contacts", {"first_name": "ForCarol", "owner_id": world.carol.owner_user_id})
    handed = world.alice.patch(f"/v1/contacts/{world.contact('a')}", {"owner_id": world.carol.owner_user_id})
    batch = world.alice.post("/v1/contacts/batch/create", {"inputs": [
        {"first_name": "X", "owner_id": world.carol.owner_user_id}]})
    # THEN her own and Bob's are created (hers owned by her); giving one to Carol is 422, and nothing moved
    assert created(mine)["owner_id"] == world.alice.owner_user_id
    assert created(bobs)["owner_id"] == world.bob.owner_user_id
    assert assert_problem(carols, 422)["errors"][0]["field"] == "owner_id"
    assert_problem(handed, 422)
    assert batch.status == 207 and batch.json["results"][0]["status"] == 422
    assert ids(world.carol.get("/v1/contacts")) == {world.contact("c")}


def test_a_duplicate_of_an_invisible_record_does_not_reveal_it(world: World) -> None:
    # GIVEN Carol's contact with its email
    carol = world.contacts["c"]
    # WHEN Alice creates a contact with the same email
    reply = world.alice.post("/v1/contacts", {"first_name": "Copy", "email": carol["email"]})
    # THEN it is refused as a conflict without naming Carol's record
    problem = assert_problem(reply, 409)
    assert carol["id"] not in reply.raw.decode()
    assert problem.get("existing_id") is None


def test_visibility_follows_team_and_setting_changes_at_once(world: World) -> None:
    # GIVEN Alice, who cannot see Carol's contact
    carols = world.contact("c")
    world.admin.get(f"/v1/contacts/{carols}")  # cached
    assert carols not in ids(world.alice.get("/v1/contacts"))
    # WHEN Carol joins Alice's team THEN Alice sees it at once (and Carol sees Alice's)
    assert world.admin.post(f"/v1/teams/{world.team_id}/members", {"user_id": world.carol.owner_user_id}).status == 201
    assert carols in ids(world.alice.get("/v1/contacts"))
    assert world.alice.get(f"/v1/contacts/{carols}").status == 200
    assert world.contact("a") in ids(world.carol.get("/v1/contacts"))
    # WHEN she leaves it again THEN it is gone again
    assert world.admin.delete(f"/v1/teams/{world.team_id}/members/{world.carol.owner_user_id}").status == 204
    assert_problem(world.alice.get(f"/v1/contacts/{carols}"), 404)
    # WHEN the admin turns the setting off THEN every member sees every record
    assert world.admin.patch("/v1/workspace", {"restrict_member_visibility": False}).status == 200
    assert ids(world.alice.get("/v1/contacts")) == {world.contact(k) for k in "abcn"}
    assert world.alice.get(f"/v1/contacts/{carols}").status == 200


def test_deleting_the_team_separates_its_members(world: World) -> None:
    # GIVEN Alice and Bob in one team
    # WHEN the team is deleted
    assert world.admin.delete(f"/v1/teams/{world.team_id}").status == 204
    # THEN each sees only their own records
    assert ids(world.alice.get("/v1/contacts")) == {world.contact("a")}
    assert_problem(world.alice.get(f"/v1/contacts/{world.contact('b')}"), 404)


# ---- owned by me / my team -------------------------------------------------------------------------
@pytest.mark.parametrize("restricted", [True, False])
def test_owned_by_me_and_my_team_filter_lists_and_searches(world: World, restricted: bool) -> None:
    # GIVEN the workspace with visibility restricted or not
    world.admin_key.patch("/v1/workspace", {"restrict_member_visibility": restricted})
    a, b, c = world.contact("a"), world.contact("b"), world.contact("c")
    # WHEN people list and search with the owner filters
    # THEN "me" is what they own, "my_team" adds their teammates' (no team: just theirs)
    assert ids(world.alice.get("/v1/contacts?owned_by=me")) == {a}
    assert ids(world.alice.get("/v1/contacts?owned_by=my_team")) == {a, b}
    assert ids(world.carol.get("/v1/contacts?owned_by=my_team")) == {c}
    assert ids(world.viewer.get("/v1/contacts?owned_by=me")) == set()
    assert ids(world.alice.post("/v1/contacts/search", {"owned_by": "me", "query": "Pat"})) == {a}
    assert ids(world.bob.post("/v1/contacts/search", {"owned_by": "my_team"})) == {a, b}
    assert ids(world.admin.post("/v1/companies/search", {"owned_by": "my_team"})) == set()
    assert ids(world.alice.get("/v1/companies?owned_by=me")) == {world.companies["ka"]["id"]}


def test_owned_by_pages_keep_their_filter(world: World) -> None:
    # GIVEN three more of Alice's contacts
    for i in range(3):
        created(world.alice.post("/v1/contacts", {"first_name": f"Mine{i}"}))
    # WHEN she pages through "owned by me" two at a time, and reuses a cursor without the filter
    first = world.alice.get("/v1/contacts?owned_by=me&limit=2")
    second = world.alice.get(f"/v1/contacts?owned_by=me&limit=2&cursor={first.json['next_cursor']}")
    reused = world.alice.get(f"/v1/contacts?limit=2&cursor={first.json['next_cursor']}")
    # THEN the pages hold her four contacts, and the cursor does not fit the other query
    assert len(ids(first) | ids(second)) == 4 and second.json["next_cursor"] is None
    assert_problem(reused, 422)


def test_owned_by_is_422_for_api_keys_and_unknown_values(world: World) -> None:
    # GIVEN an API key and a person
    # WHEN the key filters by owner, and the person names an unknown filter
    # THEN both are 422 naming owned_by
    for reply in (world.admin_key.get("/v1/contacts?owned_by=me"),
                  world.admin_key.post("/v1/contacts/search", {"owned_by": "my_team"}),
                  world.alice.get("/v1/contacts?owned_by=everyone"),
                  world.alice.post("/v1/contacts/search", {"owned_by": "them"})):
        problem = assert_problem(reply, 422)
        assert any(e["field"].endswith("owned_by") for e in problem["errors"]), problem


# ---- the routes of the other CRM capabilities ---------------------------------------------------------
def _seed_pipeline(world: World) -> dict[str, Any]:
    """A pipeline with an open, a won and a lost deal of each of Alice (100 EUR each), Bob (10) and Carol (1000)."""
    api = world.admin_key
    pipeline = created(api.post("/v1/pipelines", {"name": "Visibility", "stages": [
        {"name": "Open", "probability": "0.5"}, {"name": "Won", "probability": "1", "kind": "won"},
        {"name": "Lost", "probability": "0", "kind": "lost"}]}))
    stages = {s["kind"]: s["id"] for s in pipeline["stages"]}
    close = str(date.today() + timedelta(days=20))
    seeded: dict[str, Any] = {"pipeline_id": pipeline["id"], "deals": {}}
    for who, person, amount in (("alice", world.alice, "100"), ("bob", world.bob, "10"),
                                ("carol", world.carol, "1000")):
        for kind in ("open", "won", "lost"):
            body = {"name": f"{who} {kind}", "amount": amount, "currency": "EUR", "pipeline_id": pipeline["id"],
                    "stage_id": stages[kind], "owner_id": person.owner_user_id, "expected_close_date": close}
            if kind == "lost":
                body["lost_reason"] = "price"
            seeded["deals"][f"{who}-{kind}"] = created(api.post("/v1/deals", body))["id"]
    return seeded


def _seed_activities(world: World, links: dict[str, str]) -> dict[str, str]:
    """A note by each of Alice, Bob and Carol, linked to the given records (type → id)."""
    made = {}
    for who, person in (("alice", world.alice), ("bob", world.bob), ("carol", world.carol)):
        body = {"kind": "note", "body": f"{who} note", "owner_id": person.owner_user_id,
                "links": {object_type: [record_id] for object_type, record_id in links.items()}}
        made[who] = created(world.admin_key.post("/v1/activities", body))["id"]
    return made


TIMELINE = r"/v1/\{\w+\}/\{\w+\}/timeline|/v1/contacts/\{\w+\}/timeline"
ASSOCIATIONS = r"/v1/\{\w+\}/\{\w+\}/associations/\{\w+\}|/v1/contacts/\{\w+\}/associations/\{\w+\}"
BOARD = r"/v1/pipelines/\{\w+\}/board"


def test_timeline_hides_invisible_records_and_activities(world: World) -> None:
    require_route(TIMELINE)
    # GIVEN notes by Alice, Bob and Carol on Alice's contact
    a, c = world.contact("a"), world.contact("c")
    notes = _seed_activities(world, {"contacts": a})
    # WHEN Alice reads the timeline of her contact and of Carol's
    mine = world.alice.get(f"/v1/contacts/{a}/timeline")
    carols = world.alice.get(f"/v1/contacts/{c}/timeline")
    # THEN hers shows her team's notes and not Carol's; Carol's contact has no timeline for her
    assert mine.status == 200, mine.raw
    body = mine.raw.decode()
    assert notes["alice"] in body and notes["bob"] in body and notes["carol"] not in body
    assert notes["carol"] in world.viewer.get(f"/v1/contacts/{a}/timeline").raw.decode()
    assert_problem(carols, 404)


def test_associations_hide_invisible_records(world: World) -> None:
    require_route(ASSOCIATIONS)
    # GIVEN Alice's contact linked to her company and to Carol's, and Carol's contact linked to Alice's company
    from functions.associations import service as associations
    from layers.db.uow import UnitOfWork
    from shared.context import system_scope

    a, c = world.contact("a"), world.contact("c")
    ka, kc = world.companies["ka"]["id"], world.companies["kc"]["id"]
    with UnitOfWork(system_scope(world.admin_key.workspace_id)) as uow:
        associations.link(uow, a_type="contacts", a_id=a, b_type="companies", b_id=kc)
        associations.link(uow, a_type="contacts", a_id=a, b_type="companies", b_id=ka)
        associations.link(uow, a_type="contacts", a_id=c, b_type="companies", b_id=ka)
        uow.commit()
    # WHEN Alice lists the associations of her contact, of her company, and of Carol's contact
    mine = world.alice.get(f"/v1/contacts/{a}/associations/companies")
    company = world.alice.get(f"/v1/companies/{ka}/associations/contacts")
    carols = world.alice.get(f"/v1/contacts/{c}/associations/companies")
    # THEN Carol's records never appear, and Carol's contact has no associations for her
    assert mine.status == 200, mine.raw
    assert ka in mine.raw.decode() and kc not in mine.raw.decode()
    assert company.status == 200 and a in company.raw.decode() and c not in company.raw.decode()
    assert kc in world.viewer.get(f"/v1/contacts/{a}/associations/companies").raw.decode()
    assert_problem(carols, 404)


def test_deals_board_counts_only_visible_deals(world: World) -> None:
    require_route(BOARD)
    # GIVEN a pipeline with open, won and lost deals of Alice, Bob and Carol
    seeded = _seed_pipeline(world)
    # WHEN Alice and the viewer open the board
    board = world.alice.get(f"/v1/pipelines/{seeded['pipeline_id']}/board")
    everything = world.viewer.get(f"/v1/pipelines/{seeded['pipeline_id']}/board")
    # THEN Alice's board holds her team's deals only; the viewer's holds all
    assert board.status == 200, board.raw
    body = board.raw.decode()
    for key, deal_id in seeded["deals"].items():
        assert (deal_id in body) == (not key.startswith("carol")), key
        assert deal_id in everything.raw.decode(), key
    assert "1000" not in body and "1110" not in body  # no total includes Carol's amounts


def test_deals_activities_and_duplicates_hide_invisible_records_on_every_path(world: World) -> None:
    for pattern in (r"/v1/deals/\{\w+\}/stage-changes", BOARD + r"/stages/\{\w+\}", r"/v1/activities/\{\w+\}",
                    r"/v1/contacts/duplicates", r"/v1/contacts/merge"):
        require_route(pattern)
    # GIVEN deals of Alice, Bob and Carol, a note by each, and a likely duplicate of Carol's contact for Alice
    seeded = _seed_pipeline(world)
    notes = _seed_activities(world, {"contacts": world.contact("a")})
    carols_deal, carols_note, carols_contact = seeded["deals"]["carol-open"], notes["carol"], world.contact("c")
    stage_id = world.admin_key.get(f"/v1/deals/{carols_deal}").json["stage_id"]
    created(world.alice.post("/v1/contacts", {"first_name": "Pat", "last_name": "Zephyrine", "phone": "+1 555 0100"}))
    world.admin_key.patch(f"/v1/contacts/{carols_contact}", {"phone": "+1 555 0100"})
    # WHEN Alice reads every path that could show them
    single = [f"/v1/deals/{carols_deal}", f"/v1/deals/{carols_deal}/stage-changes",
              f"/v1/deals/{carols_deal}/history", f"/v1/activities/{carols_note}"]
    lists = ["/v1/deals?limit=200", "/v1/activities?limit=200", "/v1/contacts/duplicates",
             f"/v1/pipelines/{seeded['pipeline_id']}/board/stages/{stage_id}"]
    # THEN single reads are 404, lists and pages never hold them, and writes naming them are refused
    for path in single:
        assert_problem(world.alice.get(path), 404)
    for path in lists:
        reply = world.alice.get(path)
        assert reply.status == 200, (path, reply.raw)
        assert not {carols_deal, carols_note, carols_contact} & set(re.findall(r"[0-9A-HJKMNP-TV-Z]{26}",
                                                                                reply.raw.decode())), path
    searched = world.alice.post("/v1/deals/search", {"query": "carol"})
    assert searched.status == 200 and searched.json["data"] == []
    assert_problem(world.alice.post(f"/v1/deals/{carols_deal}/stage", {"stage_id": stage_id}), 404)
    kc = world.companies["kc"]["id"]
    assert world.alice.post(f"/v1/contacts/{world.contact('a')}/associations/companies/{kc}", {}).status == 404
    merge = world.alice.post("/v1/contacts/merge", {"keep_id": world.contact("a"), "merge_id": carols_contact})
    assert merge.status in (403, 404), merge.raw
    assert world.admin_key.get(f"/v1/contacts/{carols_contact}").json["merged_into_id"] is None


def test_reports_count_only_visible_deals_and_activities(world: World) -> None:
    # GIVEN deals of Alice (100 EUR each), Bob (10) and Carol (1000) in an open, a won and a lost stage,
    # and a note by each
    seeded = _seed_pipeline(world)
    _seed_activities(world, {})
    pipeline = seeded["pipeline_id"]
    # WHEN Alice and the viewer run each report
    reports = {who: {name: person.get(path) for name, path in (
        ("summary", f"/v1/reports/pipeline-summary?pipeline_id={pipeline}"),
        ("forecast", f"/v1/reports/forecast?pipeline_id={pipeline}"),
        ("win_rate", f"/v1/reports/win-rate?pipeline_id={pipeline}"),
        ("activities", "/v1/reports/activities"),
    )} for who, person in (("alice", world.alice), ("viewer", world.viewer))}
    for answers in reports.values():
        for reply in answers.values():
            assert reply.status == 200, reply.raw
    alice, viewer = ({k: r.json for k, r in answers.items()} for answers in (reports["alice"], reports["viewer"]))
    # THEN Alice's numbers cover her team's records only; the viewer's cover everything
    assert alice["summary"]["count"] == 6 and viewer["summary"]["count"] == 9
    assert alice["summary"]["totals"] == [{"currency": "EUR", "count": 6, "amount": "330.00"}]
    assert [s["count"] for s in alice["summary"]["stages"]] == [2, 2, 2]
    assert [(m["amount"], m["weighted_amount"]) for m in alice["forecast"]["months"]] == [("110.00", "55.00")]
    assert [(m["amount"], m["weighted_amount"]) for m in viewer["forecast"]["months"]] == [("1110.00", "555.00")]
    assert (alice["win_rate"]["won"], alice["win_rate"]["lost"]) == (2, 2)
    assert alice["win_rate"]["won_amounts"] == [{"currency": "EUR", "count": 2, "amount": "110.00"}]
    assert (viewer["win_rate"]["won"], viewer["win_rate"]["lost"]) == (3, 3)
    assert {row["owner_id"] for row in alice["activities"]["data"]} == {world.alice.owner_user_id,
                                                                         world.bob.owner_user_id}
    assert alice["activities"]["total"] == 2 and viewer["activities"]["total"] == 3
