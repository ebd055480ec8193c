"""Experiment ids and records: ids derived from names, and the CRUD with its CAS retries."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import xxhash

from vtrack.entities import Experiment
from vtrack.errors import (
    ExperimentExistsError,
    ExperimentNotFoundError,
    RefConflictError,
    RunStateError,
)

if TYPE_CHECKING:
    from vtrack.store import Store

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"


def experiment_id_for(name: str) -> str:
    """The id an experiment called ``name`` gets when first created.

    Derived from the name so that two clones creating the same experiment agree,
    which lets their runs meet in one experiment after push and pull.
    """
    if name == DEFAULT_EXPERIMENT_NAME:
        return DEFAULT_EXPERIMENT_ID
    return xxhash.xxh3_64_hexdigest(name.encode("utf-8"))


def candidate_experiment_ids(name: str, count: int = 16) -> list[str]:
    """The ids an experiment called ``name`` may get, in the order they are tried.

    The first is :func:`experiment_id_for`; the others (used when a renamed experiment
    holds an earlier one) are derived from the name too, so every process and clone
    that creates ``name`` at once tries the same ids and they converge on one.
    """
    first = experiment_id_for(name)
    return [first] + [xxhash.xxh3_64_hexdigest(f"{name}\x00{k}".encode()) for k in range(1, count)]


class ExperimentStore:
    """Experiment records of one store, created and updated by compare-and-swap.

    Arguments are assumed validated (the facade validates); every method returns plain
    :class:`~vtrack.entities.Experiment` entities.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def _entity(data: Mapping[str, Any]) -> Experiment:
        return Experiment(
            experiment_id=str(data["id"]),
            name=str(data["name"]),
            lifecycle_stage=str(data.get("lifecycle_stage", "active")),
            creation_time=int(data.get("creation_time") or 0),
            last_update_time=int(data.get("last_update_time") or 0),
            tags=dict(data.get("tags") or {}),
        )

    def ensure_default(self) -> None:
        """Create the Default experiment (id 0) if this store has none yet."""
        if self.store.experiment_tip(DEFAULT_EXPERIMENT_ID) is None:
            with contextlib.suppress(RefConflictError):  # created by another process
                self._write_new(DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME, {})

    def _write_new(self, exp_id: str, name: str, tags: dict[str, str]) -> None:
        now = _now_ms()
        self.store.write_experiment(
            {"id": exp_id, "name": name, "lifecycle_stage": "active", "creation_time": now,
             "last_update_time": now, "tags": tags},
            None,
        )  # fmt: skip

    def create(self, name: str, tags: dict[str, str]) -> str:
        """Create an experiment and return its id; ExperimentExistsError if the name is taken.

        Ids come from the name (:func:`candidate_experiment_ids`), so processes creating
        one name at once converge: the losers get ExperimentExistsError, never a second
        experiment with that name.
        """
        self.ensure_default()
        if self.by_name(name) is not None:
            raise ExperimentExistsError(f"experiment {name!r} already exists")
        for candidate in candidate_experiment_ids(name):
            for _attempt in range(2):
                data = self.store.read_experiment(candidate)
                if data is not None:
                    if data.get("name") == name:
                        raise ExperimentExistsError(f"experiment {name!r} already exists")
                    break  # held by another (renamed) experiment: try the next id
                try:
                    self._write_new(candidate, name, tags)
                    return candidate
                except RefConflictError:
                    continue  # created meanwhile: look at what it is
        raise ExperimentExistsError(f"could not allocate an id for experiment {name!r}")

    def get(self, exp_id: str) -> Experiment:
        """The experiment with that id; ExperimentNotFoundError if absent."""
        if exp_id == DEFAULT_EXPERIMENT_ID:
            self.ensure_default()
        data = self.store.read_experiment(exp_id)
        if data is None:
            raise ExperimentNotFoundError(f"no experiment with id {exp_id!r}")
        return self._entity(data)

    def by_name(self, name: str) -> Experiment | None:
        """The experiment with that name (active or deleted), or None."""
        if name == DEFAULT_EXPERIMENT_NAME:
            self.ensure_default()
        for data in self.store.list_experiments():
            if data.get("name") == name:
                return self._entity(data)
        return None

    def all(self) -> list[Experiment]:
        """Every experiment (active and deleted), oldest first."""
        self.ensure_default()
        exps = [self._entity(d) for d in self.store.list_experiments()]
        exps.sort(key=lambda e: (e.creation_time, e.experiment_id))
        return exps

    def update(self, exp_id: str, **changes: Any) -> Experiment:
        """Change fields of an experiment record (retrying on concurrent updates)."""
        for _ in range(20):
            tip = self.store.experiment_tip(exp_id)
            data = self.store.read_experiment(exp_id)
            if tip is None or data is None:
                raise ExperimentNotFoundError(f"no experiment with id {exp_id!r}")
            data.update(changes)
            data["last_update_time"] = _now_ms()
            try:
                self.store.write_experiment(data, tip)
                return self._entity(data)
            except RefConflictError:
                continue
        raise RunStateError(f"experiment {exp_id} keeps changing; try again")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
