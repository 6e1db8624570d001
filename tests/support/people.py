"""People in a workspace for the functional tier: invited by its admin key, signed in with a real
(test-signed) Firebase ID token, driven through the same `Api` client as the key."""
from __future__ import annotations

from shared.ids import new_id
from tests.support.api import Api
from tests.support.firebase_keys import FirebaseTestIssuer


def invite(admin: Api, issuer: FirebaseTestIssuer, role: str = "member") -> Api:
    """A fresh person invited with `role`; the returned client signs in as them (`owner_user_id` is their id)."""
    suffix = new_id().lower()
    email = f"person-{suffix}@example.com"
    reply = admin.post("/v1/members", {"email": email, "role": role})
    assert reply.status == 201, reply.json
    token = issuer.mint(f"uid-{suffix}", email=email)
    return Api(admin.workspace_id, reply.json["user_id"], token, "", {"X-Workspace-Id": admin.workspace_id})
