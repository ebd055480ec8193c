"""Run specs: the names a person types for a run, resolved to its 32-hex id.

Grammar (tried in this order; the first form that matches wins)::

    runs:/<spec>/<path>     a run URI; the spec inside is resolved by these rules
    models:/<name>/<N>      the run of a registered model version (also ``@<alias>``,
                            ``/latest``) or of a logged model (``models:/<model_id>``)
    <32 hex>                a full run id
    [<experiment>]@[~N]     the newest top-level run (@), or the Nth before it (@~N; @~ is @~1)
    <name>                  a run name, exactly (case-sensitive)
    <name>~N                the Nth older run of that name (``mlp~1``: the one before the newest)
    <4+ hex>                a unique prefix of a run id (any case)
    <spec>/N                the Nth child (1 = first created) of the run <spec> names (``@/2``)

Decisions (also in docs/design-decisions.md):

* **A name beats a prefix**, as a branch name beats an abbreviated SHA in git: a run
  named ``beef`` is what ``beef`` means even when some id starts with ``beef``; a longer
  prefix or the full id still reaches the other run.
* **Scope.** Ids and prefixes are global. ``@`` forms count runs of ``<experiment>``
  (a name, else an id) when written, else of the ``experiment_id`` argument, else of
  the experiment the environment selects (``VTRACK_EXPERIMENT_ID`` /
  ``VTRACK_EXPERIMENT_NAME``), else of **all experiments**: with nothing selected, ``@``
  is the run you made last. Names are looked up in ``experiment_id`` when it is given,
  else everywhere. "Newest" is the latest start time (ties: lower run id first), the
  order ``search_runs`` uses.
* **Names that stay usable.** A name shared by several runs resolves to the newest of
  them when the caller allows it (``newest_of_name=True``: read-only commands), and the
  ``notice`` callback is told ("newest of 3 runs named mlp; mlp~1 is the one before");
  ``NAME~N`` reaches the older ones. Without it (``rm``, ``tag``, a checkout over the
  working tree) several matches are ambiguous and the error lists them.
* **Trees.** ``@`` and ``@~N`` count top-level runs only (the roots of run trees: a
  sweep's parent, not its newest child); ``<spec>/N`` reaches the children, in creation
  order.
* **Deleted runs** count only with ``include_deleted=True`` — except a full id, which
  always names its run, deleted or not (as a full SHA names any commit; what may be done
  with a deleted run is for the caller to say). A prefix or name that would match only
  deleted runs says so in the error's hint.
* **Errors.** ``@~N`` with N beyond :data:`~vtrack.limits.MAX_RUN_SPEC_OFFSET` is a
  usage error (ValidationError), not an overflow deep in the index. Several matches raise :class:`~vtrack.errors.AmbiguousRunSpecError` whose
  ``candidates`` are the full run ids (the message shows id prefixes and names); no match
  raises :class:`~vtrack.errors.RunNotFoundError` naming the spec; an empty spec, or
  one with ``@`` that fits no form and names no run, raises
  :class:`~vtrack.errors.ValidationError`.

Lookups go through the derived index (prefixes as an id range, names by an index on
``name``), so resolution costs the same at 100 or 100,000 runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from vtrack import config
from vtrack.errors import (
    AmbiguousRunSpecError,
    ExperimentNotFoundError,
    RunNotFoundError,
    ValidationError,
)
from vtrack.limits import MAX_RUN_SPEC_OFFSET, MIN_RUN_PREFIX, RUN_ID_HEX_LENGTH
from vtrack.store.experiments import DEFAULT_EXPERIMENT_ID
from vtrack.store.index import ACTIVE, DELETED, RunIndex, RunSummary

if TYPE_CHECKING:
    from vtrack.entities import Experiment
    from vtrack.store.runs import RunRepository

RUNS_URI_SCHEME = "runs:"
#: Candidates an ambiguity message spells out (the error's ``candidates`` has them all).
MAX_CANDIDATES_SHOWN = 10
#: Candidates looked up at most for one ambiguous spec.
MAX_CANDIDATES = 100

_HEX = re.compile(r"[0-9a-fA-F]+")
_AT = re.compile(r"(?P<exp>[^@]*)@(?:~(?P<n>[0-9]*))?")
_NAME_BACK = re.compile(r"(?P<name>.+)~(?P<n>[0-9]+)")
_CHILD = re.compile(r"(?P<base>.+)/(?P<n>[0-9]+)")


def parse_runs_uri(
    uri: str,
    repo: RunRepository | None = None,
    *,
    experiment_id: str | None = None,
    include_deleted: bool = False,
) -> tuple[str, str]:
    """Split ``runs:/<spec>/<path>`` into ``(run, path)``.

    With a ``repo`` the spec is resolved (:func:`resolve_run_id`) and ``run`` is the
    full id; without one ``run`` is the spec as written. ``path`` has no leading or
    trailing slash and is ``""`` for the run itself. Raises ValidationError when
    ``uri`` is not a ``runs:/`` URI or names no run.
    """
    if not isinstance(uri, str) or not uri.startswith(RUNS_URI_SCHEME + "/"):
        raise ValidationError(f"{uri!r} is not a run URI", hint="write runs:/<run>/<path>")
    rest = uri[len(RUNS_URI_SCHEME) :].lstrip("/")
    spec, _, path = rest.partition("/")
    if not spec:
        raise ValidationError(f"run URI {uri!r} names no run", hint="write runs:/<run>/<path>")
    path = path.strip("/")
    if repo is None:
        return spec, path
    run_id = resolve_run_id(
        repo, spec, experiment_id=experiment_id, include_deleted=include_deleted
    )
    return run_id, path


def current_experiment_id(repo: RunRepository) -> str:
    """The experiment a listing covers by default: the environment's choice, else Default.

    ``VTRACK_EXPERIMENT_ID`` wins over ``VTRACK_EXPERIMENT_NAME`` (MLflow's rule). Raises
    ExperimentNotFoundError when the named experiment does not exist.
    """
    return _env_experiment_id(repo) or DEFAULT_EXPERIMENT_ID


def _env_experiment_id(repo: RunRepository) -> str | None:
    name, exp_id = config.env_experiment()
    if exp_id:
        return _experiment(repo, exp_id).experiment_id
    if name:
        exp = repo.experiments.by_name(name)
        if exp is None:
            raise ExperimentNotFoundError(
                f"no experiment named {name!r} (from VTRACK_EXPERIMENT_NAME)",
                hint="create it, or unset VTRACK_EXPERIMENT_NAME",
            )
        return exp.experiment_id
    return None


def resolve_run_id(
    repo: RunRepository,
    spec: str,
    *,
    experiment_id: str | None = None,
    include_deleted: bool = False,
    newest_of_name: bool = False,
    notice: Callable[[str], None] | None = None,
) -> str:
    """The full id of the run ``spec`` names (grammar and rules in the module docstring).

    ``newest_of_name`` resolves a shared name to its newest run (``notice`` hears which);
    without it a shared name raises AmbiguousRunSpecError listing the candidates.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValidationError(f"empty run spec {spec!r}", hint="give a run id, prefix, name or @")
    spec = spec.strip()
    if spec.startswith(RUNS_URI_SCHEME + "/"):
        return parse_runs_uri(
            spec, repo, experiment_id=experiment_id, include_deleted=include_deleted
        )[0]
    if spec.startswith("models:/"):  # a registered version or logged model: its run
        from vtrack.registry.lineage import model_folder

        return model_folder(repo, spec)[0]
    lifecycles = (ACTIVE, DELETED) if include_deleted else (ACTIVE,)
    store = repo.store
    if len(spec) == RUN_ID_HEX_LENGTH and _HEX.fullmatch(spec):
        run_id = spec.lower()
        if store.run_tip(run_id) is not None:
            return run_id
        if store.trash_tip(run_id) is not None:
            return run_id
    index = repo.index()
    at = _AT.fullmatch(spec)
    if at is not None:
        found = _resolve_at(repo, index, spec, at, experiment_id, lifecycles)
        if found is not None:
            return found
    names = index.by_name(
        spec, lifecycles, None if experiment_id is None else [str(experiment_id)],
        limit=MAX_CANDIDATES,
    )  # fmt: skip
    if len(names) == 1:
        return names[0].run_id
    if names:
        if not newest_of_name:
            raise _ambiguous(spec, "name", names)
        if notice is not None:
            more = "+" if len(names) >= MAX_CANDIDATES else ""
            notice(
                f"{spec!r} is the newest of {len(names)}{more} runs named {spec!r} "
                f"({names[0].run_id[:12]}); {spec}~1 is the one before"
            )
        return names[0].run_id
    found = _resolve_suffixed(
        repo, index, spec, experiment_id, lifecycles, include_deleted, newest_of_name, notice
    )
    if found is not None:
        return found
    if at is not None:
        raise RunNotFoundError(
            f"no experiment named {at.group('exp')!r} and no run named {spec!r}", spec=spec
        )
    if "@" in spec:
        raise ValidationError(
            f"bad run spec {spec!r}: no run has that name and it is not of the form "
            "@, @~N, <experiment>@ or <experiment>@~N",
        )
    if _HEX.fullmatch(spec):
        if len(spec) < MIN_RUN_PREFIX:
            raise RunNotFoundError(
                f"no run named {spec!r}",
                hint=f"an id prefix needs at least {MIN_RUN_PREFIX} characters",
                spec=spec,
            )
        matches = index.by_prefix(spec.lower(), lifecycles, limit=MAX_CANDIDATES)
        if len(matches) == 1:
            return matches[0].run_id
        if matches:
            raise _ambiguous(spec, "id prefix", matches)
    if not include_deleted:
        deleted = index.by_name(spec, (DELETED,), limit=1)
        if not deleted and _HEX.fullmatch(spec) and len(spec) >= MIN_RUN_PREFIX:
            deleted = index.by_prefix(spec.lower(), (DELETED,), limit=1)
        if deleted:
            raise _deleted_error(spec, deleted[0].run_id)
    raise RunNotFoundError(
        f"no run matches {spec!r}",
        hint="give a run id, a unique id prefix (4+ characters), a run name, @ or @~N",
        spec=spec,
    )


def _resolve_suffixed(
    repo: RunRepository,
    index: RunIndex,
    spec: str,
    experiment_id: str | None,
    lifecycles: tuple[str, ...],
    include_deleted: bool,
    newest_of_name: bool,
    notice: Callable[[str], None] | None,
) -> str | None:
    """``NAME~N`` and ``SPEC/N``; None when ``spec`` is neither."""
    back = _NAME_BACK.fullmatch(spec)
    if back is not None:
        name, n = back.group("name"), _offset(spec, back.group("n"))
        exps = None if experiment_id is None else [str(experiment_id)]
        named = index.by_name(name, lifecycles, exps, limit=n + 1)
        if named:
            if len(named) <= n:
                total = len(index.by_name(name, lifecycles, exps, limit=MAX_CANDIDATES))
                raise RunNotFoundError(
                    f"{spec!r} goes past the oldest run named {name!r}: there are {total} "
                    f"({name} to {name}~{total - 1})",
                    spec=spec,
                )
            return named[n].run_id
    child = _CHILD.fullmatch(spec)
    if child is not None and not spec.startswith(RUNS_URI_SCHEME):
        try:
            parent = resolve_run_id(
                repo, child.group("base"), experiment_id=experiment_id,
                include_deleted=include_deleted, newest_of_name=newest_of_name, notice=notice,
            )  # fmt: skip
        except (RunNotFoundError, ValidationError):
            return None
        n = _offset(spec, child.group("n"))
        kids = index.children(parent, lifecycles)
        if n < 1 or n > len(kids):
            raise RunNotFoundError(
                f"{spec!r}: run {parent[:12]} has {len(kids)} child run"
                f"{'s' if len(kids) != 1 else ''}"
                + (
                    f" ({child.group('base')}/1 to {child.group('base')}/{len(kids)})"
                    if kids
                    else ""
                ),
                spec=spec,
            )
        return kids[n - 1].run_id
    return None


def _resolve_at(
    repo: RunRepository,
    index: RunIndex,
    spec: str,
    at: re.Match[str],
    experiment_id: str | None,
    lifecycles: tuple[str, ...],
) -> str | None:
    """Resolve ``[exp]@[~N]``; None when ``exp`` names no experiment (the spec may be a name)."""
    exp_text, n_text = at.group("exp"), at.group("n")
    scope_label = "all experiments"
    exps: list[str] | None
    if exp_text:
        exp = repo.experiments.by_name(exp_text)
        if exp is None:
            try:
                exp = _experiment(repo, exp_text)
            except (ExperimentNotFoundError, ValidationError):
                return None
        exps, scope_label = [exp.experiment_id], f"experiment {exp.name!r}"
    elif experiment_id is not None:
        exps = [str(experiment_id)]
        scope_label = f"experiment {_experiment_label(repo, str(experiment_id))}"
    else:
        env_exp = _env_experiment_id(repo)
        exps = None if env_exp is None else [env_exp]
        if env_exp is not None:
            scope_label = f"experiment {_experiment_label(repo, env_exp)}"
    found, count = index.newest(_offset(spec, n_text), lifecycles, exps, top_level=True)
    if found is not None:
        return found.run_id
    if count == 0:
        raise RunNotFoundError(f"{spec!r}: {scope_label} has no runs", spec=spec)
    raise RunNotFoundError(
        f"{spec!r} goes past the oldest run: {scope_label} has {count} top-level run"
        f"{'s' if count != 1 else ''} (@ to @~{count - 1})",
        spec=spec,
    )


def _offset(spec: str, n_text: str | None) -> int:
    """N of ``@~N`` (0 for ``@``, 1 for ``@~``); ValidationError when N is absurdly large."""
    if n_text is None:
        return 0
    if not n_text:
        return 1
    digits = n_text.lstrip("0") or "0"
    if len(digits) > len(str(MAX_RUN_SPEC_OFFSET)) or int(digits) > MAX_RUN_SPEC_OFFSET:
        shown = spec if len(spec) <= 60 else f"{spec[:40]}... ({len(n_text)} digits)"
        raise ValidationError(
            f"bad run spec {shown!r}: N in @~N can be at most {MAX_RUN_SPEC_OFFSET}",
            hint="@~N is the Nth run before the newest",
            spec=spec,
        )
    return int(digits)


def _experiment_label(repo: RunRepository, exp_id: str) -> str:
    try:
        return repr(_experiment(repo, exp_id).name)
    except (ExperimentNotFoundError, ValidationError):
        return exp_id


def _experiment(repo: RunRepository, exp_id: str) -> Experiment:
    """The experiment with id ``exp_id``; ValidationError for a malformed id."""
    from vtrack.validation import validate_experiment_id

    return repo.experiments.get(validate_experiment_id(exp_id))


def _ambiguous(spec: str, what: str, matches: list[RunSummary]) -> AmbiguousRunSpecError:
    lines = [f"run spec {spec!r} is ambiguous: it is the {what} of {len(matches)}"
             f"{'+' if len(matches) >= MAX_CANDIDATES else ''} runs"]  # fmt: skip
    for m in matches[:MAX_CANDIDATES_SHOWN]:
        deleted = "  (deleted)" if m.lifecycle == DELETED else ""
        lines.append(f"  {m.run_id[:12]}  {m.name}  {m.status}{deleted}")
    if len(matches) > MAX_CANDIDATES_SHOWN:
        lines.append(f"  ... and {len(matches) - MAX_CANDIDATES_SHOWN} more")
    return AmbiguousRunSpecError(
        "\n".join(lines),
        [m.run_id for m in matches],
        hint="use the full id"
        + (
            f" (or {spec}~N: the Nth before the newest)"
            if what == "name"
            else ", or a longer prefix"
        ),
        spec=spec,
        names=[m.name for m in matches],
    )


def _deleted_error(spec: str, run_id: str) -> RunNotFoundError:
    return RunNotFoundError(
        f"run {spec!r} is deleted",
        hint=f"restore it with 'vtrack restore {run_id}'",
        spec=spec,
        run_id=run_id,
    )
