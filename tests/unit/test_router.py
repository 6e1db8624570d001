"""The adapter's route matching: static beats param, backtracking, slashes, misses."""
from __future__ import annotations

import pytest

from layers.http.router import Match, Router

TEMPLATES = [
    "/",
    "/v1/contacts",
    "/v1/contacts/search",
    "/v1/contacts/{record_id}",
    "/v1/contacts/{record_id}/history",
    "/v1/companies/{record_id}/contacts",
    "/v1/things/{record_id}/archive",
    "/v1/things/special/restore",
]


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(TEMPLATES)


def test_static_segment_wins_over_a_parameter(router: Router) -> None:
    # GIVEN `/v1/contacts/search` and `/v1/contacts/{record_id}` both registered
    # WHEN the static path is matched
    match = router.match("/v1/contacts/search")

    # THEN the static route wins and no parameter is captured
    assert match == Match("/v1/contacts/search", {})


def test_parameter_captures_any_other_segment(router: Router) -> None:
    # GIVEN the same table
    # WHEN an id is in the parameter position
    match = router.match("/v1/contacts/01HZZZ")

    # THEN the parameter route matches and names the value
    assert match == Match("/v1/contacts/{record_id}", {"record_id": "01HZZZ"})


def test_nested_route_under_a_parameter(router: Router) -> None:
    # GIVEN a route below a parameter
    # WHEN it is matched
    match = router.match("/v1/contacts/abc/history")

    # THEN the template and its parameter come back
    assert match == Match("/v1/contacts/{record_id}/history", {"record_id": "abc"})


def test_backtracks_when_the_static_branch_dead_ends(router: Router) -> None:
    # GIVEN `/v1/things/special/restore` (static) and `/v1/things/{record_id}/archive` (param)
    # WHEN the path starts down the static branch but only the param branch completes it
    match = router.match("/v1/things/special/archive")

    # THEN the matcher backs out of the static branch and takes the parameter one
    assert match == Match("/v1/things/{record_id}/archive", {"record_id": "special"})


def test_backtracking_does_not_leak_params_from_a_failed_branch() -> None:
    # GIVEN a static branch that captures a parameter before it dead-ends
    router = Router(["/a/s/{y}/c", "/a/{x}/t/d"])

    # WHEN the path goes down the static branch first and has to back out of it
    match = router.match("/a/s/t/d")

    # THEN only the parameters of the route that matched are reported
    assert match == Match("/a/{x}/t/d", {"x": "s"})


def test_static_route_still_matches_alongside_its_param_sibling(router: Router) -> None:
    # GIVEN the same table
    # WHEN the static branch completes
    match = router.match("/v1/things/special/restore")

    # THEN it wins
    assert match == Match("/v1/things/special/restore", {})


@pytest.mark.parametrize("path", ["/v1/contacts/", "v1/contacts", "/v1/contacts//", "//v1/contacts"])
def test_leading_and_trailing_slashes_are_ignored(router: Router, path: str) -> None:
    # GIVEN the table WHEN the path has extra slashes at either end
    match = router.match(path)

    # THEN it matches as if they were not there
    assert match == Match("/v1/contacts", {})


@pytest.mark.parametrize("path", ["", "/", "//"])
def test_root_path(router: Router, path: str) -> None:
    # GIVEN `/` registered WHEN the root is requested THEN it matches
    assert router.match(path) == Match("/", {})


def test_root_is_unknown_when_not_registered() -> None:
    # GIVEN a table without `/`
    router = Router(["/v1/contacts"])

    # WHEN / THEN the root does not match
    assert router.match("/") is None


@pytest.mark.parametrize(
    "path",
    [
        "/v2/contacts",
        "/v1",  # a prefix of a route is not a route
        "/v1/contacts/abc/history/extra",
        "/v1/companies/abc",
        "/v1/companies/abc/deals",
        "/v1/contacts//history",  # an empty segment is never a parameter value
    ],
)
def test_unknown_paths_are_none(router: Router, path: str) -> None:
    # GIVEN the table WHEN a path no template covers is matched THEN there is no match
    assert router.match(path) is None


def test_conflicting_parameter_names_at_one_level_raise() -> None:
    # GIVEN two templates naming the same path level differently
    templates = ["/v1/contacts/{record_id}", "/v1/contacts/{contact_id}/history"]

    # WHEN the router is built THEN it refuses (API Gateway allows one name per level)
    with pytest.raises(ValueError, match="conflicting parameter names"):
        Router(templates)


def test_the_same_parameter_name_may_be_reused() -> None:
    # GIVEN two templates sharing a parameter level with the same name
    router = Router(["/v1/contacts/{record_id}", "/v1/contacts/{record_id}/history"])

    # WHEN / THEN both match
    assert router.match("/v1/contacts/1") == Match("/v1/contacts/{record_id}", {"record_id": "1"})
    assert router.match("/v1/contacts/1/history") == Match("/v1/contacts/{record_id}/history", {"record_id": "1"})
