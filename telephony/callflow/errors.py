"""What the parser and validator report: issues with a code, a message, and where in the document.

Every issue carries a 1-based `line` and `column` pointing at the `<` of the element concerned (expat reports
element positions, not attribute positions, so an attribute's problem points at its element and names the
attribute in `attribute`), and the element's `path` when it is known. Codes are stable machine names; the
portal's editor keys its inline markers on them, and the engine logs them.

Errors (the document is refused):
    document_too_large, empty_document, xml_syntax, dtd_forbidden, entity_forbidden,
    external_reference_forbidden, too_deep, too_many_commands, bad_root, unknown_tag, unknown_attribute,
    duplicate_attribute, missing_attribute, bad_value, child_not_allowed, duplicate_child, missing_child,
    unexpected_text, conflicting_attributes, duplicate_dtmf, reserved_variable, bad_variable,
    url_variable_host, and the URL policy's own codes (url_invalid, url_scheme, url_credentials, url_port,
    url_forbidden_address, url_unresolvable).
Warnings (the document runs, but probably not as meant):
    unreachable, gather_no_way_forward, undefined_variable, suspicious_duration, dtmf_unreachable,
    empty_flow, url_not_resolved, unused_status_events, too_many_issues.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from django.core.exceptions import ValidationError

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Issue:
    """One problem in a call-flow document, at a place a person can find in their editor."""

    severity: Severity
    code: str
    message: str
    line: int
    column: int
    path: str | None = None
    attribute: str | None = None

    def as_dict(self) -> dict:
        data = asdict(self)
        del data["severity"]
        return data


class CallFlowInvalid(Exception):
    """A document that does not validate; `errors` and `warnings` say why and where."""

    def __init__(self, errors: list[Issue], warnings: list[Issue] | None = None):
        self.errors = errors
        self.warnings = warnings or []
        first = errors[0] if errors else None
        super().__init__(f"line {first.line}, column {first.column}: {first.message}" if first else "invalid")

    def as_validation_error(self, field: str = "xml") -> ValidationError:
        """For services that store a document: the errors as a field error, each message with its place."""
        return ValidationError(
            {
                field: [
                    ValidationError(f"Line {i.line}, column {i.column}: {i.message}", code=i.code) for i in self.errors
                ]
            }
        )
