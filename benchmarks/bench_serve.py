"""A bounded load test of `ferkit serve` on 127.0.0.1 only: requests, errors, wrong answers, throughput, latency
percentiles, /health under load and the server's memory, at several concurrencies.

python benchmarks/bench_serve.py [--requests 120] [--seconds 60] [--concurrency 1 8 32]

Every loop is bounded by a request count and a time limit, and the server (a child process) is stopped at the end.
Answers are checked against the same model's in-process predictions on the same images.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report

HOST = "127.0.0.1"  # loopback only: this benchmark never sends traffic anywhere else


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(port: int) -> subprocess.Popen:
    code = f"from ferkit.serve import serve; serve(host={HOST!r}, port={port}, threads=1)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    for _ in range(200):
        try:
            if httpx.get(f"http://{HOST}:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the server did not start: {proc.stderr.read().decode()[-500:]}")


def sample_frames() -> tuple[list[bytes], list[str]]:
    """Encoded 48x48 faces and the in-process answer for each (the expected expression)."""
    import cv2

    from ferkit.runtime import Recognizer

    rng = np.random.default_rng(0)
    faces = [np.clip(rng.normal(120 + 10 * k, 40, (48, 48)), 0, 255).astype(np.uint8) for k in range(8)]
    rec = Recognizer.default()
    want = [rec.predict(f)[0].expression for f in faces]
    return [cv2.imencode(".png", f)[1].tobytes() for f in faces], want


def load(url: str, frames, want, concurrency: int, requests: int, seconds: float) -> dict:
    import httpx

    deadline = time.perf_counter() + seconds
    lat, errors, wrong, health = [], 0, 0, []
    lock = threading.Lock()
    stop = threading.Event()
    # One pooled client for the load and one for the probe: `httpx.get` builds a client (and loads the CA bundle) per
    # call, tens of ms of client CPU that, on two cores, would be measured as the server's latency.
    client = httpx.Client(limits=httpx.Limits(max_connections=concurrency), timeout=30)
    probe_client = httpx.Client(timeout=10)

    def one(i: int) -> None:
        nonlocal errors, wrong
        if time.perf_counter() > deadline:
            return
        t = time.perf_counter()
        try:
            r = client.post(f"{url}/predict", content=frames[i % len(frames)])
            ok = r.status_code == 200
            right = ok and r.json()["faces"][0]["expression"] == want[i % len(frames)]
        except httpx.HTTPError:
            ok = right = False
        with lock:
            lat.append(time.perf_counter() - t)
            errors += not ok
            wrong += ok and not right

    def probe() -> None:  # /health while /predict is saturated
        while not stop.is_set():
            t = time.perf_counter()
            try:
                probe_client.get(f"{url}/health")
                health.append(time.perf_counter() - t)
            except httpx.HTTPError:
                health.append(float("inf"))
            time.sleep(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    wall = time.perf_counter() - t0
    stop.set()
    prober.join()
    client.close()
    probe_client.close()
    ms = sorted(1000 * x for x in lat)
    pct = lambda q: float(np.percentile(ms, q)) if ms else float("nan")  # noqa: E731
    return {
        "concurrency": concurrency,
        "requests": len(lat),
        "errors": errors,
        "wrong answers": wrong,
        "req/s": len(lat) / wall,
        "p50 ms": pct(50),
        "p90 ms": pct(90),
        "p99 ms": pct(99),
        "/health p99 ms": float(np.percentile([1000 * h for h in health], 99)) if health else float("nan"),
        "/health median ms": 1000 * statistics.median(health) if health else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=120, help="requests per concurrency level (a hard bound)")
    ap.add_argument("--seconds", type=float, default=60, help="time limit per level (a hard bound)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    args = ap.parse_args()
    frames, want = sample_frames()
    port = free_port()
    server = start_server(port)
    try:
        before = rss_mb(server.pid)
        rows = [
            load(f"http://{HOST}:{port}", frames, want, c, args.requests, args.seconds) | {"RSS MB": rss_mb(server.pid)}
            for c in args.concurrency
        ]
    finally:
        server.terminate()
        server.wait(10)
    report("serve_load", rows, {"rss_mb_before": before, "host": HOST, "requests_per_level": args.requests})


if __name__ == "__main__":
    main()
