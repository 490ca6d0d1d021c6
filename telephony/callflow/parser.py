"""Safe reading of call-flow XML into a raw element tree with source positions.

Documents come from customers (the app editor, the API, and at run time from their own servers through
<Callback> and `action` URLs), so the reader assumes hostile input:
- the size is checked before anything is parsed (CALLFLOW_MAX_BYTES, UTF-8 bytes);
- defusedxml's expat parser with DTDs forbidden: no <!DOCTYPE>, hence no entity declarations (billion laughs,
  quadratic blowup) and no external entities (SYSTEM "file:///etc/passwd"); undeclared entities are syntax
  errors;
- nesting (CALLFLOW_MAX_DEPTH) and the number of elements (CALLFLOW_MAX_COMMANDS) are counted while parsing,
  so a 10,000-level document is refused at level 33 instead of being built first.
Any of these stops the reading with one fatal issue; the validator then has nothing to check.

Positions: expat gives the line and the character column (0-based) of each start tag's `<`; issues report them
1-based. Text is reported at the position of its first character.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from defusedxml.common import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser, ParseError
from django.conf import settings

from telephony.callflow.errors import CallFlowInvalid, Issue


@dataclass(frozen=True)
class Limits:
    """The safety limits of one parse; `Limits.from_settings()` reads the CALLFLOW_* settings."""

    max_bytes: int = 256 * 1024
    max_depth: int = 32
    max_elements: int = 1000

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            max_bytes=getattr(settings, "CALLFLOW_MAX_BYTES", cls.max_bytes),
            max_depth=getattr(settings, "CALLFLOW_MAX_DEPTH", cls.max_depth),
            max_elements=getattr(settings, "CALLFLOW_MAX_COMMANDS", cls.max_elements),
        )


@dataclass
class RawElement:
    """An element as written: its name and attributes untouched, its text and where it all was."""

    name: str
    attrs: dict[str, str]
    line: int
    column: int
    children: list[RawElement] = field(default_factory=list)
    text_parts: list[str] = field(default_factory=list)
    # All the element's own text, stripped; set when the element closes.
    text: str = ""
    # Where the first non-blank text of the element is, for "text is not allowed here".
    text_line: int = 0
    text_column: int = 0


class _Stop(Exception):
    def __init__(self, issue: Issue):
        self.issue = issue


class _Builder:
    """The target of the expat parser: builds RawElements and enforces depth and element count as it goes."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.stack: list[RawElement] = []
        self.root: RawElement | None = None
        self.count = 0
        self.expat = None  # set once the parser exists: positions are read from it

    def _position(self) -> tuple[int, int]:
        return self.expat.CurrentLineNumber, self.expat.CurrentColumnNumber + 1

    def start(self, name: str, attrs: dict[str, str]) -> None:
        line, column = self._position()
        self.count += 1
        if len(self.stack) >= self.limits.max_depth:
            raise _Stop(
                fatal(
                    "too_deep",
                    f"Elements are nested more than {self.limits.max_depth} levels deep.",
                    line,
                    column,
                )
            )
        if self.count > self.limits.max_elements:
            raise _Stop(
                fatal(
                    "too_many_commands",
                    f"The document has more than {self.limits.max_elements} elements; split it, and fetch the "
                    "parts with <Callback>.",
                    line,
                    column,
                )
            )
        element = RawElement(name, dict(attrs), line, column)
        if self.stack:
            self.stack[-1].children.append(element)
        else:
            self.root = element
        self.stack.append(element)

    def end(self, name: str) -> None:
        element = self.stack.pop()
        if element.text_line:
            element.text = "".join(element.text_parts).strip()
        element.text_parts = []

    def data(self, text: str) -> None:
        if not self.stack:
            return
        element = self.stack[-1]
        if not element.text_line and text.strip():
            line, column = self._position()
            # Unbuffered chunks never span a line break after their first character.
            element.text_line, element.text_column = line, column + (len(text) - len(text.lstrip()))
        element.text_parts.append(text)

    def close(self) -> RawElement | None:
        return self.root


def fatal(code: str, message: str, line: int = 1, column: int = 1) -> Issue:
    return Issue("error", code, message, line, column)


def read(source: str | bytes, limits: Limits | None = None) -> RawElement:
    """The raw element tree of `source`, or CallFlowInvalid with the one issue that stopped the reading."""
    limits = limits or Limits.from_settings()
    if not isinstance(source, (str, bytes)):
        raise TypeError("a call-flow document is str or bytes")
    # A str is measured as UTF-8; the cheap length test first spares encoding a huge string.
    size = len(source) if isinstance(source, bytes) or len(source) > limits.max_bytes else len(source.encode())
    if size > limits.max_bytes:
        raise CallFlowInvalid(
            [fatal("document_too_large", f"The document is larger than {limits.max_bytes // 1024} KB.")]
        )
    if not source.strip():
        raise CallFlowInvalid([fatal("empty_document", "The document is empty; it needs a <Response> root.")])

    builder = _Builder(limits)
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    builder.expat = parser.parser
    # Unbuffered, expat reports each piece of text where it starts (buffered: where it ends).
    parser.parser.buffer_text = False
    try:
        parser.feed(source)
        root = parser.close()
    except _Stop as stop:
        raise CallFlowInvalid([stop.issue]) from None
    except DTDForbidden:
        line, column = builder._position()
        raise CallFlowInvalid(
            [fatal("dtd_forbidden", "A DTD (<!DOCTYPE ...>) is not allowed in a call-flow document.", line, 1)]
        ) from None
    except EntitiesForbidden:
        line, column = builder._position()
        raise CallFlowInvalid(
            [fatal("entity_forbidden", "Entity declarations are not allowed.", line, column)]
        ) from None
    except ExternalReferenceForbidden:
        line, column = builder._position()
        raise CallFlowInvalid(
            [fatal("external_reference_forbidden", "External entities are not allowed.", line, column)]
        ) from None
    except ParseError as exc:
        line, column = exc.position
        reason = str(exc).split(": line ")[0]
        raise CallFlowInvalid(
            [fatal("xml_syntax", f"This is not well-formed XML: {reason}.", line, column + 1)]
        ) from None
    if root is None:  # pragma: no cover - expat reports "no element found" first
        raise CallFlowInvalid([fatal("empty_document", "The document has no root element.")])
    return root
