"""Probe latency and throughput, ours side by side with the reference tools, in one run.

- STUN Binding over UDP: ours vs coturn's `turnutils_stunclient`, same local coturn.
- TURN Allocate (UDP): ours (Allocate + Refresh 0) vs `turnutils_uclient` (Allocate, then a
  channel bind that coturn refuses for a loopback peer, and exit), same local coturn.
- HTTP GET: ours vs Debian's `prometheus-blackbox-exporter` (module http_2xx, driven through its
  /probe endpoint), same local HTTP target. Skipped with a message if the exporter is absent.

The reference tools are separate processes: their latency includes process start-up, which is
what a probe costs when an operator shells out to them. Throughput runs CONCURRENCY probes at
once for every tool. The machine is shared; CPU time of this process is printed next to the
wall time. Bounded: each section stops after its count or TIME_BUDGET_SECONDS.

    .venv/bin/python bench/bench_probes.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from callplatform.probes.credentials import StaticAuth  # noqa: E402
from callplatform.probes.jitsi import HttpCheck, HttpProber  # noqa: E402
from callplatform.probes.tls import TlsOptions  # noqa: E402
from callplatform.probes.turn import TurnEndpoint, probe_allocate, probe_binding  # noqa: E402
from probes.loop_lag import LoopLag  # noqa: E402
from probes.servers import (  # noqa: E402
    STATIC_PASSWORD,
    STATIC_USER,
    free_port,
    running_coturn,
)

CONCURRENCY = 16
TIME_BUDGET_SECONDS = 20.0


class Figures:
    def __init__(self, name: str, latencies: list[float], wall: float, count: int, failures: int) -> None:
        self.name = name
        self.latencies = latencies
        self.wall = wall
        self.count = count
        self.failures = failures

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")

    @property
    def p95_ms(self) -> float:
        if len(self.latencies) < 2:
            return self.median_ms
        return statistics.quantiles(self.latencies, n=20)[-1] * 1000

    @property
    def per_second(self) -> float:
        return self.count / self.wall if self.wall else float("nan")


async def sequential(name: str, probe: Callable[[], Awaitable[bool]], count: int) -> Figures:
    latencies: list[float] = []
    failures = 0
    started = time.monotonic()
    for _ in range(count):
        t0 = time.monotonic()
        ok = await probe()
        latencies.append(time.monotonic() - t0)
        failures += not ok
        if time.monotonic() - started > TIME_BUDGET_SECONDS:
            break
    return Figures(name, latencies, time.monotonic() - started, len(latencies), failures)


async def concurrent(name: str, probe: Callable[[], Awaitable[bool]], count: int) -> Figures:
    semaphore = asyncio.Semaphore(CONCURRENCY)
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + TIME_BUDGET_SECONDS

    async def one() -> None:
        nonlocal failures
        async with semaphore:
            if time.monotonic() > deadline:
                return
            t0 = time.monotonic()
            ok = await probe()
            latencies.append(time.monotonic() - t0)
            failures += not ok

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(count)))
    return Figures(name, latencies, time.monotonic() - started, len(latencies), failures)


async def run_process(*argv: str, ok_text: str = "", ok_codes: tuple[int, ...] = (0,)) -> bool:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), 10)
    except TimeoutError:
        process.kill()
        await process.wait()
        return False
    return process.returncode in ok_codes and ok_text.encode() in out


def table(title: str, ours: Figures, theirs: Figures) -> None:
    print(f"\n{title}")
    print(f"  {'tool':<34} {'n':>6} {'fail':>5} {'median ms':>10} {'p95 ms':>9} {'probes/s':>10}")
    for figures in (ours, theirs):
        print(
            f"  {figures.name:<34} {figures.count:>6} {figures.failures:>5} {figures.median_ms:>10.2f} "
            f"{figures.p95_ms:>9.2f} {figures.per_second:>10.1f}"
        )
    if theirs.count and ours.count:
        print(
            f"  ratio ours/theirs: latency x{ours.median_ms / theirs.median_ms:.3f} (lower is better), "
            f"throughput x{ours.per_second / theirs.per_second:.2f} (higher is better)"
        )


def blackbox_config(directory: Path) -> Path:
    config = directory / "blackbox.yml"
    config.write_text(
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n"
    )
    return config


def start_http_target() -> tuple[subprocess.Popen[bytes], str]:
    """A local HTTP target in its own process (so it does not share our event loop)."""
    port = free_port()
    code = (
        "from aiohttp import web\n"
        "async def ok(request):\n"
        "    return web.Response(text='ok')\n"
        "app = web.Application()\n"
        "app.router.add_get('/{tail:.*}', ok)\n"
        f"web.run_app(app, host='127.0.0.1', port={port}, backlog=1024, access_log=None, print=None)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    wait_http(f"http://127.0.0.1:{port}/", process)
    return process, f"http://127.0.0.1:{port}/about/health"


def wait_http(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited")
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise TimeoutError(url)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def bench_turn(workdir: Path, count: int) -> None:
    with running_coturn(workdir / "coturn", "static", relay_ports=2000) as server:
        endpoint = TurnEndpoint("127.0.0.1", server.port, "udp")
        failure_reasons: dict[str, int] = {}
        auth = StaticAuth(STATIC_USER, STATIC_PASSWORD)

        async def our_binding() -> bool:
            return (await probe_binding(endpoint, tls=TlsOptions(), timeout=3)).success

        async def their_binding() -> bool:
            return await run_process(
                "turnutils_stunclient", "-p", str(server.port), "127.0.0.1", ok_text="reflexive addr"
            )

        async def our_allocate() -> bool:
            result = await probe_allocate(endpoint, auth, timeout=3)
            if not result.success:
                failure_reasons[result.reason] = failure_reasons.get(result.reason, 0) + 1
            return result.success

        async def their_allocate() -> bool:
            # Exit 255 after the allocation succeeded and coturn refused the loopback peer.
            return await run_process(
                "turnutils_uclient", "-u", STATIC_USER, "-w", STATIC_PASSWORD, "-p", str(server.port),
                "-n", "1", "-c", "-e", "127.0.0.1", "-r", "9", "127.0.0.1",
                ok_text="channel bind", ok_codes=(0, 255),
            )  # fmt: skip

        await our_binding()  # warm-up: first-use imports
        table(
            "STUN Binding (UDP), sequential latency",
            await sequential("ours (probe_binding)", our_binding, count),
            await sequential("turnutils_stunclient", their_binding, count // 4),
        )
        table(
            f"STUN Binding (UDP), throughput at concurrency {CONCURRENCY}",
            await concurrent("ours (probe_binding)", our_binding, count * 4),
            await concurrent("turnutils_stunclient", their_binding, count),
        )
        before = server.total_sessions()
        ours_allocate = await sequential("ours (Allocate + Refresh 0)", our_allocate, count // 2)
        deadline = time.monotonic() + 10
        while server.total_sessions() > before and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        ours_left = server.total_sessions() - before
        theirs_allocate = await sequential("turnutils_uclient", their_allocate, count // 8)
        table("TURN Allocate (UDP), sequential latency", ours_allocate, theirs_allocate)
        theirs_left = server.total_sessions() - before - ours_left
        print(
            f"  coturn sessions left behind (its CLI 'ps'): ours {ours_left} after {ours_allocate.count} probes, "
            f"turnutils_uclient {theirs_left} after {theirs_allocate.count} runs (they expire after 600 s)"
        )
        table(
            f"TURN Allocate (UDP), throughput at concurrency {CONCURRENCY}",
            await concurrent("ours (Allocate + Refresh 0)", our_allocate, count * 2),
            await concurrent("turnutils_uclient", their_allocate, count // 4),
        )
        if failure_reasons:
            print(f"  our Allocate failures by reason: {failure_reasons}")


async def bench_http(workdir: Path, count: int) -> None:
    exporter = shutil.which("prometheus-blackbox-exporter")
    target_process, target = start_http_target()
    try:
        prober = HttpProber()
        check = HttpCheck("jvb", target)

        async def ours() -> bool:
            return (await prober.probe(check, tls=TlsOptions(), timeout=5)).success

        await ours()
        our_figures = await concurrent("ours (HttpProber)", ours, count * 4)
        if exporter is None:
            print(f"\nHTTP GET, throughput at concurrency {CONCURRENCY}")
            print(f"  ours: {our_figures.per_second:.1f} probes/s, median {our_figures.median_ms:.2f} ms")
            print(
                "  prometheus-blackbox-exporter is not installed (apt-get install prometheus-blackbox-exporter):"
            )
            print("  comparison skipped")
            await prober.aclose()
            return
        port = free_port()
        blackbox = subprocess.Popen(
            [exporter, f"--config.file={blackbox_config(workdir)}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_http(f"http://127.0.0.1:{port}/", blackbox)
            limits = httpx.Limits(max_keepalive_connections=CONCURRENCY)
            async with httpx.AsyncClient(limits=limits, timeout=10) as client:

                async def theirs() -> bool:
                    response = await client.get(
                        f"http://127.0.0.1:{port}/probe", params={"target": target, "module": "http_2xx"}
                    )
                    return "probe_success 1" in response.text

                await theirs()
                table(
                    f"HTTP GET, throughput at concurrency {CONCURRENCY} (blackbox driven through /probe, keep-alive)",
                    our_figures,
                    await concurrent("prometheus-blackbox-exporter", theirs, count * 4),
                )
        finally:
            stop(blackbox)
            await prober.aclose()
    finally:
        stop(target_process)


async def bench_scheduler(platforms: int) -> None:
    """Many platforms whose coturn is dead (UDP black hole, TCP refused): does one round of every
    platform finish within the probe interval, and does the event loop stay responsive?"""
    import socket

    from callplatform.probes.health import HealthRegistry
    from callplatform.probes.scheduler import DEFAULT_CONCURRENCY, ProbeScheduler
    from callplatform.probes.targets import ProbeTargets, TurnAllocateTarget, TurnBindingTarget

    interval, timeout = 30.0, 5.0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
        hole.bind(("127.0.0.1", 0))
        dead_udp = TurnEndpoint("127.0.0.1", hole.getsockname()[1], "udp")
        dead_tcp = TurnEndpoint("127.0.0.1", free_port(), "tcp")
        targets = ProbeTargets(
            (TurnBindingTarget(dead_udp), TurnBindingTarget(dead_tcp),
             TurnAllocateTarget(dead_udp, StaticAuth("u", "p"))),
            timeout_seconds=timeout,
        )  # fmt: skip
        registry = HealthRegistry()
        scheduler = ProbeScheduler(registry, first_round_spread_seconds=5.0)
        await scheduler.start()  # builds the TLS context (start-up cost, outside the measurement)
        started = time.monotonic()
        try:
            async with LoopLag() as lag:
                for index in range(platforms):
                    scheduler.upsert("bench", f"p{index}", targets, interval)
                while len(registry.platforms()) < platforms and time.monotonic() - started < 3 * interval:
                    await asyncio.sleep(0.1)
                elapsed = time.monotonic() - started
        finally:
            await scheduler.stop()
    done = len(registry.platforms())
    print(f"\nScheduler: {platforms} platforms with a dead coturn (3 probes each, {timeout:.0f} s deadline)")
    print(f"  concurrency {DEFAULT_CONCURRENCY}, interval {interval:.0f} s, first rounds spread over 5 s")
    print(
        f"  first round of {done}/{platforms} platforms done in {elapsed:.1f} s "
        f"(ratio to the interval x{elapsed / interval:.2f}; below 1 keeps up); max event-loop lag {lag.max_seconds * 1000:.0f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer probes (a smoke run)")
    args = parser.parse_args()
    count = 40 if args.quick else 200
    print(f"bench_probes: {os.cpu_count()} CPUs (shared), base count {count}, concurrency {CONCURRENCY}")
    cpu_started, wall_started = time.process_time(), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-probes-") as tmp:
        workdir = Path(tmp)
        if shutil.which("turnserver") and shutil.which("turnutils_stunclient"):
            await bench_turn(workdir, count)
        else:
            print("coturn is not installed (apt-get install coturn): TURN comparison skipped")
        await bench_http(workdir, count)
        await bench_scheduler(100 if args.quick else 500)
    print(
        f"\ntotal: wall {time.monotonic() - wall_started:.1f}s, CPU of this process "
        f"{time.process_time() - cpu_started:.1f}s"
    )


if __name__ == "__main__":
    asyncio.run(main())
