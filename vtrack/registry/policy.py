"""Promotion policy: what must hold before an alias moves, the evidence, the post-promote hook.

The policy is ``.vtrack/policy.yaml`` in the working tree (committed with the code)::

    models:
      churn:              # a model name, or "*" for every model
        champion:         # an alias, or "*" for every alias
          metrics: "metrics.auc >= 0.9 and metrics.loss < 0.4"   # the search grammar
          provenance: clean     # vtrack audit of the run's inputs finds no drift
          reproduced: true      # a vtrack rerun of the run has the verdict "reproduced"

The most specific rule applies (model and alias named, then ``*`` for either). The
metrics filter is evaluated against the version's metrics and params as recorded at
registration and its tags. Each condition gives one check ``{"condition", "passed",
"detail"}``; the checks are the evidence recorded in the ``set_alias`` event (with
``forced`` when ``--force`` overrode failures). After the event is written, an
executable ``.vtrack/hooks/post-promote`` in the working tree gets the event as JSON on
stdin (its exit status is reported; the event stands either way).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from vtrack.entities import RERUN_OF_TAG, RERUN_VERDICT_TAG
from vtrack.errors import PromotionRefusedError, ValidationError
from vtrack.registry.entities import ModelVersion
from vtrack.registry.service import ModelRegistry

POLICY_FILE = ".vtrack/policy.yaml"
HOOK_FILE = ".vtrack/hooks/post-promote"
CONDITIONS = ("metrics", "provenance", "reproduced")
#: Seconds the post-promote hook may run.
HOOK_TIMEOUT = 60.0


def _root(registry: ModelRegistry) -> Path | None:
    wt = registry.store.location.worktree
    return None if wt is None else Path(wt)


def load_policy(registry: ModelRegistry) -> dict[str, Any]:
    """The parsed policy file (``{}`` when there is none); ValidationError when malformed."""
    root = _root(registry)
    path = None if root is None else root / POLICY_FILE
    if path is None or not path.is_file():
        return {}
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValidationError(f"cannot read {POLICY_FILE}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("models", {}), dict):
        raise ValidationError(f"{POLICY_FILE} must be a mapping with a 'models' mapping")
    return doc


def rule_for(policy: dict[str, Any], name: str, alias: str) -> dict[str, Any]:
    """The conditions for moving ``alias`` of ``name`` (``{}``: none)."""
    models = policy.get("models") or {}
    for m in (name, "*"):
        aliases = models.get(m)
        if not isinstance(aliases, dict):
            continue
        for a in (alias, "*"):
            rule = aliases.get(a)
            if isinstance(rule, dict):
                unknown = sorted(set(rule) - set(CONDITIONS))
                if unknown:
                    raise ValidationError(
                        f"{POLICY_FILE}: {m}/{a} has unknown conditions {unknown}",
                        hint=f"conditions are {', '.join(CONDITIONS)}",
                    )
                return rule
    return {}


def check(
    registry: ModelRegistry, version: ModelVersion, rule: dict[str, Any]
) -> list[dict[str, Any]]:
    """One check per condition of ``rule`` for ``version``."""
    out = []
    if rule.get("metrics"):
        out.append(_check_metrics(version, str(rule["metrics"])))
    if rule.get("provenance") not in (None, False):
        out.append(_check_provenance(registry, version))
    if rule.get("reproduced"):
        out.append(_check_reproduced(registry, version))
    return out


def _check_metrics(version: ModelVersion, text: str) -> dict[str, Any]:
    from vtrack.query import evaluate, parse_filter

    metrics = dict(version.lineage.get("metrics") or {})
    view = {"metrics": metrics, "params": dict(version.lineage.get("params") or {}),
            "tags": dict(version.tags), "attributes": {}}  # fmt: skip
    passed = evaluate(parse_filter(text), view)
    return {"condition": "metrics", "rule": text, "passed": passed, "metrics": metrics,
            "detail": "met" if passed else f"not met: {text} (metrics {metrics})"}  # fmt: skip


def _check_provenance(registry: ModelRegistry, version: ModelVersion) -> dict[str, Any]:
    from vtrack import provenance

    results = provenance.audit(registry.repo, str(version.run_id))
    bad = [f"{r['name']}: {r['status']}" for r in results if r["status"] in ("changed", "missing")]
    return {"condition": "provenance", "passed": not bad,
            "inputs": [{"name": r["name"], "status": r["status"],
                        "digest": r["expected_digest"]} for r in results],
            "detail": "audit clean" if not bad else "audit found drift: " + ", ".join(bad)}  # fmt: skip


def _check_reproduced(registry: ModelRegistry, version: ModelVersion) -> dict[str, Any]:
    from vtrack.query import parse_filter

    run_id = str(version.run_id)
    clauses = parse_filter(
        f"tags.`{RERUN_OF_TAG}` = '{run_id}' and tags.`{RERUN_VERDICT_TAG}` = 'reproduced'"
    )
    found = registry.repo.index().search(list(clauses), (), lifecycles=("active",), max_results=10)
    ids = [r.info.run_id for r in found]
    return {"condition": "reproduced", "passed": bool(ids), "reruns": ids,
            "detail": f"reproduced by rerun {ids[0]}" if ids
            else f"no rerun of run {run_id} has the verdict reproduced"}  # fmt: skip


def promote(
    registry: ModelRegistry, name: str, version: Any, alias: str, *, force: bool = False
) -> dict[str, Any]:
    """Move ``alias`` to ``version`` if the policy allows (or ``force``); return the event.

    PromotionRefusedError lists the failed checks (``fields["failed"]``) and nothing is
    written. The event's ``evidence`` holds the rule and every check.
    """
    mv = registry.get_model_version(name, version)
    rule = rule_for(load_policy(registry), name, alias)
    checks = check(registry, mv, rule)
    failed = [c for c in checks if not c["passed"]]
    if failed and not force:
        raise PromotionRefusedError(
            f"promotion of {name} v{mv.version} to @{alias} refused: "
            + "; ".join(f"{c['condition']}: {c['detail']}" for c in failed),
            hint="fix the failed conditions, or pass --force (recorded in the event)",
            failed=failed,
        )
    evidence = {"policy": rule, "checks": checks}
    event = registry.set_registered_model_alias(
        name, alias, mv.version, reason="promote", evidence=evidence, forced=bool(failed)
    )
    event["hook"] = run_hook(registry, event)
    return event


def run_hook(registry: ModelRegistry, event: dict[str, Any]) -> dict[str, Any] | None:
    """Run the post-promote hook with ``event`` as JSON on stdin; its outcome, or None."""
    root = _root(registry)
    if root is None:
        return None
    hook = root / HOOK_FILE
    if not (hook.is_file() and os.access(hook, os.X_OK)):
        return None
    try:
        res = subprocess.run([str(hook)], input=json.dumps(event).encode(), cwd=root,
                             capture_output=True, timeout=HOOK_TIMEOUT, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"ran": str(hook), "returncode": None, "error": str(exc)}
    return {"ran": str(hook), "returncode": res.returncode,
            "stderr": res.stderr.decode("utf-8", "replace")[-2000:]}  # fmt: skip
