"""The models pages of the web UI, on a real registry made by real processes."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.registry.conftest import log_model, py
from vtrack.client import TrackingClient
from vtrack.ui.app import create_app


def test_models_pages_show_versions_aliases_and_the_history_timeline(make_repo) -> None:
    repo = make_repo()
    run_id, _ = log_model(repo, 0.91, "churn")
    log_model(repo, 0.95, "churn")
    res = py(
        repo,
        """\
import vtrack
vtrack.set_registered_model_alias("churn", "champion", 1)
vtrack.set_registered_model_alias("churn", "champion", 2)
""",
    )
    assert res.exit_code == 0, res.stderr
    with TestClient(create_app(TrackingClient(str(repo)), host="testserver")) as http:
        listing = http.get("/models")
        assert listing.status_code == 200
        assert 'href="/models/churn"' in listing.text and "@champion=v2" in listing.text
        page = http.get("/models/churn")
        assert page.status_code == 200
        text = page.text
        assert 'data-version="2"' in text and 'data-version="1"' in text
        assert f'href="/runs/{run_id}"' in text and "auc=0.91" in text
        # the timeline is newest first: the move from v1 to v2 before the first set
        assert text.index("v1 → v2") < text.index("nothing → v1")
        assert http.get("/models/nope").status_code == 404
