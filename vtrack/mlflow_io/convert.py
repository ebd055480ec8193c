"""How an MLflow run's fields map onto a vtrack run record, and back. Pure functions.

- MLflow's system tags that are vtrack fields become those fields (``mlflow.runName`` →
  name, ``mlflow.user`` → user, ``mlflow.parentRunId`` → parent, ``mlflow.note.content``
  → description, ``mlflow.source.*`` → the run's source); vtrack derives them back when
  they are read (:func:`vtrack.entities.system_tags`), so they are not stored twice.
  Every other tag is kept as it was.
- Params are strings in MLflow; a value whose type is unambiguous comes back typed: an
  int, float or bool whose ``str()`` is exactly the logged text (``"3"`` → 3,
  ``"0.1"`` → 0.1, ``"True"`` → True). Anything else (``"1e-3"``, ``"01"``, ``"[1, 2]"``,
  ``"None"``, ``"nan"``) stays the string it was, so exporting it again writes the same text.
- The MLflow run id is kept as the tag :data:`MLFLOW_RUN_ID_TAG`; an import is keyed by it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

#: The tag of an imported run that holds its MLflow run id (what makes imports idempotent).
MLFLOW_RUN_ID_TAG = "vtrack.mlflow.run_id"
#: The tag of an exported MLflow run that holds its vtrack run id.
VTRACK_RUN_ID_TAG = "vtrack.run_id"
#: The input tag MLflow keeps a dataset's context in.
CONTEXT_TAG = "mlflow.data.context"
#: MLflow run statuses vtrack has no equivalent of: imported as KILLED (nobody writes it).
UNFINISHED = {"RUNNING", "SCHEDULED"}

#: MLflow system tag -> the source field it becomes.
_SOURCE_TAGS = {
    "mlflow.source.name": "entry_point",
    "mlflow.source.git.commit": "commit",
    "mlflow.source.git.branch": "branch",
    "mlflow.source.git.repoURL": "remote_url",
}
#: Characters a vtrack run name may not hold (its run-spec syntax), replaced on import.
_NAME_FORBIDDEN = str.maketrans({c: "-" for c in ":~\n\r\t\x00"})


def typed_param(text: str) -> Any:
    """``text`` as the int, float or bool it unambiguously spells, else ``text`` itself."""
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            continue
        if str(value) == text and (kind is int or math.isfinite(value)):
            return value
    return text


def param_text(value: Any) -> str:
    """The string MLflow stores for a vtrack param value (``str()``, as MLflow's own client)."""
    return str(value)


def run_name(name: str | None, fallback: str) -> str:
    """A usable vtrack run name for MLflow's ``name`` (forbidden characters replaced)."""
    text = (name or "").translate(_NAME_FORBIDDEN).strip().lstrip("@")
    return text[:250] or fallback


def split_tags(
    tags: Mapping[str, str],
) -> tuple[dict[str, str], dict[str, Any], str | None, str | None, str | None]:
    """``(kept tags, source fields, user, parent MLflow id, description)`` of MLflow tags."""
    kept: dict[str, str] = {}
    source: dict[str, Any] = {}
    for k, v in tags.items():
        if k in _SOURCE_TAGS:
            source[_SOURCE_TAGS[k]] = v
        elif k in ("mlflow.runName", "mlflow.user", "mlflow.parentRunId", "mlflow.note.content"):
            continue
        elif k == "mlflow.source.type" and v == "LOCAL":
            continue  # derived again from the entry point
        else:
            kept[k] = v
    return (kept, source, tags.get("mlflow.user"), tags.get("mlflow.parentRunId"),
            tags.get("mlflow.note.content"))  # fmt: skip


def dataset_input(dataset: Any, input_tags: Mapping[str, str]) -> dict[str, Any]:
    """The ``inputs.yaml`` entry of an MLflow dataset input (name, digest, source, schema).

    MLflow's digest is its own (not a content digest vtrack can check): it is kept as
    ``mlflow:<digest>`` and the entry is not verifiable. The original source, source type
    and profile are kept under ``mlflow`` so an export writes them back unchanged.
    """
    tags = {k: v for k, v in input_tags.items() if k != CONTEXT_TAG}
    source_text = dataset.source or ""
    location = source_text
    try:
        parsed = json.loads(source_text) if source_text else {}
        if isinstance(parsed, dict):
            location = str(parsed.get("uri") or parsed.get("url") or parsed.get("path")
                           or source_text)  # fmt: skip
    except ValueError:
        pass
    schema: Any = None
    if dataset.schema:
        try:
            schema = json.loads(dataset.schema)
        except ValueError:
            schema = {"text": dataset.schema}
    entry: dict[str, Any] = {
        "name": dataset.name,
        "context": input_tags.get(CONTEXT_TAG),
        "source": location or None,
        "kind": "uri",
        "digest": f"mlflow:{dataset.digest}" if dataset.digest else None,
        "size": None,
        "format": dataset.source_type or None,
        "verifiable": False,
        "tags": tags,
        "mlflow": {
            "source_type": dataset.source_type,
            "source": source_text,
            "profile": dataset.profile,
            "digest": dataset.digest,
        },  # fmt: skip
    }
    if isinstance(schema, dict):
        entry["schema"] = schema
    return entry


def mlflow_dataset(entry: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``(Dataset fields, input tags)`` MLflow records for a vtrack ``inputs.yaml`` entry."""
    original = entry.get("mlflow") if isinstance(entry.get("mlflow"), Mapping) else None
    digest = str(entry.get("digest") or "")
    if original is not None:
        fields = {
            "name": str(entry.get("name") or "dataset"),
            "digest": str(original.get("digest") or digest.partition(":")[2] or digest),
            "source_type": str(original.get("source_type") or "external"),
            "source": str(original.get("source") or ""),
            "profile": original.get("profile"),
        }
    else:
        fields = {
            "name": str(entry.get("name") or "dataset"),
            "digest": (digest.partition(":")[2] or digest)[:36] or "unknown",
            "source_type": "local" if entry.get("kind") in ("file", "folder") else "external",
            "source": json.dumps({"uri": str(entry.get("source") or entry.get("path") or "")}),
            "profile": json.dumps(
                {
                    "vtrack_kind": entry.get("kind"),
                    "size": entry.get("size"),
                    "rows": entry.get("rows"),
                }
            ),  # fmt: skip
        }
    schema = entry.get("schema")
    fields["schema"] = json.dumps(schema) if isinstance(schema, Mapping) and schema else None
    if isinstance(schema, Mapping) and set(schema) == {"text"}:
        fields["schema"] = str(schema["text"])
    tags = {str(k): str(v) for k, v in (entry.get("tags") or {}).items()}
    if entry.get("context"):
        tags[CONTEXT_TAG] = str(entry["context"])
    return fields, tags
