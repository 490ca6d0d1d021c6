"""POST /api/v1/call-flows/validate: any credential of an account may check a document; invalid is not an error."""

from __future__ import annotations

import pytest
from django.urls import include, path
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from telephony.api import callflows
from tenants.models import Account
from tenants.tests.factories import make_api_key

pytestmark = pytest.mark.django_db

URL = "/api/v1/call-flows/validate"


def test_it_answers_valid_for_a_good_document(alice_api):
    response = alice_api.post(URL, {"xml": "<Response><Say>Hello</Say><Hangup/></Response>"}, format="json")

    assert response.status_code == 200
    assert response.json() == {"valid": True, "errors": [], "warnings": []}


def test_an_invalid_document_is_a_200_with_its_errors_and_warnings(alice_api):
    xml = '<Response>\n  <Gather timeout="5s"><Say>Menu</Say></Gather>\n  <Hangup/>\n  <Say>Bye</Say>\n</Response>'

    response = alice_api.post(URL, {"xml": xml}, format="json")

    assert response.status_code == 200
    assert response.json() == {
        "valid": False,
        "errors": [
            {
                "code": "bad_value",
                "message": "`timeout` on <Gather> must be a whole number of milliseconds, e.g. 5000 for 5 seconds "
                "(got '5s').",
                "line": 2,
                "column": 3,
                "path": "Response/Gather[0]",
                "attribute": "timeout",
            }
        ],
        "warnings": [
            {
                "code": "gather_no_way_forward",
                "message": "This <Gather> has no `action` URL, no <DTMF> and no <Default>: the caller's keys are "
                "thrown away.",
                "line": 2,
                "column": 3,
                "path": "Response/Gather[0]",
                "attribute": None,
            },
            {
                "code": "unreachable",
                "message": "<Say> never run: the <Hangup> on line 3 ends the call.",
                "line": 4,
                "column": 3,
                "path": "Response/Say[0]",
                "attribute": None,
            },
        ],
    }


def test_the_documented_example_is_what_the_endpoint_answers(alice_api):
    response = alice_api.post(URL, {"xml": callflows._EXAMPLE_XML}, format="json")

    assert response.json() == callflows._EXAMPLE_ANSWER


def test_warnings_alone_leave_a_document_valid(alice_api):
    response = alice_api.post(URL, {"xml": "<Response><Hangup/><Say>Bye</Say></Response>"}, format="json")

    assert response.json()["valid"] is True
    assert [w["code"] for w in response.json()["warnings"]] == ["unreachable"]


def test_malformed_and_malicious_xml_is_a_200_with_the_reason(alice_api):
    xxe = '<!DOCTYPE Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Response><Say>&xxe;</Say></Response>'

    broken = alice_api.post(URL, {"xml": "<Response><Say>"}, format="json").json()
    evil = alice_api.post(URL, {"xml": xxe}, format="json").json()
    empty = alice_api.post(URL, {"xml": ""}, format="json").json()

    assert (broken["valid"], broken["errors"][0]["code"], broken["errors"][0]["path"]) == (False, "xml_syntax", None)
    assert (evil["valid"], [e["code"] for e in evil["errors"]]) == (False, ["dtd_forbidden"])
    assert "root:" not in str(evil)
    assert [e["code"] for e in empty["errors"]] == ["empty_document"]


def test_a_document_over_the_size_limit_is_a_200_with_the_size_error(alice_api):
    xml = "<Response>" + "<Pause/>" * 40_000 + "</Response>"  # 320 KB: over CALLFLOW_MAX_BYTES, under the upload limit

    response = alice_api.post(URL, {"xml": xml}, format="json")

    assert response.status_code == 200
    assert response.json()["errors"] == [
        {
            "code": "document_too_large",
            "message": "The document is larger than 256 KB.",
            "line": 1,
            "column": 1,
            "path": None,
            "attribute": None,
        }
    ]


def test_a_request_body_over_the_upload_limit_is_a_413(alice_api):
    xml = "<Response>" + "<Say>hello</Say>" * (10 * 1024 * 1024 // 16) + "</Response>"  # 10 MB

    response = alice_api.post(URL, {"xml": xml}, format="json")

    assert response.status_code == 413
    assert response.json() == {
        "error": {"code": "request_too_large", "message": "The request body is too large.", "fields": {}}
    }


def test_the_upload_limit_is_djangos_setting(alice_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100

    response = alice_api.post(URL, {"xml": "<Response>" + "<Hangup/>" * 20 + "</Response>"}, format="json")

    assert response.status_code == 413


@pytest.mark.parametrize(
    "body,message",
    [
        ({}, "This field is required."),
        ({"xml": None}, "This field may not be null."),
        ({"xml": 42}, "Must be a string holding the XML document."),
        ({"xml": ["<Response/>"]}, "Must be a string holding the XML document."),
        ({"xml": {"Response": {}}}, "Must be a string holding the XML document."),
    ],
)
def test_a_missing_or_non_string_xml_field_is_a_400_naming_it(alice_api, body, message):
    response = alice_api.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "validation_error", "message": f"xml: {message}", "fields": {"xml": [message]}}
    }


def test_it_requires_a_credential():
    response = APIClient().post(URL, {"xml": "<Response/>"}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_any_account_may_validate(charlie_api, alice, token_client):
    as_alice = token_client(alice.user, alice.account)

    for client in (charlie_api, as_alice):
        response = client.post(URL, {"xml": "<Response><Hangup/></Response>"}, format="json")
        assert response.status_code == 200
        assert response.json()["valid"] is True


def test_viewers_and_read_only_keys_may_validate_because_it_changes_nothing(bob, token_client):
    secret, _ = make_api_key(bob.account, read_only=True)
    read_only = APIClient()
    read_only.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    for client in (token_client(bob.user, bob.account), read_only):
        response = client.post(URL, {"xml": "<Response><Hangup/></Response>"}, format="json")
        assert response.status_code == 200, response.content


def test_a_suspended_account_may_not(alice, alice_api):
    Account.objects.filter(pk=alice.account.pk).update(status=Account.Status.SUSPENDED)

    response = alice_api.post(URL, {"xml": "<Response/>"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "account_suspended"


def test_it_accepts_form_encoded_bodies_too(alice_api):
    response = alice_api.post(URL, {"xml": "<Response><Hangup/></Response>"})

    assert response.status_code == 200
    assert response.json()["valid"] is True


def test_only_post_is_allowed(alice_api):
    assert alice_api.get(URL).status_code == 405


def test_urls_in_the_document_go_through_the_outbound_url_policy(alice_api, settings):
    settings.OUTBOUND_URL_ALLOW_LOOPBACK = False

    response = alice_api.post(URL, {"xml": '<Response><Callback url="http://127.0.0.1/x"/></Response>'}, format="json")

    assert [(e["code"], e["attribute"]) for e in response.json()["errors"]] == [("url_forbidden_address", "url")]


def test_the_endpoint_is_in_the_openapi_schema_with_its_serializers_and_example():
    # The schema of this module's routes alone, mounted as portal/urls.py mounts them: what is asserted here does
    # not then depend on every other resource's schema being complete.
    generator = SchemaGenerator(patterns=[path("api/v1/", include(callflows.urlpatterns))])
    schema = generator.get_schema(request=None, public=True)

    operation = schema["paths"]["/api/v1/call-flows/validate"]["post"]
    assert operation["operationId"] == "call_flows_validate"
    request = operation["requestBody"]["content"]["application/json"]
    assert request["schema"] == {"$ref": "#/components/schemas/CallFlowValidateRequest"}
    assert "<Gather" in request["examples"]["ADocumentWithProblems"]["value"]["xml"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CallFlowValidation"
    }
    assert {"200", "400", "401", "403", "413", "429"} <= set(operation["responses"])
    issue = schema["components"]["schemas"]["CallFlowIssue"]["properties"]
    assert set(issue) == {"code", "message", "line", "column", "path", "attribute"}
