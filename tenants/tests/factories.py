from __future__ import annotations

import factory

from tenants import services
from tenants.models import Account, Membership, Role, User

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ["email"]

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name")
    # Hashed when built, so no second save after creation (factory_boy deprecates that).
    password = factory.django.Password(PASSWORD)


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Account {n}")
    slug = factory.Sequence(lambda n: f"account-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    account = factory.SubFactory(AccountFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.DEVELOPER


def make_api_key(account: Account, actor=None, **kwargs) -> tuple[str, object]:
    created = services.api_key_create(account=account, actor=actor, name=kwargs.pop("name", "test key"), **kwargs)
    return created.secret, created.api_key
