"""The local provider's answers: deterministic rules per task, so every AI feature works offline.

Each rule reads only the request (its records, the person's question, the non-personal `context`) and
returns a dict the task's output schema validates, exactly as a model's answer would be validated. Record
text is only ever quoted into the answer, never interpreted: an instruction in a note is just text here.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from layers.ai.types import AIRequest, RecordInput

_STAGE_POINTS = {"customer": 30, "opportunity": 25, "qualified": 20, "lead": 10, "subscriber": 5, "other": 0}
_SENIOR = re.compile(r"\b(ceo|cto|cfo|coo|cmo|cio|chief|founder|co-founder|owner|president|vp|vice president|"
                     r"director|head)\b", re.IGNORECASE)
_MIDDLE = re.compile(r"\b(manager|lead|principal|senior)\b", re.IGNORECASE)
_FREE_MAIL = frozenset({"gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com",
                        "icloud.com", "gmx.de", "gmx.net", "web.de", "aol.com", "proton.me", "protonmail.com"})
_CONVERSATIONS = ("meeting", "call", "email", "note")
_MAX_CITED = 5
_TITLES = {"cto": "CTO", "ceo": "CEO", "cfo": "CFO", "coo": "COO", "cmo": "CMO", "vp": "VP",
           "director": "Director", "manager": "Manager", "founder": "Founder", "engineer": "Engineer"}
_STAGES = ("subscriber", "lead", "qualified", "opportunity", "customer")


def _today(request: AIRequest[Any]) -> date:
    return date.fromisoformat(str(request.context.get("today") or date.today().isoformat()))


def _at(item: Mapping[str, Any]) -> datetime | None:
    text = item.get("at")
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None


def _name(record: RecordInput) -> str:
    fields = record.fields
    person = " ".join(str(fields[k]) for k in ("first_name", "last_name") if fields.get(k))
    return person or str(fields.get("name") or fields.get("email") or "this record")


def _describe(item: Mapping[str, Any]) -> str:
    activity = item.get("activity") or {}
    if activity:
        text = activity.get("subject") or (activity.get("body") or "")[:80]
        return f"{activity.get('kind', item.get('kind'))} \"{text}\"".strip()
    change = item.get("change") or {}
    return f"{change.get('field', 'a field')} {change.get('action', 'changed')}"


def summary(request: AIRequest[Any]) -> dict[str, Any]:
    """The latest conversations first (meetings, calls, emails, notes), then field changes; each cited."""
    record = request.records[0]
    items = list(record.items)
    # Timeline items come newest first; conversations before field changes, newest first within each.
    ranked = sorted(items, key=lambda i: i.get("kind") not in _CONVERSATIONS)
    chosen = ranked[:_MAX_CITED]
    conversations = sum(1 for i in items if i.get("kind") in _CONVERSATIONS)
    lines = [f"{_name(record)} ({record.object_type[:-1] if record.object_type != 'companies' else 'company'}): "
             f"{conversations} activities and {len(items) - conversations} field changes on the timeline."]
    for item in chosen:
        when = (_at(item) or datetime.min).date().isoformat()
        lines.append(f"- {when}: {_describe(item)} [{item['id']}]")
    if not items:
        lines.append("No activity yet.")
    return {"summary": "\n".join(lines), "citations": [str(i["id"]) for i in chosen]}


def lead_score(request: AIRequest[Any]) -> dict[str, Any]:
    """0–100 from lifecycle stage, seniority, recent activity and the email's domain, each factor explained."""
    record = request.records[0]
    fields = record.fields
    factors: list[dict[str, Any]] = []
    stage = fields.get("lifecycle_stage")
    factors.append({"name": "lifecycle_stage", "weight": _STAGE_POINTS.get(str(stage), 0),
                    "evidence": f"lifecycle stage is {stage or 'not set'}"})
    title = str(fields.get("job_title") or "")
    seniority = 25 if _SENIOR.search(title) else 12 if _MIDDLE.search(title) else 3 if title else 0
    factors.append({"name": "seniority", "weight": seniority, "evidence": f"job title: {title[:80] or 'not set'}"})
    since = _today(request) - timedelta(days=30)
    recent = [i for i in record.items if i.get("kind") != "history" and (_at(i) or datetime.min).date() >= since]
    factors.append({"name": "recent_activity", "weight": min(len(recent) * 5, 25),
                    "evidence": f"{len(recent)} activities in the last 30 days"})
    domain = str(fields.get("email") or "").rpartition("@")[2].lower()
    business = bool(domain) and domain not in _FREE_MAIL
    factors.append({"name": "email_domain", "weight": 15 if business else 0,
                    "evidence": f"{'business' if business else 'free or missing'} email domain {domain or ''}".strip()})
    score = max(0, min(100, 5 + sum(f["weight"] for f in factors)))
    return {"score": score, "factors": factors}


def next_action(request: AIRequest[Any]) -> dict[str, Any]:
    """From the deal's state, age in its stage and days since its last activity: one task to do next."""
    record = request.records[0]
    fields, today = record.fields, _today(request)
    name = str(fields.get("name") or "the deal")
    def days_since(key: str) -> int | None:
        value = fields.get(key)
        return (today - datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()).days if value else None
    quiet, in_stage = days_since("last_activity_at"), days_since("stage_entered_at") or 0
    close = fields.get("expected_close_date")
    if fields.get("closed_at"):
        title, due, priority = f"Check in with the customer of {name}", 14, "low"
        reason = "the deal is closed: keep the relationship warm"
    elif close and 0 <= (date.fromisoformat(str(close)) - today).days <= 7:
        title, due, priority = f"Confirm the close of {name}", 1, "high"
        reason = f"expected to close on {close}"
    elif quiet is None or quiet >= 14:
        title, due, priority = f"Re-engage: call about {name}", 1, "high"
        reason = "no activity yet" if quiet is None else f"no activity for {quiet} days"
    elif in_stage >= 30:
        title, due, priority = f"Review what keeps {name} in its stage", 2, "normal"
        reason = f"{in_stage} days in the current stage"
    else:
        title, due, priority = f"Follow up on {name}", 3, "normal"
        reason = f"last activity {quiet} days ago"
    return {"title": title[:255], "due_date": (today + timedelta(days=due)).isoformat(), "priority": priority,
            "reason": reason}


def draft_email(request: AIRequest[Any]) -> dict[str, Any]:
    """A short follow-up from the record's name, its company and its last activity (never sent)."""
    record = request.records[0]
    fields = record.fields
    company = next((_name(r) for r in request.records[1:] if r.object_type == "companies"), None)
    greeting = str(fields.get("first_name") or "there")
    last = next((i for i in record.items if i.get("kind") != "history"), None)
    topic = _describe(last) if last else (str(fields.get("name")) if fields.get("name") else "our conversation")
    subject = f"Following up on {topic}"[:255]
    at_company = f" at {company}" if company else ""
    body = (f"Hi {greeting},\n\nThank you for your time recently. I wanted to follow up on {topic} and see how "
            f"things are going{at_company}.\n\nWould you have 20 minutes next week to talk about next steps?\n\n"
            "Best regards")
    return {"subject": subject, "body": body}


def nl_search(request: AIRequest[Any]) -> dict[str, Any]:
    """Simple English → filter groups: object, titles, lifecycle stages, tags, creation period, place."""
    question = request.question.strip()
    text = question.lower()
    wanted = request.context.get("object_type")
    object_type = str(wanted) if wanted else (
        "deals" if re.search(r"\bdeals?\b", text) else
        "companies" if re.match(r"\s*(companies|company|accounts?)\b", text) else "contacts")
    filters: list[dict[str, Any]] = []
    notes: list[str] = []
    if object_type == "contacts":
        titles = [_TITLES[t] for t in _TITLES if re.search(rf"\b{t}s?\b", text)]
        if titles:
            filters.append({"property": "job_title", "operator": "CONTAINS_TOKEN", "value": titles[0]})
        stages = [s for s in _STAGES if re.search(rf"\b{s}s?\b", text)]
        if stages:
            filters.append({"property": "lifecycle_stage", "operator": "IN", "values": stages})
    for tag in re.findall(r"\btagged\s+([\w-]+)", text):
        filters.append({"property": "tags", "operator": "EQ", "value": tag})
    since = _period_start(text, _today(request))
    if since is not None:
        filters.append({"property": "created_at", "operator": "GTE", "value": since.isoformat() + "T00:00:00Z"})
    place = re.search(r"\bin\s+([A-Z][\w-]+(?:\s[A-Z][\w-]+)?)", question)
    if place:
        city_fields: Sequence[str] = request.context.get("city_fields", ())
        if city_fields:
            filters.append({"property": city_fields[0], "operator": "EQ", "value": place.group(1)})
        else:
            notes.append(f"no city field to filter on \"{place.group(1)}\"")
    return {"object_type": object_type, "filter_groups": [{"filters": filters[:10]}] if filters else [],
            "query": None, "notes": notes}


def _period_start(text: str, today: date) -> date | None:
    if "created" not in text and "added" not in text and "new" not in text:
        return None
    if "this month" in text:
        return today.replace(day=1)
    if "this week" in text:
        return today - timedelta(days=today.weekday())
    if "today" in text:
        return today
    if "this year" in text:
        return today.replace(month=1, day=1)
    found = re.search(r"last\s+(\d{1,3})\s+days", text)
    return today - timedelta(days=int(found.group(1))) if found else None


RULES: Mapping[str, Callable[[AIRequest[Any]], dict[str, Any]]] = {
    "summary": summary, "lead_score": lead_score, "next_action": next_action, "draft_email": draft_email,
    "nl_search": nl_search,
}
