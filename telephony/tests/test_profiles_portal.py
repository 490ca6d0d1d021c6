"""The TN profile pages through Django's test client: rendering, roles, the list forms, CSV import and the test box."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from telephony.models import CallerListEntry, TnProfile
from telephony.services.profiles import caller_list_change, tn_profile_create
from telephony.tests.isolation_profiles import make_phone_number
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def profile(alice) -> TnProfile:
    profile = tn_profile_create(account=alice.account, actor=alice.user, name="Front desk", block_action="busy")
    caller_list_change(
        account=alice.account,
        actor=alice.user,
        profile=profile,
        list_type="blacklist",
        add=[{"caller_id": "+1900*", "note": "premium rate"}, "+12015550123"],
    )
    caller_list_change(
        account=alice.account, actor=alice.user, profile=profile, list_type="whitelist", add=["+447700900123"]
    )
    return profile


def page(name: str, profile: TnProfile, **kwargs) -> str:
    return reverse(name, kwargs={"account": profile.account.slug, "id": profile.public_id, **kwargs})


def values(profile: TnProfile, list_type: str = "blacklist") -> list[str]:
    return [e.display for e in CallerListEntry.objects.filter(profile=profile, list_type=list_type)]


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice.user)
    return client


# --- Rendering and roles -----------------------------------------------------------------------------


def test_it_renders_every_profile_page_for_the_owner(as_alice, alice, profile):
    make_phone_number(alice.account, tn_profile=profile)
    pages = [
        reverse("tnprofile-list", kwargs={"account": "account-a"}),
        reverse("tnprofile-create", kwargs={"account": "account-a"}),
        page("tnprofile-detail", profile),
        page("tnprofile-edit", profile),
        page("tnprofile-delete", profile),
        page("tnprofile-entry-remove", profile) + "?list=blacklist&caller_id=%2B1900*",
    ]
    for path in pages:
        response = as_alice.get(path)
        assert response.status_code == 200, path
        assert b"Front desk" in response.content or path.endswith("/new/"), path


def test_the_profile_page_shows_both_lists_the_numbers_and_the_history(as_alice, alice, profile):
    number = make_phone_number(alice.account, tn_profile=profile)

    content = as_alice.get(page("tnprofile-detail", profile)).content.decode()

    for text in (
        "+1900*",
        "premium rate",
        "+12015550123",
        "+447700900123",
        number.number,
        "Busy (SIP 486",
        "tn_profile.blacklist_changed",
        'data-testid="add-form"',
        'data-testid="import-form"',
    ):
        assert text in content, text


def test_a_viewer_sees_the_lists_and_the_test_box_but_no_write_controls(client, bob, profile):
    client.force_login(bob.user)

    content = client.get(page("tnprofile-detail", profile)).content.decode()
    listing = client.get(reverse("tnprofile-list", kwargs={"account": "account-a"})).content.decode()

    assert "+1900*" in content and 'data-testid="test-form"' in content
    for control in (
        'data-testid="add-form"',
        'data-testid="import-form"',
        'data-testid="remove-entry"',
        'data-testid="edit-tn-profile"',
        'data-testid="delete-tn-profile"',
    ):
        assert control not in content, control
    assert 'data-testid="create-tn-profile"' not in listing


def test_a_viewer_cannot_change_anything_by_posting(client, bob, profile):
    client.force_login(bob.user)
    posts = [
        (reverse("tnprofile-create", kwargs={"account": "account-a"}), {"name": "Mine", "block_action": "reject"}),
        (page("tnprofile-edit", profile), {"name": "Renamed", "block_action": "reject"}),
        (page("tnprofile-delete", profile), {}),
        (page("tnprofile-entries-add", profile), {"list_type": "blacklist", "entries": "+12015550199"}),
        (
            page("tnprofile-entries-import", profile),
            {"list_type": "blacklist", "file": SimpleUploadedFile("a.csv", b"+12015550199\n")},
        ),
        (page("tnprofile-entry-remove", profile) + "?list=blacklist&caller_id=%2B1900*", {}),
    ]
    for path, data in posts:
        assert client.post(path, data).status_code == 403, path
    assert values(profile) == ["+12015550123", "+1900*"]
    assert TnProfile.objects.get(pk=profile.pk).name == "Front desk"


def test_a_viewer_can_test_a_caller(client, bob, profile):
    client.force_login(bob.user)

    response = client.post(page("tnprofile-test", profile), {"caller_id": "+19005551234"})

    assert response.status_code == 200
    assert response.context["decision"].outcome == "blacklisted"


# --- Profiles ----------------------------------------------------------------------------------------


def test_it_creates_a_profile_and_opens_it(as_alice, alice):
    response = as_alice.post(
        reverse("tnprofile-create", kwargs={"account": "account-a"}),
        {"name": "Sales", "description": "", "block_action": "hangup"},
    )

    created = TnProfile.objects.get(name="Sales")
    assert response.status_code == 302 and response.url == page("tnprofile-detail", created)
    assert created.block_action == "hangup"


def test_it_shows_a_duplicate_name_on_the_form(as_alice, profile):
    response = as_alice.post(
        reverse("tnprofile-create", kwargs={"account": "account-a"}), {"name": "Front desk", "block_action": "reject"}
    )

    assert response.status_code == 200
    assert "already has a TN profile with this name" in str(response.context["form"].errors["name"])


def test_it_edits_a_profile(as_alice, profile):
    response = as_alice.post(
        page("tnprofile-edit", profile), {"name": "Front desk", "description": "Lobby", "block_action": "reject"}
    )

    profile.refresh_from_db()
    assert response.status_code == 302
    assert (profile.description, profile.block_action) == ("Lobby", "reject")


def test_it_deletes_a_profile_after_confirmation(as_alice, profile):
    response = as_alice.post(page("tnprofile-delete", profile))

    assert response.status_code == 302
    assert not TnProfile.objects.filter(pk=profile.pk).exists()


def test_it_refuses_to_delete_a_profile_in_use_unless_told_to_detach(as_alice, alice, profile):
    number = make_phone_number(alice.account, tn_profile=profile)
    confirm = as_alice.get(page("tnprofile-delete", profile)).content.decode()

    refused = as_alice.post(page("tnprofile-delete", profile), follow=True)
    assert TnProfile.objects.filter(pk=profile.pk).exists()
    detached = as_alice.post(page("tnprofile-delete", profile), {"detach_numbers": "on"})

    assert "1 number uses this profile" in confirm
    assert "used by 1 number" in refused.content.decode()
    assert detached.status_code == 302 and not TnProfile.objects.filter(pk=profile.pk).exists()
    number.refresh_from_db()
    assert number.tn_profile is None


# --- List entries ------------------------------------------------------------------------------------


def test_it_adds_lines_with_optional_notes(as_alice, profile):
    response = as_alice.post(
        page("tnprofile-entries-add", profile),
        {"list_type": "blacklist", "entries": "+12015550199, robocaller\n\n+1888*\nanonymous\n"},
    )

    assert response.status_code == 302
    assert values(profile) == ["+12015550123", "+12015550199", "+1888*", "+1900*", "anonymous"]
    assert CallerListEntry.objects.get(value="+12015550199").note == "robocaller"


def test_it_adds_nothing_and_names_the_bad_lines(as_alice, profile):
    response = as_alice.post(
        page("tnprofile-entries-add", profile),
        {"list_type": "whitelist", "entries": "+12015550199\n\nnot a number\n+1*\n+44 7700 900 124\n12345"},
    )

    assert response.status_code == 200
    errors = response.context["add_form"].errors["entries"]
    assert [e.split(":")[0] for e in errors] == ["Line 3", "Line 6"]
    assert values(profile, "whitelist") == ["+447700900123"]
    assert "Line 3:" in response.content.decode()


def test_it_removes_an_entry_after_confirmation(as_alice, alice, profile):
    confirm_url = page("tnprofile-entry-remove", profile) + "?list=blacklist&caller_id=%2B1900*"
    confirm = as_alice.get(confirm_url)

    response = as_alice.post(confirm_url)

    assert "Remove +1900* from the blacklist?" in confirm.content.decode()
    assert response.status_code == 302
    assert values(profile) == ["+12015550123"]
    assert AuditEntry.objects.for_account(alice.account).filter(action="tn_profile.blacklist_changed").first().after[
        "removed_values"
    ] == ["+1900*"]


def test_removing_an_entry_that_is_not_there_is_not_found(as_alice, profile):
    base = page("tnprofile-entry-remove", profile)

    assert as_alice.get(base + "?list=whitelist&caller_id=%2B1900*").status_code == 404
    assert as_alice.get(base + "?list=blacklist&caller_id=junk").status_code == 404
    assert as_alice.post(base + "?list=blacklist&caller_id=%2B1999*").status_code == 404


def test_each_list_filters_and_pages_on_its_own(as_alice, alice, profile):
    caller_list_change(
        account=alice.account,
        actor=None,
        profile=profile,
        list_type="blacklist",
        add=[f"+1201555{n:04d}" for n in range(200, 260)],
    )
    detail = page("tnprofile-detail", profile)

    filtered = as_alice.get(detail, {"bl-caller_id": "+1900", "wl_page": "1"})
    second = as_alice.get(detail, {"bl_page": "2"})

    blacklist, whitelist = filtered.context["lists"]
    assert [e.display for e in blacklist["page_obj"]] == ["+1900*"]
    assert [e.display for e in whitelist["page_obj"]] == ["+447700900123"]
    assert ("wl_page", "1") in blacklist["other_params"]
    assert second.context["lists"][0]["page_obj"].number == 2
    assert "bl_page=3" in second.context["lists"][0]["next_url"]


# --- CSV import --------------------------------------------------------------------------------------


def test_it_imports_the_good_rows_of_a_csv_and_reports_the_bad_ones_by_line(as_alice, alice, profile):
    csv = (
        b"caller_id,note\n"
        b"+12015550150,from the spreadsheet\n"
        b"garbage,oops\n"
        b"\n"
        b"+1800*\n"
        b"+12015550123,now with a note\n"
        b"+12345,too short\n"
        b"+12015550151,a,b\n"
    )

    response = as_alice.post(
        page("tnprofile-entries-import", profile),
        {"list_type": "blacklist", "file": SimpleUploadedFile("list.csv", b"\xef\xbb\xbf" + csv, "text/csv")},
    )

    assert response.status_code == 200
    result = response.context["import_result"]
    assert (result.rows, result.change.added, result.change.updated) == (6, 2, 1)
    assert [line for line, _ in result.errors] == [3, 7, 8]
    assert values(profile) == ["+12015550123", "+12015550150", "+1800*", "+1900*"]
    assert CallerListEntry.objects.get(value="+12015550123").note == "now with a note"
    assert "Line 3: garbage" in response.content.decode()
    audit = AuditEntry.objects.for_account(alice.account).filter(action="tn_profile.blacklist_changed").first()
    assert (audit.after["source"], audit.after["rejected_rows"]) == ("csv_import", 3)


def test_it_refuses_a_file_that_is_not_utf8_text(as_alice, profile):
    response = as_alice.post(
        page("tnprofile-entries-import", profile),
        {"list_type": "whitelist", "file": SimpleUploadedFile("list.xlsx", b"\xff\xfe\x00\x01binary")},
    )

    assert response.status_code == 200
    assert "not UTF-8" in str(response.context["import_form"].errors["file"])


# --- The test box ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "caller,verdict,rule",
    [
        ("+19005551234", "Blocked", "blacklist: +1900*"),
        ("+447700900123", "Allowed", "whitelist: +447700900123"),
        ("", "Blocked", "not on whitelist"),
    ],
)
def test_the_test_box_shows_the_decision_and_the_rule(as_alice, profile, caller, verdict, rule):
    response = as_alice.post(page("tnprofile-test", profile), {"caller_id": caller})

    content = response.content.decode()
    assert response.status_code == 200
    assert f'data-testid="decision-verdict">{verdict}<' in content
    assert f'data-testid="decision-rule">{rule}<' in content
    assert CallerListEntry.objects.filter(hit_count__gt=0).count() == 0
