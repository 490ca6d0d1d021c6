"""The document model the call engine executes: an immutable tree of typed command nodes.

A `Document` is what `parse()` returns for a valid call-flow XML document; the engine stores its JSON form
(`to_json()`) with the call and reads it back with `Document.from_json()`, so a worker that picks a call up
after a restart sees exactly the flow the call started with.

Nodes
    `node.tag` is the canonical tag name (aliases resolved: <Schedule> is "Scheduler", <Sip> is "To").
    `node.attrs` maps canonical attribute names (aliases resolved: numDigits is "dtmf_length") to typed values:
    durations are int milliseconds, counts int, booleans bool, DTMF digits str, URLs str, lists tuples,
    Scheduler `time` a `TimeWindow`. Attributes with a default are always present; optional ones without a
    default are absent (`node.get(name)` gives None). Text content is stored in the attribute the tag names
    for it (Say `text`, Play `url`, To `target`, Meta `value`), so nodes have no separate text.
    `node.line` / `node.column` (1-based) locate the element in the source, for events and error reports.

Paths
    `node.path` is "Response" for the root and `<parent path>/<Tag>[i]` below it, where i counts the siblings
    of the same canonical tag from 0 (XPath style, and Opentact's `Answer[0]`): the second <Say> inside the
    first <DTMF> of the first <Gather> is "Response/Gather[0]/DTMF[0]/Say[1]". Re-parsing the same XML gives the
    same paths, so a path saved in an event or a task finds its node again with `document.node_at(path)`.

Walking (what the engine relies on)
    Blocks are sequences of commands: the children of Response, Call, Geo, Scheduler, DTMF, Default, Error and
    Record that are commands (`node.commands`); a Gather's `commands` are its prompts. Clauses (To, DTMF,
    Default, Error, Header) are parts of their parent command, reached with `node.clauses(tag)`/`node.error`.
    `document.next_after(path)` is the default sequencing rule: the next command of the same block, else what
    follows the nearest enclosing command, else None (the flow is over: hang up). Tag rules on top of it:
    - <Hangup> ends the call; an `action`/<Callback> response replaces the rest of the flow (the engine runs the
      new document from its root and does not come back); the variables of the call carry over. A fetched
      document goes through `parse()` like any other (same limits, same URL policy); one that does not validate
      is a failure of the command that fetched it.
    - <Record> records while its `commands` run; <Dial> rings all `clauses("To")` at once, first answer wins.
    - A command that fails runs its <Error> block (if any), then continues with `next_after(command)`; without
      an <Error> a failure is logged and the flow continues the same way.
    - Call/Geo/Scheduler: when the condition holds run `commands`, otherwise continue with `next_after`.
      `value_matches()` and `schedule_matches()` below are the comparison rules.
    - Gather: see validator.py's module docstring for attempts, branches and `action`.
    - Variables: `{{name}}` in templated attributes (tags.py) is replaced when the command runs; an unset
      variable is replaced by "". Built-ins: call, from, to, tn, app. <Meta> sets a name; <Curl var="x"> sets
      x (the body), x.status, x.body and x.json.<path> (JSON object keys and list indexes).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from telephony.callflow.tags import DAYS, TAGS, Tag, TimeWindow

JSON_FORMAT = "callflow"
JSON_VERSION = 1


class Attrs(Mapping):
    """A read-only mapping of attribute values (picklable and comparable, unlike MappingProxyType)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None):
        object.__setattr__(self, "_data", dict(data or {}))

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __setattr__(self, name, value):
        raise AttributeError("Attrs are read-only")

    def __eq__(self, other) -> bool:
        return dict(self) == dict(other) if isinstance(other, Mapping) else NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self._data.items())))

    def __repr__(self) -> str:
        return f"Attrs({self._data!r})"

    def __reduce__(self):
        return (Attrs, (self._data,))


@dataclass(frozen=True)
class Node:
    """One element of a call flow: a command, the root, or a clause of a command."""

    tag: str
    attrs: Attrs
    children: tuple[Node, ...]
    line: int
    column: int
    path: str

    @property
    def spec(self) -> Tag:
        return TAGS[self.tag]

    @property
    def kind(self) -> str:
        return self.spec.kind

    def get(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    @property
    def commands(self) -> tuple[Node, ...]:
        """The children that run in sequence (a Gather's prompts)."""
        return tuple(child for child in self.children if child.kind == "command")

    def clauses(self, tag: str) -> tuple[Node, ...]:
        return tuple(child for child in self.children if child.tag == tag)

    @property
    def error(self) -> Node | None:
        """The <Error> block that runs when this command fails."""
        found = self.clauses("Error")
        return found[0] if found else None

    @property
    def index(self) -> int:
        """Position among the parent's children of the same tag (the number in the path); 0 for the root."""
        match = re.search(r"\[(\d+)\]$", self.path)
        return int(match[1]) if match else 0


class NodeNotFound(KeyError):
    """No node at that path in this document."""


@dataclass(frozen=True)
class Document:
    """A validated call flow. Build one with `parse()` or `Document.from_json()`."""

    root: Node
    _index: dict[str, tuple[Node, Node | None]] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        index: dict[str, tuple[Node, Node | None]] = {}
        stack: list[tuple[Node, Node | None]] = [(self.root, None)]
        while stack:
            node, parent = stack.pop()
            index[node.path] = (node, parent)
            stack.extend((child, node) for child in node.children)
        object.__setattr__(self, "_index", index)

    def node_at(self, path: str) -> Node:
        """The node at `path`; an Opentact-style path without the root ("Dial[0]") is read below Response."""
        if path != self.root.path and not path.startswith(self.root.path + "/"):
            path = f"{self.root.path}/{path}"
        try:
            return self._index[path][0]
        except KeyError:
            raise NodeNotFound(path) from None

    def parent_of(self, node_or_path: Node | str) -> Node | None:
        node = self.node_at(node_or_path if isinstance(node_or_path, str) else node_or_path.path)
        return self._index[node.path][1]

    def walk(self) -> Iterator[Node]:
        """Every node, in document order (depth first, parents before children)."""
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def next_after(self, node_or_path: Node | str) -> Node | None:
        """The command that runs after this one has finished, by the block rule (see the module docstring)."""
        node = self.node_at(node_or_path if isinstance(node_or_path, str) else node_or_path.path)
        while True:
            parent = self._index[node.path][1]
            if parent is None:
                return None
            if node.kind == "command":
                block = parent.commands
                position = next(i for i, sibling in enumerate(block) if sibling.path == node.path)
                if position + 1 < len(block):
                    return block[position + 1]
            # End of a block (or a clause): continue after the command that owns it.
            node = parent
            while node.kind == "clause":
                node = self._index[node.path][1]
            if node.kind == "root":
                return None

    @property
    def element_count(self) -> int:
        """Every element, the root and clauses included (what CALLFLOW_MAX_COMMANDS limits)."""
        return len(self._index)

    # --- JSON -----------------------------------------------------------------------------------------

    def to_json(self) -> dict:
        """A JSON-able dict: {"format": "callflow", "version": 1, "root": {tag, attrs, line, column, children}}."""
        return {"format": JSON_FORMAT, "version": JSON_VERSION, "root": _node_to_json(self.root)}

    @classmethod
    def from_json(cls, data: Mapping) -> Document:
        if data.get("format") != JSON_FORMAT or data.get("version") != JSON_VERSION:
            raise ValueError(f"not a {JSON_FORMAT} v{JSON_VERSION} document")
        return cls(_node_from_json(data["root"], None, {}))


def _node_to_json(node: Node) -> dict:
    spec = node.spec
    attrs = {}
    for name, value in node.attrs.items():
        attrs[name] = spec.attr(name).type.to_json(value) if value is not None else None
    return {
        "tag": node.tag,
        "attrs": attrs,
        "line": node.line,
        "column": node.column,
        "children": [_node_to_json(child) for child in node.children],
    }


def child_path(parent_path: str | None, tag: str, seen: dict[str, int]) -> str:
    """The path of the next child `tag` of a parent, given the counts of its earlier children by tag."""
    if parent_path is None:
        return tag
    index = seen.get(tag, 0)
    seen[tag] = index + 1
    return f"{parent_path}/{tag}[{index}]"


def _node_from_json(data: Mapping, parent_path: str | None, seen: dict[str, int]) -> Node:
    tag = data["tag"]
    spec = TAGS[tag]
    path = child_path(parent_path, tag, seen)
    attrs = {}
    for name, value in data.get("attrs", {}).items():
        attr = spec.attr(name)
        if attr is None:
            raise ValueError(f"{path}: unknown attribute {name!r}")
        attrs[name] = attr.type.from_json(value) if value is not None else None
    child_seen: dict[str, int] = {}
    children = tuple(_node_from_json(child, path, child_seen) for child in data.get("children", ()))
    return Node(tag, Attrs(attrs), children, int(data.get("line", 0)), int(data.get("column", 0)), path)


# --- Semantics of the conditions, shared by the engine and its tests -----------------------------------


def value_matches(pattern: str, actual: str | None) -> bool:
    """<Call value>: equal, or with a trailing `*` a prefix ("+1201*"). Numbers compare with or without '+'."""
    actual = actual or ""
    if pattern.endswith("*"):
        prefix = pattern[:-1]
        return actual.startswith(prefix) or (prefix.startswith("+") and ("+" + actual).startswith(prefix))
    return actual == pattern or (pattern.startswith("+") and "+" + actual == pattern)


def schedule_matches(days: tuple[str, ...] | None, window: TimeWindow | None, local: datetime) -> bool:
    """<Scheduler>: is `local` (already in the app's time zone) inside the days and window?

    A window that crosses midnight belongs to the day it starts on: dow="fri" time="22:00:00-02:00:00" is
    open on Friday 23:00 and Saturday 01:00, but not on Friday 01:00.
    """
    day = DAYS[(local.weekday() + 1) % 7]
    previous_day = DAYS[local.weekday()]  # weekday() is Monday=0; DAYS starts on Sunday
    now = local.time()
    if window is None:
        return days is None or day in days
    if not window.crosses_midnight:
        return window.start <= now < window.end and (days is None or day in days)
    if now >= window.start:
        return days is None or day in days
    if now < window.end:
        return days is None or previous_day in days
    return False
