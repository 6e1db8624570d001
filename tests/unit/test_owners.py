"""The owner filters of lists and searches (`owned_by=me|my_team`), as SQL conditions."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Integer, String
from sqlalchemy.orm import DeclarativeBase

from functions.contacts.models import Contact
from functions.workspaces.teams import teammates
from layers.db.uow import UnitOfWork
from layers.records.owners import owner_condition, use_teammates_provider
from shared.context import Actor, Scope
from shared.errors import ValidationFailed

WORKSPACE = "01JAAAAAAAAAAAAAAAAAAAAAAA"


class _Base(DeclarativeBase):
    pass


class Unowned(_Base):
    __tablename__ = "unowned"
    id = Column(Integer, primary_key=True)
    name = Column(String(10))


def person(user_id: str = "alice", visible: frozenset[str] | None = None) -> UnitOfWork:
    return UnitOfWork(Scope(WORKSPACE, Actor("user", user_id), role="member", visible_owner_ids=visible))


def params(condition: object) -> list[object]:
    return list(condition.compile().params.values())  # type: ignore[attr-defined]


@pytest.fixture
def asked() -> Iterator[list[str]]:
    """A teammates provider that answers from a fixed table and records who was asked about."""
    calls: list[str] = []

    def fixed(uow: UnitOfWork, user_id: str) -> set[str]:
        calls.append(user_id)
        return {"alice": {"alice", "bob"}, "carol": set()}.get(user_id, set())

    use_teammates_provider(fixed)
    yield calls
    use_teammates_provider(teammates)  # the workspaces capability's own provider


def test_me_is_the_callers_own_records(asked: list[str]) -> None:
    # GIVEN a person WHEN they ask for their own records THEN the owner is them, and no teams are looked up
    condition = owner_condition(person(), Contact, "me", field="owned_by")
    assert "owner_id = " in str(condition) and params(condition) == ["alice"]
    assert asked == []


def test_my_team_adds_teammates_or_is_just_me_without_a_team(asked: list[str]) -> None:
    # GIVEN people with and without teammates
    # WHEN they ask for their team's records
    alices = owner_condition(person("alice"), Contact, "my_team", field="owned_by")
    carols = owner_condition(person("carol"), Contact, "my_team", field="owned_by")
    # THEN the owners are them and their teammates
    assert "owner_id IN" in str(alices) and params(alices) == [["alice", "bob"]]
    assert params(carols) == [["carol"]]
    assert asked == ["alice", "carol"]


def test_a_restricted_member_s_team_is_what_they_may_see(asked: list[str]) -> None:
    # GIVEN a member whose visibility is already limited to their team
    uow = person("alice", visible=frozenset({"alice", "dave"}))
    # WHEN they ask for their team's records THEN that set is used as it is
    assert params(owner_condition(uow, Contact, "my_team", field="owned_by")) == [["alice", "dave"]]
    assert asked == []


@pytest.mark.parametrize("actor", [Actor("api_key", "key-1"), Actor("system", "system")])
def test_credentials_that_are_not_people_are_refused(actor: Actor) -> None:
    # GIVEN an API key (or the system) WHEN it filters by owner THEN 422 naming the field
    uow = UnitOfWork(Scope(WORKSPACE, actor, role="admin"))
    with pytest.raises(ValidationFailed) as raised:
        owner_condition(uow, Contact, "me", field="query.owned_by")
    assert raised.value.errors == [{"field": "query.owned_by", "message": raised.value.errors[0]["message"],  # type: ignore[index]
                                    "code": "owned_by"}]


def test_records_without_owners_cannot_be_filtered_by_owner() -> None:
    # GIVEN a model without an owner WHEN filtered by owner THEN 422
    with pytest.raises(ValidationFailed):
        owner_condition(person(), Unowned, "me", field="owned_by")
