"""Benchmark: each CLI report on a 1,000-app x 36-month portfolio against the 22-app demo.

Builds two demo databases with the real CLI (``mlportfolio demo --no-serve``), as of a fixed date:
the shipped demo (22 apps, 24 months: the reference, measured in the same run) and a large one
(``--apps 1000 --months 36`` by default, about 5.2 million fact rows). Then runs each report
(``report pnl``, ``retirement``, ``maintenance``, ``review``) as a whole process against each
database, best of ``--repeat`` (2) runs, and prints its wall time, the ratio to the reference and
the process's peak RSS and CPU time (``os.wait4``'s rusage of that child; on a shared, loaded
machine the CPU time is the steadier figure, and the ratio is printed for both). Targets (issue 15): each report
at most 2x its reference time and at most 400 MiB peak.

The databases are kept in ``bench/out/`` (or ``--out``) and reused when present, since building the
large one takes minutes; ``--rebuild`` forces a fresh build.

    python3 bench/bench_reports.py [--apps 1000] [--months 36] [--repeat 2] [--rebuild] [--backend sqlite|URL]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TODAY = "2026-11-23"
REPORTS = (
    ("pnl", ["report", "pnl", "--format", "csv"]),
    ("retirement", ["report", "retirement", "--format", "csv"]),
    ("maintenance", ["report", "maintenance", "--format", "csv"]),
    ("review", ["report", "review", "--format", "md"]),
)
MAX_RATIO = 2.0
MAX_PEAK_MIB = 400.0


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("PORTFOLIO_")}
    out["PYTHONPATH"] = str(ROOT) + os.pathsep + out.get("PYTHONPATH", "")
    out["PORTFOLIO_TODAY"] = TODAY
    return out


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "portfolio.cli", *args]


class Child(subprocess.Popen):  # type: ignore[type-arg]
    """A Popen that reaps its process with ``os.wait4`` and keeps that process's own rusage."""

    rusage = None

    def _try_wait(self, wait_flags: int) -> tuple[int, int]:
        try:
            pid, sts, self.rusage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            pid, sts = self.pid, 0
        return pid, sts


def measure(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MiB, CPU seconds user + system) of one whole process."""
    started = time.perf_counter()
    proc = Child(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[3:])} failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    if proc.rusage is None:
        return wall, float("nan"), float("nan")
    # ru_maxrss is KiB on Linux; CPU time is what a loaded shared machine does not inflate
    return wall, proc.rusage.ru_maxrss / 1024, proc.rusage.ru_utime + proc.rusage.ru_stime


def build(url: str, *size: str) -> None:
    print(f"building {url} {' '.join(size) or '(the shipped demo)'} ...", file=sys.stderr, flush=True)
    wall, peak, _ = measure(cli("demo", "--no-serve", "--db", url, *size))
    print(f"  built in {wall:.1f} s, peak {peak:.0f} MiB", file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--apps", type=int, default=1000)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--rebuild", action="store_true", help="build the databases even when they exist")
    ap.add_argument("--only", nargs="*", default=None, help="only these reports")
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    small = args.out / "reports-demo.db"
    large = args.out / f"reports-{args.apps}x{args.months}.db"
    for path, size in ((small, ()), (large, ("--apps", str(args.apps), "--months", str(args.months)))):
        if args.rebuild and path.exists():
            path.unlink()
        if not path.exists():
            build(f"sqlite:///{path}", *size)

    print(f"reports as of {TODAY}: the 22-app demo (reference) vs {args.apps} apps x {args.months} months; best of {args.repeat}")
    print(
        f"{'report':<12} {'ref s':>7} {'cpu':>6} {'MiB':>5} | {'large s':>8} {'cpu':>6} {'MiB':>5} | "
        f"{'wall x':>6} {'cpu x':>6}  target (<= {MAX_RATIO:g}x, <= {MAX_PEAK_MIB:g} MiB)"
    )
    ok = True
    for name, argv in REPORTS:
        if args.only and name not in args.only:
            continue
        results = []
        for path in (small, large):
            runs = [measure(cli(*argv, "--demo", "--db", f"sqlite:///{path}", "--today", TODAY)) for _ in range(args.repeat)]
            results.append((min(r[0] for r in runs), max(r[1] for r in runs), min(r[2] for r in runs)))
        (t_ref, m_ref, c_ref), (t_big, m_big, c_big) = results
        ratio, cpu_ratio = t_big / t_ref, c_big / c_ref
        met = ratio <= MAX_RATIO and m_big <= MAX_PEAK_MIB
        ok &= met
        print(
            f"{name:<12} {t_ref:>7.2f} {c_ref:>6.2f} {m_ref:>5.0f} | {t_big:>8.2f} {c_big:>6.2f} {m_big:>5.0f} | "
            f"{ratio:>5.2f}x {cpu_ratio:>5.2f}x  {'met' if met else 'NOT met'}",
            flush=True,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
