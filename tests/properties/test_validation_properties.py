"""Property tests: key rules, param normalization, and that invalid calls leave no trace."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vtrack
from vtrack import validation as v
from vtrack.errors import ValidationError

KEY_OK = re.compile(r"^[A-Za-z0-9_\-./ ]{1,250}$")


def _is_valid(key: str) -> bool:
    if not KEY_OK.match(key) or ".." in key or key.startswith("/") or key.endswith("/"):
        return False
    return all(p not in ("", ".") and p.strip() for p in key.split("/"))


@given(st.text(alphabet=string.ascii_letters + string.digits + "_-./ \t:@é\x00", max_size=260))
def test_validate_key_accepts_exactly_the_documented_language(key: str) -> None:
    if _is_valid(key):
        assert v.validate_key(key) == key
    else:
        with pytest.raises(ValidationError):
            v.validate_key(key)


@given(
    st.one_of(
        st.integers(),
        st.floats(allow_nan=False),
        st.booleans(),
        st.none(),
        # NUL and lone surrogates are refused (their own properties), not round-tripped
        st.text(
            alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
            max_size=50,
        ),
    )
)
def test_param_scalars_keep_their_type(value: object) -> None:
    out = v.normalize_param_value("k", value)
    assert type(out) is type(value)
    assert v.params_equal(out, value)


@given(st.text(max_size=20), st.text(max_size=20))
def test_param_and_tag_values_with_nul_are_refused(before: str, after: str) -> None:
    with pytest.raises(ValidationError, match="NUL"):
        v.normalize_param_value("k", before + "\x00" + after)
    with pytest.raises(ValidationError, match="NUL"):
        v.validate_tag("k", before + "\x00" + after)


@given(
    st.dictionaries(
        st.sampled_from("abc"),
        st.one_of(st.integers(), st.dictionaries(st.sampled_from("xy"), st.integers(), max_size=2)),
        max_size=3,
    )
)
def test_flatten_params_joins_nested_keys_with_dots(d: dict) -> None:
    flat = v.flatten_params(d)
    for k, val in d.items():
        if isinstance(val, dict):
            for k2, val2 in val.items():
                assert flat[f"{k}.{k2}"] == val2
        else:
            assert flat[k] == val


bad_keys = st.text(min_size=1, max_size=20).filter(lambda k: not _is_valid(k))
bad_values = st.one_of(st.text(max_size=5), st.just(None), st.complex_numbers(allow_nan=False))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(key=bad_keys, value=bad_values)
def test_invalid_calls_leave_no_trace_in_the_run(repo: Path, key: str, value: object) -> None:
    if vtrack.active_run() is None:
        vtrack.start_run()
    rid = vtrack.active_run().info.run_id
    before = vtrack.get_run(rid).data
    with pytest.raises(ValidationError):
        vtrack.log_metric(key, 1.0)
    with pytest.raises(ValidationError):
        vtrack.log_metric("good", value)
    with pytest.raises(ValidationError):
        vtrack.log_params({"fine": 1, key: 2})
    with pytest.raises(ValidationError):
        vtrack.set_tags({"fine": "x", key: "y"})
    after = vtrack.get_run(rid).data
    assert after == before
