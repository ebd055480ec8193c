"""Which runs wrote a digest: artifacts found by content in the run index's records.

The upstream half of a dataset's lineage (the downstream half, the runs that read it,
is :func:`vtrack.provenance.lineage`): every run that logged an artifact file whose
digest is ``digest`` (or starts with a prefix of it). Read from the JSON copy of each
run's ``artifacts.yaml`` the index keeps (``records``), by one SQL scan (bodies without
the digest's text are not parsed); the index's
schema and sync are untouched. Index functions used: ``RunIndex.connection`` (added for this).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from vtrack.store.index_sql import marks
from vtrack.store.refs import ACTIVE

if TYPE_CHECKING:
    from vtrack.store.index import RunIndex

#: Writers returned at most.
MAX_WRITERS = 1000


def artifact_writers(
    index: RunIndex, digest: str, lifecycles: Iterable[str] = (ACTIVE,), limit: int = MAX_WRITERS
) -> list[dict[str, Any]]:
    """Runs that logged an artifact with ``digest`` (a full digest or a prefix), newest first.

    One dict per (run, artifact path): ``run_id``, ``run_name``, ``experiment_id``,
    ``status``, ``start_time``, ``path``, ``digest``, ``size``.
    """
    life = tuple(lifecycles)
    pattern = digest.replace("[", "").replace("*", "").replace("?", "") + "*"
    sql = (
        "SELECT r.run_id, r.name, r.experiment_id, r.status, r.start_time, a.key, "
        "json_extract(a.value, '$.digest'), json_extract(a.value, '$.size') "
        "FROM runs r JOIN records rc ON rc.run = r.id "
        "AND instr(rc.body, ?) > 0, "  # only bodies holding the text are parsed
        """json_each(rc.body, '$.docs."artifacts.yaml"') a """
        f"WHERE r.lifecycle IN ({marks(life)}) AND json_extract(a.value, '$.digest') GLOB ? "
        "ORDER BY r.start_time DESC, r.run_id, a.key LIMIT ?"
    )
    needle = pattern.rstrip("*")
    rows = index.connection().execute(sql, [needle, *life, pattern, int(limit)]).fetchall()
    fields = ("run_id", "run_name", "experiment_id", "status", "start_time", "path", "digest",
              "size")  # fmt: skip
    return [dict(zip(fields, row, strict=True)) for row in rows]
