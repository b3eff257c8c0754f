"""Load test over loopback with wrk: Switchboard (ONNX int8 + micro-batching) against the obvious
alternative (FastAPI + torch, evaluation/torch_server.py) serving the same fine-tuned network.

    python -m evaluation.loadtest --run-dir .switchboard/bench/banking77/run [--seconds 10]

<run-dir> holds checkpoint/ and bundle/ as written by `switchboard train` or the BANKING77 benchmark.
Both servers run one uvicorn process each, on 127.0.0.1 only, one after the other; every wrk run is
bounded by --seconds. Needs wrk (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_TEST = REPO.parent / "shared" / "data" / "banking77" / "test.csv"

WRK_SCRIPT = r"""
local bodies = {}
local counter = 0
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
end
function request()
  counter = counter + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[(counter % #bodies) + 1])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"socket_errors":%d,"non2xx":%d,' ..
    '"p50_us":%d,"p95_us":%d,"p99_us":%d,"mean_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean))
end
"""


@dataclass
class Result:
    server: str
    mode: str
    items_per_request: int
    concurrency: int
    requests_per_s: float
    items_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"server at {url} did not become ready in {timeout}s")


def start_server(name: str, run_dir: Path, port: int, ort_threads: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if name == "switchboard":
        env.update(
            SWITCHBOARD_BUNDLE_PATH=str(run_dir / "bundle"),
            SWITCHBOARD_ORT_INTRA_OP_THREADS=str(ort_threads),
            SWITCHBOARD_HOME=tempfile.mkdtemp(prefix="sb-load-"),
        )
        target = "serving.app:create_app"
    else:
        env.update(SWITCHBOARD_CHECKPOINT=str(run_dir / "checkpoint"))
        target = "evaluation.torch_server:create_app"
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, start_new_session=True)
    wait_ready(f"http://127.0.0.1:{port}/readyz")
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def run_wrk(url: str, bodies: Path, concurrency: int, seconds: int, script: Path) -> dict[str, int]:
    threads = 1 if concurrency == 1 else 2
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
        "--",
        str(bodies),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    return dict(json.loads(line.removeprefix("WRKJSON ")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--texts", type=Path, default=SHARED_TEST, help="CSV with a text column")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--batch-items", type=int, default=64)
    parser.add_argument("--batch-concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--ort-threads", type=int, default=0, help="0: onnxruntime uses every core")
    parser.add_argument("--servers", nargs="+", default=["switchboard", "torch"])
    parser.add_argument("--out", type=Path, default=Path(".switchboard/loadtest.json"))
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("error: wrk not found (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    for needed in ("bundle", "checkpoint"):
        if not (args.run_dir / needed).is_dir():
            print(f"error: {args.run_dir / needed} not found", file=sys.stderr)
            return 2
    if not args.texts.is_file():
        print(f"error: texts file {args.texts} not found", file=sys.stderr)
        return 2
    with args.texts.open(encoding="utf-8") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    work = Path(tempfile.mkdtemp(prefix="loadtest-"))
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    singles = work / "single.jsonl"
    singles.write_text("\n".join(json.dumps({"text": t}) for t in texts) + "\n", encoding="utf-8")
    batches = work / "batch.jsonl"
    n = args.batch_items
    batches.write_text(
        "\n".join(
            json.dumps({"items": [{"text": t} for t in texts[i : i + n]]}) for i in range(0, len(texts) - n + 1, n)
        )
        + "\n",
        encoding="utf-8",
    )
    results: list[Result] = []
    for server in args.servers:
        port = free_port()
        proc = start_server(server, args.run_dir, port, args.ort_threads)
        url = f"http://127.0.0.1:{port}/v1/classify"
        try:
            run_wrk(url, singles, 4, 3, script)  # warm-up
            plan = [("single", 1, c, singles) for c in args.concurrency]
            plan += [("batch", n, c, batches) for c in args.batch_concurrency]
            for mode, items, conc, bodies in plan:
                raw = run_wrk(url, bodies, conc, args.seconds, script)
                rps = raw["requests"] / (raw["duration_us"] / 1e6)
                res = Result(
                    server,
                    mode,
                    items,
                    conc,
                    round(rps, 1),
                    round(rps * items, 1),
                    round(raw["p50_us"] / 1000, 2),
                    round(raw["p95_us"] / 1000, 2),
                    round(raw["p99_us"] / 1000, 2),
                    raw["socket_errors"] + raw["non2xx"],
                )
                results.append(res)
                print(json.dumps(asdict(res)), flush=True)
        finally:
            stop_server(proc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n", encoding="utf-8")
    print_table(results)
    return 0


def print_table(results: list[Result]) -> None:
    print("\n| server | mode | items/req | concurrency | req/s | items/s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.server} | {r.mode} | {r.items_per_request} | {r.concurrency} | {r.requests_per_s} | "
            f"{r.items_per_s} | {r.p50_ms} | {r.p95_ms} | {r.p99_ms} | {r.errors} |"
        )
    by_key = {(r.server, r.mode, r.concurrency): r for r in results}
    for (server, mode, conc), r in by_key.items():
        other = by_key.get(("torch", mode, conc))
        if server == "switchboard" and other and other.items_per_s:
            print(f"{mode} c={conc}: switchboard/torch throughput = {r.items_per_s / other.items_per_s:.1f}x")


if __name__ == "__main__":
    raise SystemExit(main())
