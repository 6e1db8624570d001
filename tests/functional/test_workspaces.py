"""Workspaces, members and API keys through the HTTP contract, and the `crm workspace create` bootstrap."""
from __future__ import annotations

import json

from click.testing import CliRunner

from shared.ids import new_id
from tests.support.api import Api, Reply
from tests.support.firebase_keys import FirebaseTestIssuer
from tiers.cli import main as crm

ANON = Api(workspace_id="", owner_user_id="", api_key="", api_key_id="")


def as_user(token: str, method: str, path: str, body: object = None, workspace_id: str | None = None) -> Reply:
    headers = {"Authorization": f"Bearer {token}"}
    if workspace_id:
        headers["X-Workspace-Id"] = workspace_id
    return ANON.request(method, path, body, headers=headers, auth=False)


def email() -> str:
    return f"member-{new_id().lower()}@example.com"


def assert_problem(reply: Reply, status: int) -> None:
    assert reply.status == status, reply.json
    assert reply.header("Content-Type") == "application/problem+json"
    assert reply.json["status"] == status


# ---- workspaces and /v1/me --------------------------------------------------------------------------------
def test_a_person_creates_and_lists_workspaces(firebase_issuer: FirebaseTestIssuer) -> None:
    # GIVEN a signed-in person
    person_email = email()
    token = firebase_issuer.mint("uid-" + new_id(), email=person_email)
    # WHEN they create two workspaces and list them
    first = as_user(token, "POST", "/v1/workspaces", {"name": "Acme"})
    second = as_user(token, "POST", "/v1/workspaces", {"name": "Globex"})
    listed = as_user(token, "GET", "/v1/workspaces")
    me = as_user(token, "GET", "/v1/me")
    # THEN both are theirs, as owner, in /v1/workspaces and /v1/me
    assert first.status == 201 and second.status == 201
    assert first.json["name"] == "Acme" and first.json["role"] == "owner" and first.json["created_at"]
    expected = {(first.json["id"], "Acme", "owner"), (second.json["id"], "Globex", "owner")}
    assert {(w["id"], w["name"], w["role"]) for w in listed.json["data"]} == expected
    assert me.json["email"] == person_email
    assert {(w["id"], w["name"], w["role"]) for w in me.json["workspaces"]} == expected


def test_workspace_creation_validates_its_body(firebase_issuer: FirebaseTestIssuer) -> None:
    # GIVEN a signed-in person
    token = firebase_issuer.mint("uid-" + new_id(), email=email())
    # WHEN they send an empty name, an unknown field, and malformed JSON
    empty = as_user(token, "POST", "/v1/workspaces", {"name": ""})
    unknown = as_user(token, "POST", "/v1/workspaces", {"name": "X", "plan": "gold"})
    malformed = ANON.request("POST", "/v1/workspaces", raw="{nope", auth=False,
                             headers={"Authorization": f"Bearer {token}"})
    # THEN 422, 422, 400 and no workspace was created
    assert_problem(empty, 422)
    assert_problem(unknown, 422)
    assert_problem(malformed, 400)
    assert as_user(token, "GET", "/v1/workspaces").json["data"] == []


def test_api_keys_cannot_create_workspaces(api: Api) -> None:
    # GIVEN an admin API key
    # WHEN it tries to create a workspace
    reply = api.post("/v1/workspaces", {"name": "Nope"})
    # THEN 403: workspaces belong to people
    assert_problem(reply, 403)


# ---- members ----------------------------------------------------------------------------------------------
def test_members_list_pages_through_everyone_once(api: Api) -> None:
    # GIVEN the owner and four invited members
    invited = {api.post("/v1/members", {"email": email(), "role": "viewer"}).json["user_id"] for _ in range(4)}
    # WHEN the members are listed two at a time
    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        path = "/v1/members?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(path)
        assert page.status == 200
        seen += [m["user_id"] for m in page.json["data"]]
        pages += 1
        cursor = page.json["next_cursor"]
        if cursor is None:
            break
    # THEN every member appears exactly once, over three pages
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == invited | {api.owner_user_id}


def test_members_list_rejects_bad_paging(api: Api) -> None:
    # GIVEN a workspace
    # WHEN the list is asked for a limit out of range and a forged cursor
    too_big = api.get("/v1/members?limit=500")
    forged = api.get("/v1/members?cursor=not-a-cursor")
    # THEN both are client errors, not 500s
    assert_problem(too_big, 422)
    assert forged.status in (400, 422)


def test_invite_shows_the_member_and_inviting_twice_is_409(api: Api) -> None:
    # GIVEN an invitation (email given with spaces and capitals)
    address = email()
    first = api.post("/v1/members", {"email": f"  {address.upper()} ", "role": "member"})
    # WHEN the same person is invited again
    again = api.post("/v1/members", {"email": address, "role": "viewer"})
    # THEN the first is 201 with the normalised email; the second is 409 naming the member
    assert first.status == 201
    assert first.json["email"] == address and first.json["role"] == "member"
    assert_problem(again, 409)
    assert again.json["existing_id"] == first.json["user_id"]
    roles = {m["user_id"]: m["role"] for m in api.get("/v1/members").json["data"]}
    assert roles[first.json["user_id"]] == "member"


def test_invite_validates_email_and_role(api: Api) -> None:
    # GIVEN a workspace
    # WHEN invitations carry a bad email or an unknown role
    bad_email = api.post("/v1/members", {"email": "not-an-email", "role": "member"})
    bad_role = api.post("/v1/members", {"email": email(), "role": "emperor"})
    # THEN 422 and nobody joined
    assert_problem(bad_email, 422)
    assert_problem(bad_role, 422)
    assert [m["user_id"] for m in api.get("/v1/members").json["data"]] == [api.owner_user_id]


def test_role_change_and_removal(api: Api) -> None:
    # GIVEN an invited viewer
    user_id = api.post("/v1/members", {"email": email(), "role": "viewer"}).json["user_id"]
    # WHEN an admin makes them a member, then removes them
    changed = api.patch(f"/v1/members/{user_id}", {"role": "member"})
    roles_after_change = {m["user_id"]: m["role"] for m in api.get("/v1/members").json["data"]}
    removed = api.delete(f"/v1/members/{user_id}")
    removed_again = api.delete(f"/v1/members/{user_id}")
    # THEN the role changes, the member disappears from the list, and removing again is 404
    assert changed.status == 200 and changed.json["role"] == "member"
    assert roles_after_change[user_id] == "member"
    assert removed.status == 204
    assert user_id not in {m["user_id"] for m in api.get("/v1/members").json["data"]}
    assert_problem(removed_again, 404)
    assert_problem(api.patch(f"/v1/members/{user_id}", {"role": "admin"}), 404)


def test_members_of_other_workspaces_are_invisible_and_untouchable(api: Api, other_api: Api) -> None:
    # GIVEN a member of another workspace
    theirs = other_api.post("/v1/members", {"email": email(), "role": "member"}).json["user_id"]
    # WHEN this workspace lists members, changes and removes that one
    listed = {m["user_id"] for m in api.get("/v1/members").json["data"]}
    changed = api.patch(f"/v1/members/{theirs}", {"role": "viewer"})
    removed = api.delete(f"/v1/members/{theirs}")
    # THEN they are not listed, both writes are 404, and in their own workspace nothing changed
    assert listed == {api.owner_user_id}
    assert theirs not in listed and other_api.owner_user_id not in listed
    assert_problem(changed, 404)
    assert_problem(removed, 404)
    roles = {m["user_id"]: m["role"] for m in other_api.get("/v1/members").json["data"]}
    assert roles[theirs] == "member"


# ---- API keys ---------------------------------------------------------------------------------------------
def test_api_key_secret_is_shown_once(api: Api) -> None:
    # GIVEN a workspace
    # WHEN an admin creates a key and then lists keys
    created = api.post("/v1/api-keys", {"name": "zapier", "scopes": ["read", "write"]})
    listed = api.get("/v1/api-keys")
    # THEN the creation shows the secret; the list shows prefix, scopes and revocation but never a secret
    assert created.status == 201
    secret = created.json["key"]
    assert secret.startswith("crm_") and len(secret) > 30
    assert created.json["prefix"] == secret[: len(created.json["prefix"])]
    entry = next(k for k in listed.json["data"] if k["id"] == created.json["id"])
    assert entry == {"id": created.json["id"], "name": "zapier", "prefix": created.json["prefix"],
                     "scopes": ["read", "write"], "created_at": created.json["created_at"], "revoked_at": None}
    assert secret not in listed.raw.decode()
    assert all("key" not in k for k in listed.json["data"])
    # ... and the secret works
    assert api.with_key(secret).get("/v1/contacts").status == 200


def test_api_key_creation_validates_scopes(api: Api) -> None:
    # GIVEN a workspace
    # WHEN keys are asked for with no scopes and an unknown scope
    empty = api.post("/v1/api-keys", {"name": "x", "scopes": []})
    unknown = api.post("/v1/api-keys", {"name": "x", "scopes": ["root"]})
    # THEN 422 and no key was made
    assert_problem(empty, 422)
    assert_problem(unknown, 422)
    assert [k["id"] for k in api.get("/v1/api-keys").json["data"]] == [api.api_key_id]


def test_revoking_a_key(api: Api) -> None:
    # GIVEN a second key
    created = api.post("/v1/api-keys", {"name": "ci", "scopes": ["read"]}).json
    # WHEN it is revoked, then a made-up id is revoked
    revoked = api.delete(f"/v1/api-keys/{created['id']}")
    unknown = api.delete(f"/v1/api-keys/{new_id()}")
    # THEN 204 and the list marks it revoked; the unknown id is 404; the key no longer authenticates
    assert revoked.status == 204
    entry = next(k for k in api.get("/v1/api-keys").json["data"] if k["id"] == created["id"])
    assert entry["revoked_at"] is not None
    assert_problem(unknown, 404)
    assert api.with_key(created["key"]).get("/v1/contacts").status == 401


def test_keys_of_other_workspaces_are_invisible_and_cannot_be_revoked(api: Api, other_api: Api) -> None:
    # GIVEN another workspace with its own keys
    theirs = other_api.post("/v1/api-keys", {"name": "theirs", "scopes": ["read"]}).json
    # WHEN this workspace lists keys and tries to revoke theirs
    listed = {k["id"] for k in api.get("/v1/api-keys").json["data"]}
    revoke = api.delete(f"/v1/api-keys/{theirs['id']}")
    revoke_bootstrap = api.delete(f"/v1/api-keys/{other_api.api_key_id}")
    # THEN only its own key is listed, both revokes are 404, and their keys still work
    assert listed == {api.api_key_id}
    assert_problem(revoke, 404)
    assert_problem(revoke_bootstrap, 404)
    assert other_api.with_key(theirs["key"]).get("/v1/contacts").status == 200
    assert other_api.get("/v1/api-keys").status == 200


def test_api_key_list_pages(api: Api) -> None:
    # GIVEN four keys in all
    made = {api.post("/v1/api-keys", {"name": f"k{i}", "scopes": ["read"]}).json["id"] for i in range(3)}
    # WHEN they are listed three at a time
    first = api.get("/v1/api-keys?limit=3")
    second = api.get(f"/v1/api-keys?limit=3&cursor={first.json['next_cursor']}")
    # THEN two pages hold all four, once each
    ids = [k["id"] for k in first.json["data"] + second.json["data"]]
    assert len(first.json["data"]) == 3 and second.json["next_cursor"] is None
    assert sorted(ids) == sorted(made | {api.api_key_id})


# ---- the CLI bootstrap ------------------------------------------------------------------------------------
def test_cli_workspace_create_prints_a_working_api_key() -> None:
    # GIVEN the crm command
    runner = CliRunner()
    owner = email()
    # WHEN an operator creates a workspace
    result = runner.invoke(crm, ["workspace", "create", "--name", "Initech", "--owner-email", f" {owner.upper()}"])
    # THEN it prints JSON with the workspace id and an API key that works on that workspace
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["workspace_id"] and printed["api_key"].startswith("crm_")
    provisioned = Api(printed["workspace_id"], printed["owner_user_id"], printed["api_key"], printed["api_key_id"])
    members = provisioned.get("/v1/members")
    assert members.status == 200
    assert [(m["email"], m["role"]) for m in members.json["data"]] == [(owner, "owner")]
    assert provisioned.post("/v1/contacts", {"first_name": "Milton"}).status == 201


def test_cli_workspace_create_refuses_an_invalid_email() -> None:
    # GIVEN the crm command
    runner = CliRunner()
    # WHEN the owner email is not an email
    result = runner.invoke(crm, ["workspace", "create", "--name", "Bad", "--owner-email", "not-an-email"])
    # THEN it exits non-zero, names the option, and prints no key
    assert result.exit_code != 0
    assert "--owner-email" in result.output
    assert "crm_" not in result.output
