"""Markdown descriptions and ``.md`` previews (rendered, never raw HTML), and the lineage page.

A small store made through the public API: a ``prepare`` run that reads ``raw.csv`` and
logs ``clean.csv``; a ``train`` run that reads ``clean.csv`` (and has a Markdown
description full of things that must not run) and logs ``notes.md``; a ``report`` run
that reads nothing.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from vtrack.client import TrackingClient
from vtrack.ui.app import create_app
from vtrack.ui.markdown import render, safe_url

NASTY = (
    "# Results\n\n**bold** and `code`, a [link](https://example.org) and a table:\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    "<script>window.__md_pwned = 1</script>\n\n"
    '<img src=x onerror="window.__md_pwned = 2">\n\n'
    "[click](javascript:window.__md_pwned=3) [also](JaVaScRiPt:alert(1)) "
    "[tab](java\tscript:alert(1)) [html](data:text/html,<script>alert(1)</script>)\n\n"
    "![svg](data:image/svg+xml,<svg onload=alert(1)>) ![far](http://elsewhere/x.png)\n"
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.conftest import git

    path = tmp_path_factory.mktemp("md") / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print('x')\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "init")
    (path / "raw.csv").write_text("x,y\n1,2\n3,4\n")
    (path / "clean.csv").write_text("x,y\n1,2\n")
    c = TrackingClient(str(path))
    exp = c.create_experiment("md")
    prep = c.create_run(exp, run_name="prepare", start_time=1_000).info.run_id
    c.log_input(prep, str(path / "raw.csv"), name="raw")
    c.log_artifact(prep, str(path / "clean.csv"))
    c.set_terminated(prep)
    train = c.create_run(exp, run_name="train", start_time=2_000, description=NASTY).info.run_id
    c.log_input(train, str(path / "clean.csv"), name="clean")
    c.log_text(train, NASTY, "notes.md")
    c.set_terminated(train)
    other = c.create_run(exp, run_name="report", start_time=3_000).info.run_id
    c.set_terminated(other)
    clean = str(c.get_run(train).inputs.datasets[0].digest)
    raw = str(c.get_run(prep).inputs.datasets[0].digest)
    return {"client": c, "path": path, "prep": prep, "train": train, "clean": clean, "raw": raw}


@pytest.fixture(scope="module")
def http(store: dict[str, Any]) -> Any:
    with TestClient(create_app(store["client"], host="testserver")) as tc:
        yield tc


def assert_neutral(html: str) -> None:
    """No tag, handler or URL of the nasty text made it through as markup."""
    assert "<script>window.__md_pwned" not in html
    assert "&lt;script&gt;window.__md_pwned = 1&lt;/script&gt;" in html
    assert not re.search(r"<img[^>]*onerror", html)
    assert not re.search(r'href="\s*(?i:java|vbscript|data:text)', html)
    assert not re.search(r'src="(?i:data:image/svg|http://elsewhere)', html)


def test_markdown_renders_and_neutralises_html_and_bad_urls() -> None:
    html = str(render(NASTY))
    assert "<h1>Results</h1>" in html and "<strong>bold</strong>" in html
    assert "<table>" in html and "<td>1</td>" in html
    assert '<a href="https://example.org" rel="nofollow noopener noreferrer">link</a>' in html
    assert_neutral(html)
    for url, ok in [("https://a.b/c", True), ("mailto:x@y", True), ("#top", True),
                    ("notes/a.md", True), ("javascript:x", False), (" JavaScript:x", False),
                    ("vbscript:x", False), ("file:///etc/passwd", False),
                    ("data:text/html,x", False), ("java\x00script:x", False)]:  # fmt: skip
        assert safe_url(url) is ok, url
    assert safe_url("data:image/png;base64,AA", image=True)
    assert not safe_url("data:image/svg+xml,<svg>", image=True)


def test_the_run_page_renders_its_description(http, store) -> None:
    page = http.get(f"/runs/{store['train']}")
    assert page.status_code == 200
    desc = page.text.split('id="description"', 1)[1].split("<th>Run commit</th>", 1)[0]
    assert "<h1>Results</h1>" in desc and "<table>" in desc
    assert_neutral(desc)


def test_a_markdown_artifact_previews_rendered(http, store) -> None:
    page = http.get(f"/runs/{store['train']}/artifacts/notes.md")
    assert page.status_code == 200
    body = page.text.split('id="preview-markdown"', 1)[1]
    assert "<strong>bold</strong>" in body
    assert_neutral(body)
    raw = http.get(f"/raw/{store['train']}/notes.md")
    assert raw.headers["content-type"].startswith("text/plain")  # the bytes stay text


def test_the_run_page_links_each_input_to_its_lineage(http, store) -> None:
    page = http.get(f"/runs/{store['train']}").text
    links = re.findall(r'<a class="lineage" href="([^"]+)"', page)
    assert links == [f"/lineage?digest={store['clean'].replace(':', '%3A')}"]


def test_the_lineage_page_shows_writers_and_readers(http, store) -> None:
    client = store["client"]
    resp = http.get("/lineage", params={"digest": store["clean"]})
    assert resp.status_code == 200
    html = resp.text
    writers = html.split('id="writers"', 1)[1].split("</table>", 1)[0]
    readers = html.split('id="readers"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'data-run="(\w+)"', writers) == [store["prep"]]
    assert re.findall(r'data-run="(\w+)"', readers) == [
        r["run_id"] for r in client.lineage(store["clean"])] == [store["train"]]  # fmt: skip
    # upstream: what the writer read links on to the lineage of raw.csv
    assert f"/lineage?digest={store['raw'].replace(':', '%3A')}" in writers
    # downstream: what the reader wrote links on too
    assert 'class="down"' in readers and "notes.md" in readers
    up = http.get("/lineage", params={"digest": store["raw"]}).text
    assert "no run logged an artifact with this content" in up
    assert store["prep"] in up.split('id="readers"', 1)[1]


def test_lineage_by_path_and_bad_targets(http, store) -> None:
    html = http.get("/lineage", params={"path": str(store["path"] / "clean.csv")}).text
    readers = html.split('id="readers"', 1)[1].split("</table>", 1)[0]
    assert store["train"] in readers and "unchanged" in readers
    assert store["prep"] in html.split('id="writers"', 1)[1].split("</table>", 1)[0]
    assert http.get("/lineage").status_code == 400
    assert http.get("/lineage", params={"digest": "xxh3-128:ab"}).status_code == 400
    none = http.get("/lineage", params={"digest": "xxh3-128:" + "0" * 32})
    assert none.status_code == 200 and "no run read this" in none.text


def test_in_the_browser_nothing_runs_and_lineage_is_a_click_away(store) -> None:
    from playwright.sync_api import sync_playwright

    from tests.ui.conftest import start_server, stop_server

    proc, url = start_server(store["path"])
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            try:
                page = b.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"{url}runs/{store['train']}")
                assert page.locator("#description h1").text_content() == "Results"
                assert page.locator("#description table td").first.text_content() == "1"
                for link in page.locator("#description a").all():
                    link.click(modifiers=["Control"])  # whatever is a link: none may run
                assert page.evaluate("window.__md_pwned") is None
                page.click("a.lineage")
                page.wait_for_url(re.compile(r"/lineage\?digest="))
                assert page.locator("#writers tr[data-run]").count() == 1
                page.click("#writers a.up")  # upstream: the lineage of raw.csv
                page.wait_for_url(
                    re.compile(r"/lineage\?digest=" + store["raw"].replace(":", "%3A"))
                )
                assert page.locator("#readers tr[data-run]").count() == 1
                page.goto(f"{url}runs/{store['train']}/artifacts/notes.md")
                assert page.locator("#preview-markdown strong").first.text_content() == "bold"
                assert page.evaluate("window.__md_pwned") is None
                assert errors == []
            finally:
                b.close()
    finally:
        stop_server(proc)
