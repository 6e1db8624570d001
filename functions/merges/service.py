"""Duplicates and merges of contacts and companies.

A merge is one transaction: the merged record is archived with `merged_into_id` and gives up its
unique email/domain (and unique custom values) first, the survivor then takes the chosen values, links
move (associations.move_all), a company's contacts and deals are re-pointed, history rows land on both
records, `contact.merged` / `company.merged` is emitted, and a `Merge` row keeps what is needed to undo.

Undo (within UNDO_WINDOW) is refused with 409 when it would lose later work: the survivor was
archived or merged away since; a survivor field the merge set has been changed since; the merged
record was restored (or otherwise written) since; or its email/domain now belongs to another record.
Links and references created after the merge stay where they are; only what the merge moved goes back
(a contact or deal re-pointed again since is left alone).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from itertools import combinations
from typing import Any

from sqlalchemy import select

from functions.associations import service as associations
from functions.companies import service as companies_service
from functions.contacts import service as contacts_service
from functions.deals import merge_hooks as deal_hooks
from functions.merges import repository, rules
from functions.merges.errors import AlreadyUndone, UndoExpired, UndoUnsafe
from functions.merges.models import Merge
from functions.merges.schemas import MergeCreate
from layers.db.uow import UnitOfWork
from layers.queue.outbox import emit
from layers.records import custom
from layers.records.history import record_changes
from layers.records.service import RecordService
from shared.clock import as_utc, isoformat, utcnow
from shared.context import Scope
from shared.cursors import decode_cursor_for, encode_cursor
from shared.errors import Forbidden, NotFound, ValidationFailed
from shared.ids import new_id
from shared.settings import get_settings

UNDO_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class Mergeable:
    service: RecordService
    fields: tuple[str, ...]  # built-in fields the survivor may take from the merged record


def mergeable(object_type: str) -> Mergeable:
    if object_type == "contacts":
        return Mergeable(contacts_service.contacts, ("first_name", "last_name", "email", "phone", "job_title",
                                                     "lifecycle_stage", "owner_id", "company_id", "tags"))
    if object_type == "companies":
        return Mergeable(companies_service.companies, ("name", "domain", "industry", "employee_count", "owner_id",
                                                       "tags"))
    raise ValidationFailed("only contacts and companies can be merged", errors=[
        {"field": "object", "message": "one of contacts, companies", "code": "enum"}])


# ---- duplicates -------------------------------------------------------------------------------------------
def duplicates(scope: Scope, object_type: str, *, limit: int, cursor: str | None, min_score: float) -> str:
    """Likely-duplicate pairs of live records the caller may see, surest first, cursor-paged."""
    service = mergeable(object_type).service
    model = service.spec.model
    secret = get_settings().cursor_secret
    with UnitOfWork(scope) as uow:
        if object_type == "contacts":
            keys = repository.contact_keys(uow.session, model)
        else:
            keys = repository.company_keys(uow.session, model)
        groups = repository.candidate_groups(uow, model, keys)
        records = repository.load(uow, model, [record_id for group in groups for record_id in group])
        pairs = _scored_pairs(object_type, groups, records, min_score)
        if cursor is not None:
            position = decode_cursor_for(cursor, secret, of=object_type, min=min_score)
            after = (-float(position["score"]), str(position["a"]), str(position["b"]))
            pairs = [p for p in pairs if (-p[0], p[1], p[2]) > after]
        shown, more = pairs[:limit], len(pairs) > limit
        read = service.spec.read_schema
        data = [{"record_ids": [a, b], "score": s, "reasons": reasons,
                 "records": [read.model_validate(records[a]).model_dump(mode="json"),
                             read.model_validate(records[b]).model_dump(mode="json")]}
                for s, a, b, reasons in shown]
    next_cursor = None
    if more:
        s, a, b, _ = shown[-1]
        next_cursor = encode_cursor({"of": object_type, "min": min_score, "score": s, "a": a, "b": b}, secret)
    return json.dumps({"data": data, "next_cursor": next_cursor}, separators=(",", ":"))


def _scored_pairs(
    object_type: str, groups: list[list[str]], records: dict[str, Any], min_score: float
) -> list[tuple[float, str, str, list[str]]]:
    keyed: dict[str, Any] = {
        record_id: (rules.ContactKeys.of(row) if object_type == "contacts" else rules.CompanyKeys.of(row))
        for record_id, row in records.items()}
    seen: set[tuple[str, str]] = set()
    pairs: list[tuple[float, str, str, list[str]]] = []
    for group in groups:
        for a, b in combinations(sorted(set(group)), 2):
            if (a, b) in seen or a not in keyed or b not in keyed:
                continue
            seen.add((a, b))
            if object_type == "contacts":
                reasons = rules.contact_reasons(keyed[a], keyed[b])
            else:
                reasons = rules.company_reasons(keyed[a], keyed[b])
            score = rules.score(reasons)
            if score > 0 and score >= min_score:
                pairs.append((score, a, b, reasons))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return pairs


# ---- merge ------------------------------------------------------------------------------------------------
def _refuse_restricted(scope: Scope) -> None:
    # A merge re-points every link and reference of the merged record, seen or not; a member limited to
    # their team's records would move (or, worse, strand) records they cannot see.
    if scope.visible_owner_ids is not None:
        raise Forbidden("merging needs access to every record of the workspace; ask an admin")


def _choices(uow: UnitOfWork, kind: Mergeable, fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    object_type = kind.service.spec.object_type
    live = {d.key for d in custom.definitions(uow, object_type) if not d.archived}
    builtin: dict[str, Any] = {}
    custom_choices: dict[str, Any] = {}
    wrong = []
    for name, choice in fields.items():
        key = name.removeprefix("custom_fields.")
        if name in kind.fields:
            builtin[name] = choice
        elif name.startswith("custom_fields.") and key in live:
            custom_choices[key] = choice
        else:
            wrong.append(name)
    if wrong:
        raise ValidationFailed("fields names something that cannot be merged", errors=[
            {"field": f"fields.{name}", "message": "not a mergeable field of " + object_type, "code": "unknown_field"}
            for name in wrong])
    return builtin, custom_choices


def merge(scope: Scope, object_type: str, data: MergeCreate) -> tuple[str, str]:
    """Merge `data.merge_id` into `data.keep_id`. Returns the merge id and the answer's JSON."""
    kind = mergeable(object_type)
    service, spec = kind.service, kind.service.spec
    unique_key = spec.unique_key
    assert unique_key is not None
    _refuse_restricted(scope)
    with UnitOfWork(scope) as uow:
        keep: Any = service._load(uow, data.keep_id, include_archived=False)
        gone: Any = service._load(uow, data.merge_id, include_archived=False)
        builtin, custom_choices = _choices(uow, kind, data.fields)
        values = {}
        for field in kind.fields:
            chosen = rules.choose(getattr(keep, field), getattr(gone, field), builtin.get(field))
            if chosen != getattr(keep, field):
                values[field] = chosen
        live = {d.key for d in custom.definitions(uow, object_type) if not d.archived}
        kept_custom = dict(keep.custom or {})
        new_custom = rules.merge_custom(kept_custom, gone.custom or {}, custom_choices, allowed=live)
        custom_changes = {k: new_custom.get(k) for k in sorted(set(kept_custom) | set(new_custom))
                          if kept_custom.get(k) != new_custom.get(k)}
        before = {"fields": {f: service._plain(getattr(keep, f)) for f in values},
                  "custom": {k: kept_custom.get(k) for k in custom_changes},
                  "unique_key": getattr(keep, unique_key)}
        merged_key = getattr(gone, unique_key)
        now = utcnow()

        # 1. The merged record: archived, pointing at the survivor, its unique values released first.
        service._change(uow, gone, {"archived_at": now, "merged_into_id": keep.id, unique_key: None},
                        action="merged", event="archived")
        if spec.custom_fields:
            custom.release_unique_values(uow, gone.id)
        service._after_write(uow, gone, "archived", {})
        # 2. The survivor takes the chosen values (unique checks, references, history, event, cache).
        update: dict[str, Any] = {**values, **({"custom_fields": custom_changes} if custom_changes else {})}
        unique_field = spec.unique_field or unique_key
        update.update(_claim_unique(uow, spec.model, unique_key, keep,
                                    values.get(unique_field, getattr(keep, unique_field)), gone.id))
        if update:
            service._update(uow, keep.id, update, None)
        after = {"fields": {f: service._plain(getattr(keep, f)) for f in values},
                 "custom": {k: (keep.custom or {}).get(k) for k in custom_changes},
                 "unique_key": getattr(keep, unique_key)}
        # 3. Links (activities and deals of a contact come along: they are associations), then references.
        moved_links = associations.move_all(uow, record_type=object_type, from_id=gone.id, to_id=keep.id)
        contact_ids: list[str] = []
        deal_ids: list[str] = []
        if object_type == "companies":
            contact_ids = contacts_service.reassign_company(uow, gone.id, keep.id)
            deal_ids = deal_hooks.reassign_company(uow, gone.id, keep.id)
        record_changes(uow, object_type=object_type, record_id=keep.id, action="merged",
                       changes={"merged_id": (None, gone.id)}, at=now)
        row = Merge(id=new_id(), object_type=object_type, survivor_id=keep.id, merged_id=gone.id,
                    survivor_before=before,
                    moved={"survivor_after": after, "merged_unique_key": merged_key, "merged_version": gone.version,
                           "choices": dict(data.fields), "associations": moved_links, "contacts": contact_ids,
                           "deals": deal_ids},
                    actor_type=scope.actor.type, actor_id=scope.actor.id, created_at=now)
        uow.session.add(row)
        uow.session.flush()
        survivor = json.loads(service._dump(keep))
        read = _read(row)
        emit(uow, event_type=f"{spec.event_name}.merged", object_type=object_type, record_id=keep.id,
             data={"merge_id": row.id, "survivor_id": keep.id, "merged_id": gone.id, "fields": read["fields"],
                   "moved": read["moved"], "object": survivor})
        uow.commit()
    return row.id, json.dumps({"merge": read, "record": survivor}, separators=(",", ":"))


def _claim_unique(uow: UnitOfWork, model: Any, unique_key: str, keep: Any, value: Any, merged_id: str
                  ) -> dict[str, Any]:
    """A survivor that was a deliberate duplicate (no unique key) becomes the holder of its email/domain
    when nobody else holds it now (typically: the merged record just gave it up)."""
    if getattr(keep, unique_key) is not None or value is None:
        return {}
    holder = uow.session.scalar(select(model.id).where(getattr(model, unique_key) == value,
                                                       model.id.not_in([keep.id, merged_id])))
    return {} if holder is not None else {unique_key: value}


# ---- undo -------------------------------------------------------------------------------------------------
def undo(scope: Scope, merge_id: str) -> str:
    _refuse_restricted(scope)
    with UnitOfWork(scope) as uow:
        row = repository.get(uow, merge_id)
        if row is None:
            raise NotFound(f"no merge with id {merge_id}")
        if row.undone_at is not None:
            raise AlreadyUndone(f"merge {merge_id} was undone at {isoformat(row.undone_at)}")
        if utcnow() - as_utc(row.created_at) > UNDO_WINDOW:
            raise UndoExpired(f"merges can be undone for {UNDO_WINDOW.days} days; this one is from "
                              f"{isoformat(row.created_at)}")
        kind = mergeable(row.object_type)
        service, spec = kind.service, kind.service.spec
        unique_key = spec.unique_key
        assert unique_key is not None
        keep: Any = service._load(uow, row.survivor_id)
        gone: Any = service._load(uow, row.merged_id)
        _check_undo_safe(row, keep, gone, service)
        now = utcnow()

        # 1. The survivor gets back the values the merge replaced (and gives back the email/domain).
        before = row.survivor_before
        restore: dict[str, Any] = dict(before["fields"])
        if before["custom"]:
            restored_custom = dict(keep.custom or {})
            for key, value in before["custom"].items():
                if value is None:
                    restored_custom.pop(key, None)
                else:
                    restored_custom[key] = value
            restore["custom"] = restored_custom
        if row.moved["survivor_after"].get("unique_key", before["unique_key"]) != before["unique_key"]:
            restore[unique_key] = before["unique_key"]
            _ensure_free(uow, spec.model, unique_key, before["unique_key"], keep.id, spec.unique_field)
        if restore:
            service._change(uow, keep, restore, action="updated", event="updated")
            if "custom" in restore:
                custom.claim_unique_values(uow, row.object_type, keep.id, restore["custom"])
        # 2. The merged record comes back with its email/domain, unless someone else holds it now.
        merged_key = row.moved.get("merged_unique_key")
        _ensure_free(uow, spec.model, unique_key, merged_key, gone.id, spec.unique_field)
        service._change(uow, gone, {"archived_at": None, "merged_into_id": None, unique_key: merged_key},
                        action="unmerged", event="restored")
        if spec.custom_fields:
            custom.claim_unique_values(uow, row.object_type, gone.id, gone.custom or {})
        service._after_write(uow, gone, "restored", {})
        # 3. What moved goes back.
        links = row.moved.get("associations") or []
        associations.restore_moved(uow, links)
        if row.object_type == "companies":
            contacts_service.reassign_company(uow, keep.id, gone.id, only=row.moved.get("contacts") or [])
            deal_hooks.reassign_company(uow, keep.id, gone.id, only=row.moved.get("deals") or [])
        record_changes(uow, object_type=row.object_type, record_id=keep.id, action="unmerged",
                       changes={"merged_id": (gone.id, None)}, at=now)
        row.undone_at = now
        uow.session.flush()
        read = _read(row)
        emit(uow, event_type=f"{spec.event_name}.merge_undone", object_type=row.object_type, record_id=keep.id,
             data={"merge_id": row.id, "survivor_id": keep.id, "merged_id": gone.id})
        uow.commit()
    return json.dumps(read, separators=(",", ":"))


def _ensure_free(uow: UnitOfWork, model: Any, unique_key: str, value: Any, owner_id: str, field: Any) -> None:
    """The email/domain a record gets back on undo must not have been taken by another record since."""
    if value is None:
        return
    holder = uow.session.scalar(select(model.id).where(getattr(model, unique_key) == value, model.id != owner_id))
    if holder is not None:
        raise UndoUnsafe(f"{field} {value!r} now belongs to record {holder}", extra={"existing_id": holder})


def _check_undo_safe(row: Merge, keep: Any, gone: Any, service: RecordService) -> None:
    if keep.archived_at is not None:
        raise UndoUnsafe(f"the surviving record {keep.id} was archived or merged since; restore it first")
    if gone.archived_at is None or gone.merged_into_id != keep.id or gone.version != row.moved.get("merged_version"):
        raise UndoUnsafe(f"the merged record {gone.id} was restored or changed since the merge")
    after = row.moved["survivor_after"]
    changed = [f for f, value in after["fields"].items() if service._plain(getattr(keep, f)) != value]
    changed += [f"custom_fields.{k}" for k, value in after["custom"].items() if (keep.custom or {}).get(k) != value]
    if changed:
        raise UndoUnsafe(f"the survivor's {', '.join(changed)} changed since the merge", errors=[
            {"field": f, "message": "changed since the merge", "code": "changed"} for f in changed])


# ---- reads ------------------------------------------------------------------------------------------------
def _read(row: Merge) -> dict[str, Any]:
    before, after = row.survivor_before, row.moved["survivor_after"]
    fields = {f: {"old": before["fields"].get(f), "new": value} for f, value in after["fields"].items()}
    fields.update({f"custom_fields.{k}": {"old": before["custom"].get(k), "new": value}
                   for k, value in after["custom"].items()})
    return {
        "id": row.id, "object": row.object_type, "survivor_id": row.survivor_id, "merged_id": row.merged_id,
        "fields": fields,
        "moved": {"associations": len(row.moved.get("associations") or []),
                  "contacts": len(row.moved.get("contacts") or []), "deals": len(row.moved.get("deals") or [])},
        "actor": {"type": row.actor_type, "id": row.actor_id},
        "created_at": isoformat(row.created_at), "undo_until": isoformat(as_utc(row.created_at) + UNDO_WINDOW),
        "undone_at": isoformat(row.undone_at),
    }


def get(scope: Scope, merge_id: str) -> str:
    with UnitOfWork(scope) as uow:
        row = repository.get(uow, merge_id)
        if row is None:
            raise NotFound(f"no merge with id {merge_id}")
        return json.dumps(_read(row), separators=(",", ":"))


def list_merges(scope: Scope, *, object_type: str | None, limit: int, cursor: str | None) -> str:
    secret = get_settings().cursor_secret
    position = decode_cursor_for(cursor, secret, of=object_type)
    before = str(position.get("before", "")) if cursor is not None else None
    with UnitOfWork(scope) as uow:
        rows = repository.page(uow, object_type=object_type, before=before, limit=limit)
        more = len(rows) > limit
        rows = rows[:limit]
        data = [_read(row) for row in rows]
    next_cursor = encode_cursor({"of": object_type, "before": rows[-1].id}, secret) if more else None
    return json.dumps({"data": data, "next_cursor": next_cursor}, separators=(",", ":"))
