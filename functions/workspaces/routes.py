"""Workspaces, members, API keys and sessions."""
from __future__ import annotations

from chalice import Blueprint
from chalice.app import Response

from functions.workspaces import service, teams
from functions.workspaces.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPage,
    MemberInvite,
    MemberPage,
    MemberRead,
    MemberUpdate,
    MeRead,
    SessionCreate,
    TeamCreate,
    TeamMemberAdd,
    TeamMemberRead,
    TeamPage,
    TeamRead,
    TeamUpdate,
    WorkspaceCreate,
    WorkspaceList,
    WorkspaceRead,
    WorkspaceSettingsRead,
    WorkspaceUpdate,
)
from layers.auth.verifier import get_verifier
from layers.cache.sessions import COOKIE_NAME
from layers.http.endpoint import CURSOR_PARAM, LIMIT_PARAM, endpoint
from layers.http.requests import (
    if_match,
    json_response,
    no_content,
    parse_body,
    parse_query,
    record_response,
    scope_of,
    user_of,
)
from layers.records.routes import PageQuery
from shared.settings import get_settings

bp = Blueprint(__name__)
TAG = "Workspaces"


@bp.route("/v1/workspaces", methods=["POST"], name="workspaces_create")
@endpoint(summary="Create a workspace (you become its owner)", permission="user", tag=TAG,
          request=WorkspaceCreate, response=WorkspaceRead, status=201, errors=(400, 422))
def create_workspace() -> Response:
    request = bp.current_request
    data = parse_body(request, WorkspaceCreate)
    return json_response(service.create_workspace(user=user_of(request), name=data.name), 201)


@bp.route("/v1/workspaces", methods=["GET"], name="workspaces_list")
@endpoint(summary="Workspaces you belong to", permission="user", tag=TAG, response=WorkspaceList)
def list_workspaces() -> Response:
    return json_response({"data": [w.model_dump(mode="json") for w in
                                   service.list_workspaces(user=user_of(bp.current_request))]})


@bp.route("/v1/me", methods=["GET"], name="workspaces_me")
@endpoint(summary="The signed-in person and their workspaces", permission="user", tag=TAG, response=MeRead)
def me() -> Response:
    return json_response(service.me(user=user_of(bp.current_request)))


@bp.route("/v1/workspace", methods=["GET"], name="workspaces_settings_get")
@endpoint(summary="The caller's workspace and its settings", permission="read", tag=TAG,
          response=WorkspaceSettingsRead)
def get_settings_of_workspace() -> Response:
    return json_response(service.get_workspace(scope_of(bp.current_request)))


@bp.route("/v1/workspace", methods=["PATCH"], name="workspaces_settings_update")
@endpoint(summary="Rename the workspace or change its settings", permission="admin", tag=TAG,
          request=WorkspaceUpdate, response=WorkspaceSettingsRead, errors=(400, 422))
def update_settings_of_workspace() -> Response:
    request = bp.current_request
    return json_response(service.update_workspace(scope_of(request), parse_body(request, WorkspaceUpdate)))


@bp.route("/v1/members", methods=["GET"], name="workspaces_members_list")
@endpoint(summary="Members of the workspace", permission="read", tag=TAG, response=MemberPage, errors=(422,),
          query=(LIMIT_PARAM, CURSOR_PARAM))
def list_members() -> Response:
    request = bp.current_request
    query = parse_query(request, PageQuery)
    return json_response(service.list_members(scope_of(request), limit=query.limit, cursor=query.cursor))


@bp.route("/v1/members", methods=["POST"], name="workspaces_members_invite")
@endpoint(summary="Invite a person by email", permission="admin", tag=TAG, request=MemberInvite,
          response=MemberRead, status=201, errors=(400, 409, 422))
def invite_member() -> Response:
    request = bp.current_request
    return json_response(service.invite_member(scope_of(request), parse_body(request, MemberInvite)), 201)


@bp.route("/v1/members/{user_id}", methods=["PATCH"], name="workspaces_members_change_role")
@endpoint(summary="Change a member's role", permission="admin", tag=TAG, request=MemberUpdate,
          response=MemberRead, errors=(400, 404, 409, 422))
def change_role(user_id: str) -> Response:
    request = bp.current_request
    data = parse_body(request, MemberUpdate)
    return json_response(service.change_role(scope_of(request), user_id, data.role))


@bp.route("/v1/members/{user_id}", methods=["DELETE"], name="workspaces_members_remove")
@endpoint(summary="Remove a member", permission="admin", tag=TAG, status=204, errors=(404, 409))
def remove_member(user_id: str) -> Response:
    service.remove_member(scope_of(bp.current_request), user_id)
    return no_content()


# ---- teams ------------------------------------------------------------------------------------------------
@bp.route("/v1/teams", methods=["GET"], name="workspaces_teams_list")
@endpoint(summary="Teams of the workspace, by name", permission="read", tag=TAG, response=TeamPage, errors=(422,),
          query=(LIMIT_PARAM, CURSOR_PARAM))
def list_teams() -> Response:
    request = bp.current_request
    query = parse_query(request, PageQuery)
    return json_response(teams.list_teams(scope_of(request), limit=query.limit, cursor=query.cursor))


@bp.route("/v1/teams", methods=["POST"], name="workspaces_teams_create")
@endpoint(summary="Create a team (optionally with its members)", permission="admin", tag=TAG, request=TeamCreate,
          response=TeamRead, status=201, errors=(400, 409, 422), etag=True)
def create_team() -> Response:
    request = bp.current_request
    view = teams.create_team(scope_of(request), parse_body(request, TeamCreate))
    response = record_response(view.team.model_dump_json(), view.version, 201)
    response.headers["Location"] = f"/v1/teams/{view.team.id}"
    return response


@bp.route("/v1/teams/{team_id}", methods=["GET"], name="workspaces_teams_get")
@endpoint(summary="Get a team and its members", permission="read", tag=TAG, response=TeamRead, errors=(404,),
          etag=True)
def get_team(team_id: str) -> Response:
    view = teams.get_team(scope_of(bp.current_request), team_id)
    return record_response(view.team.model_dump_json(), view.version)


@bp.route("/v1/teams/{team_id}", methods=["PATCH"], name="workspaces_teams_update")
@endpoint(summary="Rename a team", permission="admin", tag=TAG, request=TeamUpdate, response=TeamRead,
          errors=(400, 404, 409, 412, 422), etag=True)
def update_team(team_id: str) -> Response:
    request = bp.current_request
    view = teams.update_team(scope_of(request), team_id, parse_body(request, TeamUpdate),
                             expected_version=if_match(request))
    return record_response(view.team.model_dump_json(), view.version)


@bp.route("/v1/teams/{team_id}", methods=["DELETE"], name="workspaces_teams_delete")
@endpoint(summary="Delete a team (its members stay in the workspace)", permission="admin", tag=TAG, status=204,
          errors=(404, 412))
def delete_team(team_id: str) -> Response:
    request = bp.current_request
    teams.delete_team(scope_of(request), team_id, expected_version=if_match(request))
    return no_content()


@bp.route("/v1/teams/{team_id}/members", methods=["POST"], name="workspaces_teams_members_add")
@endpoint(summary="Add a workspace member to a team", permission="admin", tag=TAG, request=TeamMemberAdd,
          response=TeamMemberRead, status=201, errors=(400, 404, 409, 422))
def add_team_member(team_id: str) -> Response:
    request = bp.current_request
    data = parse_body(request, TeamMemberAdd)
    return json_response(teams.add_member(scope_of(request), team_id, data.user_id), 201)


@bp.route("/v1/teams/{team_id}/members/{user_id}", methods=["DELETE"], name="workspaces_teams_members_remove")
@endpoint(summary="Remove a member from a team", permission="admin", tag=TAG, status=204, errors=(404, 409))
def remove_team_member(team_id: str, user_id: str) -> Response:
    teams.remove_member(scope_of(bp.current_request), team_id, user_id)
    return no_content()


# ---- API keys -------------------------------------------------------------------------------------------
@bp.route("/v1/api-keys", methods=["POST"], name="workspaces_api_keys_create")
@endpoint(summary="Create an API key (the secret is shown once)", permission="admin", tag=TAG,
          request=ApiKeyCreate, response=ApiKeyCreated, status=201, errors=(400, 422))
def create_api_key() -> Response:
    request = bp.current_request
    return json_response(service.create_api_key(scope_of(request), parse_body(request, ApiKeyCreate)), 201)


@bp.route("/v1/api-keys", methods=["GET"], name="workspaces_api_keys_list")
@endpoint(summary="API keys of the workspace", permission="admin", tag=TAG, response=ApiKeyPage, errors=(422,),
          query=(LIMIT_PARAM, CURSOR_PARAM))
def list_api_keys() -> Response:
    request = bp.current_request
    query = parse_query(request, PageQuery)
    return json_response(service.list_api_keys(scope_of(request), limit=query.limit, cursor=query.cursor))


@bp.route("/v1/api-keys/{key_id}", methods=["DELETE"], name="workspaces_api_keys_revoke")
@endpoint(summary="Revoke an API key", permission="admin", tag=TAG, status=204, errors=(404,))
def revoke_api_key(key_id: str) -> Response:
    service.revoke_api_key(scope_of(bp.current_request), key_id)
    return no_content()


@bp.route("/v1/sessions", methods=["POST"], name="workspaces_sessions_start")
@endpoint(summary="Exchange a Firebase ID token for a session cookie", permission="public", tag=TAG,
          request=SessionCreate, response=MeRead, status=201, errors=(400, 401, 409, 422))
def start_session() -> Response:
    request = bp.current_request
    data = parse_body(request, SessionCreate)
    token, user = service.start_session(get_verifier().verify(data.id_token))
    max_age = get_settings().session_ttl_seconds
    secure = "" if get_settings().is_local else "; Secure"
    response = json_response(service.me(user=user), 201)
    response.headers["Set-Cookie"] = f"{COOKIE_NAME}={token}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{secure}"
    return response


@bp.route("/v1/sessions/current", methods=["DELETE"], name="workspaces_sessions_end")
@endpoint(summary="Sign out: revoke the session", permission="user", tag=TAG, status=204)
def end_session() -> Response:
    request = bp.current_request
    cookie = request.headers.get("cookie", "")
    token = next((v for k, _, v in (p.strip().partition("=") for p in cookie.split(";")) if k == COOKIE_NAME), None)
    service.end_session(token)
    response = no_content()
    response.headers["Set-Cookie"] = f"{COOKIE_NAME}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
    return response
