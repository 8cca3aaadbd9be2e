from decimal import Decimal

import pytest
from django.contrib.auth.models import Group

from accounts.models import Account
from accounts.services.revenue import account_revenue_refresh
from tests.factories import AccountFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


def _book_with_two_owners():
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    for owner, mrr in [(alice, "100"), (alice, "50"), (bob, "1000")]:
        sub = SubscriptionFactory(
            account=AccountFactory(owner=owner), mrr=Decimal(mrr), end_date=None
        )
        account_revenue_refresh(account_ids=[sub.account_id])
    return alice, bob


def test_a_csm_sees_only_the_accounts_they_own():
    alice, _ = _book_with_two_owners()
    assert Account.objects.visible_to(alice).count() == 2


def test_a_manager_sees_the_whole_book():
    _book_with_two_owners()
    manager = UserFactory(username="boss")
    manager.groups.add(Group.objects.get_or_create(name="Manager")[0])
    assert Account.objects.visible_to(manager).count() == 3


def test_home_shows_the_logged_in_csms_own_book(client):
    alice, _ = _book_with_two_owners()
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert 'data-figure="accounts">2<' in page
    assert "$1,800" in page  # ARR = 12 × (100 + 50)


def test_home_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_admin_creates_a_token_and_shows_its_secret_once(admin_client):
    from accounts.models import ApiToken

    response = admin_client.post(
        "/admin/accounts/apitoken/add/",
        {"name": "segment", "scopes": '["events:write"]'},
        follow=True,
    )
    token = ApiToken.objects.get(name="segment")
    shown = [str(m) for m in response.context["messages"]]
    secret = shown[0].rsplit(" ", 1)[-1]
    assert secret.startswith("csp_")
    assert token.key_hash == ApiToken.hash_key(secret)
    assert secret not in str(ApiToken.objects.values_list())
