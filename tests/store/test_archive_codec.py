"""The archive batch table's codec (``vtrack.store.archive_table``): what it writes it reads
back, whatever a run's name holds, and a damaged line is named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vtrack.errors import StoreError
from vtrack.store.archive_read import merge_tables
from vtrack.store.archive_table import HEADER, ArchivedRun, BatchTable, decode_runs, encode_runs

_HEX = "0123456789abcdef"
runs = st.builds(
    ArchivedRun,
    st.text(_HEX, min_size=32, max_size=32),
    st.text(_HEX, min_size=40, max_size=40),
    st.sampled_from(["", "e" * 40]),
    st.text(max_size=4).filter(lambda t: not set(t) & set("\t\r\n")),
    st.sampled_from(["FINISHED", "FAILED", ""]),
    st.integers(0, 2**40),
    st.text(max_size=20),  # any name: tabs and newlines become spaces, the rest stays
)


@given(st.lists(runs, max_size=8, unique_by=lambda r: r.run_id))
def test_runs_read_back_as_written(batch: list[ArchivedRun]) -> None:
    clean = [r._replace(name=r.name.replace("\t", " ").replace("\r", " ").replace("\n", " "))
             for r in batch]  # fmt: skip
    assert decode_runs(encode_runs(batch), "b") == sorted(clean, key=lambda r: r.run_id)


def test_a_name_with_a_unicode_line_separator_does_not_damage_its_batch() -> None:
    """Before: lines were split by ``str.splitlines``, which also splits at U+2028 and
    U+0085, so a run named with one made its whole batch unreadable."""
    run = ArchivedRun("a" * 32, "b" * 40, "", "0", "FINISHED", 7, "loss\u2028curve\x85x")
    assert decode_runs(encode_runs([run]), "b") == [run]


def test_a_damaged_line_is_named() -> None:
    good = encode_runs([ArchivedRun("a" * 32, "b" * 40), ArchivedRun("c" * 32, "d" * 40)])
    with pytest.raises(StoreError, match="line 3 is damaged"):
        decode_runs(good.replace(b"c" * 32, b"x" * 32), "b")
    with pytest.raises(StoreError, match="header"):
        decode_runs(good[len(HEADER) :], "b")


def test_the_first_batch_by_id_wins_and_tombstones_and_superseded_batches_drop() -> None:
    a, b = ArchivedRun("a" * 32, "1" * 40), ArchivedRun("b" * 32, "2" * 40)
    tables = {
        "2-x": BatchTable([a._replace(commit="3" * 40), b]),
        "1-x": BatchTable([a], tombstones={(b.run_id, "9" * 40)}),
        "0-x": BatchTable([b._replace(commit="4" * 40)]),
        "3-x": BatchTable([ArchivedRun("c" * 32, "5" * 40)], supersedes={"0-x"}),
    }
    assert merge_tables(tables) == {a.run_id: (a.commit, "1-x"), b.run_id: (b.commit, "2-x"),
                                    "c" * 32: ("5" * 40, "3-x")}  # fmt: skip
    tables["1-x"].tombstones.add((a.run_id, a.commit))
    assert merge_tables(tables)[a.run_id] == ("3" * 40, "2-x")
