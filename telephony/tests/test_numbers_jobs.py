"""The periodic jobs: lease expiry (renew or release) and the return of quarantined stock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from telephony.models import PhoneNumber, StockNumber
from telephony.services import numbers as services
from telephony.tasks import process_expired_number_leases, return_quarantined_numbers
from telephony.tests.isolation_numbers import make_phone_number, make_stock
from tenants.models import AuditEntry
from tenants.tests.fixtures import wait_for

pytestmark = pytest.mark.django_db

JAN_31 = datetime(2025, 1, 31, 9, 0, tzinfo=UTC)


def lease(account, *, leased_at=JAN_31, months=1, **fields) -> PhoneNumber:
    number = make_phone_number(account, **fields)
    number.leased_at = leased_at
    number.expires_at = services.add_months(leased_at, months)
    number.save()
    return number


@pytest.mark.parametrize(
    "start,months,end",
    [
        (datetime(2025, 1, 31, tzinfo=UTC), 1, datetime(2025, 2, 28, tzinfo=UTC)),
        (datetime(2024, 1, 31, tzinfo=UTC), 1, datetime(2024, 2, 29, tzinfo=UTC)),
        (datetime(2025, 1, 31, tzinfo=UTC), 2, datetime(2025, 3, 31, tzinfo=UTC)),
        (datetime(2025, 11, 15, tzinfo=UTC), 3, datetime(2026, 2, 15, tzinfo=UTC)),
    ],
)
def test_it_adds_calendar_months(start, months, end):
    assert services.add_months(start, months) == end


def test_it_renews_autorenewing_leases_by_a_month_from_the_lease_date(alice):
    number = lease(alice.account, autorenew=True)  # expires 28 Feb
    with time_machine.travel(datetime(2025, 2, 28, 10, 0, tzinfo=UTC), tick=False):
        assert services.number_leases_process_expired() == {"renewed": 1, "released": 0}
    number.refresh_from_db()
    # Counted from the 31st, not from 28 Feb: the lease keeps its day of the month.
    assert number.expires_at == datetime(2025, 3, 31, 9, 0, tzinfo=UTC)
    assert number.status == "active"
    entry = AuditEntry.objects.get(action="number.renewed")
    assert entry.actor_label == "system" and entry.after["expires_at"].startswith("2025-03-31")


def test_a_long_overdue_lease_is_renewed_past_now_in_one_run(alice):
    number = lease(alice.account, autorenew=True)
    with time_machine.travel(datetime(2025, 6, 1, tzinfo=UTC), tick=False):
        services.number_leases_process_expired()
    number.refresh_from_db()
    assert number.expires_at == datetime(2025, 6, 30, 9, 0, tzinfo=UTC)


def test_it_releases_leases_without_autorenew_when_they_expire(alice, settings):
    settings.NUMBER_QUARANTINE_DAYS = 30
    ending = lease(alice.account, autorenew=False)
    not_yet = lease(alice.account, autorenew=False, leased_at=datetime(2025, 2, 10, tzinfo=UTC))
    moment = datetime(2025, 2, 28, 9, 30, tzinfo=UTC)

    with time_machine.travel(moment, tick=False):
        assert services.number_leases_process_expired() == {"renewed": 0, "released": 1}

    ending.refresh_from_db()
    not_yet.refresh_from_db()
    assert (ending.status, ending.released_at) == ("released", moment)
    assert not_yet.status == "active"
    stock = StockNumber.objects.get(pk=ending.stock_id)
    assert (stock.status, stock.quarantined_until) == ("quarantined", moment + timedelta(days=30))
    entry = AuditEntry.objects.get(action="number.released")
    assert entry.after["reason"] == "expired" and entry.actor_label == "system"


def test_running_the_expiry_job_twice_changes_nothing_more(alice):
    lease(alice.account, autorenew=True)
    lease(alice.account, autorenew=False)
    with time_machine.travel(datetime(2025, 3, 1, tzinfo=UTC), tick=False):
        assert services.number_leases_process_expired() == {"renewed": 1, "released": 1}
        assert services.number_leases_process_expired() == {"renewed": 0, "released": 0}


def test_it_returns_quarantined_stock_when_its_quarantine_ends():
    due = make_stock(status="quarantined", quarantined_until=datetime(2025, 3, 1, tzinfo=UTC))
    later = make_stock(status="quarantined", quarantined_until=datetime(2025, 3, 2, tzinfo=UTC))
    sold = make_stock(status="assigned")

    with time_machine.travel(datetime(2025, 3, 1, 12, 0, tzinfo=UTC), tick=False):
        assert services.stock_return_quarantined() == 1

    statuses = dict(StockNumber.objects.values_list("pk", "status"))
    assert statuses == {due.pk: "available", later.pk: "quarantined", sold.pk: "assigned"}
    assert StockNumber.objects.get(pk=due.pk).quarantined_until is None


def test_a_released_number_can_be_ordered_again_after_quarantine(alice, charlie_api, settings):
    settings.NUMBER_QUARANTINE_DAYS = 30
    number = make_phone_number(alice.account)
    with time_machine.travel(datetime(2025, 1, 1, tzinfo=UTC), tick=False):
        services.number_release(account=alice.account, actor=None, number=number)
    with time_machine.travel(datetime(2025, 1, 31, 0, 1, tzinfo=UTC), tick=False):
        services.stock_return_quarantined()
    response = charlie_api.post("/api/v1/number-orders", {"numbers": [number.number]}, format="json")
    assert response.json()["items"][0]["result"] == "success"


def test_the_jobs_are_scheduled():
    from portal.celery import app

    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"telephony.tasks.process_expired_number_leases", "telephony.tasks.return_quarantined_numbers"} <= tasks


@pytest.mark.worker
def test_a_real_worker_runs_the_number_jobs(celery_worker, alice):
    ending = make_phone_number(alice.account, autorenew=False)
    PhoneNumber.objects.filter(pk=ending.pk).update(expires_at=datetime(2020, 1, 1, tzinfo=UTC))
    resting = make_stock(status="quarantined", quarantined_until=datetime(2020, 1, 1, tzinfo=UTC))

    process_expired_number_leases.delay()
    return_quarantined_numbers.delay()

    wait_for(
        lambda: PhoneNumber.objects.get(pk=ending.pk).status == "released", message="the worker to release the lease"
    )
    wait_for(lambda: StockNumber.objects.get(pk=resting.pk).status == "available", message="the worker to return stock")
