"""Run specs: ids, prefixes, names, @ / @~N / exp@~N, runs:/ URIs, and their edge cases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from vtrack import TrackingClient
from vtrack.errors import AmbiguousRunSpecError, RunNotFoundError, ValidationError
from vtrack.resolve import current_experiment_id, parse_runs_uri, resolve_run_id


@pytest.fixture
def fixed_ids(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Queue run ids for the next create_run calls (lets tests build prefix collisions)."""
    queue: list[str] = []
    real = uuid.uuid4

    def fake() -> uuid.UUID:
        return uuid.UUID(hex=queue.pop(0)) if queue else real()

    monkeypatch.setattr(uuid, "uuid4", fake)
    yield queue


def _run(c: TrackingClient, name: str, start: int, exp: str | None = None) -> str:
    rid = c.create_run(experiment_id=exp, run_name=name, start_time=start).info.run_id
    c.set_terminated(rid)
    return rid


def test_full_id_prefix_and_name(repo: Path) -> None:
    c = TrackingClient()
    a = _run(c, "bright-fox", 1000)
    b = _run(c, "calm-owl", 2000)
    assert resolve_run_id(c.repo, a) == a
    assert resolve_run_id(c.repo, a.upper()) == a
    assert resolve_run_id(c.repo, f"  {b}  ") == b
    assert resolve_run_id(c.repo, b[:8]) == b
    assert resolve_run_id(c.repo, b[:8].upper()) == b
    assert resolve_run_id(c.repo, "bright-fox") == a


def test_ambiguous_prefix_lists_every_candidate(repo: Path, fixed_ids: list[str]) -> None:
    c = TrackingClient()
    fixed_ids += ["abcd1" + "0" * 27, "abcd2" + "0" * 27, "abce" + "0" * 28]
    one, two = _run(c, "one", 1000), _run(c, "two", 2000)
    other = _run(c, "three", 3000)
    with pytest.raises(AmbiguousRunSpecError) as err:
        resolve_run_id(c.repo, "abcd")
    assert err.value.candidates == [one, two]
    assert "abcd10000000  one" in err.value.message and "two" in err.value.message
    assert resolve_run_id(c.repo, "abcd2") == two
    assert resolve_run_id(c.repo, "abce") == other


def test_a_name_equal_to_a_prefix_wins_over_the_prefix(repo: Path, fixed_ids: list[str]) -> None:
    c = TrackingClient()
    fixed_ids += ["beef" + "1" * 28]
    prefixed = _run(c, "whatever", 1000)
    named = _run(c, "beef", 2000)
    assert resolve_run_id(c.repo, "beef") == named
    assert (
        resolve_run_id(c.repo, "beef1") == prefixed
    )  # a longer prefix still reaches the other run
    assert resolve_run_id(c.repo, prefixed) == prefixed


def test_ambiguous_name_and_experiment_scope(repo: Path) -> None:
    c = TrackingClient()
    exp = c.create_experiment("other")
    a = _run(c, "twin", 1000)
    b = _run(c, "twin", 2000, exp=exp)
    with pytest.raises(AmbiguousRunSpecError) as err:
        resolve_run_id(c.repo, "twin")
    assert err.value.candidates == [b, a]  # newest first
    assert err.value.fields["names"] == ["twin", "twin"]
    assert resolve_run_id(c.repo, "twin", experiment_id=exp) == b
    assert resolve_run_id(c.repo, "twin", experiment_id="0") == a


def test_at_forms_count_back_from_the_newest(repo: Path) -> None:
    c = TrackingClient()
    exp = c.create_experiment("other")
    old = _run(c, "old", 1000)
    mid = _run(c, "mid", 2000)
    newest_elsewhere = _run(c, "new", 3000, exp=exp)
    assert resolve_run_id(c.repo, "@") == newest_elsewhere  # no experiment selected: all of them
    assert resolve_run_id(c.repo, "@~1") == mid
    assert resolve_run_id(c.repo, "@~") == mid
    assert resolve_run_id(c.repo, "@~0") == newest_elsewhere
    assert resolve_run_id(c.repo, "@~2") == old
    assert resolve_run_id(c.repo, "Default@") == mid
    assert resolve_run_id(c.repo, "Default@~1") == old
    assert resolve_run_id(c.repo, "0@~1") == old  # an experiment id works too
    assert resolve_run_id(c.repo, "other@") == newest_elsewhere
    assert resolve_run_id(c.repo, "@", experiment_id="0") == mid
    assert resolve_run_id(c.repo, "@~1", experiment_id="0") == old


def test_at_past_the_end_says_how_many_runs_there_are(repo: Path) -> None:
    c = TrackingClient()
    _run(c, "a", 1000)
    _run(c, "b", 2000)
    with pytest.raises(RunNotFoundError, match=r"has 2 top-level runs \(@ to @~1\)"):
        resolve_run_id(c.repo, "@~2")
    c.create_experiment("empty")
    with pytest.raises(RunNotFoundError, match="'empty' has no runs"):
        resolve_run_id(c.repo, "empty@")
    with pytest.raises(RunNotFoundError, match="no experiment named 'nope'"):
        resolve_run_id(c.repo, "nope@~1")


def test_at_follows_the_environment_experiment(repo: Path, monkeypatch) -> None:
    c = TrackingClient()
    exp = c.create_experiment("sweep")
    in_sweep = _run(c, "s", 1000, exp=exp)
    _run(c, "d", 2000)
    monkeypatch.setenv("VTRACK_EXPERIMENT_NAME", "sweep")
    assert resolve_run_id(c.repo, "@") == in_sweep
    assert current_experiment_id(c.repo) == exp
    monkeypatch.delenv("VTRACK_EXPERIMENT_NAME")
    assert current_experiment_id(c.repo) == "0"


def test_same_start_time_breaks_ties_by_run_id(repo: Path, fixed_ids: list[str]) -> None:
    c = TrackingClient()
    fixed_ids += ["b" * 32, "a" * 32]
    b = _run(c, "b", 1000)
    a = _run(c, "a", 1000)
    assert [resolve_run_id(c.repo, "@"), resolve_run_id(c.repo, "@~1")] == [a, b]


def test_deleted_runs_only_when_asked(repo: Path) -> None:
    c = TrackingClient()
    keep = _run(c, "keep", 1000)
    gone = _run(c, "gone", 2000)
    c.delete_run(gone)
    assert resolve_run_id(c.repo, "@") == keep
    assert resolve_run_id(c.repo, "@", include_deleted=True) == gone
    for spec in ("gone", gone[:6]):
        with pytest.raises(RunNotFoundError, match="deleted") as err:
            resolve_run_id(c.repo, spec)
        assert "vtrack restore" in (err.value.hint or "")
        assert resolve_run_id(c.repo, spec, include_deleted=True) == gone
    assert resolve_run_id(c.repo, gone) == gone  # a full id always names its run


def test_bad_syntax_and_unknown_specs(repo: Path) -> None:
    c = TrackingClient()
    rid = _run(c, "a", 1000)
    for bad in ("", "   ", "@~x", "@~-1", "@@", "a@b", "x@~1y"):
        with pytest.raises(ValidationError):
            resolve_run_id(c.repo, bad)
    with pytest.raises(ValidationError):
        resolve_run_id(c.repo, None)  # type: ignore[arg-type]
    with pytest.raises(RunNotFoundError, match="at least 4") as err:
        resolve_run_id(c.repo, rid[:3])
    assert err.value.fields["spec"] == rid[:3]
    with pytest.raises(RunNotFoundError, match="no run matches 'no-such-run'"):
        resolve_run_id(c.repo, "no-such-run")
    with pytest.raises(RunNotFoundError):
        resolve_run_id(c.repo, "f" * 32 if not rid.startswith("f") else "0" * 32)


def test_names_with_at_signs_still_resolve(repo: Path) -> None:
    c = TrackingClient()
    c.create_experiment("model")
    rid = _run(c, "model@v2", 1000)
    assert resolve_run_id(c.repo, "model@v2") == rid
    with pytest.raises(RunNotFoundError, match="'model' has no runs"):
        resolve_run_id(c.repo, "model@")


def test_runs_uris(repo: Path) -> None:
    c = TrackingClient()
    rid = _run(c, "fox", 1000)
    assert parse_runs_uri(f"runs:/{rid[:6]}/model/weights.pt", c.repo) == (rid, "model/weights.pt")
    assert parse_runs_uri("runs:/fox/model/", c.repo) == (rid, "model")
    assert parse_runs_uri("runs:/@", c.repo) == (rid, "")
    assert parse_runs_uri("runs:/fox/m") == ("fox", "m")  # no client: the spec as written
    assert resolve_run_id(c.repo, "runs:/fox/anything") == rid
    for bad in ("runs:/", "runs://", "file:///x", "runs:fox/m"):
        with pytest.raises(ValidationError):
            parse_runs_uri(bad, c.repo)


def test_resolution_uses_the_index_not_a_ref_scan(repo: Path, monkeypatch) -> None:
    c = TrackingClient()
    rid = _run(c, "fox", 1000)
    c.run_index()

    def fail(*_a: object, **_k: object) -> None:
        raise AssertionError("resolver listed every ref")

    monkeypatch.setattr(type(c.store), "list_run_tips", fail)
    monkeypatch.setattr(type(c.store), "list_trash_tips", fail)
    assert resolve_run_id(c.repo, rid[:5]) == rid and resolve_run_id(c.repo, "fox") == rid
