"""Start-up benchmark (issue 15): how long an empty `mlportfolio sync`, `check` and `report` process
takes, each a whole process, best of N, against references measured in the same run: a bare
interpreter (`python -c pass`) and one that imports SQLAlchemy (`python -c "import sqlalchemy"`,
the least any command that opens the database pays).

    python3 bench/bench_startup.py            # best of 5
    python3 bench/bench_startup.py --runs 9

"Empty" = a config with a database and nothing else (no apps, no connectors), the database already
created (the first process on a new database also runs the migrations; that is timed apart).
`report pnl` reads an empty database and renders an empty report: it imports the domain (pandas).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def best_of(cmd: list[str], runs: int, env: dict[str, str], cwd: str) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        took = time.perf_counter() - t0
        if proc.returncode not in (0,):
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        best = min(best, took)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="processes per command; the best counts")
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()

    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "PORTFOLIO_TODAY": "2026-06-15"}
    py = args.python
    cli = [py, "-c", "import sys; from portfolio.cli import main; sys.exit(main(sys.argv[1:]))"]
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        cfg = Path(tmp) / "portfolio.toml"
        cfg.write_text(f'database_url = "sqlite:///{Path(tmp) / "p.db"}"\n', encoding="utf-8")
        t0 = time.perf_counter()
        subprocess.run([*cli, "--config", str(cfg), "sync"], env=env, cwd=tmp, check=True, capture_output=True)
        first = time.perf_counter() - t0
        rows: list[tuple[str, float]] = [
            ("python -c pass", best_of([py, "-c", "pass"], args.runs, env, tmp)),
            ('python -c "import sqlalchemy"', best_of([py, "-c", "import sqlalchemy"], args.runs, env, tmp)),
            ("mlportfolio --help", best_of([*cli, "--help"], args.runs, env, tmp)),
            ("mlportfolio check (empty)", best_of([*cli, "--config", str(cfg), "check"], args.runs, env, tmp)),
            ("mlportfolio sync (empty)", best_of([*cli, "--config", str(cfg), "sync"], args.runs, env, tmp)),
            ("mlportfolio report pnl (empty)", best_of([*cli, "--config", str(cfg), "report", "pnl"], args.runs, env, tmp)),
        ]
    ref = rows[1][1]
    print(f"start-up, best of {args.runs} whole processes (first sync on a new database, migrations included: {first:.2f} s)")
    print(f"{'command':<34} {'seconds':>8} {'/ import sqlalchemy':>20} {'target':>8}")
    for name, sec in rows:
        target = "<= 0.6 s" if name.startswith("mlportfolio") and "help" not in name else ""
        ok = "" if not target else (" ok" if sec <= 0.6 else " over")
        print(f"{name:<34} {sec:>8.3f} {sec / ref:>19.2f}x {target:>8}{ok}")


if __name__ == "__main__":
    main()
