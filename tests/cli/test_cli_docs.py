"""docs/cli.md carries the command reference generated from click; it must stay current.

Regenerate the reference section after changing a command's help::

    python -m tests.cli.test_cli_docs
"""

from __future__ import annotations

import re
import sys

import click

from tests.conftest import ROOT

DOC = ROOT / "docs" / "cli.md"
START, END = "<!-- reference:start -->", "<!-- reference:end -->"
#: The commands docs/cli.md documents (others document theirs on their own pages).
DOCUMENTED = (
    "ls",
    "log",
    "show",
    "diff",
    "compare",
    "metrics",
    "checkout",
    "rerun",
    "rm",
    "restore",
    "tag",
    "experiments",
    "index",
    "archive",
    "import-mlflow",
    "export-mlflow",
)


def _help(cmd: click.Command, name: str, parent: click.Context) -> tuple[str, click.Context]:
    ctx = click.Context(
        cmd, info_name=name, parent=parent, terminal_width=100, max_content_width=100
    )
    return cmd.get_help(ctx), ctx


def reference() -> str:
    """The reference section: every documented command's --help, groups with their subcommands."""
    from vtrack.cli import cli

    # help options are inherited from the group (-h, --help), as when vtrack runs
    root = click.Context(cli, info_name="vtrack", **cli.context_settings)
    out = []
    for name in DOCUMENTED:
        cmd = cli.get_command(root, name)
        assert cmd is not None, name
        text, ctx = _help(cmd, name, root)
        out.append(f"### vtrack {name}\n\n```text\n{text}\n```\n")
        if isinstance(cmd, click.Group):
            for sub in cmd.list_commands(ctx):
                sub_cmd = cmd.get_command(ctx, sub)
                assert sub_cmd is not None
                sub_text, _ = _help(sub_cmd, sub, ctx)
                out.append(f"#### vtrack {name} {sub}\n\n```text\n{sub_text}\n```\n")
    return "\n".join(out)


def _section(text: str) -> str:
    m = re.search(re.escape(START) + r"\n(.*)" + re.escape(END), text, re.S)
    assert m is not None, "docs/cli.md lost its reference markers"
    return m.group(1)


def test_cli_reference_matches_the_commands() -> None:
    assert _section(DOC.read_text()).strip() == reference().strip(), (
        "docs/cli.md is out of date: run python -m tests.cli.test_cli_docs"
    )


def test_every_command_is_registered_and_documented() -> None:
    from vtrack.cli import COMMANDS, SHORT_HELP

    for name in DOCUMENTED:
        assert name in COMMANDS and name in SHORT_HELP
        assert f"### vtrack {name}\n" in DOC.read_text()


if __name__ == "__main__":
    text = DOC.read_text()
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    DOC.write_text(f"{before}{START}\n{reference()}\n{END}{after}")
    sys.stdout.write(f"updated {DOC}\n")
