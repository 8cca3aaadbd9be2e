from decimal import Decimal

from playwright.sync_api import expect

from accounts.services.revenue import account_revenue_refresh
from tests.browser.conftest import log_in
from tests.factories import AccountFactory, SubscriptionFactory, UserFactory


def _book_for(username: str) -> None:
    """Two active accounts owned by the user (MRR 100 + 250) and one owned by someone else."""
    owner = UserFactory(username=username)
    subscriptions = [
        SubscriptionFactory(account=AccountFactory(owner=owner), mrr=Decimal("100"), end_date=None),
        SubscriptionFactory(account=AccountFactory(owner=owner), mrr=Decimal("250"), end_date=None),
        SubscriptionFactory(
            account=AccountFactory(owner=UserFactory(username="someone-else")),
            mrr=Decimal("9000"),
            end_date=None,
        ),
    ]
    account_revenue_refresh(account_ids=[s.account_id for s in subscriptions])


def test_a_csm_logs_in_and_lands_on_their_book(page, logged_in_page, live_server):
    _book_for("csm")

    page = logged_in_page("csm")

    assert page.url == f"{live_server.url}/"
    expect(page.get_by_role("heading", name="Your book of business")).to_be_visible()
    expect(page.locator("[data-figure=accounts]")).to_have_text("2")
    expect(page.locator("[data-figure=active]")).to_have_text("2")
    expect(page.locator("[data-figure=arr]")).to_have_text("$4,200")
    expect(page.locator(".who")).to_have_text("csm")


def test_a_manager_sees_the_whole_book(logged_in_page):
    _book_for("csm")

    page = logged_in_page("manager", manager=True)

    expect(page.locator("[data-figure=accounts]")).to_have_text("3")
    expect(page.locator("[data-figure=arr]")).to_have_text("$112,200")


def test_a_wrong_password_shows_the_error_and_stays_on_the_login_page(page, live_server):
    UserFactory(username="csm")

    log_in(page, "csm", password="not-the-password")

    expect(page.get_by_role("alert")).to_contain_text("didn't match")
    assert page.url.startswith(f"{live_server.url}/login/")


def test_logging_out_returns_to_the_login_page_and_locks_the_book(logged_in_page, live_server):
    page = logged_in_page("csm")

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{live_server.url}/login/")
    page.goto("/")

    assert page.url == f"{live_server.url}/login/?next=/"
    expect(page.get_by_role("heading", name="Log in to CSP")).to_be_visible()


def test_htmx_is_loaded_from_static_vendor(page, live_server):
    responses = []
    page.on("response", lambda response: responses.append(response))

    page.goto("/login/")
    page.wait_for_function("() => window.htmx !== undefined")

    htmx = [r for r in responses if r.url == f"{live_server.url}/static/vendor/htmx.min.js"]
    assert htmx and htmx[0].status == 200
    assert page.evaluate("() => typeof window.htmx.ajax") == "function"
