"""Comparison commands: ``diff`` (two runs), ``compare`` (several), ``metrics`` (histories).

The model is :mod:`vtrack.diff`, shared with the web UI; the diff of two runs with its
code and folder files comes from :func:`vtrack.repro.diff_two_runs`. This module prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from vtrack.cli import _term as term
from vtrack.cli._charts import line_chart
from vtrack.cli._options import client, csv_option, experiment_option, json_option, split_list
from vtrack.cli._render import print_compare, print_diff
from vtrack.cli._types import RunSpec
from vtrack.views import fmt_value, history_to_dicts, ordered_history, short_id

if TYPE_CHECKING:
    from vtrack.entities import Experiment

#: Width of the +/- bars in the code stat.
STAT_WIDTH = 40
CHART_WIDTH = 60
CHART_HEIGHT = 12


def _sections(only: str | None, allowed: tuple[str, ...]) -> tuple[str, ...]:
    chosen = split_list(only)
    if not chosen:
        return allowed
    bad = [s for s in chosen if s not in allowed]
    if bad:
        raise click.BadParameter(
            f"unknown section(s) {', '.join(bad)}; choose from {', '.join(allowed)}",
            param_hint="--only",
        )
    return tuple(s for s in allowed if s in chosen)


@click.command("diff")
@click.argument("run_a", type=RunSpec(include_deleted=True))
@click.argument("run_b", type=RunSpec(include_deleted=True))
@click.option(
    "--only",
    metavar="SECTIONS",
    help="Comma-separated sections: params,metrics,datasets,artifacts,code,environment.",
)
@click.option(
    "--code", "full_code", is_flag=True, help="Show the full code patch, not only the stat."
)
@click.option("--all", "show_all", is_flag=True, help="Also list entries that did not change.")
@click.option("--exit-code", is_flag=True, help="Exit 1 when the runs differ (like git diff).")
@experiment_option()
@json_option
def diff(
    run_a: str,
    run_b: str,
    only: str | None,
    full_code: bool,
    show_all: bool,
    exit_code: bool,
    experiment: Experiment | None,
    as_json: bool,
) -> None:
    """What changed from RUN_A to RUN_B: params, metrics, data, artifacts, code, environment."""
    from vtrack.diff import SECTIONS
    from vtrack.repro import diff_two_runs

    sections = _sections(only, SECTIONS)
    c = client()
    a, b = c.get_run(run_a), c.get_run(run_b)
    result = diff_two_runs(
        c.repo,
        a,
        b,
        sections=sections,
        patch=full_code,
        color=full_code and not as_json and term.color_enabled(),
        include_unchanged=show_all,
    )
    if as_json:
        term.echo_json(result.to_dict(sections))
    else:
        print_diff(result, sections, STAT_WIDTH)
    if exit_code and not all(result.section_empty(s) for s in sections):
        raise click.exceptions.Exit(1)


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=RunSpec(include_deleted=True))
@click.option(
    "--only",
    metavar="SECTIONS",
    help="Comma-separated sections: info,params,metrics,datasets,artifacts,environment,tags.",
)
@click.option("--all", "show_all", is_flag=True, help="Show rows whose values are all equal too.")
@experiment_option()
@csv_option
@json_option
def compare(
    runs: tuple[str, ...],
    only: str | None,
    show_all: bool,
    experiment: Experiment | None,
    as_csv: bool,
    as_json: bool,
) -> None:
    """Runs side by side: one column per run, differing rows only, best metrics marked *."""
    from vtrack.diff import COMPARE_SECTIONS, compare_runs

    if len(runs) < 2:
        raise click.UsageError("compare needs at least two runs")
    sections = _sections(only, COMPARE_SECTIONS)
    c = client()
    table = compare_runs([c.get_run(x) for x in runs], sections=sections, all_rows=show_all)
    if as_json:
        term.echo_json(table.to_dict())
    elif as_csv:
        term.echo_csv(
            ["section", "key", *[x.run_id for x in table.runs]],
            ([row.section, row.key, *row.values] for row in table.rows),
        )
    else:
        print_compare(table)


@click.command("metrics")
@click.argument("run", type=RunSpec(include_deleted=True))
@click.argument("keys", nargs=-1, metavar="[KEY]...")
@click.option(
    "--width",
    default=CHART_WIDTH,
    show_default=True,
    type=click.IntRange(8, 400),
    help="Chart width in columns.",
)
@click.option(
    "--height",
    default=CHART_HEIGHT,
    show_default=True,
    type=click.IntRange(3, 100),
    help="Chart height in rows.",
)
@experiment_option()
@csv_option
@json_option
def metrics(
    run: str,
    keys: tuple[str, ...],
    width: int,
    height: int,
    experiment: Experiment | None,
    as_csv: bool,
    as_json: bool,
) -> None:
    """Metric histories of RUN as terminal charts (all non-system metrics without KEY)."""
    c = client()
    rn = c.get_run(run)
    available = sorted(rn.data.metrics)
    chosen = list(dict.fromkeys(keys)) or [k for k in available if not k.startswith("system/")]
    missing = [k for k in chosen if k not in rn.data.metrics]
    if missing:
        raise click.BadParameter(
            f"run {short_id(run)} has no metric {', '.join(map(repr, missing))}; "
            f"it has: {', '.join(available) or 'none'}",
            param_hint="KEY",
        )
    histories: dict[str, list[Any]] = {
        k: ordered_history(h) for k, h in c.get_metric_histories(run, chosen).items()
    }
    if as_json:
        term.echo_json(
            {"run_id": run, "metrics": {k: history_to_dicts(h) for k, h in histories.items()}}
        )
        return
    if as_csv:
        term.echo_csv(
            ["key", "step", "timestamp", "value"],
            ([k, m.step, m.timestamp, m.value] for k, h in histories.items() for m in h),
        )
        return
    for i, (k, h) in enumerate(histories.items()):
        if i:
            term.emit()
        last = h[-1].value if h else None
        term.emit(term.styled(k, "bold"), f"  last {fmt_value(last)}  ({len(h)} points)")
        for line in line_chart([(m.step, m.value) for m in h], width, height):
            click.echo(line.rstrip())
