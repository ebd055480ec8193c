"""Experiment ids and records (``refs/vtrack/experiments/<id>`` → ``experiment.yaml``)."""

from __future__ import annotations

import xxhash

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
    return [first] + [
        xxhash.xxh3_64_hexdigest(f"{name}\x00{k}".encode()) for k in range(1, count)
    ]

