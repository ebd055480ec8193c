"""Before/after: run benchmark scripts against two source trees, interleaved, side by side.

    PYTHONPATH=. python benchmarks/compare_trees.py --before /tmp/before9 --after . \
        --rounds 3 "bench_logging.py" "bench_search.py --no-mlflow --quick"

Each round runs every script once per tree, alternating which tree goes first, so a
machine whose load drifts (this one is shared) weighs on both sides alike. The scripts
are this tree's copies (``benchmarks/``), run with ``PYTHONPATH`` set to the tree under
test, so both sides are measured by the same code. Every markdown table row a script
prints (``| figure | vtrack | …``) is read: the first cell names the figure, the second
holds the vtrack value. Prints, per figure, min/median/max on each side and the ratio of
the medians (after / before; below 1 is faster when the figure is a time).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def figures(output: str) -> dict[str, float]:
    """``{figure: first number of its vtrack cell}`` from the markdown tables in ``output``."""
    out: dict[str, float] = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0] or set(cells[0]) <= {"-", " "} or cells[0] == "figure":
            continue
        m = NUMBER.search(cells[1])
        if m:
            out[cells[0]] = float(m.group().replace(",", ""))
    return out


def run(script: str, tree: Path) -> dict[str, float]:
    """Run one benchmark command against ``tree``; its figures (empty if it failed)."""
    argv = shlex.split(script)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [sys.executable, str(HERE / argv[0]), *argv[1:]],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        print(f"! {script} against {tree} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return {}
    return figures(proc.stdout)


def spread(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{min(values):g} / {statistics.median(values):g} / {max(values):g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True)
    ap.add_argument("--after", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("scripts", nargs="+", help="benchmark commands, relative to benchmarks/")
    args = ap.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    for r in range(args.rounds):
        order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
        for script in args.scripts:
            for side in order:
                for fig, value in run(script, trees[side]).items():
                    by_side = results.setdefault(script, {}).setdefault(fig, {})
                    by_side.setdefault(side, []).append(value)
            print(f"round {r + 1}/{args.rounds}: {script} done", file=sys.stderr)
    print(f"before = {trees['before']}\nafter = {trees['after']}\nrounds = {args.rounds}\n")
    print(
        "| benchmark | figure | before min / median / max | after min / median / max | after ÷ before (medians) |"
    )
    print("|---|---|---|---|---|")
    for script, figs in results.items():
        for fig, sides in figs.items():
            b, a = sides.get("before", []), sides.get("after", [])
            ratio = (
                f"{statistics.median(a) / statistics.median(b):.2f}"
                if a and b and statistics.median(b)
                else "—"
            )
            print(f"| `{script}` | {fig} | {spread(b)} | {spread(a)} | {ratio} |")


if __name__ == "__main__":
    main()
