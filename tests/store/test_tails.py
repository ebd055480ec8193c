"""Superseded history tails as git deltas: the delta codec against dulwich's and git's."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vtrack.store.tails import Bases, prefix_delta


@given(st.binary(min_size=1, max_size=3000), st.data())
def test_prefix_delta_rebuilds_every_prefix(base: bytes, data: st.DataObject) -> None:
    from dulwich.pack import apply_delta

    size = data.draw(st.integers(min_value=1, max_value=len(base)))
    assert b"".join(apply_delta(base, prefix_delta(len(base), size))) == base[:size]


@pytest.mark.parametrize("size", [0xFFFFFF, 0xFFFFFF + 1, 0x10000, 2 * 0xFFFFFF + 5])
def test_prefix_delta_splits_copies_past_one_instruction(size: int) -> None:
    from dulwich.pack import apply_delta

    base = random.Random(size).randbytes(size + 3)
    assert b"".join(apply_delta(base, prefix_delta(len(base), size))) == base[:size]


def test_bases_find_only_proper_prefixes_of_whole_lines() -> None:
    chunk = b"0\t1\t0.5\n1\t2\t0.25\n2\t3\t0.125\n"
    bases = Bases({"c" * 40: chunk, "d" * 40: b"0\t1\t0.5\n9\t9\t9\n"})
    assert bases.base_of(b"0\t1\t0.5\n1\t2\t0.25\n") == ("c" * 40, len(chunk))
    assert bases.base_of(chunk) is None  # the chunk itself
    assert bases.base_of(b"0\t1\t0.5\n1\t2\t0.2") is None  # not whole lines
    assert bases.base_of(b"7\t1\t0.5\n") is None
    assert Bases({}).base_of(b"0\t1\t0.5\n") is None
