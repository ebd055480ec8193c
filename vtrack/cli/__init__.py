"""The ``vtrack`` command (also ``git vtrack``): a click group with lazily loaded commands.

Subcommand modules are imported only when their command runs, so ``vtrack --help``
stays fast. Every ``VtrackError`` is turned into one line on stderr and the exit
code its class names.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from vtrack.errors import EXIT_USAGE, VtrackError

#: command name -> "module:attribute"; a command module registers itself here.
COMMANDS: dict[str, str] = {
    "recover": "vtrack.cli.admin:recover",
    "gc": "vtrack.cli.admin:gc",
    "ls": "vtrack.cli.runs:ls",
    "log": "vtrack.cli.runs:log",
    "show": "vtrack.cli.runs:show",
    "rm": "vtrack.cli.runs:rm",
    "restore": "vtrack.cli.runs:restore",
    "tag": "vtrack.cli.runs:tag",
    "experiments": "vtrack.cli.runs:experiments",
    "diff": "vtrack.cli.compare:diff",
    "compare": "vtrack.cli.compare:compare",
    "metrics": "vtrack.cli.compare:metrics",
    "checkout": "vtrack.cli.repro:checkout",
    "rerun": "vtrack.cli.repro:rerun",
    "index": "vtrack.cli.runs:index",
    "audit": "vtrack.cli.provenance:audit",
    "lineage": "vtrack.cli.provenance:lineage",
    "push": "vtrack.cli.share:push",
    "pull": "vtrack.cli.share:pull",
    "clone": "vtrack.cli.share:clone",
    "remote": "vtrack.cli.share:remote",
    "hooks": "vtrack.cli.share:hooks",
    "scrub": "vtrack.cli.share:scrub",
}

#: one-line help shown by ``vtrack --help`` without importing the command modules.
SHORT_HELP: dict[str, str] = {
    "recover": "Finalize runs whose process died (KILLED, journal kept).",
    "gc": "Remove large artifact objects no run references; report bytes freed.",
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
    "push": "Share runs, experiments and their large objects with a remote.",
    "pull": "Fetch teammates' runs from a remote (large objects on first use).",
    "clone": "git clone a repository, then pull every run.",
    "remote": "Configure a remote's large-object store (set-objects, show).",
    "hooks": "Install git hooks that push runs with their commits (install, uninstall).",
    "scrub": "Rewrite a run without some files (e.g. secrets) before sharing it.",
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
        return cmd  # type: ignore[no-any-return]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vtrack", prog_name="vtrack")
@click.option(
    "--store", "tracking_uri", envvar="VTRACK_TRACKING_URI", default=None, metavar="PATH",
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
    """A one-line progress bar on stderr for tasks that take more than a second."""

    DELAY = 1.0

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.shown = False

    def __call__(self, task: str, done: int, total: int) -> None:
        import time

        now = time.monotonic()
        first = self.started.setdefault(task, now)
        if done >= total:
            self.started.pop(task, None)
            if self.shown:
                sys.stderr.write("\r\x1b[2K")
                sys.stderr.flush()
                self.shown = False
            return
        if now - first < self.DELAY:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        sys.stderr.write(f"\r{task} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}")
        sys.stderr.flush()
        self.shown = True


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``vtrack`` and ``git-vtrack`` scripts."""
    if sys.stderr.isatty():
        from vtrack import progress

        progress.set_reporter(_TerminalProgress())
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
    # without standalone mode click returns the code of ctx.exit(n) / raise Exit(n)
    sys.exit(rc if isinstance(rc, int) else 0)
