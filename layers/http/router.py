"""Route matching for the adapter: a segment trie built once from Chalice's route table.

Static segments win over `{params}` (so `/v1/contacts/search` is not read as an id), with
backtracking when the static branch dead-ends.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Node:
    static: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    param_name: str | None = None
    template: str | None = None


@dataclass(frozen=True)
class Match:
    template: str
    params: dict[str, str]


class Router:
    def __init__(self, templates: list[str]) -> None:
        self._root = _Node()
        for template in templates:
            self._add(template)

    def _add(self, template: str) -> None:
        node = self._root
        for segment in _segments(template):
            if segment.startswith("{") and segment.endswith("}"):
                if node.param is None:
                    node.param = _Node()
                    node.param_name = segment[1:-1]
                elif node.param_name != segment[1:-1]:
                    raise ValueError(f"conflicting parameter names at {template}")
                node = node.param
            else:
                node = node.static.setdefault(segment, _Node())
        node.template = template

    def match(self, path: str) -> Match | None:
        params: dict[str, str] = {}
        template = self._walk(self._root, _segments(path), 0, params)
        return Match(template, params) if template is not None else None

    def _walk(self, node: _Node, segments: list[str], index: int, params: dict[str, str]) -> str | None:
        if index == len(segments):
            return node.template
        segment = segments[index]
        child = node.static.get(segment)
        if child is not None:
            found = self._walk(child, segments, index + 1, params)
            if found is not None:
                return found
        if node.param is not None and segment:
            params[node.param_name or ""] = segment
            found = self._walk(node.param, segments, index + 1, params)
            if found is not None:
                return found
            params.pop(node.param_name or "", None)
        return None


def _segments(path: str) -> list[str]:
    stripped = path.strip("/")
    return stripped.split("/") if stripped else []
