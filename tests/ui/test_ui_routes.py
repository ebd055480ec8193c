"""The UI's HTTP routes through Starlette's test client, on a real store made by the public API."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from vtrack.client import TrackingClient
from vtrack.errors import QuerySyntaxError
from vtrack.ui.app import create_app
from vtrack.ui.previews import PREVIEW_BYTES


@pytest.fixture(scope="module")
def client(ui_store: dict[str, Any]) -> TrackingClient:
    return TrackingClient(str(ui_store["path"]))


@pytest.fixture(scope="module")
def http(client: TrackingClient) -> Iterator[TestClient]:
    with TestClient(create_app(client, host="testserver")) as tc:
        yield tc


def churn(ui_store: dict[str, Any], **params: str) -> dict[str, str]:
    return {"exp": ui_store["churn"], **params}


# -- the runs table ------------------------------------------------------------------------


def test_pages_follow_the_index_order_and_count_every_match(http, client, ui_store) -> None:
    expected = [r.info.run_id for r in client.search_runs([ui_store["churn"]], max_results=None)]
    got = []
    for page in (1, 2, 3, 4):
        body = http.get("/api/runs", params=churn(ui_store, per="3", page=str(page))).json()
        assert body["total"] == len(expected) == 10
        assert body["pages"] == 4
        assert len(body["rows"]) <= 3
        got += [r["run_id"] for r in body["rows"]]
    assert got == expected


@pytest.mark.parametrize("sort", ["metrics.loss", "-metrics.loss", "params.lr", "-name", "start"])
def test_sorting_is_the_index_sort_of_ls(http, client, ui_store, sort: str) -> None:
    order = {"name": "attributes.run_name", "start": "attributes.start_time"}
    key = sort.lstrip("-")
    order_by = f"{order.get(key, key)} {'DESC' if sort.startswith('-') else 'ASC'}"
    expected = [
        r.info.run_id
        for r in client.search_runs([ui_store["churn"]], order_by=[order_by], max_results=5)
    ]
    body = http.get("/api/runs", params=churn(ui_store, sort=sort, per="5")).json()
    assert [r["run_id"] for r in body["rows"]] == expected


def test_the_filter_grammar_is_the_one_of_ls(http, client, ui_store) -> None:
    q = "params.model = 'xgb' and metrics.acc > 0.55"
    expected = {r.info.run_id for r in client.search_runs([ui_store["churn"]], q)}
    body = http.get("/api/runs", params=churn(ui_store, q=q)).json()
    assert body["filter_error"] is None
    assert {r["run_id"] for r in body["rows"]} == expected
    assert body["total"] == len(expected) == 2


def test_a_bad_filter_is_shown_at_its_column_never_a_500(http, client, ui_store) -> None:
    bad = "params.model = 'xgb' and metrics.acc >> 1"
    with pytest.raises(QuerySyntaxError) as err:
        client.search_runs(filter_string=bad)
    body = http.get("/api/runs", params=churn(ui_store, q=bad)).json()
    assert body["filter_column"] == err.value.column > 0
    assert "column" in body["filter_error"]
    assert body["total"] == 10  # the table still shows the unfiltered runs
    page = http.get("/", params=churn(ui_store, q=bad))
    assert page.status_code == 200
    caret = re.search(r'<pre class="caret">(.*?)\n( *)\^</pre>', page.text, re.S)
    assert caret is not None and len(caret.group(2)) == err.value.column - 1
    for nasty in ("params.`x", "(((", "metrics.acc IN (", "\x00", "tags.a LIKE"):
        assert http.get("/", params={"q": nasty}).status_code == 200


def test_metric_aggregates_are_computed_from_the_histories(http, client, ui_store) -> None:
    cols = "name,metrics.loss,metrics.loss:min,metrics.loss:max,metrics.loss:step=10"
    body = http.get("/api/runs", params=churn(ui_store, cols=cols, q="params.depth = 2")).json()
    assert [c["header"] for c in body["columns"]] == [
        "name", "loss", "loss (min)", "loss (max)", "loss @ step 10"]  # fmt: skip
    (row,) = body["rows"]
    hist = client.get_metric_history(row["run_id"], "loss")
    values = [m.value for m in hist]
    at10 = [m.value for m in hist if m.step == 10][0]
    assert row["values"] == ["run2", values[-1], min(values), max(values), at10]
    assert min(values) != values[-1]  # the point of the aggregate
    assert [c["sortable"] for c in body["columns"]] == [True, True, True, True, True]


def test_bad_columns_and_sorts_are_reported_not_raised(http, ui_store) -> None:
    body = http.get("/api/runs", params=churn(ui_store, cols="name,nope,metrics.loss:avg",
                                              sort="duration")).json()  # fmt: skip
    assert any("unknown column 'nope'" in p for p in body["problems"])
    assert any("aggregate must be last, min, max or step=N" in p for p in body["problems"])
    assert any("cannot be sorted by" in p for p in body["problems"])
    assert http.get("/", params={"page": "x", "per": "-3"}).status_code == 200


def test_the_view_is_in_the_url_and_survives_every_link(http, ui_store) -> None:
    params = churn(ui_store, q="params.lr > 0.005", sort="-metrics.acc",
                   cols="name,params.lr,metrics.acc:max", sel="a" * 32, per="2")  # fmt: skip
    page = http.get("/", params=params)
    hrefs = re.findall(r'href="(\?[^"]+)"', page.text)
    assert hrefs, "sort and pager links"
    for href in hrefs:
        for key in ("q=params.lr", "cols=name%2Cparams.lr%2Cmetrics.acc%3Amax", "sel=aaaa",
                    f"exp={ui_store['churn']}", "per=2"):  # fmt: skip
            assert key in href.replace("+", "%20").replace("&amp;", "&"), (key, href)


def test_csv_export_holds_the_whole_view_at_full_precision(http, client, ui_store) -> None:
    q = "params.model = 'lgbm'"
    resp = http.get(
        "/api/runs.csv",
        params=churn(ui_store, q=q, cols="name,metrics.acc,metrics.loss:min", per="1"),
    )
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0] == ["run_id", "name", "metrics.acc", "metrics.loss:min"]
    runs = client.search_runs([ui_store["churn"]], q)
    assert [r[0] for r in rows[1:]] == [r.info.run_id for r in runs]  # every page, not one
    assert [float(r[2]) for r in rows[1:]] == [r.data.metrics["acc"] for r in runs]
    assert http.get("/api/runs.csv", params={"q": "metrics.acc >"}).status_code == 400


def test_nested_runs_sit_under_their_parent(http, ui_store) -> None:
    page = http.get("/", params=churn(ui_store, q="attributes.run_name LIKE '%'"))
    ids = ui_store["ids"]
    order = re.findall(r'<tr data-run="([0-9a-f]{32})"[^>]*data-depth="(\d)"', page.text)
    at = [rid for rid, _ in order].index(ids["sweep"])
    assert order[at][1] == "0"
    assert {order[at + 1][0], order[at + 2][0]} == {ids["trial0"], ids["trial1"]}
    assert order[at + 1][1] == order[at + 2][1] == "1"
    assert 'class="twisty"' in page.text


def test_column_choices_list_the_keys_of_the_scope(http, ui_store) -> None:
    page = http.get("/", params=churn(ui_store))
    for value in ("params.lr", "params.depth", "metrics.loss", "tags.team"):
        assert f'value="{value}"' in page.text


# -- run page, artifacts, security --------------------------------------------------------------


def test_the_run_page_escapes_everything(http, ui_store) -> None:
    page = http.get(f"/runs/{ui_store['ids']['run1']}")
    assert page.status_code == 200
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page.text
    assert "<script>window.__pwned" not in page.text
    assert page.headers["x-content-type-options"] == "nosniff"
    csp = dict(d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";"))
    assert csp["script-src"] == "'self'"  # no inline code, no eval
    assert ">dirty<" in page.text and "main" in page.text  # source facts


def test_run_page_shows_inputs_with_their_audit_and_the_code_diff(http, ui_store) -> None:
    page = http.get(f"/runs/{ui_store['ids']['long']}")
    assert 'audit-unchanged">unchanged<' in page.text
    assert "train, edited again" in page.text  # the dirty edit, from the snapshot diff
    assert "tables/scores.csv" in page.text and "images/pic.png" in page.text


def test_previews_read_a_bounded_prefix(http, ui_store) -> None:
    rid = ui_store["ids"]["long"]
    page = http.get(f"/runs/{rid}/artifacts/big.txt")
    assert 'id="truncated"' in page.text
    assert page.text.count("x") < PREVIEW_BYTES + 5000 and "END" not in page.text
    full = http.get(f"/raw/{rid}/big.txt")
    assert full.content.endswith(b"END\n") and len(full.content) == 200_005
    table = http.get(f"/runs/{rid}/artifacts/tables/scores.csv").text
    assert "<td>alpha</td><td>1</td>" in table.replace("\n", "")
    model = http.get(f"/runs/{rid}/artifacts/model/model.yaml").text
    assert "sklearn" in model and 'id="signature"' in model


def test_artifacts_are_served_with_safe_types(http, ui_store) -> None:
    rid = ui_store["ids"]["long"]
    img = http.get(f"/raw/{rid}/images/pic.png")
    assert img.headers["content-type"] == "image/png" and img.content[:4] == b"\x89PNG"
    html = http.get(f"/raw/{rid}/report.html")
    assert html.headers["content-type"].startswith("text/plain")
    framed = http.get(f"/raw/{rid}/report.html", params={"frame": "1"})
    assert framed.headers["content-type"].startswith("text/html")
    assert framed.headers["content-security-policy"].startswith("sandbox;")
    assert "script-src" not in framed.headers["content-security-policy"]
    assert framed.headers["x-content-type-options"] == "nosniff"
    dl = http.get(f"/raw/{rid}/images/pic.png", params={"download": "1"})
    assert dl.headers["content-disposition"].startswith("attachment")


@pytest.mark.parametrize(
    "path",
    ["../../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "..%2f..%2fetc%2fpasswd",
     "%252e%252e%252fetc", "/etc/passwd", "images/../../x", "images%5c..%5c..%5cx",
     ".vtrack/run.yaml", "nope.txt"],
)  # fmt: skip
def test_traversal_attempts_get_404(http, ui_store, path: str) -> None:
    rid = ui_store["ids"]["long"]
    for route in (f"/raw/{rid}/", f"/runs/{rid}/artifacts/"):
        resp = http.get(route + path)
        assert resp.status_code == 404, (route, path, resp.status_code)
        assert b"root:" not in resp.content


def test_unknown_runs_are_404(http) -> None:
    assert http.get("/runs/" + "0" * 32).status_code == 404
    assert http.get("/runs/HEAD").status_code == 404
    assert http.get("/api/history/" + "0" * 32 + "/loss").status_code == 404


def test_the_host_header_must_name_the_bound_address(client) -> None:
    app = create_app(client, host="127.0.0.1", port=5123)
    with TestClient(app, base_url="http://127.0.0.1:5123") as tc:
        assert tc.get("/api/experiments").status_code == 200
        assert tc.get("/api/experiments", headers={"host": "localhost:5123"}).status_code == 200
        rebound = tc.get("/api/experiments", headers={"host": "evil.example:5123"})
        assert rebound.status_code == 400 and b"runs" not in rebound.content
    with TestClient(create_app(client, host="0.0.0.0", port=5123)) as tc:
        assert tc.get("/api/experiments", headers={"host": "any.example"}).status_code == 200


def test_the_server_is_read_only(http, ui_store) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert http.request(method, "/api/runs").status_code == 405
        assert http.request(method, f"/runs/{ui_store['ids']['run0']}").status_code == 405


# -- charts ---------------------------------------------------------------------------------


def test_long_histories_are_reduced_and_say_so(http, ui_store) -> None:
    rid = ui_store["ids"]["long"]
    body = http.get(f"/api/history/{rid}/loss", params={"budget": "500"}).json()
    assert body["reduced"] is True and body["total"] == body["in_range"] == 200_000
    assert len(body["x"]) <= 500 and body["method"] == "min/max per bucket"
    assert max(body["y"]) == pytest.approx(5.0 + __import__("math").sin(123_457 / 500))
    assert len(body["envelope"]["lo"]) == 250


def test_zooming_in_gets_the_exact_points(http, client, ui_store) -> None:
    rid = ui_store["ids"]["long"]
    body = http.get(f"/api/history/{rid}/loss",
                    params={"lo": "123000", "hi": "124000", "budget": "2000"}).json()  # fmt: skip
    assert body["reduced"] is False and body["envelope"] is None
    exact = [m for m in client.get_metric_history(rid, "loss") if 123_000 <= m.step <= 124_000]
    assert body["x"] == [m.step for m in exact] and body["y"] == [m.value for m in exact]
    assert http.get(f"/api/history/{rid}/loss", params={"x": "sideways"}).status_code == 400
    rel = http.get(f"/api/history/{rid}/loss", params={"x": "relative", "hi": "1"}).json()
    assert rel["x"][0] == 0.0 and rel["x"][-1] <= 1


# -- compare --------------------------------------------------------------------------------


def test_compare_marks_the_rows_that_differ(http, ui_store) -> None:
    ids = ui_store["ids"]
    page = http.get("/compare", params={"runs": f"{ids['run0']},{ids['run1']},{ids['run2']}"})
    assert page.status_code == 200
    found = re.findall(r'<tr class="(differs|same)" data-section="params" data-key="(\w+)"',
                       page.text)  # fmt: skip
    rows = {key: kind for kind, key in found}
    assert rows["lr"] == "differs" and rows["model"] == "same"
    assert http.get("/compare", params={"runs": ids["run0"]}).status_code == 400


def test_live_rows_return_fresh_values(http, client, ui_store) -> None:
    run = client.create_run(ui_store["other"], run_name="live-api")
    rid = run.info.run_id
    try:
        client.log_metric(rid, "seen", 1.5, step=0)
        client.flush(rid)
        body = http.get("/api/rows", params={"ids": rid, "cols": "status,metrics.seen"}).json()
        assert body["rows"][0]["text"] == ["RUNNING", "1.5"]
    finally:
        client.set_terminated(rid)
    body = http.get("/api/rows", params={"ids": rid, "cols": "status"}).json()
    assert body["rows"][0]["text"] == ["FINISHED"]


def test_compare_shows_the_code_diff_between_any_two(http, ui_store) -> None:
    ids = ui_store["ids"]
    runs = f"{ids['run3']},{ids['run4']},{ids['run5']}"
    same = http.get("/compare", params={"runs": runs}).text
    assert 'id="code-same"' in same  # run3 and run4 ran the same code
    other = http.get("/compare", params={"runs": runs, "a": ids["run4"], "b": ids["run5"]}).text
    assert "<code>train.py</code>" in other
    assert '<span class="pd">-print(&#39;train, edited&#39;)</span>' in other
    assert '<span class="pa">+print(&#39;train, edited again&#39;)</span>' in other


def test_run_page_lists_children_and_system_metrics(http, ui_store) -> None:
    ids = ui_store["ids"]
    parent = http.get(f"/runs/{ids['sweep']}").text
    assert f'href="/runs/{ids["trial0"]}"' in parent and f'href="/runs/{ids["trial1"]}"' in parent
    child = http.get(f"/runs/{ids['trial0']}").text
    assert f'href="/runs/{ids["sweep"]}"' in child
    long = http.get(f"/runs/{ids['long']}").text
    assert 'id="system-metrics"' in long and 'value="system/cpu_percent"' in long
    body = http.get(f"/api/history/{ids['long']}/system/cpu_percent").json()
    assert body["y"] == [10.0 + s for s in range(30)]
