"""Loading stock: `manage.py import_numbers`, the admin's CSV upload, and the demo stock of seed_demo."""

from __future__ import annotations

import io

import phonenumbers
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from telephony.models import StockNumber
from telephony.services import numbers as services
from telephony.tests.isolation_numbers import make_stock

pytestmark = pytest.mark.django_db

GOOD_AND_BAD = """number,country,type,state,rate_center,city,npa,nxx,features,monthly_price,setup_price
+12015550123,US,local,nj,JERSEYCITY,Jersey City,,,voice;sms,1.00,0.50
+1 (212) 555-0199,,,NY,,New York,,,voice,,
12345,US,local,NJ,,,,,voice,,
+18885550100,,,,,,,,,2,1
+12015550123,US,local,NJ,,,,,voice,,
+14155550100,CA,,,,,,,,,
+15125550100,US,mobile,,,,,,,,
+13125550100,,,,,,,,voice;fax,,
+13125550101,,,,,,,,,-1,
+13125550102,,,,,,312,999,,,
"""


def write_csv(tmp_path, text: str):
    path = tmp_path / "stock.csv"
    path.write_text(text)
    return path


def test_it_imports_good_rows_and_reports_bad_ones_by_line(tmp_path, capsys):
    path = write_csv(tmp_path, GOOD_AND_BAD)

    with pytest.raises(CommandError) as failure:
        call_command("import_numbers", str(path))

    assert failure.value.returncode == 1
    out, err = capsys.readouterr()
    assert "3 imported, 1 already in stock, 6 rejected" in out
    assert "line 6: +12015550123 is already in stock" in out
    for line, words in [
        (4, "not a valid E.164 number"),
        (7, "does not match the number"),
        (8, "type 'mobile'"),
        (9, "fax"),
        (10, "monthly_price"),
        (11, "npa/nxx"),
    ]:
        assert f"line {line}: " in err and words in err.split(f"line {line}: ")[1].splitlines()[0]

    nj = StockNumber.objects.get(number="+12015550123")
    assert (nj.digits, nj.country, nj.number_type, nj.state, nj.npa, nj.nxx) == (
        "12015550123",
        "US",
        "local",
        "NJ",
        "201",
        "555",
    )
    assert (nj.voice, nj.sms, str(nj.monthly_price), str(nj.setup_price)) == (True, True, "1.0000", "0.5000")
    assert nj.status == "available"
    assert StockNumber.objects.get(number="+12125550199").city == "New York"
    toll_free = StockNumber.objects.get(number="+18885550100")
    assert (toll_free.number_type, toll_free.npa, toll_free.voice, toll_free.sms) == ("toll_free", "888", True, False)


def test_importing_the_same_file_again_adds_nothing(tmp_path, capsys):
    path = write_csv(tmp_path, "number\n+12015550123\n+12015550124\n")
    call_command("import_numbers", str(path))
    call_command("import_numbers", str(path))
    assert "0 imported, 2 already in stock, 0 rejected" in capsys.readouterr().out
    assert StockNumber.objects.count() == 2


def test_it_leaves_a_number_already_sold_as_it_is(tmp_path):
    sold = make_stock(status="assigned")
    call_command("import_numbers", str(write_csv(tmp_path, f"number\n{sold.number}\n")))
    assert StockNumber.objects.get(pk=sold.pk).status == "assigned"


def test_it_imports_in_bulk_not_row_by_row(django_assert_max_num_queries):
    rows = "number\n" + "".join(f"+1201346{line:04d}\n" for line in range(2500))
    # SQLite caps the parameters of one INSERT, so its batches take a few statements each; still far from 2,500.
    with django_assert_max_num_queries(100):
        report = services.stock_import_csv(file=io.StringIO(rows), batch_size=1000)
    assert report.created == 2500 and report.ok
    assert StockNumber.objects.count() == 2500


def test_a_file_without_a_number_column_is_refused_whole(tmp_path):
    report = services.stock_import_csv(file=io.StringIO("phone\n+12015550123\n"))
    assert report.errors == [(1, report.errors[0][1])] and "number" in report.errors[0][1]
    assert not StockNumber.objects.exists()


def test_an_unreadable_path_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_numbers", str(tmp_path / "missing.csv"))


# --- The admin upload ------------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser(email="staff@example.com", password="pw-for-staff-1")
    client.force_login(user)
    return client


def test_staff_upload_a_csv_in_the_admin_and_see_the_bad_lines(staff_client):
    upload = SimpleUploadedFile("stock.csv", GOOD_AND_BAD.encode(), content_type="text/csv")

    response = staff_client.post("/admin/telephony/stocknumber/upload/", {"file": upload, "batch_size": 2})

    assert response.status_code == 200
    page = response.content.decode()
    assert "3 imported, 1 already in stock, 6 rejected" in page
    assert "not a valid E.164 number" in page and "<td>4</td>" in page
    assert StockNumber.objects.count() == 3


def test_the_stock_admin_pages_render(staff_client, alice):
    from telephony.tests.isolation_numbers import make_number_order, make_phone_number

    number = make_phone_number(alice.account)
    order = make_number_order(alice.account)
    for url in [
        "/admin/telephony/stocknumber/",
        "/admin/telephony/stocknumber/?status__exact=available&q=1201",
        f"/admin/telephony/stocknumber/{number.stock_id}/change/",
        "/admin/telephony/stocknumber/upload/",
        "/admin/telephony/phonenumber/?q=account-a",
        f"/admin/telephony/phonenumber/{number.pk}/change/",
        "/admin/telephony/numberorder/",
        f"/admin/telephony/numberorder/{order.pk}/change/",
    ]:
        assert staff_client.get(url).status_code == 200, url
    assert "Upload CSV" in staff_client.get("/admin/telephony/stocknumber/").content.decode()
    assert staff_client.get("/admin/telephony/stocknumber/add/").url.endswith("/stocknumber/upload/")


def test_staff_can_end_a_quarantine_early_but_not_free_a_sold_number(staff_client):
    resting = make_stock(status="quarantined")
    sold = make_stock(status="assigned")

    staff_client.post(
        "/admin/telephony/stocknumber/",
        {"action": "return_to_stock_now", "_selected_action": [resting.pk, sold.pk]},
    )

    assert StockNumber.objects.get(pk=resting.pk).status == "available"
    assert StockNumber.objects.get(pk=sold.pk).status == "assigned"


def test_staff_can_release_a_customers_number(staff_client, alice):
    from telephony.tests.isolation_numbers import make_phone_number
    from tenants.models import AuditEntry

    number = make_phone_number(alice.account)
    staff_client.post("/admin/telephony/phonenumber/", {"action": "release", "_selected_action": [number.pk]})
    number.refresh_from_db()
    assert number.status == "released"
    assert AuditEntry.objects.get(action="number.released").actor_label == "staff@example.com"


def test_people_without_staff_rights_cannot_upload(client, alice):
    client.force_login(alice.user)
    response = client.get("/admin/telephony/stocknumber/upload/")
    assert response.status_code == 302 and "/admin/login/" in response.url


# --- Demo stock ------------------------------------------------------------------------------------------


def test_seed_demo_loads_valid_demo_stock_once(tmp_path):
    call_command("seed_demo", output=str(tmp_path / "creds.txt"))
    count = StockNumber.objects.count()
    call_command("seed_demo", output=str(tmp_path / "creds.txt"))

    assert 3000 <= count == StockNumber.objects.count()
    assert set(StockNumber.objects.values_list("npa", flat=True).distinct()) == {
        "201",
        "212",
        "312",
        "415",
        "512",
        "888",
    }
    assert StockNumber.objects.filter(number_type="toll_free").exists()
    for number in StockNumber.objects.order_by("?").values_list("number", flat=True)[:200]:
        assert phonenumbers.is_valid_number(phonenumbers.parse(number)), number


def test_a_newcomer_can_search_and_order_demo_stock_at_once(tmp_path):
    from rest_framework.test import APIClient

    call_command("seed_demo", output=str(tmp_path / "creds.txt"))
    key = dict(line.split(": ", 1) for line in (tmp_path / "creds.txt").read_text().splitlines())["api_key"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    found = api.get("/api/v1/available-numbers", {"npa": "415", "features": "sms", "limit": 2}).json()
    response = api.post("/api/v1/number-orders", {"numbers": [n["number"] for n in found]}, format="json")

    assert len(found) == 2
    assert response.json()["status"] == "completed"
