from playwright.sync_api import expect


def test_api_docs_render_from_csps_own_static_files(logged_in_page, live_server):
    page = logged_in_page("csm")
    outside = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url) if not request.url.startswith(live_server.url) else None
        ),
    )

    page.goto(f"{live_server.url}/api/docs/")

    expect(page.get_by_text("/api/v1/events").first).to_be_visible(timeout=15000)
    assert outside == []  # nothing comes from a CDN
