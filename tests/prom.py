"""A real Prometheus for tests and the benchmark: history written as OpenMetrics, backfilled into
TSDB blocks with ``promtool tsdb create-blocks-from openmetrics``, served by Debian's ``prometheus``
on a loopback port.

Nothing is mocked: the connector talks to the real server, which evaluates the real PromQL over
real blocks. The history is described by :class:`Up` and :class:`Counter` series whose daily
numbers are easy to compute by hand (see ``tests/fixtures/prometheus/README.md``):

* samples every ``interval`` seconds, offset by half an interval, so no sample sits on a UTC
  midnight and a ``[1d]`` window evaluated at the end of a day holds exactly that day's samples;
* an ``Up`` series is 1 except for ``down[day]`` samples of that day (so availability that day is
  ``1 - down / samples_per_day``);
* a ``Counter`` grows by the same amount at every sample of a day (``per_sample``, overridden per
  day by ``rate``), so ``increase(...[1d])`` of that day is exactly ``per_sample * samples_per_day``
  (Prometheus extrapolates the half interval at each end of the window); ``resets`` restarts the
  counter at a sample of a day, as a restarted server would, which ``increase`` must absorb.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import requests

from tests.servers import free_port

DAY = 86_400
COUNTER_START = 1_000_000  # far from 0, so increase() never clamps its extrapolation at zero


def _binary(name: str) -> str:
    found = os.environ.get(f"{name.upper()}_BIN") or shutil.which(name) or f"/usr/bin/{name}"
    if not Path(found).exists():
        raise RuntimeError(
            f"{name} not found: run the test command (scripts/test.sh) to install Debian's prometheus"
        )
    return found


def epoch(day: date) -> int:
    """Seconds since the epoch at 00:00 UTC of ``day``."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _labels(labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}" if inner else ""


@dataclass
class Up:
    """A 0/1 gauge (``up`` or ``probe_success``) for one target over days ``first_day..last_day``."""

    labels: dict[str, str]
    down: dict[int, int] = field(default_factory=dict)  # day index -> samples that day with value 0
    first_day: int = 0
    last_day: int | None = None  # inclusive; None = the last day of the history


@dataclass
class Counter:
    """A monotonically increasing counter for one target, restarted at ``resets``."""

    labels: dict[str, str]
    per_sample: int = 1
    rate: dict[int, int] = field(default_factory=dict)  # day index -> increment per sample that day
    resets: dict[int, int] = field(default_factory=dict)  # day index -> sample index of a restart
    first_day: int = 0
    last_day: int | None = None


def openmetrics_lines(
    start: date,
    days: int,
    gauges: dict[str, list[Up]],
    counters: dict[str, list[Counter]],
    interval: int = 60,
) -> Iterator[str]:
    """The history as OpenMetrics text lines (a generator: the benchmark writes millions)."""
    if DAY % interval:
        raise ValueError("interval must divide a day")
    per_day = DAY // interval
    base = epoch(start) + interval // 2
    for name, ups in gauges.items():
        yield f"# TYPE {name} gauge\n"
        for up in ups:
            lab = _labels(up.labels)
            last = days - 1 if up.last_day is None else up.last_day
            for d in range(up.first_day, last + 1):
                down = up.down.get(d, 0)
                # the outage sits in the middle of the day
                lo = (per_day - down) // 2
                t0 = base + d * DAY
                for i in range(per_day):
                    v = 0 if lo <= i < lo + down else 1
                    yield f"{name}{lab} {v} {t0 + i * interval}\n"
    for family, series in counters.items():
        metric = family
        if family.endswith("_total"):
            family = family[: -len("_total")]
        yield f"# TYPE {family} counter\n"
        for c in series:
            lab = _labels(c.labels)
            last = days - 1 if c.last_day is None else c.last_day
            value = COUNTER_START
            for d in range(c.first_day, last + 1):
                inc = c.rate.get(d, c.per_sample)
                reset_at = c.resets.get(d)
                t0 = base + d * DAY
                for i in range(per_day):
                    if i == reset_at:
                        value = 0  # the process restarted; it then serves this interval's requests
                    value += inc
                    yield f"{metric}{lab} {value} {t0 + i * interval}\n"
    yield "# EOF\n"


def write_openmetrics(path: Path, lines: Iterable[str]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        buf: list[str] = []
        for line in lines:
            buf.append(line)
            if len(buf) >= 100_000:
                fh.write("".join(buf))
                buf.clear()
        fh.write("".join(buf))
    return path


def backfill(openmetrics_file: Path, data_dir: Path, timeout: float = 600) -> None:
    """Turn an OpenMetrics file into TSDB blocks in ``data_dir`` (promtool)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # promtool re-reads the whole input once per block; big blocks (~60 days) keep that to a few passes
    proc = subprocess.run(
        [
            _binary("promtool"),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--quiet",
            "--max-block-duration=1458h",
            str(openmetrics_file),
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"promtool failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


@dataclass
class Prometheus:
    """Debian's Prometheus server on 127.0.0.1, over a data folder (backfilled blocks, or empty)."""

    proc: subprocess.Popen[bytes]
    port: int
    root: Path
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @classmethod
    def start(
        cls,
        blocks: Path | None = None,
        *,
        scrape: list[dict[str, object]] | None = None,
        scrape_interval: str = "1m",
        web_config: str | None = None,
        scheme: str = "http",
        timeout: float = 30.0,
    ) -> Prometheus:
        """Start a server whose TSDB starts as a copy of ``blocks``; ``scrape`` lists scrape
        configs (YAML-able dicts) for live targets. Waits (bounded) until it answers ready."""
        root = Path(tempfile.mkdtemp(prefix="prom-"))
        data = root / "data"
        if blocks is not None:
            shutil.copytree(blocks, data)
        else:
            data.mkdir()
        cfg = [
            "global:",
            f"  scrape_interval: {scrape_interval}",
            f"  evaluation_interval: {scrape_interval}",
            "scrape_configs:",
        ]
        for job in scrape or []:
            cfg.append(f"  - job_name: {job['job_name']}")
            cfg.append(f"    scrape_interval: {job.get('scrape_interval', scrape_interval)}")
            cfg.append(f"    scrape_timeout: {job.get('scrape_timeout', '1s')}")
            cfg.append("    static_configs:")
            cfg.append(f"      - targets: {list(job['targets'])!r}".replace("'", '"'))  # type: ignore[call-overload]
            labels = job.get("labels") or {}
            if labels:
                cfg.append("        labels:")
                for k, v in labels.items():  # type: ignore[attr-defined]
                    cfg.append(f'          {k}: "{v}"')
        if not scrape:
            cfg[-1] = "scrape_configs: []"
        (root / "prometheus.yml").write_text("\n".join(cfg) + "\n", encoding="utf-8")
        args = [
            _binary("prometheus"),
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=100y",  # backfilled history is old: keep it
            "--log.level=warn",
        ]
        if web_config is not None:
            (root / "web.yml").write_text(web_config, encoding="utf-8")
            args.append(f"--web.config.file={root / 'web.yml'}")
        log = (root / "prometheus.log").open("wb")
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between probing and binding
            port = free_port()
            proc = subprocess.Popen(
                [*args, f"--web.listen-address=127.0.0.1:{port}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=root,
            )
            server = cls(proc, port, root, scheme)
            try:
                server.wait_ready(timeout)
                return server
            except RuntimeError as exc:
                last_error = str(exc)
                server.stop(remove=False)
        raise RuntimeError(f"prometheus did not start: {last_error}\n{server.log()[-2000:]}")

    def log(self) -> str:
        try:
            return (self.root / "prometheus.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}")
            try:
                r = requests.get(f"{self.url}/-/ready", timeout=2, verify=False)
                if r.status_code in (200, 401):  # 401: ready, behind basic auth
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus not ready after {timeout}s")

    def stop(self, remove: bool = True) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)


def backfilled_blocks(
    workdir: Path,
    start: date,
    days: int,
    gauges: dict[str, list[Up]],
    counters: dict[str, list[Counter]],
    interval: int = 60,
) -> Path:
    """Write the history and backfill it; returns the folder of blocks (to pass to ``start``)."""
    om = write_openmetrics(workdir / "history.om", openmetrics_lines(start, days, gauges, counters, interval))
    blocks = workdir / "blocks"
    backfill(om, blocks)
    om.unlink()
    return blocks


def day_end(day: date) -> int:
    return epoch(day + timedelta(days=1))
