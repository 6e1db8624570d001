"""Authentication and authorisation through the HTTP contract: API keys, Firebase ID tokens,
roles, and browser sessions. Firebase tokens are verified for real against the local test issuer."""
from __future__ import annotations

import time
from collections.abc import Callable

import fakeredis
import pytest

from shared.ids import new_id
from shared.settings import get_settings
from tests.support.api import Api, Reply
from tests.support.firebase_keys import FirebaseTestIssuer, generate_rsa_key

ANON = Api(workspace_id="", owner_user_id="", api_key="", api_key_id="")
CONTACT = {"first_name": "Ada", "last_name": "Lovelace"}


def send(method: str, path: str, body: object = None, **headers: str) -> Reply:
    """A request carrying exactly the given headers (underscores become dashes)."""
    return ANON.request(method, path, body, headers={k.replace("_", "-"): v for k, v in headers.items()}, auth=False)


def bearer(token: str, workspace_id: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if workspace_id:
        headers["X-Workspace-Id"] = workspace_id
    return headers


def person() -> tuple[str, str]:
    """A fresh (uid, email): the users table is shared by every test in the process."""
    suffix = new_id().lower()
    return f"uid-{suffix}", f"person-{suffix}@example.com"


def assert_problem(reply: Reply, status: int) -> None:
    assert reply.status == status, reply.json
    assert reply.header("Content-Type") == "application/problem+json"
    assert reply.json["status"] == status
    assert "detail" in reply.json and "instance" in reply.json


def new_key(api: Api, *scopes: str) -> dict[str, str]:
    reply = api.post("/v1/api-keys", {"name": "-".join(scopes), "scopes": list(scopes)})
    assert reply.status == 201, reply.json
    return reply.json  # type: ignore[no-any-return]


def contact_count(api: Api) -> int:
    return len(api.get("/v1/contacts?limit=200").json["data"])


# ---- API keys -------------------------------------------------------------------------------------------
def test_no_authorization_is_401_problem_with_www_authenticate(api: Api) -> None:
    # GIVEN a workspace route
    # WHEN it is called without any credential
    reply = api.get("/v1/contacts", auth=False)
    # THEN 401 problem+json tells the client how to authenticate
    assert_problem(reply, 401)
    assert (reply.header("WWW-Authenticate") or "").startswith("Bearer")


@pytest.mark.parametrize("authorization", ["Basic x", "Bearer", "Bearer    ", "Token crm_abc"])
def test_malformed_authorization_header_is_401(api: Api, authorization: str) -> None:
    # GIVEN an Authorization header that is not `Bearer <token>`
    # WHEN it is used
    reply = api.get("/v1/contacts", headers={"Authorization": authorization})
    # THEN 401
    assert_problem(reply, 401)
    assert reply.header("WWW-Authenticate") is not None


def test_unknown_api_key_is_401(api: Api) -> None:
    # GIVEN a key that looks like ours but was never issued
    # WHEN it is used
    reply = api.with_key("crm_" + "x" * 43).get("/v1/contacts")
    # THEN 401
    assert_problem(reply, 401)


def test_revoked_key_stops_working_at_once_even_when_its_lookup_is_cached(
    api: Api, fake_redis: fakeredis.FakeRedis
) -> None:
    # GIVEN a second key whose lookup has been cached in Redis by a successful call
    created = new_key(api, "read")
    second = api.with_key(created["key"])
    assert second.get("/v1/contacts").status == 200
    assert any(str(k).startswith("apikey:") for k in fake_redis.keys("*"))
    # WHEN an admin revokes it
    assert api.delete(f"/v1/api-keys/{created['id']}").status == 204
    # THEN the very next call with it is refused, and the admin key still works
    assert_problem(second.get("/v1/contacts"), 401)
    assert api.get("/v1/contacts").status == 200


def test_read_key_can_read_but_not_write(api: Api) -> None:
    # GIVEN a contact and a read-only key
    contact_id = api.post("/v1/contacts", CONTACT).json["id"]
    reader = api.with_key(new_key(api, "read")["key"])
    # WHEN it reads and tries every kind of write
    got = reader.get(f"/v1/contacts/{contact_id}")
    created = reader.post("/v1/contacts", {"first_name": "Grace"})
    patched = reader.patch(f"/v1/contacts/{contact_id}", {"first_name": "Changed"})
    deleted = reader.delete(f"/v1/contacts/{contact_id}")
    # THEN reads succeed, writes are 403, and nothing changed
    assert got.status == 200
    for reply in (created, patched, deleted):
        assert_problem(reply, 403)
    after = api.get(f"/v1/contacts/{contact_id}")
    assert after.status == 200 and after.json["first_name"] == "Ada"
    assert contact_count(api) == 1


def test_write_key_can_write_but_not_manage_members_or_keys(api: Api) -> None:
    # GIVEN a read+write key
    writer = api.with_key(new_key(api, "read", "write")["key"])
    # WHEN it writes a record and tries to manage members and keys
    created = writer.post("/v1/contacts", CONTACT)
    invite = writer.post("/v1/members", {"email": person()[1], "role": "viewer"})
    members = writer.get("/v1/members")
    make_key = writer.post("/v1/api-keys", {"name": "sneaky", "scopes": ["admin"]})
    list_keys = writer.get("/v1/api-keys")
    revoke = writer.delete(f"/v1/api-keys/{api.api_key_id}")
    # THEN the write works; member and key management are 403 (reading members is allowed)
    assert created.status == 201
    assert members.status == 200
    for reply in (invite, make_key, list_keys, revoke):
        assert_problem(reply, 403)
    assert api.get("/v1/contacts").status == 200  # the admin key was not revoked


def test_api_key_naming_another_workspace_is_403(api: Api, other_api: Api) -> None:
    # GIVEN an API key of one workspace
    # WHEN the request claims another workspace
    reply = api.get("/v1/contacts", headers={"X-Workspace-Id": other_api.workspace_id})
    # THEN 403; naming its own workspace is fine
    assert_problem(reply, 403)
    assert api.get("/v1/contacts", headers={"X-Workspace-Id": api.workspace_id}).status == 200


def test_api_keys_cannot_use_person_only_endpoints(api: Api) -> None:
    # GIVEN an admin API key
    # WHEN it asks who "me" is
    reply = api.get("/v1/me")
    # THEN 403: keys are not people
    assert_problem(reply, 403)


# ---- Firebase ID tokens ---------------------------------------------------------------------------------
def test_firebase_token_works_on_me_and_on_a_workspace_it_created(firebase_issuer: FirebaseTestIssuer) -> None:
    # GIVEN a verified Firebase user with no workspace yet
    uid, email = person()
    token = firebase_issuer.mint(uid, email=email)
    # WHEN they ask who they are, create a workspace, and use it
    me_before = send("GET", "/v1/me", **bearer(token))
    created = send("POST", "/v1/workspaces", {"name": "Mine"}, **bearer(token))
    workspace_id = created.json["id"]
    written = send("POST", "/v1/contacts", CONTACT, **bearer(token, workspace_id))
    listed = send("GET", "/v1/contacts", **bearer(token, workspace_id))
    me_after = send("GET", "/v1/me", **bearer(token))
    # THEN each succeeds and they are the workspace's owner
    assert me_before.status == 200
    assert me_before.json["email"] == email and me_before.json["workspaces"] == []
    assert created.status == 201 and created.json["role"] == "owner"
    assert written.status == 201
    assert [c["id"] for c in listed.json["data"]] == [written.json["id"]]
    assert [(w["id"], w["role"]) for w in me_after.json["workspaces"]] == [(workspace_id, "owner")]


def test_firebase_user_with_one_workspace_needs_no_workspace_header(firebase_issuer: FirebaseTestIssuer) -> None:
    # GIVEN a user with exactly one workspace
    uid, email = person()
    token = firebase_issuer.mint(uid, email=email)
    assert send("POST", "/v1/workspaces", {"name": "Only"}, **bearer(token)).status == 201
    # WHEN they call a workspace route without X-Workspace-Id
    reply = send("GET", "/v1/contacts", **bearer(token))
    # THEN their only workspace is used
    assert reply.status == 200


def test_firebase_user_with_two_workspaces_must_name_one(firebase_issuer: FirebaseTestIssuer) -> None:
    # GIVEN a user who owns two workspaces
    uid, email = person()
    token = firebase_issuer.mint(uid, email=email)
    first = send("POST", "/v1/workspaces", {"name": "One"}, **bearer(token)).json["id"]
    second = send("POST", "/v1/workspaces", {"name": "Two"}, **bearer(token)).json["id"]
    send("POST", "/v1/contacts", CONTACT, **bearer(token, second))
    # WHEN they call a workspace route without and with X-Workspace-Id
    ambiguous = send("GET", "/v1/contacts", **bearer(token))
    in_first = send("GET", "/v1/contacts", **bearer(token, first))
    in_second = send("GET", "/v1/contacts", **bearer(token, second))
    # THEN without it the request is 400; with it each workspace shows its own records
    assert_problem(ambiguous, 400)
    assert len(in_first.json["data"]) == 0
    assert len(in_second.json["data"]) == 1


def test_firebase_user_cannot_enter_a_workspace_they_do_not_belong_to(
    firebase_issuer: FirebaseTestIssuer, api: Api
) -> None:
    # GIVEN a signed-in user who is not a member of `api`'s workspace
    uid, email = person()
    token = firebase_issuer.mint(uid, email=email)
    send("POST", "/v1/workspaces", {"name": "Theirs"}, **bearer(token))
    api.post("/v1/contacts", CONTACT)
    # WHEN they name that workspace
    reply = send("GET", "/v1/contacts", **bearer(token, api.workspace_id))
    # THEN 403
    assert_problem(reply, 403)


def _expired(issuer: FirebaseTestIssuer, uid: str, email: str) -> str:
    return issuer.mint(uid, email=email, issued_at=time.time() - 7200, expires_in=3600)


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(_expired, id="expired"),
        pytest.param(lambda i, u, e: i.mint(u, email=e, audience="someone-else"), id="wrong-audience"),
        pytest.param(lambda i, u, e: i.mint(u, email=e, issuer="https://securetoken.google.com/someone-else"),
                     id="wrong-issuer"),
        pytest.param(lambda i, u, e: i.mint(u, email=e, alg="none"), id="unsigned"),
        pytest.param(lambda i, u, e: i.mint(u, email=e, key=generate_rsa_key()), id="forged"),
        pytest.param(lambda i, u, e: "not.a.jwt", id="garbage"),
    ],
)
def test_bad_firebase_tokens_are_401_through_http(
    firebase_issuer: FirebaseTestIssuer, make_token: Callable[[FirebaseTestIssuer, str, str], str]
) -> None:
    # GIVEN a token that must not be accepted
    uid, email = person()
    token = make_token(firebase_issuer, uid, email)
    # WHEN it is used on a person route and to start a session
    me = send("GET", "/v1/me", **bearer(token))
    session = send("POST", "/v1/sessions", {"id_token": token})
    # THEN both are 401 problems and no session cookie is set
    assert_problem(me, 401)
    assert_problem(session, 401)
    assert session.header("Set-Cookie") is None


def test_unverified_email_cannot_claim_an_invitation(firebase_issuer: FirebaseTestIssuer, api: Api) -> None:
    # GIVEN an invitation for an email
    _, email = person()
    assert api.post("/v1/members", {"email": email, "role": "admin"}).status == 201
    # WHEN someone signs in with that email but unverified
    token = firebase_issuer.mint("attacker-" + new_id(), email=email, extra_claims={"email_verified": False})
    reply = send("GET", "/v1/contacts", **bearer(token, api.workspace_id))
    # THEN they are refused
    assert_problem(reply, 401)


# ---- roles ----------------------------------------------------------------------------------------------
def invited(api: Api, issuer: FirebaseTestIssuer, role: str) -> dict[str, str]:
    """Invite a fresh person with `role`, and return headers that sign them in (verified email)."""
    uid, email = person()
    reply = api.post("/v1/members", {"email": email, "role": role})
    assert reply.status == 201, reply.json
    return bearer(issuer.mint(uid, email=email), api.workspace_id)


def test_invited_viewer_can_read_but_not_write(firebase_issuer: FirebaseTestIssuer, api: Api) -> None:
    # GIVEN a contact and a person invited as viewer, signing in with the invited (verified) email
    contact_id = api.post("/v1/contacts", CONTACT).json["id"]
    viewer = invited(api, firebase_issuer, "viewer")
    # WHEN they read and write
    got = send("GET", f"/v1/contacts/{contact_id}", **viewer)
    created = send("POST", "/v1/contacts", {"first_name": "Grace"}, **viewer)
    patched = send("PATCH", f"/v1/contacts/{contact_id}", {"first_name": "X"}, **viewer)
    # THEN reading works, writing is 403 and nothing was written
    assert got.status == 200 and got.json["id"] == contact_id
    assert_problem(created, 403)
    assert_problem(patched, 403)
    assert contact_count(api) == 1
    assert api.get(f"/v1/contacts/{contact_id}").json["first_name"] == "Ada"


def test_member_can_write_but_not_manage_members(firebase_issuer: FirebaseTestIssuer, api: Api) -> None:
    # GIVEN a person invited as member
    member = invited(api, firebase_issuer, "member")
    # WHEN they write a record and try to invite someone and mint a key
    created = send("POST", "/v1/contacts", CONTACT, **member)
    invite = send("POST", "/v1/members", {"email": person()[1], "role": "viewer"}, **member)
    key = send("POST", "/v1/api-keys", {"name": "k", "scopes": ["read"]}, **member)
    # THEN the write works; member and key management are 403
    assert created.status == 201
    assert_problem(invite, 403)
    assert_problem(key, 403)


def test_admin_cannot_grant_owner(firebase_issuer: FirebaseTestIssuer, api: Api) -> None:
    # GIVEN a person invited as admin, and a member they could promote
    admin = invited(api, firebase_issuer, "admin")
    _, other_email = person()
    member_id = api.post("/v1/members", {"email": other_email, "role": "member"}).json["user_id"]
    # WHEN the admin invites an owner, and promotes the member to owner
    invite = send("POST", "/v1/members", {"email": person()[1], "role": "owner"}, **admin)
    promote = send("PATCH", f"/v1/members/{member_id}", {"role": "owner"}, **admin)
    promote_to_admin = send("PATCH", f"/v1/members/{member_id}", {"role": "admin"}, **admin)
    # THEN granting owner is 403 (granting admin is within their rights)
    assert_problem(invite, 403)
    assert_problem(promote, 403)
    assert promote_to_admin.status == 200 and promote_to_admin.json["role"] == "admin"
    roles = {m["user_id"]: m["role"] for m in api.get("/v1/members").json["data"]}
    assert roles[member_id] == "admin"


def test_last_owner_can_be_neither_removed_nor_demoted(firebase_issuer: FirebaseTestIssuer) -> None:
    # GIVEN a workspace whose creator is its only owner
    uid, email = person()
    token = firebase_issuer.mint(uid, email=email)
    workspace_id = send("POST", "/v1/workspaces", {"name": "Solo"}, **bearer(token)).json["id"]
    owner = bearer(token, workspace_id)
    owner_id = send("GET", "/v1/me", **bearer(token)).json["id"]
    # WHEN the owner demotes and removes themselves
    demote = send("PATCH", f"/v1/members/{owner_id}", {"role": "admin"}, **owner)
    remove = send("DELETE", f"/v1/members/{owner_id}", **owner)
    # THEN both are 409 and they are still the owner
    assert_problem(demote, 409)
    assert_problem(remove, 409)
    members = send("GET", "/v1/members", **owner).json["data"]
    assert [(m["user_id"], m["role"]) for m in members] == [(owner_id, "owner")]


def test_an_owner_can_step_down_once_there_is_another_owner(firebase_issuer: FirebaseTestIssuer) -> None:
    # GIVEN a workspace with two owners
    uid, email = person()
    token = firebase_issuer.mint(uid, email=email)
    workspace_id = send("POST", "/v1/workspaces", {"name": "Pair"}, **bearer(token)).json["id"]
    owner = bearer(token, workspace_id)
    owner_id = send("GET", "/v1/me", **bearer(token)).json["id"]
    assert send("POST", "/v1/members", {"email": person()[1], "role": "owner"}, **owner).status == 201
    # WHEN the first owner demotes themselves
    demote = send("PATCH", f"/v1/members/{owner_id}", {"role": "admin"}, **owner)
    # THEN it works
    assert demote.status == 200 and demote.json["role"] == "admin"


# ---- sessions -------------------------------------------------------------------------------------------
def start_session(issuer: FirebaseTestIssuer) -> tuple[Reply, str, str]:
    """A person with one workspace signs in through a session; returns (reply, cookie, workspace id)."""
    uid, email = person()
    token = issuer.mint(uid, email=email)
    workspace_id = send("POST", "/v1/workspaces", {"name": "Browser"}, **bearer(token)).json["id"]
    reply = send("POST", "/v1/sessions", {"id_token": token})
    cookie_header = reply.header("Set-Cookie") or ""
    cookie = cookie_header.split(";", 1)[0]
    return reply, cookie, workspace_id


def session_key(fake_redis: fakeredis.FakeRedis) -> str:
    keys = fake_redis.keys("sess:*")
    assert len(keys) == 1, keys
    return str(keys[0])


def test_session_exchange_sets_an_httponly_lax_cookie(firebase_issuer: FirebaseTestIssuer) -> None:
    # GIVEN a verified Firebase user
    # WHEN they exchange their ID token for a session
    reply, cookie, _ = start_session(firebase_issuer)
    # THEN 201 with a crm_session cookie that scripts cannot read and cross-site posts do not carry
    assert reply.status == 201
    attributes = [part.strip() for part in (reply.header("Set-Cookie") or "").split(";")]
    assert cookie.startswith("crm_session=") and len(cookie) > len("crm_session=") + 20
    assert "HttpOnly" in attributes
    assert "SameSite=Lax" in attributes
    assert f"Max-Age={get_settings().session_ttl_seconds}" in attributes
    assert reply.json["email"].startswith("person-")


def test_session_cookie_authenticates_reads(firebase_issuer: FirebaseTestIssuer) -> None:
    # GIVEN a session
    _, cookie, workspace_id = start_session(firebase_issuer)
    # WHEN the cookie alone is sent on a person route and a workspace route
    me = send("GET", "/v1/me", Cookie=cookie)
    contacts = send("GET", "/v1/contacts", Cookie=cookie)
    # THEN both work
    assert me.status == 200 and [w["id"] for w in me.json["workspaces"]] == [workspace_id]
    assert contacts.status == 200


def test_cookie_writes_need_x_requested_with(firebase_issuer: FirebaseTestIssuer) -> None:
    # GIVEN a session
    _, cookie, _ = start_session(firebase_issuer)
    # WHEN a write rides the cookie without and with X-Requested-With
    bare = send("POST", "/v1/contacts", CONTACT, Cookie=cookie)
    count_after_bare = len(send("GET", "/v1/contacts", Cookie=cookie).json["data"])
    marked = send("POST", "/v1/contacts", CONTACT, Cookie=cookie, X_Requested_With="XMLHttpRequest")
    # THEN the bare one is 403 and wrote nothing; the marked one is created
    assert_problem(bare, 403)
    assert count_after_bare == 0
    assert marked.status == 201


def test_session_expiry_slides_forward_on_use(
    firebase_issuer: FirebaseTestIssuer, fake_redis: fakeredis.FakeRedis
) -> None:
    # GIVEN a session that has aged (its Redis key has little time left)
    _, cookie, _ = start_session(firebase_issuer)
    ttl = get_settings().session_ttl_seconds
    key = session_key(fake_redis)
    assert fake_redis.ttl(key) > ttl - 5
    fake_redis.expire(key, 100)
    # WHEN the cookie is used
    assert send("GET", "/v1/me", Cookie=cookie).status == 200
    # THEN its expiry is pushed forward to the full TTL again
    assert fake_redis.ttl(key) > ttl - 5


def test_expired_session_is_401(firebase_issuer: FirebaseTestIssuer, fake_redis: fakeredis.FakeRedis) -> None:
    # GIVEN a session whose Redis entry has expired
    _, cookie, _ = start_session(firebase_issuer)
    fake_redis.delete(session_key(fake_redis))
    # WHEN the cookie is used
    reply = send("GET", "/v1/me", Cookie=cookie)
    # THEN 401
    assert_problem(reply, 401)


def test_logout_revokes_the_session(firebase_issuer: FirebaseTestIssuer, fake_redis: fakeredis.FakeRedis) -> None:
    # GIVEN a session
    _, cookie, _ = start_session(firebase_issuer)
    # WHEN the browser signs out
    logout = send("DELETE", "/v1/sessions/current", Cookie=cookie, X_Requested_With="XMLHttpRequest")
    # THEN 204 clears the cookie, the session is gone from Redis, and the old cookie is refused
    assert logout.status == 204
    assert "Max-Age=0" in (logout.header("Set-Cookie") or "")
    assert fake_redis.keys("sess:*") == []
    assert_problem(send("GET", "/v1/me", Cookie=cookie), 401)
    assert_problem(send("GET", "/v1/contacts", Cookie=cookie), 401)
