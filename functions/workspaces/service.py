"""Workspaces, members, API keys and sessions; also the credential resolver the auth middleware asks."""
from __future__ import annotations

import hashlib
import json
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from functions.pipelines.service import create_default_pipeline
from functions.workspaces import repository
from functions.workspaces.models import ApiKey, Membership, User, Workspace
from functions.workspaces.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPage,
    ApiKeyRead,
    MemberInvite,
    MemberPage,
    MemberRead,
    MeRead,
    WorkspaceProvisioned,
    WorkspaceRead,
    WorkspaceSettingsRead,
    WorkspaceUpdate,
)
from layers.auth.firebase import FirebaseIdentity
from layers.auth.principals import API_KEY_PREFIX, UserPrincipal
from layers.cache import invalidations, sessions
from layers.cache.client import get_text, guarded
from layers.db.uow import UnitOfWork
from layers.queue.outbox import emit
from shared.clock import utcnow
from shared.context import ROLE_RANK, Actor, Scope, system_scope
from shared.cursors import decode_cursor, encode_cursor
from shared.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from shared.ids import new_id
from shared.settings import get_settings

API_KEY_CACHE_SECONDS = 60  # bounds how long a revoke racing a cache fill can linger


def _hash_key(raw_key: str) -> str:
    # Keys are 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def _api_key_cache_key(key_hash: str) -> str:
    return f"apikey:{key_hash}"


# ---- the credential resolver (layers.auth.principals.CredentialResolver) ------------------------------
class Resolver:
    def resolve_api_key(self, raw_key: str) -> Scope | None:
        key_hash = _hash_key(raw_key)
        # Entries carry the cache epoch their filler knew before reading the database: a revoke that could
        # not reach Redis moves the epoch (layers/cache/invalidations.py), so no process trusts older entries.
        epoch = invalidations.current()
        cached: str | None = None
        if epoch is not None:
            cached = get_text("auth", _api_key_cache_key(key_hash))
        cached_epoch, _, cached_entry = (cached or "").partition("|")
        if cached and cached_entry and cached_epoch == str(epoch):
            entry = json.loads(cached_entry)
        else:
            with UnitOfWork(unscoped=True) as uow:
                key = repository.live_api_key_by_hash(uow.session, key_hash)
                if key is None:
                    return None
                entry = {"workspace_id": key.workspace_id, "id": key.id, "scopes": key.scopes}
            if epoch is not None:
                # NX: a revoke's tombstone (or a newer fill) stands; a fill that read the key before the revoke
                # committed can never store it afterwards.
                payload = f"{epoch}|{json.dumps(entry)}"
                guarded("auth", lambda r: r.set(_api_key_cache_key(key_hash), payload, ex=API_KEY_CACHE_SECONDS,
                                                nx=True), lambda: None)
        return Scope(
            workspace_id=entry["workspace_id"],
            actor=Actor(type="api_key", id=entry["id"]),
            role="admin" if "admin" in entry["scopes"] else ("member" if "write" in entry["scopes"] else "viewer"),
            scopes=frozenset(entry["scopes"]),
        )

    def resolve_user(self, identity: FirebaseIdentity) -> UserPrincipal:
        user = find_or_create_user(firebase_uid=identity.uid, email=identity.email,
                                   email_verified=identity.email_verified)
        return UserPrincipal(user_id=user.id, email=user.email, via="firebase")

    def membership_scope(self, user: UserPrincipal, workspace_id: str | None) -> Scope | None:
        with UnitOfWork(unscoped=True) as uow:
            rows = repository.memberships_of(uow.session, user.user_id)
            chosen = [(m, w) for m, w in rows if workspace_id is None or m.workspace_id == workspace_id]
            if len(chosen) != 1:
                return None
            member, workspace = chosen[0]
            visible = None
            if workspace.restrict_member_visibility and member.role == "member":
                teammates = repository.teammates_of(uow.session, workspace.id, user.user_id)
                visible = frozenset({user.user_id, *teammates})
        return Scope(workspace_id=member.workspace_id, actor=Actor(type="user", id=user.user_id, email=user.email),
                     role=member.role, visible_owner_ids=visible)  # type: ignore[arg-type]


def find_or_create_user(*, firebase_uid: str | None, email: str | None, email_verified: bool = False) -> User:
    """The person for a sign-in: by Firebase uid, else by verified email (an invite), else new."""
    with UnitOfWork(unscoped=True) as uow:
        user = _find_or_add_user(uow, firebase_uid=firebase_uid, email=email, email_verified=email_verified)
        _commit_new_user(uow)
        return user


def _find_or_add_user(uow: UnitOfWork, *, firebase_uid: str | None, email: str | None,
                      email_verified: bool = False) -> User:
    """`find_or_create_user` inside the caller's unit of work (users are a platform table: any scope may)."""
    user = repository.user_by_firebase_uid(uow.session, firebase_uid) if firebase_uid else None
    if user is None and email:
        user = repository.user_by_email(uow.session, email.lower())
        if user is not None and firebase_uid:
            if user.firebase_uid is not None or not email_verified:
                raise Unauthorized("this email belongs to another sign-in; verify it first")
            user.firebase_uid = firebase_uid
    if user is None:
        if not email:
            raise Unauthorized("the ID token carries no email")
        user = User(id=new_id(), email=email.lower(), firebase_uid=firebase_uid, created_at=utcnow())
        uow.session.add(user)
    return user


def _commit_new_user(uow: UnitOfWork) -> None:
    try:
        uow.commit()
    except IntegrityError:  # two first sign-ins (or invites) at once: the other one created the row
        raise Conflict("the account was just created by another request; retry") from None


# ---- workspaces ---------------------------------------------------------------------------------------
def create_workspace(*, user: UserPrincipal, name: str) -> WorkspaceRead:
    workspace = Workspace(id=new_id(), name=name, created_at=utcnow())
    scope = Scope(workspace_id=workspace.id, actor=Actor(type="user", id=user.user_id), role="owner")
    with UnitOfWork(scope) as uow:
        uow.session.add(workspace)
        uow.session.flush()
        uow.session.add(Membership(id=new_id(), user_id=user.user_id, role="owner", created_at=utcnow()))
        create_default_pipeline(uow)  # new deals need a pipeline: every workspace starts with one
        uow.commit()
    return WorkspaceRead(id=workspace.id, name=workspace.name, created_at=workspace.created_at, role="owner")


def list_workspaces(*, user: UserPrincipal) -> list[WorkspaceRead]:
    with UnitOfWork(unscoped=True) as uow:
        rows = repository.memberships_of(uow.session, user.user_id)
        return [WorkspaceRead(id=w.id, name=w.name, created_at=w.created_at, role=m.role) for m, w in rows]  # type: ignore[arg-type]


def me(*, user: UserPrincipal) -> MeRead:
    return MeRead(id=user.user_id, email=user.email or "", workspaces=list_workspaces(user=user))


def provision_workspace(*, name: str, owner_email: str) -> WorkspaceProvisioned:
    """Create a workspace, its owner (by email) and an admin API key: the CLI's bootstrap."""
    owner = find_or_create_user(firebase_uid=None, email=owner_email)
    workspace = create_workspace(user=UserPrincipal(owner.id, owner.email, "firebase"), name=name)
    scope = system_scope(workspace.id, source="cli")
    key = create_api_key(scope, ApiKeyCreate(name="bootstrap", scopes=["read", "write", "admin"]))
    return WorkspaceProvisioned(workspace_id=workspace.id, owner_user_id=owner.id, api_key_id=key.id,
                                api_key=key.key)


def get_workspace(scope: Scope) -> WorkspaceSettingsRead:
    with UnitOfWork(scope) as uow:
        return _settings_read(scope, _workspace(uow))


def update_workspace(scope: Scope, data: WorkspaceUpdate) -> WorkspaceSettingsRead:
    """Rename, or change a setting: record-level visibility (from the next request on), stale-deal days."""
    with UnitOfWork(scope) as uow:
        workspace = _workspace(uow)
        changes = {k: {"old": getattr(workspace, k), "new": v}
                   for k, v in data.model_dump(exclude_unset=True).items() if getattr(workspace, k) != v}
        for key, change in changes.items():
            setattr(workspace, key, change["new"])
        read = _settings_read(scope, workspace)
        if changes:
            emit(uow, event_type="workspace.updated", object_type="workspaces", record_id=workspace.id,
                 data={"object": read.model_dump(mode="json"), "changes": changes})
        uow.commit()
    return read


def _workspace(uow: UnitOfWork) -> Workspace:
    assert uow.scope is not None
    workspace = uow.session.get(Workspace, uow.scope.workspace_id)  # the tenant itself: no workspace_id column
    if workspace is None:
        raise NotFound("the workspace no longer exists")
    return workspace


def _settings_read(scope: Scope, workspace: Workspace) -> WorkspaceSettingsRead:
    return WorkspaceSettingsRead(id=workspace.id, name=workspace.name, created_at=workspace.created_at,
                                 restrict_member_visibility=workspace.restrict_member_visibility,
                                 stale_deal_days=workspace.stale_deal_days,
                                 role=scope.role if scope.actor.type == "user" else None)


def stale_deal_thresholds(*, after: str | None, limit: int) -> list[tuple[str, int]]:
    """For platform sweeps: (workspace id, stale_deal_days) of workspaces that flag stale deals, by id."""
    statement = (select(Workspace.id, Workspace.stale_deal_days).where(Workspace.stale_deal_days > 0)
                 .order_by(Workspace.id).limit(limit))
    if after is not None:
        statement = statement.where(Workspace.id > after)
    with UnitOfWork(unscoped=True) as uow:
        return [(workspace_id, days) for workspace_id, days in uow.session.execute(statement)]


def workspace_ids(*, after: str | None, limit: int) -> list[str]:
    """For platform sweeps: every workspace's id, a page at a time in id order."""
    statement = select(Workspace.id).order_by(Workspace.id).limit(limit)
    if after is not None:
        statement = statement.where(Workspace.id > after)
    with UnitOfWork(unscoped=True) as uow:
        return list(uow.session.scalars(statement))


# ---- members ------------------------------------------------------------------------------------------
def list_members(scope: Scope, *, limit: int, cursor: str | None) -> MemberPage:
    secret = get_settings().cursor_secret
    after = decode_cursor(cursor, secret).get("after") if cursor else None
    with UnitOfWork(scope) as uow:
        rows = repository.members_page(uow.session, after_user_id=after, limit=limit)
    more, rows = len(rows) > limit, rows[:limit]
    data = [MemberRead(user_id=m.user_id, email=u.email, role=m.role, joined_at=m.created_at) for m, u in rows]  # type: ignore[arg-type]
    return MemberPage(data=data, next_cursor=encode_cursor({"after": rows[-1][0].user_id}, secret) if more else None)


def invite_member(scope: Scope, invite: MemberInvite) -> MemberRead:
    _require_grantable(scope, invite.role)
    # One unit of work: the person and the membership commit together (an Idempotency-Key's record with them).
    with UnitOfWork(scope) as uow:
        user = _find_or_add_user(uow, firebase_uid=None, email=invite.email)
        if repository.membership(uow.session, user.id) is not None:
            raise Conflict(f"{invite.email} is already a member", extra={"existing_id": user.id})
        member = Membership(id=new_id(), user_id=user.id, role=invite.role, created_at=utcnow())
        uow.session.add(member)
        _commit_new_user(uow)
    return MemberRead(user_id=user.id, email=user.email, role=invite.role, joined_at=member.created_at)


def change_role(scope: Scope, user_id: str, role: str) -> MemberRead:
    with UnitOfWork(scope) as uow:
        member = _member_or_404(uow, user_id)
        _require_grantable(scope, role)
        _require_grantable(scope, member.role)  # an admin cannot demote an owner
        if member.role == "owner" and role != "owner" and repository.count_owners(uow.session) == 1:
            raise Conflict("a workspace keeps at least one owner")
        member.role = role
        email = uow.session.get(User, user_id).email  # type: ignore[union-attr]
        uow.commit()
    return MemberRead(user_id=user_id, email=email, role=role, joined_at=member.created_at)  # type: ignore[arg-type]


def remove_member(scope: Scope, user_id: str) -> None:
    with UnitOfWork(scope) as uow:
        member = _member_or_404(uow, user_id)
        _require_grantable(scope, member.role)
        if member.role == "owner" and repository.count_owners(uow.session) == 1:
            raise Conflict("a workspace keeps at least one owner")
        uow.session.delete(member)
        repository.delete_team_members(uow.session, user_id=user_id)  # a former member is in no team
        uow.commit()


def members_among(uow: UnitOfWork, user_ids: list[str]) -> set[str]:
    """For other capabilities: which of these user ids are members of the caller's workspace."""
    return repository.members_among(uow.session, sorted(set(user_ids))) if user_ids else set()


def ensure_members(uow: UnitOfWork, user_ids: list[str], *, field: str) -> None:
    """For other capabilities: 422 unless every id is a member of the caller's workspace."""
    wanted = {u for u in user_ids if u is not None}
    missing = wanted - repository.members_among(uow.session, list(wanted)) if wanted else set()
    if missing:
        raise ValidationFailed(f"{field} must be a member of this workspace", errors=[
            {"field": field, "message": "not a member of this workspace", "code": "reference"}])


def _member_or_404(uow: UnitOfWork, user_id: str) -> Membership:
    member = repository.membership(uow.session, user_id)
    if member is None:
        raise NotFound(f"no member {user_id}")
    return member


def _require_grantable(scope: Scope, role: str) -> None:
    if role == "owner" and not (scope.actor.type == "system" or scope.role == "owner"):
        raise Forbidden("only owners can grant or change the owner role")
    if scope.actor.type == "user" and ROLE_RANK[role] > ROLE_RANK[scope.role]:
        raise Forbidden("you cannot grant a role above your own")


# ---- API keys -----------------------------------------------------------------------------------------
def create_api_key(scope: Scope, data: ApiKeyCreate) -> ApiKeyCreated:
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(id=new_id(), name=data.name, prefix=raw_key[:12], key_hash=_hash_key(raw_key),
                 scopes=sorted(set(data.scopes)), created_by=scope.actor.id, created_at=utcnow())
    with UnitOfWork(scope) as uow:
        uow.session.add(key)
        uow.commit()
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), key=raw_key)


def list_api_keys(scope: Scope, *, limit: int, cursor: str | None) -> ApiKeyPage:
    secret = get_settings().cursor_secret
    after = decode_cursor(cursor, secret).get("after") if cursor else None
    with UnitOfWork(scope) as uow:
        rows = repository.api_keys_page(uow.session, after_id=after, limit=limit)
    more, rows = len(rows) > limit, rows[:limit]
    return ApiKeyPage(data=[ApiKeyRead.model_validate(k) for k in rows],
                      next_cursor=encode_cursor({"after": rows[-1].id}, secret) if more else None)


def revoke_api_key(scope: Scope, key_id: str) -> None:
    with UnitOfWork(scope) as uow:
        key = uow.session.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"no API key {key_id}")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
        key_hash = key.key_hash
        # Before COMMIT a tombstone replaces the cached lookup for longer than any entry lives, so neither a
        # cached entry nor a fill racing the revoke can serve the key again; if Redis cannot take it, the
        # cache epoch moves in this transaction instead.
        def tombstone() -> None:
            guarded("auth", lambda r: r.set(_api_key_cache_key(key_hash), "revoked|", ex=API_KEY_CACHE_SECONDS),
                    lambda: invalidations.record(uow))

        uow.before_commit(tombstone)
        uow.commit()


# ---- sessions -----------------------------------------------------------------------------------------
def start_session(identity: FirebaseIdentity) -> tuple[str, UserPrincipal]:
    user = Resolver().resolve_user(identity)
    token = sessions.create(sessions.SessionData(user_id=user.user_id, email=user.email))
    return token, UserPrincipal(user.user_id, user.email, "session")


def end_session(token: str | None) -> None:
    if token:
        sessions.revoke(token)
