"""The README demo: track runs in a fresh git repository, then list, diff, check out, rerun, audit.

    python examples/demo.py            # in a temporary folder, removed at the end
    python examples/demo.py ./my-demo  # in ./my-demo (must not exist), kept to explore

What it does, every step a real process as a user would run it:

1. creates a git repository with a small training script (a logistic regression
   written in plain Python, so it needs nothing beyond vtrack) and commits it; its data
   lives in ``data/``, which is gitignored (the common case);
2. trains three times with different learning rates and epochs
   (``python train.py --lr ... --epochs ...``), each run becoming a git commit on
   ``refs/vtrack/runs/<id>``;
3. edits the script without committing (adds L2 regularisation) and trains once more:
   the run records the edited code, not the committed one;
4. shows ``vtrack ls`` and ``vtrack diff @ @~1`` (the edited run against the one
   before it: params, metrics, code and environment);
5. the three uses: ``vtrack checkout RUN --into DIR`` (the edited code as it ran, with
   the gitignored data linked in), ``vtrack rerun RUN --yes`` (runs it again and says
   ``reproduced``), then changes a data file and shows ``vtrack audit RUN`` finding it
   (exit 1) and ``vtrack rerun`` refusing to run on drifted data.

It finishes in a few seconds and exits non-zero if any step fails (or a step that
should report drift does not).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

TRAIN_SCRIPT = textwrap.dedent(
    '''\
    """Logistic regression by gradient descent, in plain Python, tracked with vtrack."""

    import argparse
    import csv
    import math

    import vtrack

    L2 = 0.0  # weight decay

    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=20)
    args = p.parse_args()

    with open("data/points.csv") as f:
        rows = [[float(x) for x in row] for row in csv.reader(f)]
    split = int(len(rows) * 0.8)
    train, test = rows[:split], rows[split:]


    def predict(w, x):
        z = w[0] + sum(wi * xi for wi, xi in zip(w[1:], x))
        return 1 / (1 + math.exp(-z))


    def evaluate(w, data):
        tp = fp = fn = correct = 0
        loss = 0.0
        for *x, y in data:
            prob = min(max(predict(w, x), 1e-12), 1 - 1e-12)
            loss -= y * math.log(prob) + (1 - y) * math.log(1 - prob)
            guess = 1.0 if prob >= 0.5 else 0.0
            correct += guess == y
            tp += guess == 1 and y == 1
            fp += guess == 1 and y == 0
            fn += guess == 0 and y == 1
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        return loss / len(data), correct / len(data), f1


    vtrack.set_experiment("demo")
    with vtrack.start_run():
        vtrack.log_params({"lr": args.lr, "epochs": args.epochs, "l2": L2, "model": "logreg"})
        if hasattr(vtrack, "log_input"):
            vtrack.log_input("data/points.csv", name="points", context="train")
        w = [0.0] * len(train[0])
        for epoch in range(args.epochs):
            for *x, y in train:
                err = predict(w, x) - y
                w[0] -= args.lr * err
                for i, xi in enumerate(x, start=1):
                    w[i] -= args.lr * (err * xi + L2 * w[i])
            loss, acc, _ = evaluate(w, train)
            vtrack.log_metrics({"train_loss": loss, "train_acc": acc}, step=epoch)
        loss, acc, f1 = evaluate(w, test)
        vtrack.log_metrics({"test_loss": loss, "test_acc": acc, "test_f1": f1})
        print(f"lr={args.lr} epochs={args.epochs} l2={L2}: test_acc={acc:.3f} f1={f1:.3f}")
    '''
)

#: (lr, epochs) of the committed-code runs.
RUNS = [("0.01", "10"), ("0.1", "10"), ("0.5", "25")]


def make_data(path: Path, n: int = 300, seed: int = 7) -> None:
    """Two overlapping clouds of points with a 0/1 label, written as CSV."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        y = rng.random() < 0.5
        cx, cy = (1.0, 1.0) if y else (-1.0, -0.5)
        lines.append(f"{rng.gauss(cx, 1.2):.4f},{rng.gauss(cy, 1.2):.4f},{int(y)}")
    path.write_text("\n".join(lines) + "\n")


def clean_env() -> dict[str, str]:
    """The environment of the demo's processes: this repository's store, a known identity."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VTRACK_", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"))
    }
    env.setdefault("GIT_AUTHOR_NAME", "vtrack demo")
    env.setdefault("GIT_AUTHOR_EMAIL", "demo@example.com")
    env.setdefault("GIT_COMMITTER_NAME", env["GIT_AUTHOR_NAME"])
    env.setdefault("GIT_COMMITTER_EMAIL", env["GIT_AUTHOR_EMAIL"])
    env.setdefault("COLUMNS", "120")
    return env


def step(
    cmd: list[str], cwd: Path, env: dict[str, str], show: str | None = None, expect: int = 0
) -> str:
    """Run ``cmd``, print it (as ``show``) and its output; exit the demo unless it exits ``expect``."""
    print(f"$ {show or ' '.join(cmd)}", flush=True)
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    out = res.stderr + res.stdout  # a rerun's plan (stderr) comes before its verdict
    if out.strip():
        print(out.rstrip(), flush=True)
    if res.returncode != expect:
        print(
            f"demo: '{show or ' '.join(cmd)}' exited {res.returncode}, not {expect}",
            file=sys.stderr,
        )
        sys.exit(1)
    return res.stdout


def run_demo(repo: Path) -> None:
    """Create the repository at ``repo`` (must not exist) and run every step there."""
    env = clean_env()
    py = sys.executable
    vtrack = [py, "-m", "vtrack"]
    repo.mkdir(parents=True)
    (repo / "train.py").write_text(TRAIN_SCRIPT)
    (repo / ".gitignore").write_text("data/\n")
    (repo / "data").mkdir()
    make_data(repo / "data" / "points.csv")
    print(f"# a fresh repository in {repo}; data/ is gitignored\n")
    step(["git", "init", "-q", "-b", "main"], repo, env, "git init")
    step(["git", "add", "train.py", ".gitignore"], repo, env, "git add train.py .gitignore")
    step(
        ["git", "commit", "-q", "-m", "logistic regression"],
        repo,
        env,
        "git commit -m 'logistic regression'",
    )
    print("\n# three runs of the committed code")
    for lr, epochs in RUNS:
        step(
            [py, "train.py", "--lr", lr, "--epochs", epochs],
            repo,
            env,
            f"python train.py --lr {lr} --epochs {epochs}",
        )
    print("\n# an uncommitted edit (L2 regularisation), then one more run")
    script = repo / "train.py"
    script.write_text(script.read_text().replace("L2 = 0.0", "L2 = 0.01"))
    lr, epochs = RUNS[-1]
    step(
        [py, "train.py", "--lr", lr, "--epochs", epochs],
        repo,
        env,
        f"python train.py --lr {lr} --epochs {epochs}",
    )
    print()
    step([*vtrack, "ls"], repo, env, "vtrack ls")
    print()
    step([*vtrack, "diff", "@~1", "@"], repo, env, "vtrack diff @~1 @")
    edited = (
        step(
            [*vtrack, "ls", "-n", "1", "--csv", "-c", "id"], repo, env, "vtrack ls -n 1 --csv -c id"
        )
        .splitlines()[-1]
        .strip()[:8]
    )
    print("\n# 1. reproducible checkout: the edited run's exact code, and its data, in ./repro")
    step(
        [*vtrack, "checkout", edited, "--into", "repro"],
        repo,
        env,
        f"vtrack checkout {edited} --into repro",
    )
    step(
        ["git", "worktree", "remove", "--force", "repro"],
        repo,
        env,
        "git worktree remove --force repro",
    )
    print("\n# 2. run it again from its snapshot and compare: reproduced, diverged or failed")
    step([*vtrack, "rerun", edited, "--yes"], repo, env, f"vtrack rerun {edited} --yes")
    print("\n# 3. dataset audit: someone appends a row to the data")
    with open(repo / "data" / "points.csv", "a") as f:
        f.write("0.5000,0.5000,1\n")
    step([*vtrack, "audit", edited], repo, env, f"vtrack audit {edited}", expect=1)
    step([*vtrack, "rerun", edited, "--yes"], repo, env, f"vtrack rerun {edited} --yes", expect=1)
    print(
        "\nTry also: vtrack log, vtrack show @, vtrack compare @ @~1 @~2, "
        f"vtrack metrics @ train_loss, vtrack rerun {edited} --yes --allow-drift"
    )


def main(argv: list[str]) -> int:
    """Run the demo in ``argv[0]`` (kept) or in a temporary folder (removed)."""
    if argv:
        target = Path(argv[0]).resolve()
        if target.exists():
            print(f"demo: {target} already exists; give a new folder", file=sys.stderr)
            return 2
        run_demo(target)
        print(f"\nThe repository is kept at {target}")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="vtrack-demo-"))
    try:
        run_demo(tmp / "demo")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("(run 'python examples/demo.py ./vtrack-demo' to keep the repository and explore it)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
