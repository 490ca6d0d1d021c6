"""The call-flow XML language: safe parsing, validation, and the document model the call engine runs.

    from telephony.callflow import parse, validate
    document = parse(xml)             # a Document, or CallFlowInvalid with .errors and .warnings
    result = validate(xml)            # Result(valid, errors, warnings, document) for editors and the API
    document.node_at("Response/Gather[0]/DTMF[1]/Say[0]")
    Document.from_json(document.to_json()) == document

tags.py is the language's specification table, model.py the executed tree and its walking rules, parser.py the
safe XML reader, validator.py the checks that span elements, errors.py the issues they report.
"""

from __future__ import annotations

from telephony.callflow.errors import CallFlowInvalid, Issue
from telephony.callflow.model import Attrs, Document, Node, NodeNotFound, schedule_matches, value_matches
from telephony.callflow.parser import Limits
from telephony.callflow.tags import BUILTIN_VARIABLES, TAGS, TimeWindow
from telephony.callflow.validator import Result, parse, validate

__all__ = [
    "BUILTIN_VARIABLES",
    "TAGS",
    "Attrs",
    "CallFlowInvalid",
    "Document",
    "Issue",
    "Limits",
    "Node",
    "NodeNotFound",
    "Result",
    "TimeWindow",
    "parse",
    "schedule_matches",
    "validate",
    "value_matches",
]
