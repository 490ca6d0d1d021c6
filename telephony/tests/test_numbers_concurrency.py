"""Real concurrent orders on PostgreSQL: a number is never sold twice, and a quota is never overrun.

Each thread has its own database connection (Django opens one per thread) and its own transaction; a
barrier releases them together so their claims really overlap.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from telephony.models import NumberOrderItem, PhoneNumber
from telephony.services.numbers import number_order_create
from telephony.tests.isolation_numbers import make_phone_number, make_stock
from tenants.tests.factories import AccountFactory


def race(jobs) -> list:
    """Run the callables at the same moment, one thread and one connection each; their results in order."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(index, job):
        try:
            barrier.wait(timeout=10)
            results[index] = job()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    return results


@pytest.mark.postgres
def test_two_accounts_ordering_the_same_number_at_once_get_it_exactly_once(transactional_db):
    accounts = [AccountFactory(), AccountFactory()]
    for _ in range(10):  # ten rounds, so a lucky interleaving cannot pass by chance
        number = make_stock().number
        orders = race([lambda a=a, n=number: number_order_create(account=a, actor=None, numbers=[n]) for a in accounts])
        outcomes = sorted(NumberOrderItem.objects.get(order=o).result for o in orders)
        assert outcomes == ["failed", "success"]
        assert PhoneNumber.objects.filter(number=number, status="active").count() == 1


@pytest.mark.postgres
def test_many_overlapping_orders_never_sell_a_number_twice(transactional_db):
    accounts = [AccountFactory() for _ in range(4)]
    pool = [make_stock().number for _ in range(12)]
    # Eight orders over overlapping slices of the pool, listed in different orders (a deadlock would show here).
    wanted = [pool[i : i + 6] if i % 2 else list(reversed(pool[i : i + 6])) for i in range(0, 12, 3)] * 2

    race(
        [
            lambda a=accounts[i % 4], n=numbers: number_order_create(account=a, actor=None, numbers=n)
            for i, numbers in enumerate(wanted)
        ]
    )

    active = Counter(PhoneNumber.objects.filter(status="active").values_list("number", flat=True))
    assert set(active) == set(pool)
    assert max(active.values()) == 1
    successes = NumberOrderItem.objects.filter(result="success").count()
    assert successes == len(pool)


@pytest.mark.postgres
def test_concurrent_orders_of_one_account_cannot_exceed_its_quota(transactional_db):
    account = AccountFactory(number_quota=3)
    make_phone_number(account)
    numbers = [make_stock().number for _ in range(6)]

    race([lambda n=n: number_order_create(account=account, actor=None, numbers=[n]) for n in numbers])

    assert PhoneNumber.objects.for_account(account).filter(status="active").count() == 3
    reasons = Counter(NumberOrderItem.objects.values_list("reason", flat=True))
    assert reasons == {"": 2, "quota": 4}


def test_the_database_refuses_a_second_active_lease_of_a_number(alice, charlie):
    number = make_phone_number(alice.account)
    with pytest.raises(IntegrityError), transaction.atomic():
        PhoneNumber.objects.create(
            account=charlie.account,
            stock=number.stock,
            number=number.number,
            leased_at=timezone.now(),
            expires_at=timezone.now(),
        )
