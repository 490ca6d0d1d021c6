"""Hostile call-flow XML is refused early, with one clear error, and nothing is expanded, fetched or built."""

from __future__ import annotations

import time

import pytest

from telephony.callflow import Limits, validate

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Response><Say>&lol9;</Say></Response>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Response><Say>&xxe;</Say></Response>"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE Response SYSTEM "http://127.0.0.1:9/evil.dtd">
<Response><Hangup/></Response>"""

HARMLESS_DTD = """<!DOCTYPE Response>
<Response><Hangup/></Response>"""


def only_error(result):
    assert not result.valid and result.document is None
    assert len(result.errors) == 1, result.errors
    return result.errors[0]


def test_it_refuses_entity_expansion_billion_laughs():
    started = time.monotonic()

    error = only_error(validate(BILLION_LAUGHS))

    assert error.code == "dtd_forbidden"
    assert error.message == "A DTD (<!DOCTYPE ...>) is not allowed in a call-flow document."
    assert error.line == 2
    assert "lol" not in error.message
    assert time.monotonic() - started < 1


def test_it_refuses_an_external_entity_and_never_reads_the_file():
    error = only_error(validate(EXTERNAL_ENTITY))

    assert error.code == "dtd_forbidden"
    assert "root:" not in str(error)


def test_it_refuses_an_external_dtd():
    assert only_error(validate(EXTERNAL_DTD)).code == "dtd_forbidden"


def test_it_refuses_any_dtd_even_an_empty_one():
    error = only_error(validate(HARMLESS_DTD))

    assert (error.code, error.line) == ("dtd_forbidden", 1)


def test_an_undeclared_entity_is_a_syntax_error():
    error = only_error(validate("<Response>\n  <Say>&xxe;</Say>\n</Response>"))

    assert error.code == "xml_syntax"
    assert error.message == "This is not well-formed XML: undefined entity."
    assert (error.line, error.column) == (2, 8)


def test_it_refuses_a_10_mb_document_before_parsing_it():
    huge = "<Response>" + "<Say>hello</Say>" * (10 * 1024 * 1024 // 16) + "</Response>"
    started = time.monotonic()

    error = only_error(validate(huge))

    assert error.code == "document_too_large"
    assert error.message == "The document is larger than 256 KB."
    assert (error.line, error.column) == (1, 1)
    assert time.monotonic() - started < 1


def test_the_size_limit_counts_utf8_bytes(settings):
    settings.CALLFLOW_MAX_BYTES = 100
    text = "é" * 40  # 40 characters, 80 bytes

    assert validate(f"<Response><Say>{text}</Say></Response>").errors[0].code == "document_too_large"
    assert validate(f"<Response><Say>{'e' * 40}</Say></Response>").valid


def test_bytes_are_measured_and_decoded_as_declared():
    latin1 = '<?xml version="1.0" encoding="ISO-8859-1"?><Response><Say>Caf\xe9</Say></Response>'.encode("latin-1")

    result = validate(latin1)

    assert result.valid
    assert result.document.node_at("Say[0]").get("text") == "Café"


def test_it_refuses_10000_levels_of_nesting_early():
    deep = "<Response>" + '<Geo states="NJ">' * 10_000 + "</Geo>" * 10_000 + "</Response>"

    error = only_error(validate(deep))

    assert error.code == "too_deep"
    assert error.message == "Elements are nested more than 32 levels deep."
    # The 33rd element, on the one line: 10 characters of <Response>, then 31 <Geo>s of 17.
    assert (error.line, error.column) == (1, 10 + 31 * 17 + 1)


def test_the_depth_limit_is_a_setting(settings):
    settings.CALLFLOW_MAX_DEPTH = 3
    nested = "<Response><Call field='to' value='+1'><Call field='to' value='+1'>{}</Call></Call></Response>"

    assert validate(nested.format("")).valid
    assert validate(nested.format("<Hangup/>")).errors[0].code == "too_deep"


def test_it_refuses_too_many_commands():
    many = "<Response>" + "<Pause/>" * 1000 + "</Response>"

    error = only_error(validate(many))

    assert error.code == "too_many_commands"
    assert error.message.startswith("The document has more than 1000 elements")
    assert (error.line, error.column) == (1, 10 + 999 * 8 + 1)


def test_the_command_limit_is_a_setting_and_counts_every_element(settings):
    settings.CALLFLOW_MAX_COMMANDS = 4

    assert validate("<Response><Dial><To>+12015550123</To></Dial><Hangup/></Response>").valid
    assert not validate("<Response><Dial><To>+12015550123</To></Dial><Hangup/><Hangup/></Response>").valid


def test_limits_can_be_given_per_call():
    result = validate("<Response><Hangup/></Response>", limits=Limits(max_bytes=10))

    assert result.errors[0].code == "document_too_large"


@pytest.mark.parametrize(
    "source,code,position",
    [
        ("", "empty_document", (1, 1)),
        ("   \n ", "empty_document", (1, 1)),
        ("<Response>", "xml_syntax", (1, 11)),
        ("<Response>\n<Say>hi</Sayy>\n</Response>", "xml_syntax", (2, 10)),
        ("<Response/><Response/>", "xml_syntax", (1, 12)),
        ("not xml at all", "xml_syntax", (1, 1)),
        ('<Response a="1" a="2"/>', "xml_syntax", (1, 17)),
        ('<x:Response xmlns:y="urn:y"/>', "xml_syntax", (1, 1)),
    ],
)
def test_malformed_xml_is_one_syntax_error_with_its_position(source, code, position):
    error = only_error(validate(source))

    assert error.code == code
    assert (error.line, error.column) == position
    assert error.path is None


def test_processing_instructions_and_comments_are_ignored():
    result = validate('<?xml version="1.0"?><!-- menu --><Response><?pi data?><Hangup/><!-- end --></Response>')

    assert result.valid
    assert [n.tag for n in result.document.walk()] == ["Response", "Hangup"]


def test_a_namespaced_element_is_an_unknown_tag():
    error = only_error(validate('<Response xmlns:x="urn:x"><x:Say>hi</x:Say></Response>'))

    assert error.code == "unknown_tag"
    assert error.message == "Unknown tag <{urn:x}Say> (namespaces are not used)."
