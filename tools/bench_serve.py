#!/usr/bin/env python3
"""A bounded load test of `ocellus serve` (a benchmark, not a test): starts the server on a
free loopback port with the given options, sends --requests chat completions (each a
base64 PNG and "Describe this image.", the example images in turn) from --clients
concurrent connections, stops after the last one or --max-seconds, stops the server, and
reports requests/s, latency percentiles, time to first token for streams and tokens/s.

    python3 tools/bench_serve.py --cli build/ocellus --clients 4 --requests 200 \\
        [--stream] [--parallel 2] [--repeat-image] [--json]
"""
import argparse
import base64
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def start_server(args):
    cmd = [args.cli, "serve", "--port", "0", "--parallel", str(args.parallel)]
    if args.model:
        cmd += ["--model", args.model]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    while True:
        line = proc.stderr.readline()
        if not line:
            sys.exit("server did not start")
        if "listening on http://" in line:
            port = int(line.split("listening on http://")[1].split(" ")[0].rsplit(":", 1)[1])
            break
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return proc, port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default="build/ocellus")
    ap.add_argument("--model")
    ap.add_argument("--examples", default=os.path.join(os.path.dirname(__file__), "..", "examples"))
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--max-seconds", type=float, default=120)
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--repeat-image", action="store_true",
                    help="the same image every time (the encoded-image cache answers)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    imgs = []
    for i in range(1, 5):
        with open(os.path.join(args.examples, "shapes-%d.png" % i), "rb") as f:
            imgs.append(base64.b64encode(f.read()).decode())
    if args.repeat_image:
        imgs = imgs[:1]
    proc, port = start_server(args)
    lock = threading.Lock()
    next_i = [0]
    lat, ttft, tokens, errors = [], [], [0], [0]
    deadline = time.time() + args.max_seconds

    def body(i):
        b64 = imgs[i % len(imgs)]
        return json.dumps({"model": "m", "temperature": 0, "stream": args.stream,
                           "messages": [{"role": "user", "content": [
                               {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64}},
                               {"type": "text", "text": "Describe this image."}]}],
                           **({"stream_options": {"include_usage": True}} if args.stream else {})})

    def client():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                i = next_i[0]
                next_i[0] += 1
            if i >= args.requests or time.time() > deadline:
                break
            t0 = time.perf_counter()
            first = None
            try:
                c.request("POST", "/v1/chat/completions", body=body(i),
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                if r.status != 200:
                    r.read()
                    with lock:
                        errors[0] += 1
                    continue
                n = 0
                if args.stream:
                    for line in r:
                        if first is None and line.startswith(b"data: {") and b'"content":"' in line \
                                and b'"content":""' not in line:
                            first = time.perf_counter() - t0
                        if line.startswith(b"data: {") and b'"usage":{' in line:
                            n = json.loads(line[6:])["usage"]["completion_tokens"]
                else:
                    n = json.loads(r.read())["usage"]["completion_tokens"]
            except (OSError, http.client.HTTPException):
                with lock:
                    errors[0] += 1
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                continue
            dt = time.perf_counter() - t0
            with lock:
                lat.append(dt)
                tokens[0] += n
                if first is not None:
                    ttft.append(first)
        c.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)

    ms = [x * 1e3 for x in lat]
    res = {"requests": len(lat), "errors": errors[0], "clients": args.clients,
           "parallel": args.parallel, "stream": args.stream, "wall_s": round(wall, 3),
           "requests_per_s": round(len(lat) / wall, 2),
           "completion_tokens_per_s": round(tokens[0] / wall, 1),
           "latency_ms": {"mean": round(statistics.mean(ms), 2) if ms else None,
                          **{"p%d" % p: round(percentile(ms, p), 2) for p in (50, 90, 99)},
                          "max": round(max(ms), 2) if ms else None},
           "server_exit": rc}
    if ttft:
        res["first_token_ms"] = {"p%d" % p: round(percentile([x * 1e3 for x in ttft], p), 2)
                                 for p in (50, 90, 99)}
    if args.json:
        print(json.dumps(res))
    else:
        print("%d requests (%d errors), %d clients, --parallel %d%s: %.1f requests/s, %.0f "
              "tokens/s" % (res["requests"], res["errors"], args.clients, args.parallel,
                            ", streaming" if args.stream else "", res["requests_per_s"],
                            res["completion_tokens_per_s"]))
        l = res["latency_ms"]
        print("latency ms: mean %.1f, p50 %.1f, p90 %.1f, p99 %.1f, max %.1f"
              % (l["mean"], l["p50"], l["p90"], l["p99"], l["max"]))
        if ttft:
            f = res["first_token_ms"]
            print("first token ms: p50 %.1f, p90 %.1f, p99 %.1f" % (f["p50"], f["p90"], f["p99"]))
    return 0 if errors[0] == 0 and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
