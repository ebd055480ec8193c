"""Experiment ids and records (``refs/vtrack/experiments/<id>`` → ``experiment.yaml``)."""

from __future__ import annotations

import uuid

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


def random_experiment_id() -> str:
    """A fresh id, used when the derived one is taken by a renamed experiment."""
    return uuid.uuid4().hex[:16]
