"""The model registry service: MLflow's registry calls over the event log and its cache.

Each write validates against the current state, then appends its event by
compare-and-swap (:func:`vtrack.registry.log.append`): when another process wrote
first, the state is re-read and the event rebuilt (a new version gets the next number),
so concurrent writers never lose an event or share a version number. Reads come from
the cache (:mod:`vtrack.registry.cache`), brought up to the ref's tip first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vtrack.errors import (
    RegisteredModelExistsError,
    RegisteredModelNotFoundError,
    ValidationError,
)
from vtrack.registry import events as ev
from vtrack.registry.cache import RegistryCache
from vtrack.registry.entities import ModelVersion, RegisteredModel, version_entity
from vtrack.registry.fold import ModelFold
from vtrack.registry.log import append
from vtrack.store.refs import registry_tip
from vtrack.store.runs import RunRepository

MODELS_SCHEME = "models:/"
_MODEL_FIELDS = {"name": "run_name"}
_VERSION_FIELDS = {"name": "run_name", "run_id": "run_id", "version_number": "start_time",
                   "source_path": "user_id", "creation_timestamp": "end_time"}  # fmt: skip


class ModelRegistry:
    """The registry of one store (``refs/vtrack/registry``)."""

    def __init__(self, repo: RunRepository) -> None:
        self.repo = repo
        self.store = repo.store
        self.cache = RegistryCache(repo.store)

    @property
    def user(self) -> str:
        from vtrack.store import current_user

        return current_user()

    # -- reading --------------------------------------------------------------------
    def _fold(self, name: str) -> ModelFold:
        self.cache.sync()
        return self.cache.model(ev.check_model_name(name))

    def _live(self, name: str) -> ModelFold:
        fold = self._fold(name)
        if not fold.live:
            raise RegisteredModelNotFoundError(
                f"no registered model {name!r}", hint="vtrack models ls lists them", name=name
            )
        return fold

    def _version(self, fold: ModelFold, version: Any) -> dict[str, Any]:
        number = ev.check_version(version)
        doc = fold.live_version(number)
        if doc is None:
            raise RegisteredModelNotFoundError(
                f"model {fold.name!r} has no version {number}",
                hint=f"vtrack models show {fold.name} lists its versions",
                name=fold.name, version=number,
            )  # fmt: skip
        return doc

    def _model_entity(self, fold: ModelFold) -> RegisteredModel:
        d = fold.doc
        latest = fold.latest_version()
        versions = [] if latest is None else [
            version_entity(fold.versions[latest], fold.aliases_of(latest))
        ]  # fmt: skip
        return RegisteredModel(
            name=fold.name, creation_timestamp=int(d["creation_timestamp"]),
            last_updated_timestamp=int(d["last_updated_timestamp"]),
            description=d.get("description") or None, tags=dict(d["tags"]),
            aliases=dict(d["aliases"]), latest_versions=versions,
        )  # fmt: skip

    def get_registered_model(self, name: str) -> RegisteredModel:
        """The registered model ``name``; RegisteredModelNotFoundError if there is none."""
        return self._model_entity(self._live(name))

    def get_model_version(self, name: str, version: Any) -> ModelVersion:
        """Version ``version`` (int or digits) of ``name``; RegisteredModelNotFoundError if absent."""
        fold = self._live(name)
        doc = self._version(fold, version)
        return version_entity(doc, fold.aliases_of(int(doc["version"])))

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version alias ``alias`` of ``name`` points at."""
        fold = self._live(name)
        number = fold.doc["aliases"].get(alias)
        if number is None:
            raise RegisteredModelNotFoundError(
                f"model {name!r} has no alias {alias!r}",
                hint=f"vtrack models show {name} lists its aliases", name=name, alias=alias,
            )  # fmt: skip
        return version_entity(fold.versions[number], fold.aliases_of(number))

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """MLflow's stage-based call: the newest version (vtrack has no stages)."""
        return self._model_entity(self._live(name)).latest_versions

    def search_registered_models(
        self, filter_string: str | None = None, max_results: int | None = None,
        order_by: Sequence[str] | None = None,
    ) -> list[RegisteredModel]:  # fmt: skip
        """Registered models matching ``filter_string`` (``name``, ``tags.<key>``), by name."""
        from vtrack.query import evaluate, parse_filter, parse_order_by, sort_runs
        from vtrack.query.aliases import rename_fields

        clauses = parse_filter(rename_fields(filter_string or "", _MODEL_FIELDS))
        order = parse_order_by([rename_fields(o, _MODEL_FIELDS) for o in order_by or []])
        self.cache.sync()
        views: list[Any] = []
        for d in self.cache.model_docs():
            if not d["exists"] or d["deleted"]:
                continue
            view = {"attributes": {"run_name": d["name"]}, "tags": d["tags"], "metrics": {},
                    "params": {}}  # fmt: skip
            if evaluate(clauses, view):
                views.append(view)
        if order:
            views = sort_runs(views, order)
        names = [v["attributes"]["run_name"] for v in views][: max_results or None]
        return [self._model_entity(self.cache.model(n)) for n in names]

    def search_model_versions(
        self, filter_string: str | None = None, max_results: int | None = None,
        order_by: Sequence[str] | None = None,
    ) -> list[ModelVersion]:  # fmt: skip
        """Versions matching ``filter_string`` (``name``, ``run_id``, ``version_number``,
        ``source_path``, ``tags.<key>``, ``metrics.<key>`` at registration); newest
        version first, by model name."""
        from vtrack.query import evaluate, parse_filter, parse_order_by, sort_runs
        from vtrack.query.aliases import rename_fields

        clauses = parse_filter(rename_fields(filter_string or "", _VERSION_FIELDS))
        order = parse_order_by([rename_fields(o, _VERSION_FIELDS) for o in order_by or []])
        self.cache.sync()
        aliases: dict[tuple[str, int], list[str]] = {}
        for d in self.cache.model_docs():
            for alias, n in d["aliases"].items():
                aliases.setdefault((d["name"], n), []).append(alias)
        views: list[Any] = []
        for v in self.cache.version_docs():
            if v["deleted"]:
                continue
            view = {"attributes": {"run_name": v["name"], "run_id": v.get("run_id") or "",
                                   "start_time": v["version"], "user_id": v.get("source") or "",
                                   "end_time": v["creation_timestamp"]},
                    "tags": v["tags"], "metrics": dict(v["lineage"].get("metrics") or {}),
                    "params": dict(v["lineage"].get("params") or {}), "doc": v}  # fmt: skip
            if evaluate(clauses, view):
                views.append(view)
        if order:
            views = sort_runs(views, order)
        else:
            views.sort(key=lambda x: (x["doc"]["name"], -x["doc"]["version"]))
        out = [version_entity(x["doc"], sorted(aliases.get((x["doc"]["name"],
                                                            x["doc"]["version"]), [])))
               for x in views]  # fmt: skip
        return out[: max_results or None]

    def model_summaries(self) -> list[dict[str, Any]]:
        """One plain dict per live registered model, by name: ``name``, ``latest_version``,
        ``aliases``, ``tags``, ``description``, ``creation_timestamp``,
        ``last_updated_timestamp`` (what ``vtrack models ls`` and the UI list show)."""
        self.cache.sync()
        keys = ("name", "latest_version", "aliases", "tags", "description",
                "creation_timestamp", "last_updated_timestamp")  # fmt: skip
        return [{k: d.get(k) for k in keys} for d in self.cache.model_docs()
                if d["exists"] and not d["deleted"]]  # fmt: skip

    def backing_runs(self) -> dict[str, list[str]]:
        """The runs that live registered versions load from: run id -> ``["churn v3", ...]``.

        ``vtrack gc --purge-trash`` keeps these runs: purging one would leave its versions
        unloadable. Versions of deleted models, and deleted versions, do not count.
        """
        if registry_tip(self.store.refs) is None:
            return {}  # no registry: nothing to open (and no cache file to create)
        self.cache.sync()
        live = {d["name"] for d in self.cache.model_docs() if d["exists"] and not d["deleted"]}
        out: dict[str, list[str]] = {}
        for v in self.cache.version_docs():
            run_id = v.get("run_id")
            if v["deleted"] or v["name"] not in live or not isinstance(run_id, str):
                continue
            out.setdefault(run_id, []).append(f"{v['name']} v{v['version']}")
        return out

    def history(self, name: str) -> list[dict[str, Any]]:
        """Every event of model ``name`` in log order (see :mod:`vtrack.registry.history`)."""
        ev.check_model_name(name)
        self.cache.sync()
        return self.cache.history(name)

    # -- writing --------------------------------------------------------------------
    def _append(self, name: str, build: Any) -> list[dict[str, Any]]:
        ev.check_model_name(name)
        held: dict[str, ModelFold] = {}

        def state_at() -> str | None:
            tip, held["fold"] = self.cache.lock_and_read(name)
            return tip

        _, written = append(self.store, state_at, lambda: build(held["fold"]))
        from vtrack.registry import gto

        if written and gto.enabled(self.store):
            self.cache.sync()
            gto.mirror(self, written)
        return written

    def create_registered_model(
        self, name: str, tags: Mapping[str, Any] | None = None, description: str | None = None
    ) -> RegisteredModel:
        """Create an empty registered model; RegisteredModelExistsError if ``name`` exists."""
        clean = dict(ev.check_tag(k, v) for k, v in (tags or {}).items())

        def build(fold: ModelFold) -> list[dict[str, Any]]:
            if fold.live:
                raise RegisteredModelExistsError(f"registered model {name!r} already exists")
            return [ev.new_event("create_model", name, self.user, tags=clean,
                                 description=description or "")]  # fmt: skip

        self._append(name, build)
        return self.get_registered_model(name)

    def create_model_version(
        self, name: str, source: str, run_id: str | None = None,
        tags: Mapping[str, Any] | None = None, description: str | None = None,
        model_id: str | None = None, *, create_model: bool = False,
    ) -> ModelVersion:  # fmt: skip
        """Register the model folder ``source`` as the next version of ``name``.

        ``source`` is ``runs:/<run>/<path>`` or ``models:/<model_id>``; its digest and
        lineage are read now (:mod:`vtrack.registry.lineage`). ``run_id``, when given,
        must be the source's run. The model must exist unless ``create_model``
        (``register_model``).
        """
        from vtrack.registry.lineage import folder_digest, lineage_of, source_of

        ev.check_model_name(name)
        src_run, path, found_model_id = source_of(self.repo, source)
        if run_id is not None and run_id != src_run:
            raise ValidationError(f"run_id {run_id!r} is not the run of source {source!r}")
        digest = folder_digest(self.repo, src_run, path)
        lineage = lineage_of(self.repo, src_run, path)
        clean = dict(ev.check_tag(k, v) for k, v in (tags or {}).items())

        def build(fold: ModelFold) -> list[dict[str, Any]]:
            if not fold.live and not create_model:
                raise RegisteredModelNotFoundError(
                    f"no registered model {name!r}",
                    hint="create it first (create_registered_model) or use register_model",
                )
            out = []
            if not fold.live:
                out.append(ev.new_event("create_model", name, self.user, tags={},
                                        description=""))  # fmt: skip
            out.append(ev.new_event(
                "register", name, self.user, version=int(fold.doc["max_version"]) + 1,
                source=source, run_id=src_run, model_id=model_id or found_model_id,
                digest=digest, lineage=lineage, tags=clean, description=description or "",
            ))  # fmt: skip
            return out

        written = self._append(name, build)
        return self.get_model_version(name, written[-1]["version"])

    def register_model(self, model_uri: str, name: str,
                       tags: Mapping[str, Any] | None = None) -> ModelVersion:  # fmt: skip
        """MLflow's ``register_model``: create ``name`` if needed, then a version of ``model_uri``."""
        return self.create_model_version(name, model_uri, tags=tags, create_model=True)

    def _version_event(self, name: str, version: Any, kind: str, **fields: Any) -> None:
        number = ev.check_version(version)

        def build(fold: ModelFold) -> list[dict[str, Any]]:
            if not fold.live:
                raise RegisteredModelNotFoundError(f"no registered model {name!r}")
            self._version(fold, number)
            return [ev.new_event(kind, name, self.user, version=number, **fields)]

        self._append(name, build)

    def _model_event(self, name: str, kind: str, check: Any = None, **fields: Any) -> None:
        def build(fold: ModelFold) -> list[dict[str, Any]]:
            if not fold.live:
                raise RegisteredModelNotFoundError(f"no registered model {name!r}")
            if check is not None:
                check(fold)
            return [ev.new_event(kind, name, self.user, **fields)]

        self._append(name, build)

    def set_registered_model_alias(
        self, name: str, alias: str, version: Any, *, reason: str = "set",
        evidence: Mapping[str, Any] | None = None, forced: bool = False,
    ) -> dict[str, Any]:  # fmt: skip
        """Point ``alias`` at ``version`` (an event with the version it held before); return it."""
        ev.check_alias(alias)
        number = ev.check_version(version)

        def build(fold: ModelFold) -> list[dict[str, Any]]:
            if not fold.live:
                raise RegisteredModelNotFoundError(f"no registered model {name!r}")
            self._version(fold, number)
            return [ev.new_event("set_alias", name, self.user, alias=alias, version=number,
                                 previous=fold.doc["aliases"].get(alias), reason=reason,
                                 evidence=dict(evidence or {}), forced=forced)]  # fmt: skip

        return self._append(name, build)[-1]

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` from ``name``; RegisteredModelNotFoundError if it is not set."""
        ev.check_alias(alias)

        def build(fold: ModelFold) -> list[dict[str, Any]]:
            if not fold.live:
                raise RegisteredModelNotFoundError(f"no registered model {name!r}")
            if alias not in fold.doc["aliases"]:
                raise RegisteredModelNotFoundError(f"model {name!r} has no alias {alias!r}")
            return [ev.new_event("delete_alias", name, self.user, alias=alias,
                                 previous=fold.doc["aliases"][alias])]  # fmt: skip

        self._append(name, build)

    def set_model_version_tag(self, name: str, version: Any, key: str, value: Any) -> None:
        """Set a tag on one version."""
        k, v = ev.check_tag(key, value)
        self._version_event(name, version, "set_version_tag", key=k, value=v)

    def delete_model_version_tag(self, name: str, version: Any, key: str) -> None:
        """Delete a tag from one version."""
        k, _ = ev.check_tag(key, "")
        self._version_event(name, version, "delete_version_tag", key=k)

    def update_model_version(
        self, name: str, version: Any, description: str | None
    ) -> ModelVersion:
        """Change a version's description."""
        self._version_event(name, version, "update_version", description=description or "")
        return self.get_model_version(name, version)

    def deprecate_model_version(self, name: str, version: Any) -> None:
        """Mark a version deprecated (it stays loadable; the mark is in its history)."""
        self._version_event(name, version, "deprecate")

    def delete_model_version(self, name: str, version: Any) -> None:
        """Delete a version (its number is never given again; its aliases go with it)."""
        self._version_event(name, version, "delete_version")

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        """Set a tag on a registered model."""
        k, v = ev.check_tag(key, value)
        self._model_event(name, "set_model_tag", key=k, value=v)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Delete a tag from a registered model."""
        k, _ = ev.check_tag(key, "")
        self._model_event(name, "delete_model_tag", key=k)

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        """Change a registered model's description."""
        self._model_event(name, "update_model", description=description or "")
        return self.get_registered_model(name)

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model with its versions and aliases (numbers never reused)."""
        self._model_event(name, "delete_model")

    # -- URIs -----------------------------------------------------------------------
    def resolve(self, uri: str) -> ModelVersion:
        """The version ``models:/<name>/<version>``, ``models:/<name>@<alias>`` or
        ``models:/<name>/latest`` names; RegisteredModelNotFoundError if none."""
        name, version, alias = parse_models_uri(uri)
        if alias is not None:
            return self.get_model_version_by_alias(name, alias)
        if version == "latest":
            fold = self._live(name)
            latest = fold.latest_version()
            if latest is None:
                raise RegisteredModelNotFoundError(f"model {name!r} has no versions")
            return version_entity(fold.versions[latest], fold.aliases_of(latest))
        return self.get_model_version(name, version)


def is_registry_uri(uri: str) -> bool:
    """True for ``models:/<name>/<version>`` and ``models:/<name>@<alias>`` (not ``models:/m-<id>``)."""
    if not isinstance(uri, str) or not uri.startswith(MODELS_SCHEME):
        return False
    rest = uri[len(MODELS_SCHEME) :].strip("/")
    return "@" in rest or "/" in rest


def parse_models_uri(uri: str) -> tuple[str, str, str | None]:
    """``(name, version or "latest" or "", alias or None)`` of a registry model URI.

    ValidationError for anything else (``models:/<model_id>`` is a logged model, not this).
    """
    if not is_registry_uri(uri):
        raise ValidationError(f"{uri!r} is not a registered model URI",
                              hint="write models:/<name>/<version> or models:/<name>@<alias>")  # fmt: skip
    rest = uri[len(MODELS_SCHEME) :].strip("/")
    if "@" in rest and "/" not in rest:
        name, _, alias = rest.partition("@")
        return ev.check_model_name(name), "", alias
    name, _, version = rest.partition("/")
    ev.check_model_name(name)
    if version != "latest":
        ev.check_version(version)
    return name, version, None
