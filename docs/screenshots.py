"""Regenerate the UI screenshots in docs/images/ (runs table, run page, compare view).

Builds the UI tests' store (tests/ui/conftest.py) in a temporary folder, serves it with
``vtrack ui`` and photographs three pages in headless chromium::

    PYTHONPATH=. python docs/screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ui.conftest import build_store, start_server, stop_server  # noqa: E402

OUT = ROOT / "docs" / "images"


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(Path(tmp) / "repo", 20_000)
        proc, url = start_server(store["path"])
        ids = store["ids"]
        try:
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
                page = b.new_page(viewport={"width": 1280, "height": 800})
                sel = ",".join(ids[k] for k in ("run0", "run1", "run3"))
                page.goto(f"{url}?exp={store['churn']}&sel={sel}"
                          "&cols=name,status,start,params.lr,params.model,metrics.acc,"
                          "metrics.loss,metrics.loss:min,metrics.loss:step=10")  # fmt: skip
                page.screenshot(path=str(OUT / "ui-runs.png"))
                page.goto(f"{url}runs/{ids['long']}")
                page.locator("#chart[data-draws]").wait_for()
                page.screenshot(path=str(OUT / "ui-run.png"), full_page=True)
                page.goto(f"{url}compare?runs={sel}&diff=1")
                page.locator("#cmp-chart[data-draws]").wait_for()
                page.screenshot(path=str(OUT / "ui-compare.png"), full_page=True)
                b.close()
        finally:
            stop_server(proc)


if __name__ == "__main__":
    main()
