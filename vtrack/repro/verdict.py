"""The verdict of one rerun run against its original: params, metrics and artifacts compared.

A run **reproduced** when every param is equal in value and type, every compared metric is
in both runs within its tolerance (NaN equals NaN, infinities equal themselves) and every
artifact has the same digest; else it **diverged**, with the differing entries listed.

Metrics that cannot reproduce by nature — sampled system metrics and durations, see
:data:`DEFAULT_IGNORED` — are left out by default and listed as ignored, as are keys that
match an ``--ignore`` glob (params, metrics and artifact paths alike).

Tolerances (:class:`Tolerances`) are per metric: ``1e-3`` is relative
(``|new - old| <= 1e-3 * max(1, |old|)``, the default rule), ``abs:1e-3`` absolute
(``|new - old| <= 1e-3``), and ``loss=1e-3`` / ``loss=abs:1e-3`` set one metric's (a glob).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from vtrack.errors import ValidationError

if TYPE_CHECKING:
    from vtrack.entities import Run

#: Default tolerance: |new - old| <= tolerance * max(1, |old|).
DEFAULT_TOLERANCE = 1e-6
REPRODUCED, DIVERGED, FAILED_TO_RUN = "reproduced", "diverged", "failed to run"
#: Metric keys that measure the machine or the clock, not the model: never compared by
#: default (matched case-insensitively), always listed as ignored.
DEFAULT_IGNORED = (
    "system/*",
    "*duration*",
    "*elapsed*",
    "*runtime*",
    "*_time",
    "*_time_*",
    "time_*",
    "*_seconds",
    "*_secs",
    "*_sec",
    "*_ms",
    "*per_sec*",
    "*per_second*",
    "*throughput*",
)


@dataclass(frozen=True)
class Tolerance:
    """One metric's tolerance: ``value`` relative to ``max(1, |old|)``, or absolute."""

    value: float
    absolute: bool = False

    def allows(self, old: float, new: float) -> bool:
        """True when ``new`` is within this tolerance of ``old``."""
        if math.isnan(old) or math.isnan(new):
            return math.isnan(old) and math.isnan(new)
        if math.isinf(old) or math.isinf(new):
            return old == new
        scale = 1.0 if self.absolute else max(1.0, abs(old))
        return abs(new - old) <= self.value * scale

    def __str__(self) -> str:
        return f"abs:{self.value:g}" if self.absolute else f"{self.value:g}"


@dataclass(frozen=True)
class Tolerances:
    """A default tolerance and per-metric ones (``key`` globs, the first match wins)."""

    default: Tolerance = Tolerance(DEFAULT_TOLERANCE)
    per_key: tuple[tuple[str, Tolerance], ...] = ()

    def of(self, key: str) -> Tolerance:
        """The tolerance metric ``key`` is held to."""
        for pattern, tol in self.per_key:
            if fnmatchcase(key, pattern):
                return tol
        return self.default

    @classmethod
    def parse(cls, specs: Iterable[str | float]) -> Tolerances:
        """Tolerances from ``--tolerance`` values (``1e-3``, ``abs:1e-3``, ``loss=1e-3``)."""
        default = Tolerance(DEFAULT_TOLERANCE)
        per_key: list[tuple[str, Tolerance]] = []
        for spec in specs:
            if isinstance(spec, (int, float)):
                default = _tolerance(str(spec), str(spec))
                continue
            key, sep, value = str(spec).rpartition("=")
            if sep and not key:
                raise ValidationError(f"bad tolerance {spec!r}: no metric before '='")
            if key:
                per_key.append((key, _tolerance(value, spec)))
            else:
                default = _tolerance(value, spec)
        return cls(default, tuple(per_key))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the default and the per-metric tolerances as written."""
        return {"default": str(self.default), "metrics": {k: str(t) for k, t in self.per_key}}


def _tolerance(text: str, spec: str | float) -> Tolerance:
    absolute = text.startswith("abs:")
    try:
        value = float(text[4:] if absolute else text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValidationError(
            f"bad tolerance {spec!r}: expected a number >= 0",
            hint="write 1e-3 (relative), abs:1e-3 (absolute), or KEY=1e-3 for one metric",
        )
    return Tolerance(value, absolute)


@dataclass(frozen=True)
class MetricCheck:
    """One metric in the original and the rerun (None where absent)."""

    key: str
    original: float | None
    rerun: float | None
    delta: float | None
    within_tolerance: bool
    tolerance: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "key": self.key,
            "original": self.original,
            "rerun": self.rerun,
            "delta": self.delta,
            "within_tolerance": self.within_tolerance,
            "tolerance": self.tolerance,
        }


@dataclass(frozen=True)
class ParamMismatch:
    """A param whose value (or type) differs between the original and the rerun."""

    key: str
    original: Any
    rerun: Any

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"key": self.key, "original": self.original, "rerun": self.rerun}


@dataclass(frozen=True)
class ArtifactMismatch:
    """An artifact whose digest differs, or that only one of the two runs logged."""

    path: str
    original: str | None
    rerun: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (digests; None where absent)."""
        return {"path": self.path, "original": self.original, "rerun": self.rerun}


@dataclass(frozen=True)
class Verdict:
    """One run compared with its original: every metric, what differs, what was ignored."""

    verdict: str
    metrics: tuple[MetricCheck, ...] = ()
    params: tuple[ParamMismatch, ...] = ()
    artifacts: tuple[ArtifactMismatch, ...] = ()
    ignored: tuple[str, ...] = field(default_factory=tuple)

    @property
    def reproduced(self) -> bool:
        """True when the verdict is ``reproduced``."""
        return self.verdict == REPRODUCED

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "verdict": self.verdict,
            "metrics": [m.to_dict() for m in self.metrics],
            "params": [p.to_dict() for p in self.params],
            "artifacts": [a.to_dict() for a in self.artifacts],
            "ignored": list(self.ignored),
        }


def is_ignored(key: str, patterns: Iterable[str], defaults: bool = True) -> bool:
    """True when ``key`` matches an ``--ignore`` glob, or a :data:`DEFAULT_IGNORED` one."""
    if any(fnmatchcase(key, p) for p in patterns):
        return True
    low = key.lower()
    return defaults and any(fnmatchcase(low, p) for p in DEFAULT_IGNORED)


def compare_rerun(
    original: Run,
    new: Run,
    tolerance: float | Tolerances = DEFAULT_TOLERANCE,
    ignore: Iterable[str] = (),
) -> Verdict:
    """Params, metrics and artifacts of a rerun run against its original (module docstring)."""
    from vtrack.diff import same_value

    tols = tolerance if isinstance(tolerance, Tolerances) else Tolerances(Tolerance(tolerance))
    patterns = tuple(ignore)
    ignored: list[str] = []
    metrics = []
    a, b = original.data.metrics, new.data.metrics
    for key in sorted(set(a) | set(b)):
        if is_ignored(key, patterns):
            ignored.append(f"metrics.{key}")
            continue
        old, nv = a.get(key), b.get(key)
        tol = tols.of(key)
        within = old is not None and nv is not None and tol.allows(old, nv)
        delta = (nv - old) if old is not None and nv is not None else None
        metrics.append(MetricCheck(key, old, nv, delta, within, str(tol)))
    params = []
    pa, pb = original.data.params, new.data.params
    for key in sorted(set(pa) | set(pb)):
        if is_ignored(key, patterns, defaults=False):
            ignored.append(f"params.{key}")
            continue
        if key in pa and key in pb and same_value(pa[key], pb[key]):
            continue
        params.append(ParamMismatch(key, pa.get(key), pb.get(key)))
    arts = _artifact_mismatches(original.inputs.artifacts, new.inputs.artifacts, patterns, ignored)
    ok = all(m.within_tolerance for m in metrics) and not params and not arts
    return Verdict(
        REPRODUCED if ok else DIVERGED, tuple(metrics), tuple(params), arts, tuple(ignored)
    )


def _artifact_mismatches(
    a: Mapping[str, Mapping[str, Any]],
    b: Mapping[str, Mapping[str, Any]],
    patterns: tuple[str, ...],
    ignored: list[str],
) -> tuple[ArtifactMismatch, ...]:
    out = []
    for path in sorted(set(a) | set(b)):
        if is_ignored(path, patterns, defaults=False):
            ignored.append(f"artifacts.{path}")
            continue
        da, db = (a.get(path) or {}).get("digest"), (b.get(path) or {}).get("digest")
        if da != db or path not in a or path not in b:
            out.append(ArtifactMismatch(path, da, db))
    return tuple(out)
