"""Run several MLflow scripts in one process under MLflow itself (one sqlite store).

``python run_under_mlflow.py OUT_DIR SCRIPT…``: each script runs with ``runpy`` as
``__main__`` in its own folder under OUT_DIR; prints one JSON line mapping each script's
stem to the document it printed after ``RESULT ``. One process and one store, because
MLflow's import and database migration cost ~15 s each on a loaded machine. Autologging
is switched off and any run ended between scripts.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import sys
from pathlib import Path


def main() -> None:
    out_dir = Path(sys.argv[1])
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{out_dir / 'mlflow.db'}")
    results = {}
    for script in [Path(a).resolve() for a in sys.argv[2:]]:
        work = out_dir / script.stem
        work.mkdir(parents=True, exist_ok=True)
        os.chdir(work)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            runpy.run_path(str(script), run_name="__main__")
        mlflow.end_run()
        mlflow.autolog(disable=True)
        lines = [ln for ln in buf.getvalue().splitlines() if ln.startswith("RESULT ")]
        results[script.stem] = json.loads(lines[-1][len("RESULT ") :]) if lines else None
    print(json.dumps(results))


if __name__ == "__main__":
    main()
