"""``vtrack ui``: serve the web UI of the store on 127.0.0.1."""

from __future__ import annotations

import click

from vtrack.cli._options import client


@click.command("ui")
@click.option("--port", "-p", default=5000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; a non-loopback address is warned about.")  # fmt: skip
@click.option("--open", "open_browser", is_flag=True, help="Open the default browser.")
@click.option("--poll", default=2.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="Seconds between refreshes of running runs in the table.")  # fmt: skip
@click.option("--experiment", "-e", "experiment", metavar="NAME",
              help="Experiment name or id the runs table starts on.")  # fmt: skip
def ui(port: int, host: str, open_browser: bool, poll: float, experiment: str | None) -> None:
    """Serve a read-only web UI of the runs: table, run pages, compare, charts."""
    from vtrack.ui.server import check_dependencies, serve

    check_dependencies()
    c = client()
    exp_id = None
    if experiment:
        from vtrack.errors import ExperimentNotFoundError

        found = c.get_experiment_by_name(experiment)
        if found is None:
            try:
                found = c.get_experiment(experiment)
            except ExperimentNotFoundError:
                raise click.BadParameter(
                    f"no experiment named {experiment!r}", param_hint="--experiment"
                ) from None
        exp_id = found.experiment_id
    serve(c, host, port, experiment_id=exp_id, open_browser=open_browser, poll_ms=int(poll * 1000))
