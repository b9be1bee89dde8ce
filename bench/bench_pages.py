"""Benchmark: the dashboard's pages at 1,000 apps x 36 months against the 22-app demo, in a real browser.

Issue 15's targets, measured on whole processes, best of ``--rounds`` (2) fresh dashboard processes
per portfolio, the 22-app demo (the reference) and the large demo interleaved in the same run:

- **cold first page**: a fresh dashboard process, the Portfolio page until its script has finished
  (target: at most 2x the reference);
- **warm page**: each page (Portfolio, App, Finance, Maintenance, Retirement, Data health, Value
  ledger upload) opened a second time in the same process (target: at most 1.5x);
- **filter change**: on Portfolio, the Period filter switched to another preset in the browser,
  until the rerun has finished (target: at most 2x);
- **after idle**: the Portfolio page again after waiting out the cache's TTL (``cache.TTL`` + 10 s;
  target: no slower than a cold first page's 2x — a page must not become slow again);
- **memory**: the dashboard process's peak RSS (``VmHWM``; target: under 1 GiB).

Each portfolio is built once with ``mlportfolio demo --no-serve`` into ``bench/out/`` (SQLite, as of
a fixed date, reused by later runs); the dashboard runs as ``mlportfolio up``/``demo`` start it
(:func:`portfolio.cli.streamlit_command`, :func:`portfolio.cli.dashboard_env`) and Playwright drives
Debian's Chromium. A page counts as rendered when its title is shown and Streamlit's script state
has stayed "notRunning" for 3 polls 50 ms apart; the time is taken at the first of those polls.

    python3 bench/bench_pages.py                          # 22 apps vs 1,000 x 36, best of 2
    python3 bench/bench_pages.py --apps 200 --months 24   # a smaller scale
    python3 bench/bench_pages.py --shots /tmp/shots       # also a full-page screenshot of each large page (round 1)

Prints a table (seconds, ratio to the reference, target) after every round (best so far) and
writes it as JSON to ``bench/out/bench_pages.json``. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AS_OF = "2026-06-15"  # the tests' demo date: a database built once stays valid on later days
#: url path -> the page's title (its h1); "app" gets ?app=<the first app id>; Portfolio is the default page, at "/"
PAGES = {
    "": "Portfolio",
    "app": "App",
    "finance": "Finance",
    "maintenance": "Maintenance",
    "retirement": "Retirement",
    "health": "Data health",
    "ledger": "Value ledger upload",
}
PAGE_TIMEOUT = 900.0  # seconds: today's 1,000-app first page takes minutes
POLL = 0.05
# The page's own height: the main block's (Streamlit scrolls [data-testid=stMain], not the document).
# Not the largest scrollHeight of any element: a dataframe's inner scroller of 900 rows is ~32,000
# px tall while the page around it is a few thousand (what the first measurements here reported).
CONTENT_HEIGHT = (
    "(() => { const b = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
    " const m = document.querySelector('[data-testid=\"stMain\"]');"
    " return b ? b.scrollHeight : (m ? m.scrollHeight : document.documentElement.scrollHeight); })()"
)
TARGETS = {"cold": 2.0, "warm": 1.5, "filter": 2.0, "idle": 2.0}


def mlportfolio() -> list[str]:
    """The console script of this interpreter's environment (PYTHONPATH first, as in the tests)."""
    script = Path(sys.executable).with_name("mlportfolio")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "portfolio.cli"]


@dataclass
class Portfolio:
    label: str
    apps: int | None  # None: the demo as it ships (22 apps)
    months: int | None
    db: Path = field(init=False)

    def __post_init__(self) -> None:
        size = "demo" if self.apps is None else f"{self.apps}x{self.months}"
        self.db = OUT / f"pages-{size}.db"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"


def env_for_build() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTFOLIO_")}
    env["PORTFOLIO_TODAY"] = AS_OF
    env.setdefault("PYTHONPATH", str(ROOT))
    return env


def build(p: Portfolio) -> float:
    """``mlportfolio demo --no-serve`` into ``p.db`` (skipped when it was built before); seconds taken."""
    marker = p.db.with_suffix(".built")
    if p.db.exists() and marker.exists():
        return 0.0
    OUT.mkdir(parents=True, exist_ok=True)
    for f in (p.db, p.db.with_suffix(".db-wal"), p.db.with_suffix(".db-shm")):
        f.unlink(missing_ok=True)
    size = [] if p.apps is None else ["--apps", str(p.apps), "--months", str(p.months)]
    cmd = [*mlportfolio(), "demo", "--no-serve", "--db", p.url, *size]
    print(f"building {p.label}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env_for_build(), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"building {p.label} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    marker.write_text(" ".join(cmd[1:]))
    return time.perf_counter() - t0


def first_app(p: Portfolio) -> str:
    from portfolio import records, storage

    engine = storage.make_engine(p.url)
    try:
        ids = sorted(str(a) for a in storage.read_frame(engine, records.App)["app_id"])
    finally:
        engine.dispose()
    return ids[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Dashboard:
    """One dashboard process on a free loopback port, started the way ``mlportfolio demo`` starts it."""

    def __init__(self, p: Portfolio) -> None:
        from portfolio import cli

        self.port = free_port()
        env = cli.dashboard_env(p.url, demo=True, config_path=None)
        env = {k: v for k, v in env.items() if not k.startswith("PORTFOLIO_") or k in ("PORTFOLIO_DB_URL", "PORTFOLIO_DEMO")}
        env["PORTFOLIO_TODAY"] = AS_OF
        env.setdefault("PYTHONPATH", str(ROOT))
        self.log = (OUT / f"dashboard-{p.db.stem}.log").open("w")
        self.proc = subprocess.Popen(cli.streamlit_command(self.port), env=env, cwd=OUT, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not healthy(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"the dashboard did not start (see {self.log.name})")
            time.sleep(0.1)
        self.base = f"http://127.0.0.1:{self.port}"

    def peak_rss(self) -> float:
        return peak_rss_mib(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


def wait_rendered(page: Any, title: str, started: float) -> float:
    """Seconds from ``started`` until ``title`` is shown and the script has finished (3 quiet polls)."""
    page.wait_for_selector(f'h1:has-text("{title}")', timeout=PAGE_TIMEOUT * 1000)
    deadline = time.monotonic() + PAGE_TIMEOUT
    quiet_since: float | None = None
    quiet = 0
    while time.monotonic() < deadline:
        now = time.perf_counter()
        state = page.get_attribute('[data-testid="stApp"]', "data-test-script-state")
        if state == "notRunning":
            quiet_since = now if quiet == 0 else quiet_since
            quiet += 1
            if quiet >= 3:
                assert quiet_since is not None
                return quiet_since - started
        else:
            quiet = 0
        time.sleep(POLL)
    raise RuntimeError(f"{title}: still running after {PAGE_TIMEOUT:.0f} s")


def check_clean(page: Any, title: str) -> None:
    bad = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    if bad.count():
        raise RuntimeError(f"{title}: {bad.first.inner_text()[:500]}")


def open_page(page: Any, base: str, path: str, title: str) -> float:
    started = time.perf_counter()
    page.goto(f"{base}/{path}", wait_until="commit")
    took = wait_rendered(page, title, started)
    check_clean(page, title)
    return took


def change_period(page: Any) -> float:
    """On the Portfolio page: choose "Last full quarter" as the Period, until the rerun has finished."""
    page.get_by_role("combobox", name="Period").click()
    option = page.get_by_role("option", name="Last full quarter", exact=True)
    started = time.perf_counter()
    option.click()
    # the rerun starts a moment after the click: wait for it (or for its caption) before waiting it out
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if page.get_attribute('[data-testid="stApp"]', "data-test-script-state") == "running":
            break
        time.sleep(0.01)
    took = wait_rendered(page, "Portfolio", started)
    check_clean(page, "Portfolio")
    return took


def ttl_seconds() -> float:
    from portfolio.dashboard import cache

    return float(getattr(cache, "TTL", 60) or 60)


def one_round(p: Portfolio, app_id: str, idle: float, shots: Path | None) -> dict[str, float]:
    """One fresh dashboard process: cold first page, every page twice, a filter change, a page after idle, peak RSS."""
    from playwright.sync_api import sync_playwright

    paths = {("app?app=" + app_id if path == "app" else path): title for path, title in PAGES.items()}
    dash = Dashboard(p)

    class Progress(dict[str, float]):
        def __setitem__(self, key: str, value: float) -> None:  # each measure on stderr as it is taken
            print(f"  {p.label}: {key} {value:,.2f}", file=sys.stderr, flush=True)
            super().__setitem__(key, value)

    out: dict[str, float] = Progress()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_context(viewport={"width": 1600, "height": 1200}).new_page()
                out["cold"] = open_page(page, dash.base, "", "Portfolio")
                for path, title in paths.items():
                    out[f"first {title}"] = open_page(page, dash.base, path, title) if path else out["cold"]
                    if shots is not None:  # on the first visit: the screenshots are there even if a round is cut short
                        if not path:
                            open_page(page, dash.base, path, title)
                        shots.mkdir(parents=True, exist_ok=True)
                        page.wait_for_timeout(1500)  # charts draw after the script has finished
                        # Streamlit scrolls its main block, not the document: the page's height is that block's
                        height = float(page.evaluate(CONTENT_HEIGHT))
                        out[f"height {title}"] = height
                        page.set_viewport_size({"width": 1600, "height": int(min(max(height, 1200), 16_000))})
                        page.wait_for_timeout(500)
                        page.screenshot(path=str(shots / f"{path.split('?')[0] or 'portfolio'}.png"), full_page=True)
                        page.set_viewport_size({"width": 1600, "height": 1200})
                for path, title in paths.items():
                    out[f"warm {title}"] = open_page(page, dash.base, path, title)
                open_page(page, dash.base, "", "Portfolio")
                out["filter"] = change_period(page)
                if idle > 0:
                    print(f"  {p.label}: idle {idle:.0f} s (past the cache TTL)", file=sys.stderr, flush=True)
                    time.sleep(idle)
                    out["idle"] = open_page(page, dash.base, "", "Portfolio")
            finally:
                browser.close()
        out["rss"] = dash.peak_rss()
    finally:
        dash.stop()
    return dict(out)


def best(rounds: list[dict[str, float]]) -> dict[str, float]:
    """Best (smallest) time of each measure over the rounds; memory: the largest peak (the honest one)."""
    keys = {k for r in rounds for k in r}
    return {k: (max if k == "rss" else min)(r[k] for r in rounds if k in r) for k in keys}


def table(ref: dict[str, float], big: dict[str, float], ref_label: str, big_label: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(name: str, key: str, target: float | None) -> None:
        r, b = ref.get(key), big.get(key)
        ratio = b / r if r and b is not None else None
        ok = None if ratio is None or target is None else ratio <= target
        rows.append({"measure": name, ref_label: r, big_label: b, "ratio": ratio, "target": target, "ok": ok})

    add("cold first page (Portfolio)", "cold", TARGETS["cold"])
    for title in PAGES.values():
        add(f"first visit {title}", f"first {title}", None)
    for title in PAGES.values():
        add(f"warm {title}", f"warm {title}", TARGETS["warm"])
    add("filter change on Portfolio (Period)", "filter", TARGETS["filter"])
    add("Portfolio after idle > cache TTL", "idle", TARGETS["idle"])
    return rows


def print_table(rows: list[dict[str, Any]], ref: dict[str, float], big: dict[str, float], ref_label: str, big_label: str) -> None:
    def s(v: float | None) -> str:
        return "–" if v is None else f"{v:8.2f} s"

    print(f"\n{'measure':<40} {ref_label:>12} {big_label:>14} {'ratio':>7} {'target':>8}")
    for r in rows:
        ratio = "–" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        target = "" if r["target"] is None else f"≤ {r['target']:.1f}x" + {True: " ok", False: " MISS", None: ""}[r["ok"]]
        print(f"{r['measure']:<40} {s(r[ref_label]):>12} {s(r[big_label]):>14} {ratio:>7} {target:>8}")
    rss = big.get("rss")
    verdict = "" if rss is None else (" ok" if rss < 1024 else " MISS")
    print(
        f"{'dashboard peak RSS':<40} {ref.get('rss', float('nan')):9.0f} MiB {rss or float('nan'):10.0f} MiB"
        f" {'':>7} {'< 1 GiB' + verdict:>8}"
    )
    heights = {k.removeprefix("height "): v for k, v in big.items() if k.startswith("height ")}
    if heights:
        print("page heights at scale (px): " + ", ".join(f"{k} {v:,.0f}" for k, v in heights.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--rounds", type=int, default=2, help="fresh dashboard processes per portfolio (best of)")
    parser.add_argument("--idle", type=float, default=None, help="seconds idle before the last page (default: cache TTL + 10)")
    parser.add_argument("--shots", type=Path, default=None, help="folder for full-page screenshots of the large portfolio")
    parser.add_argument("--only-reference", action="store_true", help="measure the 22-app demo only")
    args = parser.parse_args()
    # SIGTERM (a run cut short) unwinds like Ctrl-C, so the dashboard processes are stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not shutil.which(CHROMIUM):
        raise SystemExit(f"Debian's Chromium is required at {CHROMIUM}")

    idle = ttl_seconds() + 10 if args.idle is None else args.idle
    ref = Portfolio("22 apps", None, None)
    big = Portfolio(f"{args.apps}x{args.months}", args.apps, args.months)
    portfolios = [ref] if args.only_reference else [ref, big]
    for p in portfolios:
        took = build(p)
        if took:
            print(f"built {p.label} in {took:.1f} s ({p.db})", file=sys.stderr)
    apps = {p.label: first_app(p) for p in portfolios}
    rounds: dict[str, list[dict[str, float]]] = {p.label: [] for p in portfolios}
    for i in range(args.rounds):
        for p in portfolios:  # interleaved: both see the same machine load
            print(f"round {i + 1}: {p.label}", file=sys.stderr, flush=True)
            shots = args.shots if (p is big and i == 0) else None
            rounds[p.label].append(one_round(p, apps[p.label], idle, shots))
        # the table so far after every round: a run cut short still says what it measured
        ref_best = best(rounds[ref.label])
        big_best = best(rounds[big.label]) if not args.only_reference else {}
        rows = table(ref_best, big_best, ref.label, big.label)
        print(f"\nbest of {i + 1} round(s):")
        print_table(rows, ref_best, big_best, ref.label, big.label)
        OUT.mkdir(parents=True, exist_ok=True)
        result = {"reference": ref.label, "large": big.label, "rows": rows, "rss_mib": {ref.label: ref_best.get("rss"),
                  big.label: big_best.get("rss")}, "rounds": rounds, "idle_s": idle}  # fmt: skip
        (OUT / "bench_pages.json").write_text(json.dumps(result, indent=2, default=str))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
