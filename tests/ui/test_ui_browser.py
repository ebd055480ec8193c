"""End to end in a real headless browser: Playwright driving Debian's chromium on ``vtrack ui``."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from vtrack.client import TrackingClient

CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page that records console errors and uncaught exceptions in ``page.errors``."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors  # type: ignore[attr-defined]
    try:
        yield pg
    finally:
        ctx.close()


def row_ids(page: Page) -> list[str]:
    return page.eval_on_selector_all("#runs tbody tr", "rs => rs.map(r => r.dataset.run)")


def column_texts(page: Page, spec: str) -> list[str]:
    return page.eval_on_selector_all(
        f'#runs tbody td[data-spec="{spec}"]', "ts => ts.map(t => t.textContent.trim())"
    )


def test_table_filter_sort_aggregate_select_compare(
    page: Page, ui_server: str, ui_store: dict[str, Any]
) -> None:
    client = TrackingClient(str(ui_store["path"]))
    page.goto(f"{ui_server}?exp={ui_store['churn']}&cols=name,params.model,params.lr,metrics.loss")
    assert len(row_ids(page)) == 10

    # filter, typed as a user types it
    page.fill("#filter", "params.model = 'xgb'")
    page.press("#filter", "Enter")
    page.wait_for_url(re.compile(r"q=params\.model"))
    assert sorted(column_texts(page, "name")) == ["run0", "run1", "run2"]

    # sort by a header, twice for descending
    page.click('th[data-spec="metrics.loss"] a.sort')
    page.wait_for_url(re.compile(r"sort=metrics\.loss"))
    asc = [float(t) for t in column_texts(page, "metrics.loss")]
    assert asc == sorted(asc)
    page.click('th[data-spec="metrics.loss"] a.sort')
    page.wait_for_url(re.compile(r"sort=-metrics\.loss"))
    assert [float(t) for t in column_texts(page, "metrics.loss")] == sorted(asc, reverse=True)

    # the metric aggregate: min of loss
    page.click("#columns-chooser summary")
    page.select_option('select.agg[data-key="metrics.loss"]', "min")
    page.click("#columns-apply")
    page.wait_for_url(re.compile(r"metrics\.loss%3Amin"))
    header = page.text_content('th[data-spec="metrics.loss:min"]')
    assert header is not None and "loss (min)" in header
    mins = {}
    for rid in row_ids(page):
        mins[rid] = min(m.value for m in client.get_metric_history(rid, "loss"))
    shown = [float(t) for t in column_texts(page, "metrics.loss:min")]
    assert shown == pytest.approx([mins[r] for r in row_ids(page)], rel=1e-5)

    # sorting by the aggregate is server-side
    page.click('th[data-spec="metrics.loss:min"] a.sort')
    page.wait_for_url(re.compile(r"sort=metrics\.loss%3Amin"))
    shown = [float(t) for t in column_texts(page, "metrics.loss:min")]
    assert shown == sorted(shown) and len(shown) == 3
    assert "then NaN, then runs without a value" in (page.text_content("#count") or "")

    # select three runs: the URL carries the selection
    boxes = page.query_selector_all("input.pick")
    for box in boxes[:3]:
        box.check()
    chosen = row_ids(page)[:3]
    assert re.search("sel=" + "%2C".join(chosen), page.url)
    assert page.text_content("#sel-count") == "3"

    # compare, only differences
    page.click("#compare")
    page.wait_for_url(re.compile(r"/compare\?runs="))
    page.locator("#cmp-chart[data-draws]").wait_for(timeout=WAIT_MS)
    model_row = page.locator('tr[data-section="params"][data-key="model"]')
    lr_row = page.locator('tr[data-section="params"][data-key="lr"]')
    assert model_row.is_visible() and lr_row.is_visible()
    page.check("#only-diff")
    assert not model_row.is_visible()  # all three are xgb
    assert lr_row.is_visible()
    assert "diff=1" in page.url
    # overlaid charts drew one line per run and metric, parallel coordinates and scatter too
    assert page.locator("#cmp-chart .scatterlayer .trace").count() >= 3
    assert page.locator("#parcoords .scatterlayer .trace").count() == 3
    assert page.locator("#scatter .scatterlayer .trace").count() == 1
    assert page.errors == []  # type: ignore[attr-defined]


def test_sorting_by_an_aggregate_pages_across_every_run(
    page: Page, ui_server: str, ui_store: dict[str, Any]
) -> None:
    client = TrackingClient(str(ui_store["path"]))
    exp = ui_store["churn"]
    page.goto(f"{ui_server}?exp={exp}&cols=name,metrics.loss:max&per=4")
    page.click('th[data-spec="metrics.loss:max"] a.sort')
    page.wait_for_url(re.compile(r"sort=metrics\.loss%3Amax"))
    page.click('th[data-spec="metrics.loss:max"] a.sort')
    page.wait_for_url(re.compile(r"sort=-metrics\.loss%3Amax"))
    seen: list[str] = []
    for n in (1, 2, 3):
        if n > 1:
            page.goto(f"{ui_server}?exp={exp}&cols=name,metrics.loss:max&per=4"
                      f"&sort=-metrics.loss%3Amax&page={n}")  # fmt: skip
        seen += row_ids(page)
    maxes = {}
    for r in client.search_runs([exp], max_results=None):
        hist = client.get_metric_history(r.info.run_id, "loss") if "loss" in r.data.metrics else []
        maxes[r.info.run_id] = max((m.value for m in hist), default=None)
    with_value = [r for r in seen if maxes[r] is not None]
    assert len(seen) == 10 and set(seen) == set(maxes)
    assert [maxes[r] for r in with_value] == sorted((maxes[r] for r in with_value), reverse=True)
    assert seen[: len(with_value)] == with_value  # runs without loss come last
    assert page.errors == []  # type: ignore[attr-defined]


def test_zooming_a_long_history_fetches_exact_points(
    page: Page, ui_server: str, ui_store: dict[str, Any]
) -> None:
    page.goto(f"{ui_server}runs/{ui_store['ids']['long']}")
    page.locator("#chart[data-draws]").wait_for(timeout=WAIT_MS)
    chart = page.locator("#chart")
    # the first view drew a sketch before Plotly.js was loaded, then replaced it
    painted, drawn = chart.get_attribute("data-painted-ms"), chart.get_attribute("data-drawn-ms")
    assert painted is not None and drawn is not None and int(painted) <= int(drawn)
    assert page.locator("#chart svg.quick").count() == 0
    assert chart.get_attribute("data-reduced") == "1"
    note = page.text_content("#chart-note") or ""
    assert "200,000 points in view, reduced to" in note and "min/max" in note
    # a user's zoom (a relayout of the x axis) asks the server for the visible range
    page.evaluate("Plotly.relayout('chart', {'xaxis.range': [123000, 124000]})")
    page.locator("#chart[data-reduced='0']").wait_for(timeout=WAIT_MS)
    assert chart.get_attribute("data-points") == "1001"
    assert "all 1,001 points, exact" in (page.text_content("#chart-note") or "")
    assert page.errors == []  # type: ignore[attr-defined]


def test_image_and_csv_previews(page: Page, ui_server: str, ui_store: dict[str, Any]) -> None:
    page.goto(f"{ui_server}runs/{ui_store['ids']['long']}")
    page.click("a.artifact:text('images/pic.png')")
    page.wait_for_selector("#preview-image")
    page.wait_for_load_state("load")  # the image has arrived (or failed)
    width = page.eval_on_selector("#preview-image", "img => img.complete && img.naturalWidth")
    assert width == 8
    page.go_back()
    page.click("a.artifact:text('tables/scores.csv')")
    cells = page.eval_on_selector_all("#preview-csv td", "ts => ts.map(t => t.textContent)")
    assert cells == ["alpha", "1", "beta", "2"]
    assert page.errors == []  # type: ignore[attr-defined]


def test_traversal_gets_404_in_the_browser(
    page: Page, ui_server: str, ui_store: dict[str, Any]
) -> None:
    rid = ui_store["ids"]["long"]
    for path in ("%2e%2e/%2e%2e/%2e%2e/etc/passwd", "..%2f..%2f..%2fetc%2fpasswd"):
        resp = page.goto(f"{ui_server}raw/{rid}/{path}")
        assert resp is not None and resp.status == 404
        assert "root:" not in page.content()


def test_script_values_are_shown_not_run(
    page: Page, ui_server: str, ui_store: dict[str, Any]
) -> None:
    page.goto(f"{ui_server}?exp={ui_store['churn']}&cols=name,params.note")
    assert "<script>window.__pwned = 1</script>" in column_texts(page, "params.note")
    assert page.evaluate("window.__pwned") is None
    page.goto(f"{ui_server}runs/{ui_store['ids']['run0']}")
    assert page.evaluate("window.__pwned") is None
    # user HTML is shown in a sandboxed frame whose scripts do not run
    page.goto(f"{ui_server}runs/{ui_store['ids']['long']}/artifacts/report.html")
    frame = page.frame_locator("#preview-frame")
    assert frame.locator("#p").text_content() == "framed"
    assert page.evaluate("window.__framed_pwned") is None


def test_a_live_run_updates_in_place(page: Page, ui_server: str, ui_store: dict[str, Any]) -> None:
    client = TrackingClient(str(ui_store["path"]))
    run = client.create_run(ui_store["other"], run_name="live-browser")
    rid = run.info.run_id
    try:
        page.goto(f"{ui_server}?exp={ui_store['other']}&cols=name,status,metrics.fresh")
        cell = page.locator(f'tr[data-run="{rid}"] td[data-spec="metrics.fresh"]')
        assert cell.text_content().strip() == "—"
        page.evaluate("window.__same_page = true")
        client.log_metric(rid, "fresh", 42.5, step=0)
        client.flush(rid)
        deadline = time.monotonic() + 30
        while cell.text_content().strip() != "42.5":
            assert time.monotonic() < deadline, "the new metric did not appear within 30 s"
            page.wait_for_timeout(100)
        assert page.evaluate("window.__same_page") is True  # no reload happened
    finally:
        client.set_terminated(rid)
    status = page.locator(f'tr[data-run="{rid}"] td[data-spec="status"] .badge')
    status.filter(has_text="FINISHED").wait_for(timeout=WAIT_MS)
    assert page.errors == []  # type: ignore[attr-defined]
