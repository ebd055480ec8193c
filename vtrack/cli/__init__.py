"""The ``vtrack`` command (also ``git vtrack``): a click group with lazily loaded commands.

Subcommand modules are imported only when their command runs, so ``vtrack --help``
stays fast. Every ``VtrackError`` is turned into one line on stderr and the exit
code its class names. Any other exception is a bug in vtrack: one line on stderr says so
and where its traceback went (a file in the temp folder; on stderr too with
``VTRACK_DEBUG=1``), and the exit code is 70 (:data:`~vtrack.errors.EXIT_INTERNAL`), so
that exit code 1 always means drift or divergence.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, TextIO

import click

from vtrack.errors import EXIT_INTERNAL, EXIT_USAGE, VtrackError

#: command name -> "module:attribute"; a command module registers itself here.
COMMANDS: dict[str, str] = {
    "recover": "vtrack.cli.admin:recover",
    "gc": "vtrack.cli.admin:gc",
    "archive": "vtrack.cli.admin:archive",
    "ls": "vtrack.cli.runs:ls",
    "log": "vtrack.cli.runs:log",
    "show": "vtrack.cli.runs:show",
    "rm": "vtrack.cli.manage:rm",
    "restore": "vtrack.cli.manage:restore",
    "tag": "vtrack.cli.manage:tag",
    "experiments": "vtrack.cli.experiments:experiments",
    "diff": "vtrack.cli.compare:diff",
    "compare": "vtrack.cli.compare:compare",
    "metrics": "vtrack.cli.compare:metrics",
    "checkout": "vtrack.cli.repro:checkout",
    "rerun": "vtrack.cli.repro:rerun",
    "index": "vtrack.cli.admin:index",
    "audit": "vtrack.cli.provenance:audit",
    "lineage": "vtrack.cli.provenance:lineage",
    "ui": "vtrack.cli.ui:ui",
    "push": "vtrack.cli.share:push",
    "pull": "vtrack.cli.share:pull",
    "clone": "vtrack.cli.share:clone",
    "remote": "vtrack.cli.share:remote",
    "hooks": "vtrack.cli.share:hooks",
    "scrub": "vtrack.cli.share:scrub",
    "import-mlflow": "vtrack.cli.mlflow_io:import_mlflow",
    "export-mlflow": "vtrack.cli.mlflow_io:export_mlflow",
    "models": "vtrack.cli.models:models",
}

#: one-line help shown by ``vtrack --help`` without importing the command modules.
SHORT_HELP: dict[str, str] = {
    "recover": "Finalize runs whose process died (KILLED, journal kept).",
    "gc": "Remove large artifact objects no run references; report bytes freed.",
    "archive": "Compact finished runs into a few archive refs (--undo reverses).",
    "ls": "List runs: filter, sort, choose columns (--json, --csv).",
    "log": "One line per run, newest first, like git log --oneline.",
    "show": "Everything in a run's record, with metric sparklines.",
    "rm": "Move runs to the trash.",
    "restore": "Bring deleted runs back.",
    "tag": "Set or delete tags of a run.",
    "experiments": "List, create, rename and delete experiments.",
    "diff": "Changes between two runs: params, metrics, data, code, env.",
    "compare": "Several runs side by side, best values marked.",
    "metrics": "Metric histories of a run as terminal charts or CSV.",
    "checkout": "Put a run's exact code, params and artifacts on disk.",
    "rerun": "Run a run again from its snapshot: reproduced or diverged?",
    "index": "Rebuild the derived run index (index rebuild).",
    "audit": "Is the data on disk still what a run saw? (exit 1 on drift)",
    "lineage": "Which runs consumed this file, folder or digest?",
    "ui": "Serve a read-only web UI on 127.0.0.1: table, runs, compare.",
    "push": "Share runs, experiments and their large objects with a remote.",
    "pull": "Fetch teammates' runs from a remote (large objects on first use).",
    "clone": "git clone a repository, then pull every run.",
    "remote": "Configure a remote's large-object store (set-objects, show).",
    "hooks": "Install git hooks that push runs with their commits (install, uninstall).",
    "scrub": "Rewrite a run without some files (e.g. secrets) before sharing it.",
    "import-mlflow": "Import an MLflow store's runs (idempotent; histories, artifacts, models).",
    "export-mlflow": "Write vtrack runs into an MLflow store (read back by MLflow's client).",
    "models": "The model registry: ls, show, history, promote, rollback, delete.",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        cmd = getattr(importlib.import_module(module), attr)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vtrack", prog_name="vtrack")
@click.option(
    "--store",
    "tracking_uri",
    envvar="VTRACK_TRACKING_URI",
    default=None,
    metavar="PATH",
    help="Store to use (a git repository, bare repository or file:// URL).",
)
@click.pass_context
def cli(ctx: click.Context, tracking_uri: str | None) -> None:
    """vtrack: experiment tracking inside git. Runs are commits on refs/vtrack/."""
    ctx.obj = {"tracking_uri": tracking_uri}


def get_client(ctx: click.Context | None = None) -> Any:
    """The TrackingClient for the store chosen on the command line."""
    from vtrack.client import TrackingClient

    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    uri = (root.obj or {}).get("tracking_uri")
    return TrackingClient(uri)


class _TerminalProgress:
    """A one-line progress bar for tasks that take more than a second.

    :func:`main` installs it as the :mod:`vtrack.progress` reporter only when stderr is
    a terminal (:func:`_progress_for`), so nothing is drawn when stderr is piped. A
    task's bar appears once the task has run for ``delay`` seconds (default
    :attr:`DELAY`), is redrawn at most every :attr:`REDRAW_SECONDS`, and is erased when
    the task reports its end (``done >= total``), before any error message is written.
    """

    DELAY = 1.0
    REDRAW_SECONDS = 0.1

    def __init__(self, stream: TextIO | None = None, delay: float | None = None) -> None:
        self.stream = stream
        self.delay = self.DELAY if delay is None else delay
        self.started: dict[str, float] = {}
        self.shown = False
        self.drawn_at = float("-inf")

    def __call__(self, task: str, done: int, total: int) -> None:
        import time

        out = self.stream if self.stream is not None else sys.stderr
        now = time.monotonic()
        first = self.started.setdefault(task, now)
        if done >= total:
            self.started.pop(task, None)
            if self.shown:
                out.write("\r\x1b[2K")
                out.flush()
                self.shown = False
            return
        if now - first < self.delay or now - self.drawn_at < self.REDRAW_SECONDS:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        out.write(f"\r{task} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}")
        out.flush()
        self.shown = True
        self.drawn_at = now


def _progress_for(stream: TextIO | None) -> _TerminalProgress | None:
    """The progress bar to draw on ``stream``; None unless ``stream`` is a terminal."""
    try:
        tty = stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # no stream, or a closed one
        tty = False
    return _TerminalProgress(stream) if tty else None


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``vtrack`` and ``git-vtrack`` scripts."""
    reporter = _progress_for(sys.stderr)
    if reporter is not None:
        from vtrack import progress

        progress.set_reporter(reporter)
    try:
        rc = cli.main(args=argv, prog_name="vtrack", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code if exc.exit_code else EXIT_USAGE)
    except VtrackError as exc:
        click.echo(f"vtrack: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - anything else is a bug, reported as one
        report_internal_error(exc)
        sys.exit(EXIT_INTERNAL)
    # without standalone mode click returns the code of ctx.exit(n) / raise Exit(n)
    sys.exit(rc if isinstance(rc, int) else 0)


#: Characters of an internal error's message shown on its one line.
_MESSAGE_CHARS = 300


def report_internal_error(exc: BaseException) -> None:
    """Tell the user on stderr, in one line, that ``exc`` is a vtrack bug and where its traceback is.

    The traceback is written to a new file in the temp folder (the line names it); with
    ``VTRACK_DEBUG=1`` it is printed on stderr after the line instead. If the file
    cannot be written the traceback is printed on stderr.
    """
    import tempfile
    import traceback

    try:
        from vtrack.config import env_debug

        debug = env_debug()
    except Exception:  # noqa: BLE001 - the report must not fail in its turn
        debug = False
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    message = " ".join(str(exc).split())
    if len(message) > _MESSAGE_CHARS:
        message = message[: _MESSAGE_CHARS - 1] + "…"
    what = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    where = None
    if not debug:
        try:
            with tempfile.NamedTemporaryFile(
                "w", prefix="vtrack-traceback-", suffix=".txt", delete=False, encoding="utf-8"
            ) as f:
                f.write(text)
                where = f.name
        except OSError:
            where = None
    if where is not None:
        told = f"its traceback is in {where} (VTRACK_DEBUG=1 prints it here)"
    else:
        told = "its traceback follows"
    sys.stderr.write(
        f"vtrack: internal error (a bug in vtrack, please report it): {what}; {told}\n"
    )
    if where is None:
        sys.stderr.write(text)
    sys.stderr.flush()
