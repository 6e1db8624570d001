"""Deal use cases: the shared record machinery plus stage rules, stage changes, contacts and the board.

Contacts. A deal's contacts are deals↔contacts associations (functions/associations), one of them
primary. The service puts them on each row it loads (`Deal.contact_ids` / `primary_contact_id`), so
change detection, history, `deal.updated` events and the read body treat them like fields; a write
that changes them bumps the deal's version and syncs the association rows in the same transaction.
What a body shows depends on the caller: only live contacts they may see. So deal reads are answered
from the database, never from the record cache, which would hand one caller's view to another and
would miss link changes made elsewhere (the associations API, a contact archived or merged).

Stages. Every stage change — a create counts as entering its first stage — writes a DealStageChange
row and a `deal.stage_changed` event in the deal's transaction. Writes lock the deal's row first, so
concurrent moves serialise and each change's `from_stage_id` is the stage the deal really left.
"""
from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, String, delete, func, or_, select, type_coerce, update
from sqlalchemy.orm import Session, object_session

from functions.associations import service as associations
from functions.companies import service as companies_service
from functions.deals import repository, rules
from functions.deals.models import Deal, DealStageChange
from functions.deals.schemas import (
    CurrencyTotal,
    DealCreate,
    DealRead,
    DealUpdate,
    StageChangePage,
    StageChangeRead,
    StageMove,
)
from functions.pipelines import service as pipelines
from functions.pipelines.schemas import StageRead
from functions.pipelines.service import StageInfo
from functions.workspaces import service as workspaces
from layers.db.base import RecordMixin
from layers.db.uow import UnitOfWork
from layers.http.requests import page_json
from layers.queue.outbox import emit
from layers.records.properties import PropertySpec
from layers.records.search import SearchRequest, apply_keyset, next_cursor, signature, sort_keys
from layers.records.service import ObjectSpec, RecordService, RecordView
from shared.clock import as_utc, isoformat, utcnow
from shared.context import Actor, Scope, system_scope
from shared.cursors import decode_cursor_for, encode_cursor
from shared.errors import NotFound, ValidationFailed
from shared.ids import new_id
from shared.settings import get_settings

CONTACT_FIELDS = ("contact_ids", "primary_contact_id")
_UOW = "deals.uow"  # session.info: the unit of work a lazily loaded row's contacts are read through
_STAGES = "deals.stages"  # session.info: stage id → StageInfo, read once per unit of work
_LEFT = "deals.left"  # session.info: deal id → the stage it is leaving in this write


SPEC = ObjectSpec(
    object_type="deals",
    event_name="deal",
    model=Deal,
    read_schema=DealRead,
    create_schema=DealCreate,
    update_schema=DealUpdate,
    properties=(
        PropertySpec("id", "id"),
        PropertySpec("name", "string"),
        PropertySpec("amount", "number"),
        PropertySpec("currency", "string"),
        PropertySpec("pipeline_id", "id"),
        PropertySpec("stage_id", "id"),
        # ISO date strings compare like the DATE column on both databases (the column as it is, so the index
        # serves it); a datetime would turn the comparison into a DATETIME one, which SQLite gets wrong.
        PropertySpec("expected_close_date", "isodate", expression=type_coerce(Deal.expected_close_date, String())),
        PropertySpec("owner_id", "id"),
        PropertySpec("company_id", "id"),
        PropertySpec("lost_reason", "string"),
        PropertySpec("tags", "tags", sortable=False),
        PropertySpec("closed_at", "datetime"),
        PropertySpec("stage_entered_at", "datetime"),
        PropertySpec("last_activity_at", "datetime"),
        PropertySpec("created_at", "datetime"),
        PropertySpec("updated_at", "datetime"),
        PropertySpec("archived_at", "datetime"),
    ),
    text_fields=("name",),
    check_references=companies_service.check_company_and_owner,
    custom_fields=True,
)


@dataclass(frozen=True)
class _Leaving:
    stage: StageInfo | None
    pipeline_id: str


class DealService(RecordService):
    body_shows_links = True  # contact_ids / primary_contact_id
    # ---- reads ---------------------------------------------------------------------------------------
    def get(self, scope: Scope, record_id: str, *, include_archived: bool = False) -> RecordView:
        """From the database, not the record cache: the body holds the contacts this caller may see."""
        with UnitOfWork(scope) as uow:
            row = self._fetch(uow, record_id, include_archived=include_archived, lock=False)
            return self._view(row)

    def stage_changes(self, scope: Scope, record_id: str, *, limit: int, cursor: str | None) -> StageChangePage:
        secret = get_settings().cursor_secret
        position = decode_cursor_for(cursor, secret, deal=record_id)
        before = str(position.get("before", "")) if cursor is not None else None
        with UnitOfWork(scope) as uow:
            if uow.session.get(Deal, record_id) is None:  # archived deals keep their stage history
                raise self._not_found(record_id)
            rows = repository.stage_changes_page(uow.session, record_id, before_id=before, limit=limit)
        more, rows = len(rows) > limit, rows[:limit]
        return StageChangePage(
            data=[StageChangeRead(id=r.id, deal_id=r.deal_id, pipeline_id=r.pipeline_id, from_stage_id=r.from_stage_id,
                                  to_stage_id=r.to_stage_id, actor={"type": r.actor_type, "id": r.actor_id},
                                  changed_at=r.changed_at) for r in rows],
            next_cursor=encode_cursor({"before": rows[-1].id, "deal": record_id}, secret) if more else None)

    def board(self, scope: Scope, pipeline_id: str, *, limit: int) -> str:
        """The pipeline's stages in order, each with its live deals' count, sum per currency and first page."""
        with UnitOfWork(scope) as uow:
            name = pipelines.live_pipeline_name(uow, pipeline_id)
            if name is None:
                raise NotFound(f"no pipeline with id {pipeline_id}")
            totals = repository.stage_totals(uow.session, pipeline_id)
            parts = []
            for stage in pipelines.stages_of(uow, pipeline_id):
                count, amounts = totals.get(stage.id, (0, {}))
                head = StageRead.model_validate(stage).model_dump(mode="json") | {
                    "count": count,
                    "amounts": [CurrencyTotal(currency=c, total=rules.format_amount(amounts[c], c)).model_dump()
                                for c in sorted(amounts)],
                }
                page = self._column(uow, pipeline_id, stage.id, limit=limit, cursor=None)
                parts.append(json.dumps(head, separators=(",", ":"))[:-1] + ',"deals":' + page + "}")
        prefix = json.dumps({"pipeline_id": pipeline_id, "name": name}, separators=(",", ":"))[:-1]
        return prefix + ',"stages":[' + ",".join(parts) + "]}"

    def board_stage(self, scope: Scope, pipeline_id: str, stage_id: str, *, limit: int, cursor: str | None) -> str:
        """The next pages of one board column (the same order and cursors as the board's first page)."""
        with UnitOfWork(scope) as uow:
            stage = pipelines.get_stage(uow, stage_id)
            if stage is None or stage.pipeline_id != pipeline_id:
                raise NotFound(f"no stage {stage_id} in pipeline {pipeline_id}")
            return self._column(uow, pipeline_id, stage_id, limit=limit, cursor=cursor)

    def _column(self, uow: UnitOfWork, pipeline_id: str, stage_id: str, *, limit: int, cursor: str | None) -> str:
        """One page of a board column: live deals of the stage, newest first (id order)."""
        keys = sort_keys([], self._properties, Deal)  # the default order: id descending
        secret = get_settings().cursor_secret
        sig = signature(keys, f"board:{pipeline_id}:{stage_id}")  # a column's cursor pages no other column
        statement = apply_keyset(repository.column_select(pipeline_id, stage_id), keys, cursor, secret, sig, limit)
        uow.session.info[_UOW] = uow
        rows, next_page = next_cursor(list(uow.session.scalars(statement)), keys, limit, secret, sig)
        return page_json((self._dump(row) for row in rows), next_page)

    # ---- writes --------------------------------------------------------------------------------------
    def move_stage(self, scope: Scope, record_id: str, data: StageMove, *, expected_version: int | None) -> RecordView:
        """The explicit move: the same rules and records as a PATCH of `stage_id`."""
        return self.update(scope, record_id, data, expected_version=expected_version)

    # ---- the port functions/pipelines asks (StageOccupants) -------------------------------------------
    def count_in_stages(self, uow: UnitOfWork, stage_ids: builtins.list[str], *, include_archived: bool) -> int:
        return repository.count_in_stages(uow.session, stage_ids, include_archived=include_archived)

    def move_stage_deals(self, uow: UnitOfWork, from_stage: StageInfo, to_stage: StageInfo) -> int:
        """Move every deal of a stage being removed, each move a recorded stage change."""
        rows = repository.deals_in_stage(uow.session, from_stage.id)
        if to_stage.kind == "lost" and any(not row.lost_reason for row in rows):
            raise ValidationFailed("deals moving to a lost stage need a lost reason", errors=[
                {"field": "query.move_deals_to", "message": "a lost stage; some deals have no lost reason",
                 "code": "lost_reason"}])
        self._load_contacts(uow, rows)
        now = utcnow()
        for row in rows:
            placement = rules.enter_stage(rules.Placement(from_stage.kind, row.closed_at, row.lost_reason),
                                          target_kind=to_stage.kind, now=now)
            self._leaving(uow)[row.id] = _Leaving(from_stage, row.pipeline_id)
            changes = {"stage_id": to_stage.id, "stage_entered_at": now,
                       **{k: v for k, v in placement.items() if getattr(row, k) != v}}
            self._change(uow, row, changes, action="updated", event="updated")
            self._record_stage_change(uow, row)
        return len(rows)

    # ---- hooks of the record machinery ---------------------------------------------------------------
    def _before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        now = utcnow()
        named = self._stage(uow, values["stage_id"]) if values.get("stage_id") is not None else None
        # No pipeline named: the stage's, when a stage is named; else the workspace's default.
        pipeline_id = values.get("pipeline_id") or (named.pipeline_id if named else None) or \
            pipelines.default_pipeline_id(uow)
        if pipeline_id is None:
            raise _invalid("pipeline_id", "the workspace has no default pipeline: name one", "missing")
        if not pipelines.is_live(uow, pipeline_id):
            raise _invalid("pipeline_id", "not a live pipeline of this workspace", "reference")
        if values.get("stage_id") is None:
            stage = next((s for s in pipelines.stages_of(uow, pipeline_id) if s.kind == "open"), None)
            if stage is None:
                raise _invalid("stage_id", "the pipeline has no open stage", "missing")
        else:
            stage = named
            rules.require_stage_of(stage.pipeline_id if stage else None, pipeline_id)
        assert stage is not None
        placement = rules.enter_stage(rules.Placement(None), target_kind=stage.kind,
                                      lost_reason=values.get("lost_reason"), now=now)
        rules.check_amount(values.get("amount"), values.get("currency"))
        contact_ids, primary = rules.contacts_after([], None, contact_ids=values.get("contact_ids") or [],
                                                    primary_contact_id=values.get("primary_contact_id"))
        self._ensure_contacts(uow, contact_ids)
        values.update(pipeline_id=pipeline_id, stage_id=stage.id, stage_entered_at=now, contact_ids=contact_ids,
                      primary_contact_id=primary, **placement)

    def _before_update(self, uow: UnitOfWork, row: RecordMixin, changed: dict[str, Any]) -> None:
        deal = cast(Deal, row)
        if any(k in changed for k in CONTACT_FIELDS):
            contact_ids, primary = rules.contacts_after(
                deal.contact_ids, deal.primary_contact_id,
                contact_ids=changed.get("contact_ids", rules.UNSET),
                primary_contact_id=changed.get("primary_contact_id", rules.UNSET))
            self._ensure_contacts(uow, sorted(set(contact_ids) - set(deal.contact_ids)))
            _set_changed(deal, changed, {"contact_ids": contact_ids, "primary_contact_id": primary})
        if any(k in changed for k in ("pipeline_id", "stage_id", "lost_reason")):
            self._place(uow, deal, changed)
        if "amount" in changed or "currency" in changed:
            rules.check_amount(changed.get("amount", deal.amount), changed.get("currency", deal.currency))

    def _place(self, uow: UnitOfWork, deal: Deal, changed: dict[str, Any]) -> None:
        """Apply the stage rules to a write that moves the deal or changes its lost reason."""
        pipeline_id = changed.get("pipeline_id", deal.pipeline_id)
        if "pipeline_id" in changed:
            if not pipelines.is_live(uow, pipeline_id):
                raise _invalid("pipeline_id", "not a live pipeline of this workspace", "reference")
            if "stage_id" not in changed:
                raise _invalid("stage_id", "a pipeline change needs a stage of the new pipeline", "missing")
        target = self._stage(uow, changed.get("stage_id", deal.stage_id))
        rules.require_stage_of(target.pipeline_id if target else None, pipeline_id)
        assert target is not None
        current = self._stage(uow, deal.stage_id)
        now = utcnow()
        placement = rules.enter_stage(
            rules.Placement(current.kind if current else None, deal.closed_at, deal.lost_reason),
            target_kind=target.kind, lost_reason=changed.get("lost_reason", rules.UNSET), now=now)
        _set_changed(deal, changed, placement)
        if "stage_id" in changed:
            changed["stage_entered_at"] = now
            self._leaving(uow)[deal.id] = _Leaving(current, deal.pipeline_id)

    def _after_write(self, uow: UnitOfWork, row: RecordMixin, action: str, changed: dict[str, Any]) -> None:
        deal = cast(Deal, row)
        if action == "created":
            self._sync_contacts(uow, deal)  # its stage change follows deal.created (see _create)
        elif action == "updated":
            if any(k in changed for k in CONTACT_FIELDS):
                self._sync_contacts(uow, deal)
            if "stage_id" in changed:
                self._record_stage_change(uow, deal)

    def _create(self, uow: UnitOfWork, values: dict[str, Any], *, allow_duplicate: bool = False) -> RecordView:
        view = super()._create(uow, values, allow_duplicate=allow_duplicate)
        # Entering the first stage is recorded after deal.created, so consumers meet the deal first.
        self._record_stage_change(uow, cast(Deal, uow.session.get(Deal, view.id)))
        return view

    def _batch_upsert(self, uow: UnitOfWork, raw: Any, index: int) -> tuple[str, int, RecordView]:
        raise ValidationFailed("deals have no unique property to upsert on: use batch/create or batch/update",
                               errors=[{"field": f"inputs.{index}", "message": "deals cannot be upserted",
                                        "code": "unsupported"}])

    # ---- loading rows and their contacts ---------------------------------------------------------------
    def _load(self, uow: UnitOfWork, record_id: str, *, include_archived: bool = True) -> RecordMixin:
        """For a write: the row locked, so concurrent writes to one deal (stage moves) take turns."""
        return self._fetch(uow, record_id, include_archived=include_archived, lock=True)

    def _fetch(self, uow: UnitOfWork, record_id: str, *, include_archived: bool, lock: bool) -> Deal:
        row = uow.session.get(Deal, record_id, with_for_update=True if lock else None)
        if row is None or (row.archived_at is not None and not include_archived):
            raise self._not_found(record_id)
        self._load_contacts(uow, [row])
        return row

    def _search(self, uow: UnitOfWork, request: SearchRequest, where: tuple[ColumnElement[bool], ...]) -> str:
        uow.session.info[_UOW] = uow  # _dump loads the page's contacts through it, in one query
        return super()._search(uow, request, where)

    def _change(self, uow: UnitOfWork, row: RecordMixin, values: dict[str, Any], *, action: str, event: str) -> None:
        # Other capabilities change deals through here (a merge moving deals): the body needs their contacts.
        self._load_contacts(uow, [cast(Deal, row)])
        super()._change(uow, row, values, action=action, event=event)

    def _dump(self, row: RecordMixin) -> str:
        deal = cast(Deal, row)
        if not deal.contacts_loaded:
            session = object_session(deal)
            uow = session.info.get(_UOW) if session is not None else None
            if uow is None:
                raise RuntimeError("a deal read outside DealService's loading paths")
            self._load_contacts(uow, _unloaded_deals(cast(Session, session)))
        return super()._dump(deal)

    def _cache_after_commit(self, uow: UnitOfWork, view: RecordView) -> None:
        """Nothing: deal reads do not use the record cache (see the module docstring)."""

    @staticmethod
    def _load_contacts(uow: UnitOfWork, rows: builtins.list[Deal]) -> None:
        wanted = [row for row in rows if not row.contacts_loaded]
        if not wanted:
            return
        links = associations.links_of_many(uow, "deals", [row.id for row in wanted], "contacts")
        for row in wanted:
            found = links.get(row.id, [])
            row.contact_ids = sorted({link.other_id for link in found})
            row.primary_contact_id = next((link.other_id for link in found if link.is_primary), None)

    # ---- helpers ---------------------------------------------------------------------------------------
    @staticmethod
    def _ensure_contacts(uow: UnitOfWork, contact_ids: builtins.list[str]) -> None:
        """422 unless every id is a live contact the caller may see."""
        if not contact_ids:
            return
        model = associations.model_of("contacts")
        found = set(uow.session.scalars(select(model.id).where(model.id.in_(contact_ids),
                                                                model.archived_at.is_(None))))
        missing = [c for c in contact_ids if c not in found]
        if missing:
            raise ValidationFailed("contact_ids must name live contacts of this workspace", errors=[
                {"field": "contact_ids", "message": f"no such contact: {', '.join(missing)}", "code": "reference"}])

    @staticmethod
    def _sync_contacts(uow: UnitOfWork, deal: Deal) -> None:
        """Make the deal↔contact links match the row (links to contacts the caller cannot see stay)."""
        current = associations.links_of(uow, "deals", deal.id, "contacts")
        linked = {link.other_id for link in current}
        wanted = set(deal.contact_ids)
        for contact_id in sorted(linked - wanted):
            associations.unlink(uow, a_type="deals", a_id=deal.id, b_type="contacts", b_id=contact_id)
        for contact_id in sorted(wanted - linked):
            associations.link(uow, a_type="deals", a_id=deal.id, b_type="contacts", b_id=contact_id)
        primary = deal.primary_contact_id
        current_primary = next((link.other_id for link in current if link.is_primary and link.other_id in wanted),
                               None)
        if primary is not None and primary != current_primary:
            associations.link(uow, a_type="deals", a_id=deal.id, b_type="contacts", b_id=primary, is_primary=True)
        elif primary is None and current_primary is not None:
            associations.clear_primary(uow, a_type="deals", a_id=deal.id, b_type="contacts")

    def _record_stage_change(self, uow: UnitOfWork, deal: Deal) -> None:
        """The DealStageChange row and the `deal.stage_changed` event of the deal's new stage."""
        scope = uow.scope
        assert scope is not None
        leaving = self._leaving(uow).pop(deal.id, None)
        source = leaving.stage if leaving is not None else None
        target = self._stage(uow, deal.stage_id)
        actor: Actor = scope.actor
        change = DealStageChange(id=new_id(), deal_id=deal.id, pipeline_id=deal.pipeline_id,
                                 from_stage_id=source.id if source else None, to_stage_id=deal.stage_id,
                                 actor_type=actor.type, actor_id=actor.id, changed_at=deal.stage_entered_at)
        uow.session.add(change)
        emit(uow, event_type="deal.stage_changed", object_type="deals", record_id=deal.id, data={
            "stage_change_id": change.id,
            "deal_id": deal.id,
            "pipeline_id": deal.pipeline_id,
            "from_pipeline_id": leaving.pipeline_id if leaving is not None else None,
            "from_stage_id": source.id if source else None,
            "from_kind": source.kind if source else None,
            "to_stage_id": deal.stage_id,
            "to_kind": target.kind if target else None,
            "lost_reason": deal.lost_reason,
            "closed_at": isoformat(deal.closed_at),
            "changed_at": isoformat(deal.stage_entered_at),
        })

    @staticmethod
    def _stage(uow: UnitOfWork, stage_id: str) -> StageInfo | None:
        known: dict[str, StageInfo | None] = uow.session.info.setdefault(_STAGES, {})
        if stage_id not in known:
            known[stage_id] = pipelines.get_stage(uow, stage_id)
        return known[stage_id]

    @staticmethod
    def _leaving(uow: UnitOfWork) -> dict[str, _Leaving]:
        return uow.session.info.setdefault(_LEFT, {})  # type: ignore[no-any-return]


def _set_changed(deal: Deal, changed: dict[str, Any], values: dict[str, Any]) -> None:
    """Put into `changed` the values that differ from the row, and take out those that do not."""
    for key, value in values.items():
        if getattr(deal, key) != value:
            changed[key] = value
        else:
            changed.pop(key, None)


def _unloaded_deals(session: Session) -> list[Deal]:
    return [row for row in session.identity_map.values() if isinstance(row, Deal) and not row.contacts_loaded]


def _invalid(field: str, message: str, code: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors=[{"field": field, "message": message, "code": code}])


deals = DealService(SPEC)
associations.register_object_type("deals", deals)
pipelines.use_stage_occupants(deals)


# ---- stale deals (functions/deals/schedules.py) ------------------------------------------------------
STALE_BATCH = 500
MAX_STALE_BATCHES = 20  # per workspace and run (10,000 deals); the next hour takes the rest
WORKSPACE_PAGE = 500


def flag_stale_deals(*, now: datetime, batch_size: int = STALE_BATCH) -> dict[str, int]:
    """Emit `deal.stale` for open deals without activity for the workspace's `stale_deal_days`, once per
    staleness period: a later activity starts a new one. A deal without activities counts from entering
    its stage."""
    flagged = workspaces_seen = 0
    after: str | None = None
    while True:
        page = workspaces.stale_deal_thresholds(after=after, limit=WORKSPACE_PAGE)
        for workspace_id, days in page:
            flagged += _flag_stale_in_workspace(workspace_id, days, now=now, batch_size=batch_size)
        workspaces_seen += len(page)
        if len(page) < WORKSPACE_PAGE:
            return {"workspaces": workspaces_seen, "flagged": flagged}
        after = page[-1][0]


def _flag_stale_in_workspace(workspace_id: str, days: int, *, now: datetime, batch_size: int) -> int:
    # The last sign of life: the latest activity; for a deal that never had one, entering its stage.
    touched = func.coalesce(Deal.last_activity_at, Deal.stage_entered_at)
    stale = (Deal.closed_at.is_(None), Deal.archived_at.is_(None), touched < now - timedelta(days=days),
             # not yet flagged for this period: the notice was about an earlier touch, or there was none
             or_(Deal.stale_notified_for.is_(None), Deal.stale_notified_for < touched))
    flagged = 0
    for _ in range(MAX_STALE_BATCHES):
        with UnitOfWork(system_scope(workspace_id, source="worker")) as uow:
            found = list(uow.session.execute(
                select(Deal.id, Deal.name, Deal.owner_id, Deal.pipeline_id, Deal.stage_id, Deal.last_activity_at,
                       touched.label("touched")).where(*stale).order_by(Deal.id).limit(batch_size)))
            for deal in found:
                # Only the run whose UPDATE still finds the deal unflagged sends the event (two sweeps at
                # once: the second waits on the row, then matches nothing). The version is left alone.
                claimed = uow.session.execute(
                    update(Deal).where(Deal.id == deal.id, *stale)
                    .values(stale_notified_at=now, stale_notified_for=deal.touched)
                    .execution_options(synchronize_session=False))
                if claimed.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                since = as_utc(deal.touched) + timedelta(days=days)
                emit(uow, event_type="deal.stale", object_type="deals", record_id=deal.id, data={
                    "id": deal.id, "name": deal.name, "owner_id": deal.owner_id, "pipeline_id": deal.pipeline_id,
                    "stage_id": deal.stage_id, "last_activity_at": isoformat(deal.last_activity_at)
                    if deal.last_activity_at else None, "stale_since": isoformat(since), "stale_deal_days": days})
                flagged += 1
            uow.commit()
        if len(found) < batch_size:
            break
    return flagged


def purge_archived(uow: UnitOfWork, *, archived_before: datetime, limit: int) -> int:
    """Hard-delete up to `limit` deals archived before the cutoff (see RecordService.purge_archived)."""
    return deals.purge_archived(uow, archived_before=archived_before, limit=limit, forget=_forget_purged)


def _forget_purged(uow: UnitOfWork, ids: list[str]) -> None:
    associations.forget_records(uow, record_type="deals", record_ids=ids)
    uow.session.execute(delete(DealStageChange).where(DealStageChange.deal_id.in_(ids))
                        .execution_options(synchronize_session=False))
