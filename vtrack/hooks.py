"""Git hooks: ``vtrack hooks install/uninstall/run``.

``install`` writes one small script per hook into the repository's hooks folder (``git
rev-parse --git-path hooks``, so ``core.hooksPath`` is honoured). A hook already there
is never overwritten: it is renamed ``<hook>.vtrack-chained`` and run first, with the
same arguments and input, and its exit status is the hook's; ``uninstall`` puts it
back. vtrack's part runs ``vtrack hooks run <hook>`` (the shims in the project's
``hooks/`` folder are the same command), which never fails the git command: an error
is printed as a warning and the exit status is 0.

What each hook does:

- ``pre-push`` — also pushes the runs whose parent commits are being pushed, to the
  same remote (off with ``git config vtrack.pushRuns false``);
- ``post-commit`` — a run made on a dirty tree whose code snapshot equals the new
  commit's tree is linked to it: tag ``vtrack.linked_commit`` (shown by ``show``/``diff``);
- ``post-merge``, ``post-checkout`` — keep the derived index fresh.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from vtrack import gitcmd
from vtrack.store.archive_table import PARENTS_FILE
from vtrack.store.refs import ARCHIVE, ROOT, RUNS

if TYPE_CHECKING:
    from vtrack.store import Store
    from vtrack.store.runs import RunRepository

HOOKS = ("pre-push", "post-commit", "post-merge", "post-checkout")
CHAINED_SUFFIX = ".vtrack-chained"
MARKER = "# installed by vtrack hooks install"
#: Tag set by the post-commit hook on a dirty run whose snapshot the new commit matches.
LINKED_COMMIT_TAG = "vtrack.linked_commit"
_ZERO = "0" * 40


def precheck(name: str) -> list[str]:
    """Shell lines that set ``need=1`` only when hook ``name`` may have work to do.

    Starting Python costs a third of a second, which a hook with nothing to do (nearly
    every commit and push) should not pay. The checks are one or two git calls and are
    conservative: they may say "maybe" when vtrack then finds nothing, never "no" when
    it would have done something — ``post-commit`` runs vtrack only when a run was made
    on the new commit's parent, ``pre-push`` only when a run was made on a commit being
    pushed and ``vtrack.pushRuns`` is not false, ``post-merge``/``post-checkout`` only
    when the repository has runs. Reads ``$input`` (pre-push's standard input) and the
    hook's arguments.
    """
    # runs with their own ref, then archived runs (each batch lists its runs' parents)
    parents = (f"{{ git for-each-ref --format='%(parent)' {RUNS}; "
               f"git for-each-ref --format='%(objectname):{PARENTS_FILE}' {ARCHIVE} | "
               "git cat-file --batch 2>/dev/null; }")  # fmt: skip
    if name == "post-commit":
        return [
            "need=0",
            "p=$(git rev-parse -q --verify 'HEAD^' 2>/dev/null) &&",
            f'  {parents} | grep -q "$p" && need=1',
        ]
    if name == "pre-push":
        zero = _ZERO
        return [
            "need=0",
            'if [ "$(git config --bool vtrack.pushRuns)" != "false" ]; then',
            f"  made_on=$({parents})",
            '  if [ -n "$made_on" ]; then',
            '    list=$(mktemp) || list=""',
            '    if [ -z "$list" ]; then need=1; else',
            "      printf '%s\\n' $made_on ALL > \"$list\"",
            "      printf '%s\\n' \"$input\" | while read -r lref lsha rref rsha; do",
            f'        [ -n "$lsha" ] && [ "$lsha" != {zero} ] || continue',
            f'        case "$rref" in {ROOT}*) continue ;; esac',
            f'        if [ "$rsha" != {zero} ] && git rev-list "$lsha" --not "$rsha" --remotes="$1" 2>/dev/null',
            '        then :; else git rev-list "$lsha" --not --remotes="$1" 2>/dev/null || echo ALL; fi',
            '      done | grep -qxFf "$list" && need=1',
            '      rm -f "$list"',
            "    fi",
            "  fi",
            "fi",
        ]
    return ["need=0", f'[ -n "$(git for-each-ref --count=1 {RUNS} {ARCHIVE})" ] && need=1']


def shim(name: str) -> str:
    """The text of the project's ``hooks/<name>`` shim."""
    lines = [
        "#!/bin/sh",
        f"# vtrack's {name} hook: 'vtrack hooks run' warns on errors and never blocks git.",
        "command -v vtrack >/dev/null 2>&1 || exit 0",
    ]
    if name == "pre-push":
        lines.append("input=$(cat)")
    lines += precheck(name)
    lines.append('[ "$need" = 1 ] || exit 0')
    if name == "pre-push":
        lines.append(f'printf \'%s\\n\' "$input" | exec vtrack hooks run {name} "$@"')
    else:
        lines.append(f'exec vtrack hooks run {name} "$@"')
    return "\n".join(lines) + "\n"


def _installed(name: str) -> str:
    reads_input = name == "pre-push"
    lines = [
        "#!/bin/sh",
        MARKER,
        f"# runs {name}{CHAINED_SUFFIX} (the hook that was here before) first, then vtrack's.",
    ]
    if reads_input:
        lines.append("input=$(cat)")
    feed = "printf '%s\\n' \"$input\" | " if reads_input else ""
    lines += [
        "status=0",
        f'chained="$0{CHAINED_SUFFIX}"',
        f'if [ -x "$chained" ]; then {feed}"$chained" "$@" || status=$?; fi',
        'if [ "$status" -eq 0 ] && command -v vtrack >/dev/null 2>&1; then',
        *("  " + line for line in precheck(name)),
        f'  if [ "$need" = 1 ]; then {feed}vtrack hooks run {name} "$@" || true; fi',
        "fi",
        'exit "$status"',
    ]
    return "\n".join(lines) + "\n"


def hooks_dir(store: Store) -> Path:
    """The folder git runs hooks from (``core.hooksPath`` honoured)."""
    loc = store.location
    cwd = loc.worktree or loc.git_dir
    out = gitcmd.output(["rev-parse", "--git-path", "hooks"], cwd=cwd, git_dir=loc.head_dir)
    path = Path(out)
    return path if path.is_absolute() else (Path(cwd) / path).resolve()


def install(store: Store) -> dict[str, str]:
    """Install vtrack's hooks; return ``{hook: "installed" | "chained" | "already installed"}``."""
    folder = hooks_dir(store)
    folder.mkdir(parents=True, exist_ok=True)
    done = {}
    for name in HOOKS:
        path = folder / name
        chained = folder / (name + CHAINED_SUFFIX)
        if path.exists() and MARKER in _text(path):
            done[name] = "already installed"
            path.write_text(_installed(name))
            continue
        if path.exists() or path.is_symlink():
            if chained.exists():
                raise FileExistsError(f"{chained} exists already; move it away first")
            os.rename(path, chained)
            done[name] = "chained"
        else:
            done[name] = "installed"
        path.write_text(_installed(name))
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return done


def uninstall(store: Store) -> dict[str, str]:
    """Remove vtrack's hooks, putting chained ones back; return ``{hook: what happened}``."""
    folder = hooks_dir(store)
    done = {}
    for name in HOOKS:
        path = folder / name
        chained = folder / (name + CHAINED_SUFFIX)
        if not path.exists() or MARKER not in _text(path):
            continue
        path.unlink()
        if chained.exists() or chained.is_symlink():
            os.rename(chained, path)
            done[name] = "restored the previous hook"
        else:
            done[name] = "removed"
    return done


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def run(repo: RunRepository, name: str, args: list[str], stdin: str) -> str | None:
    """Do hook ``name``'s work; return a line to show, or None. Errors propagate (the
    command line turns them into a warning)."""
    if name == "pre-push":
        return _pre_push(repo, args, stdin)
    if name == "post-commit":
        return _post_commit(repo)
    if name in ("post-merge", "post-checkout"):
        repo.index()
        return None
    raise ValueError(f"vtrack has no {name!r} hook (it has {', '.join(HOOKS)})")


def _pre_push(repo: RunRepository, args: list[str], stdin: str) -> str | None:
    store = repo.store
    pushed, remote_known = [], []
    for line in stdin.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[1] == _ZERO or parts[2].startswith(ROOT):
            continue
        pushed.append(parts[1])
        if parts[3] != _ZERO:
            remote_known.append(parts[3])
    if not pushed or not args:
        return None
    setting = gitcmd.run(["config", "--bool", "--get", "vtrack.pushRuns"],
                         git_dir=store.location.git_dir, check=False)  # fmt: skip
    if setting.stdout.strip() == b"false":
        return None
    parents = store.refs.run_parents()
    if not parents:
        return None
    known = [s for s in remote_known if store.objects.exists(s)]
    res = gitcmd.run(["rev-list", *pushed, "--not", *known, f"--remotes={args[0]}"],
                     git_dir=store.location.git_dir)  # fmt: skip
    commits = set(res.stdout.decode().split())
    runs = sorted(r for r, parent in parents.items() if parent in commits)
    if not runs:
        return None
    from vtrack.sharing import push

    report = push(repo, args[0], runs)
    return f"vtrack: pushed {len(report.runs)} run(s) made on the pushed commits to {args[0]}"


def _post_commit(repo: RunRepository) -> str | None:
    store = repo.store
    head, _ = store.refs.read_head(store.location.head_dir)
    if head is None:
        return None
    commit = store.objects.read_commit(head)
    if not commit["parents"]:
        return None
    parent = commit["parents"][0]
    linked = []
    for run_id, run_parent in store.refs.run_parents().items():
        if run_parent != parent:
            continue
        state = repo.state(run_id)
        source = state.record.info.get("source") or {}
        if source.get("dirty") and source.get("code_tree") == commit["tree"]:
            if state.record.tags.get(LINKED_COMMIT_TAG) != head:
                writer = repo.writer(run_id)
                writer.set_tags({LINKED_COMMIT_TAG: head})
                writer.detach()
                linked.append(run_id)
    if not linked:
        return None
    return f"vtrack: linked {len(linked)} run(s) to commit {head[:12]}"
