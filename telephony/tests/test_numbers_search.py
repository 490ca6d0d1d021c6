"""GET /api/v1/available-numbers: searching the platform's stock."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from telephony.api.numbers import AvailableNumberSerializer
from telephony.models import StockNumber
from telephony.selectors import pattern_to_like
from telephony.tests.isolation_numbers import make_stock

pytestmark = pytest.mark.django_db

URL = "/api/v1/available-numbers"


def stock(number: str, **fields) -> StockNumber:
    digits = number[1:]
    national = digits[1:]
    values = {"npa": national[:3], "nxx": national[3:6], "state": "NJ", "number": number, "digits": digits, **fields}
    return make_stock(**values)


def numbers(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["number"] for row in response.json()]


@pytest.fixture
def stock_rows(db):
    return {
        "nj1": stock("+12015550101", voice=True, sms=True, city="Jersey City", rate_center="JERSEYCITY"),
        "nj2": stock("+12015550102", voice=True, sms=False, city="Jersey City", rate_center="JERSEYCITY"),
        "nj3": stock("+12012301234", voice=True, sms=True, city="Hackensack", rate_center="HACKENSACK"),
        "ny": stock("+12125550101", state="NY", city="New York", rate_center="NWYRCYZN01"),
        "tf": stock("+18885550100", state="", number_type="toll_free", city="", rate_center=""),
        "sold": stock("+12015550103", status=StockNumber.Status.ASSIGNED),
        "resting": stock("+12015550104", status=StockNumber.Status.QUARANTINED),
    }


def test_it_returns_only_available_numbers_in_number_order(alice_api, stock_rows):
    expected = ["+12012301234", "+12015550101", "+12015550102", "+12125550101", "+18885550100"]
    assert numbers(alice_api.get(URL)) == expected


def test_the_fast_representation_has_exactly_the_declared_fields(alice_api, stock_rows):
    row = alice_api.get(URL).json()[0]
    declared = AvailableNumberSerializer.Meta.fields
    assert list(row) == declared
    stock_rows["nj1"].monthly_price = Decimal("1.5")
    assert (
        AvailableNumberSerializer(stock_rows["nj1"]).to_representation(stock_rows["nj1"])["monthly_price"] == "1.5000"
    )


def test_it_describes_each_number(alice_api, stock_rows):
    row = alice_api.get(URL, {"npa": "212"}).json()[0]
    assert row == {
        "number": "+12125550101",
        "country": "US",
        "type": "local",
        "state": "NY",
        "rate_center": "NWYRCYZN01",
        "city": "New York",
        "npa": "212",
        "nxx": "555",
        "features": ["voice", "sms"],
        "monthly_price": "0.0000",
        "setup_price": "0.0000",
    }


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"country": "us", "state": "nj"}, ["+12012301234", "+12015550101", "+12015550102"]),
        ({"npa": "201", "nxx": "555"}, ["+12015550101", "+12015550102"]),
        ({"city": "jersey city"}, ["+12015550101", "+12015550102"]),
        ({"rate_center": "hackensack"}, ["+12012301234"]),
        ({"type": "toll_free"}, ["+18885550100"]),
        ({"npa": "201", "features": "voice,sms"}, ["+12012301234", "+12015550101"]),
        ({"features": "sms", "state": "NJ"}, ["+12012301234", "+12015550101"]),
        ({"contains": "5550"}, ["+12015550101", "+12015550102", "+12125550101", "+18885550100"]),
        ({"contains": "2301"}, ["+12012301234"]),
        ({"pattern": "1201*"}, ["+12012301234", "+12015550101", "+12015550102"]),
        ({"pattern": "*0101"}, ["+12015550101", "+12125550101"]),
        ({"pattern": "120155501%%"}, ["+12015550101", "+12015550102"]),
        ({"pattern": "120155501%"}, []),  # a full match: one % is one digit, not two
        ({"pattern": "1*555*1"}, ["+12015550101", "+12125550101"]),
        ({"state": "NJ", "pattern": "%201230%%%%"}, ["+12012301234"]),
        ({"limit": "2"}, ["+12012301234", "+12015550101"]),
    ],
)
def test_it_filters(alice_api, stock_rows, params, expected):
    assert numbers(alice_api.get(URL, params)) == expected


@pytest.mark.parametrize(
    "params,field",
    [
        ({"pattern": "1201_555"}, "pattern"),  # "_" would be a LIKE wildcard: refused, not passed through
        ({"pattern": "1201'; --"}, "pattern"),
        ({"pattern": "+1201*"}, "pattern"),
        ({"pattern": "12\\%"}, "pattern"),
        ({"contains": "55a"}, "contains"),
        ({"contains": "%"}, "contains"),
        ({"npa": "2o1"}, "npa"),
        ({"features": "voice,fax"}, "features"),
        ({"type": "mobile"}, "type"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "many"}, "limit"),
    ],
)
def test_it_answers_400_naming_the_bad_filter(alice_api, stock_rows, params, field):
    response = alice_api.get(URL, params)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_it_allows_up_to_100_results(alice_api, db):
    for line in range(105):
        stock(f"+1201346{line:04d}")
    assert len(numbers(alice_api.get(URL, {"limit": "100"}))) == 100
    assert len(numbers(alice_api.get(URL))) == 20


def test_it_needs_a_credential_but_any_account_may_search(alice_api, charlie_api, bob, token_client, stock_rows):
    assert APIClient().get(URL).status_code == 401
    assert numbers(charlie_api.get(URL, {"npa": "212"})) == ["+12125550101"]
    assert numbers(token_client(bob.user, bob.account).get(URL, {"npa": "212"})) == ["+12125550101"]


def test_the_schema_documents_the_search(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/available-numbers" in schema
    assert "without a total" in schema


@pytest.mark.parametrize(
    "pattern,like",
    [("1201*", "1201%"), ("*1234", "%1234"), ("1201%%%%", "1201____"), ("1**2", "1%2"), ("%*%", "_%_")],
)
def test_it_translates_masks_to_like(pattern, like):
    assert pattern_to_like(pattern) == like
