"""Comparison commands: ``diff`` (two runs), ``compare`` (several), ``metrics`` (histories).

The model is :mod:`vtrack.diff`, shared with the web UI; this module reads runs,
asks git for the code section and prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from vtrack.cli import _render as r
from vtrack.cli._options import client, csv_option, experiment_option, json_option, split_list
from vtrack.cli._types import RunSpec

if TYPE_CHECKING:
    from vtrack.client import TrackingClient
    from vtrack.diff import FileStat
    from vtrack.entities import Experiment, Run

#: Pathspec that leaves the run record out of code diffs.
CODE_PATHSPEC = ["--", ".", ":(exclude,top).vtrack"]
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


def code_files(c: TrackingClient, a: Run, b: Run) -> tuple[FileStat, ...]:
    """Files that differ between the code snapshots of two runs (``git diff --numstat``)."""
    from vtrack import gitcmd
    from vtrack.diff import code_captured, parse_numstat

    if not (code_captured(a) and code_captured(b)):
        return ()
    tree_a = (a.info.source or {}).get("code_tree")
    if tree_a and tree_a == (b.info.source or {}).get("code_tree"):
        return ()
    res = gitcmd.run(
        ["diff", "--numstat", "-z", "-M", "--no-ext-diff", a.info.commit or "",
         b.info.commit or "", *CODE_PATHSPEC],
        git_dir=c.store.location.git_dir,
    )
    return parse_numstat(res.stdout.decode("utf-8", "replace"))


def code_patch(c: TrackingClient, a: Run, b: Run, color: bool) -> str:
    """The full patch between the code snapshots of two runs."""
    from vtrack import gitcmd

    res = gitcmd.run(
        ["diff", "-M", "--no-ext-diff", f"--color={'always' if color else 'never'}",
         a.info.commit or "", b.info.commit or "", *CODE_PATHSPEC],
        git_dir=c.store.location.git_dir,
    )
    return res.stdout.decode("utf-8", "replace")


@click.command("diff")
@click.argument("run_a", type=RunSpec(include_deleted=True))
@click.argument("run_b", type=RunSpec(include_deleted=True))
@click.option("--only", metavar="SECTIONS",
              help="Comma-separated sections: params,metrics,datasets,artifacts,code,environment.")
@click.option("--code", "full_code", is_flag=True, help="Show the full code patch, not only the stat.")
@click.option("--all", "show_all", is_flag=True, help="Also list entries that did not change.")
@click.option("--exit-code", is_flag=True, help="Exit 1 when the runs differ (like git diff).")
@experiment_option()
@json_option
def diff(
    run_a: str, run_b: str, only: str | None, full_code: bool, show_all: bool, exit_code: bool,
    experiment: Experiment | None, as_json: bool,
) -> None:
    """What changed from RUN_A to RUN_B: params, metrics, data, artifacts, code, environment."""
    from vtrack.diff import SECTIONS, build_code_diff, diff_runs

    sections = _sections(only, SECTIONS)
    c = client()
    a, b = c.get_run(run_a), c.get_run(run_b)
    code = None
    if "code" in sections:
        files = code_files(c, a, b)
        patch = None
        if full_code and files:
            patch = code_patch(c, a, b, color=not as_json and r.color_enabled())
        code = build_code_diff(a, b, files, patch, include_unchanged=show_all)
    result = diff_runs(a, b, code=code, include_unchanged=show_all)
    if as_json:
        r.echo_json(result.to_dict(sections))
    else:
        r.print_diff(result, sections, STAT_WIDTH)
    if exit_code and not all(result.section_empty(s) for s in sections):
        raise click.exceptions.Exit(1)


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=RunSpec(include_deleted=True))
@click.option("--only", metavar="SECTIONS",
              help="Comma-separated sections: info,params,metrics,datasets,artifacts,"
                   "environment,tags.")
@click.option("--all", "show_all", is_flag=True, help="Show rows whose values are all equal too.")
@experiment_option()
@csv_option
@json_option
def compare(
    runs: tuple[str, ...], only: str | None, show_all: bool, experiment: Experiment | None,
    as_csv: bool, as_json: bool,
) -> None:
    """Runs side by side: one column per run, differing rows only, best metrics marked *."""
    from vtrack.diff import COMPARE_SECTIONS, compare_runs

    if len(runs) < 2:
        raise click.UsageError("compare needs at least two runs")
    sections = _sections(only, COMPARE_SECTIONS)
    c = client()
    table = compare_runs([c.get_run(x) for x in runs], sections=sections, all_rows=show_all)
    if as_json:
        r.echo_json(table.to_dict())
    elif as_csv:
        r.echo_csv(["section", "key", *[x.run_id for x in table.runs]],
                   ([row.section, row.key, *row.values] for row in table.rows))
    else:
        r.print_compare(table)


@click.command("metrics")
@click.argument("run", type=RunSpec(include_deleted=True))
@click.argument("keys", nargs=-1, metavar="[KEY]...")
@click.option("--width", default=CHART_WIDTH, show_default=True, type=click.IntRange(8, 400),
              help="Chart width in columns.")
@click.option("--height", default=CHART_HEIGHT, show_default=True, type=click.IntRange(3, 100),
              help="Chart height in rows.")
@experiment_option()
@csv_option
@json_option
def metrics(
    run: str, keys: tuple[str, ...], width: int, height: int, experiment: Experiment | None,
    as_csv: bool, as_json: bool,
) -> None:
    """Metric histories of RUN as terminal charts (all non-system metrics without KEY)."""
    c = client()
    rn = c.get_run(run)
    available = sorted(rn.data.metrics)
    chosen = list(dict.fromkeys(keys)) or [k for k in available if not k.startswith("system/")]
    missing = [k for k in chosen if k not in rn.data.metrics]
    if missing:
        raise click.BadParameter(
            f"run {r.short_id(run)} has no metric {', '.join(map(repr, missing))}; "
            f"it has: {', '.join(available) or 'none'}", param_hint="KEY",
        )
    histories: dict[str, list[Any]] = {
        k: sorted(c.get_metric_history(run, k), key=lambda m: (m.step, m.timestamp))
        for k in chosen
    }
    if as_json:
        r.echo_json({
            "run_id": run,
            "metrics": {k: [{"step": m.step, "timestamp": m.timestamp, "value": m.value}
                            for m in h] for k, h in histories.items()},
        })
        return
    if as_csv:
        r.echo_csv(["key", "step", "timestamp", "value"],
                   ([k, m.step, m.timestamp, m.value] for k, h in histories.items() for m in h))
        return
    for i, (k, h) in enumerate(histories.items()):
        if i:
            r.emit()
        last = h[-1].value if h else None
        r.emit(r.styled(k, "bold"), f"  last {r.fmt_value(last)}  ({len(h)} points)")
        for line in r.line_chart([(m.step, m.value) for m in h], width, height):
            click.echo(line.rstrip())
