"""``import vtrack as mlflow`` tracking-call overhead vs the same script under MLflow (issue 13).

One training-shaped script — set_experiment, start_run, 10 params, 2 tags, 5 metrics
over STEPS steps, a dict artifact, end_run — runs in a fresh process under vtrack (in a
git repository) and under MLflow 3.17 with a sqlite store, REPEATS times each. Only the
time spent inside tracking calls is counted (imports and the "training" are not), so the
figure is what a ported script saves. Prints min/median/max per engine and the ratio of
medians.

    PYTHONPATH=. python benchmarks/bench_mlflow_compat.py [--quick]

The import of 1,000 MLflow runs (issue 13's other figure) is ``bench_mlflow_import.py``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import git, have_mlflow, python_with_vtrack  # noqa: E402

WORKLOAD = """
import json, sys, time
{import_line}
spent = 0.0
def t(fn, *a, **k):
    global spent
    s = time.perf_counter()
    out = fn(*a, **k)
    spent += time.perf_counter() - s
    return out
t(mlflow.set_experiment, "bench")
run = t(mlflow.start_run, run_name="bench")
t(mlflow.log_params, {{f"p{{i}}": i * 0.1 for i in range(10)}})
t(mlflow.set_tags, {{"team": "nlp", "stage": "dev"}})
for step in range({steps}):
    loss = 1.0 / (step + 1)  # the "training"
    for k in range(5):
        t(mlflow.log_metric, f"m{{k}}", loss * (k + 1), step=step)
t(mlflow.log_dict, {{"layers": [64, 32]}}, "config.json")
t(mlflow.end_run)
print("SPENT", json.dumps(spent))
"""


def run_once(engine: str, steps: int, work: Path) -> float:
    if engine == "vtrack":
        code = WORKLOAD.format(import_line="import vtrack as mlflow", steps=steps)
        env = python_with_vtrack()
    else:
        code = WORKLOAD.format(import_line="import mlflow", steps=steps)
        env = python_with_vtrack()
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    proc = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("SPENT "))
    return float(line.split()[1])


def main() -> None:
    quick = "--quick" in sys.argv
    steps, repeats = (20, 2) if quick else (100, 5)
    if not have_mlflow():
        sys.exit("this benchmark compares with MLflow: pip install mlflow==3.17.2")
    results: dict[str, list[float]] = {"vtrack": [], "mlflow-sqlite": []}
    for _ in range(repeats):
        for engine in results:
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                git(work, "init", "-q", "-b", "main")
                git(work, "commit", "-q", "--allow-empty", "-m", "init")
                results[engine].append(run_once(engine, steps, work))
    print(f"tracking calls of one script: {steps} steps x 5 metrics, 10 params, 2 tags, 1 dict; "
          f"{repeats} runs each")  # fmt: skip
    for engine, times in results.items():
        ms = [x * 1000 for x in times]
        print(f"  {engine:14s} min {min(ms):8.1f} ms  median {statistics.median(ms):8.1f} ms  "
              f"max {max(ms):8.1f} ms")  # fmt: skip
    ratio = statistics.median(results["mlflow-sqlite"]) / statistics.median(results["vtrack"])
    print(
        f"  ratio of medians: vtrack spends {ratio:.1f}x less time in tracking calls (target >= 10x)"
    )
    print(json.dumps({k: v for k, v in results.items()}))


if __name__ == "__main__":
    main()
