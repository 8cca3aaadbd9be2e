"""Browser tests: Playwright driving Debian's chromium against pytest-django's live_server.

Fixtures for any test under tests/browser/ (all of them carry the ``browser`` marker):
- ``browser``: one headless chromium for the session;
- ``page``: a fresh browser context and page whose relative URLs go to the live server;
- ``logged_in_page(username, manager=False)``: a page logged in through /login/ as that user
  (created with the demo password if missing), landed on the home page.

live_server serves /static/ through Django's StaticFilesHandler, i.e. from static/ (including the
static/vendor/ that `make` fills). A failing test leaves a screenshot in .run/browser-failures/.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEMO_PASSWORD = "csp-demo"
FAILURES_DIR = Path(__file__).resolve().parents[2] / ".run" / "browser-failures"


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (`make test` installs it)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread, and Django refuses ORM
    # calls from a thread with a running loop. Set only once a browser test runs, because
    # `manage.py check --deploy` (tests/test_deploy_settings.py) rejects the variable.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(request, browser, live_server, transactional_db) -> Iterator:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        FAILURES_DIR.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(FAILURES_DIR / f"{request.node.name}.png"), full_page=True)
    context.close()


def log_in(page, username: str, password: str = DEMO_PASSWORD) -> None:
    """Fills in the login form at /login/ and submits it."""
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


@pytest.fixture
def logged_in_page(page, django_user_model) -> Callable:
    def make(username: str, *, manager: bool = False):
        from django.contrib.auth.models import Group

        user = django_user_model.objects.get_or_create(username=username)[0]
        user.set_password(DEMO_PASSWORD)
        user.save()
        if manager:
            user.groups.add(Group.objects.get_or_create(name="Manager")[0])
        log_in(page, username)
        page.wait_for_url(lambda url: not url.rstrip("/").endswith("/login"))
        return page

    return make
