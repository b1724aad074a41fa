#!/usr/bin/env python3
"""Soak: minutes of mixed HTTP load on `groundwork serve`, with its resident memory watched.

A home with a knowledge base over the first DOCUMENTS SciFact documents is served; CLIENTS
threads send a mix of retrieve (hybrid), retrieve-and-generate (extractive answers), admin
reads and writes (users, grants), audit queries and deliberate bad requests; a sync job is
started every minute after documents in the folder change. Reports requests, errors (non-2xx
apart from the deliberate bad requests), p50/p99 in the first and the last minute, and the
server's resident memory sampled every 10 s (start, end, peak, and the slope of a line fitted
to the second half, which should be flat).

    scripts/soak.py --bin target/release/groundwork [--minutes 10] [--clients 4]
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request


def cli(bin_, home, *args):
    out = subprocess.run([bin_, "--home", home, "--json", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"groundwork {' '.join(args)}: {out.stdout}{out.stderr}")
    return json.loads(out.stdout) if out.stdout.strip() else None


def rss_kib(pid, field="VmRSS"):
    """Resident memory of `pid` in KiB: all of it (VmRSS), or its anonymous part (RssAnon: heap,
    stacks) or its file-backed part (RssFile: the binary, mapped index files)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def slope_per_minute(points, since):
    """Slope (per minute) of a least-squares line through the points at or after `since`."""
    half = [p for p in points if p[0] >= since]
    if len(half) < 2:
        return 0.0
    xs, ys = [p[0] for p in half], [p[1] for p in half]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs) or 1
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 60


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p / 100 * len(values)))], 1)


class Load:
    def __init__(self, base, token, folder, queries):
        self.base, self.token, self.folder, self.queries = base, token, folder, queries
        self.lock = threading.Lock()
        self.samples = []  # (time, kind, status, ms, deliberate)
        self.stop = threading.Event()

    def call(self, method, path, body=None, deliberate=False, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Content-Type": "application/json"})
        started = time.time()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as e:
            e.read()
            status = e.code
        except (urllib.error.URLError, OSError):
            status = 0
        ms = (time.time() - started) * 1e3
        with self.lock:
            self.samples.append((started, path.split("/")[-1] or path, status, ms, deliberate))
        return status

    def client(self, seed):
        rng = random.Random(seed)
        n = 0
        while not self.stop.is_set():
            n += 1
            roll = rng.random()
            q = rng.choice(self.queries)
            if roll < 0.55:
                self.call("POST", "/v1/knowledge-bases/soak/retrieve",
                          {"retrievalQuery": {"text": q},
                           "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": 5}}})
            elif roll < 0.75:
                self.call("POST", "/v1/knowledge-bases/soak/retrieve-and-generate",
                          {"input": {"text": q},
                           "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": 3}}})
            elif roll < 0.82:
                self.call("GET", "/v1/users")
            elif roll < 0.86:
                self.call("POST", "/v1/users", {"name": f"soak{seed}x{n}"})
            elif roll < 0.90:
                self.call("POST", "/v1/grants", {"grantee": "group:soakers",
                                                 "location": f"{self.folder}/g{seed}x{n}"})
            elif roll < 0.94:
                self.call("GET", "/v1/audit?limit=20")
            elif roll < 0.97:
                self.call("POST", "/v1/knowledge-bases/soak/retrieve", raw=b"{not json", deliberate=True)
            else:
                self.call("POST", "/v1/knowledge-bases/nope/retrieve",
                          {"retrievalQuery": {"text": q}}, deliberate=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.path.join(here, "..", "..", "shared", "data", "scifact")
    p.add_argument("--bin", required=True)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--documents", type=int, default=1000)
    p.add_argument("--corpus", default=os.path.join(shared, "corpus.jsonl"))
    p.add_argument("--queries", default=os.path.join(shared, "queries.jsonl"))
    args = p.parse_args()

    work = tempfile.mkdtemp(prefix="gw-soak-")
    home, folder = os.path.join(work, "home"), os.path.join(work, "docs")
    os.makedirs(folder)
    docs = []
    with open(args.corpus, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= args.documents:
                break
            docs.append(json.loads(line))
    for d in docs:
        with open(os.path.join(folder, f"{d['_id']}.txt"), "w", encoding="utf-8") as out:
            out.write(f"{d['title']}\n\n{d['text']}\n")
    queries = [json.loads(line)["text"] for line in open(args.queries, encoding="utf-8")]
    cli(args.bin, home, "init")
    cli(args.bin, home, "kb", "create", "soak")
    cli(args.bin, home, "source", "add", "soak", folder)
    cli(args.bin, home, "sync", "soak")
    cli(args.bin, home, "group", "add", "soakers")
    token = cli(args.bin, home, "token", "create", "--user", "admin")["token"]

    server = subprocess.Popen([args.bin, "--home", home, "--json", "serve", "--listen", "127.0.0.1:0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    base = json.loads(server.stdout.readline())["listening"]
    load = Load(base, token, folder, queries)
    threads = [threading.Thread(target=load.client, args=(i,), daemon=True) for i in range(args.clients)]
    started = time.time()
    for t in threads:
        t.start()
    memory, anon = [], []
    syncs, next_sync, edit = 0, started + 60, 0
    end = started + args.minutes * 60
    while time.time() < end:
        now = time.time()
        memory.append((now - started, rss_kib(server.pid)))
        anon.append((now - started, rss_kib(server.pid, "RssAnon")))
        if now >= next_sync:
            # Change a few documents, then start a sync job.
            for d in docs[edit: edit + 20]:
                with open(os.path.join(folder, f"{d['_id']}.txt"), "a", encoding="utf-8") as out:
                    out.write(f"\nRevised at minute {syncs + 1}.\n")
            edit += 20
            load.call("POST", "/v1/knowledge-bases/soak/sync", {})
            syncs += 1
            next_sync += 60
        time.sleep(10)
    load.stop.set()
    for t in threads:
        t.join()
    memory.append((time.time() - started, rss_kib(server.pid)))
    anon.append((time.time() - started, rss_kib(server.pid, "RssAnon")))
    server.terminate()
    server.wait()

    samples = load.samples
    t0 = samples[0][0]
    first = [ms for at, _, status, ms, d in samples if at - t0 < 60 and not d]
    last = [ms for at, _, status, ms, d in samples if at - t0 >= args.minutes * 60 - 60 and not d]
    errors = [(kind, status) for _, kind, status, _, d in samples if not d and not 200 <= status < 300]
    deliberate_wrong = [(kind, status) for _, kind, status, _, d in samples if d and not 400 <= status < 500]
    report = {
        "minutes": args.minutes,
        "clients": args.clients,
        "documents": len(docs),
        "requests": len(samples),
        "requests_per_second": round(len(samples) / (args.minutes * 60), 1),
        "deliberate_bad_requests": sum(1 for s in samples if s[4]),
        "deliberate_answered_other_than_4xx": len(deliberate_wrong),
        "errors": len(errors),
        "error_kinds": sorted({f"{k} {s}" for k, s in errors})[:10],
        "sync_jobs": syncs,
        "first_minute_ms": {"p50": percentile(first, 50), "p99": percentile(first, 99), "n": len(first)},
        "last_minute_ms": {"p50": percentile(last, 50), "p99": percentile(last, 99), "n": len(last)},
        "rss_mib": {"start": round(memory[0][1] / 1024, 1), "end": round(memory[-1][1] / 1024, 1),
                    "peak": round(max(m[1] for m in memory) / 1024, 1),
                    "second_half_slope_mib_per_minute":
                        round(slope_per_minute(memory, args.minutes * 30) / 1024, 2),
                    "samples": [round(m[1] / 1024) for m in memory]},
        "anonymous_rss_mib": {"start": round(anon[0][1] / 1024, 1), "end": round(anon[-1][1] / 1024, 1),
                              "second_half_slope_mib_per_minute":
                                  round(slope_per_minute(anon, args.minutes * 30) / 1024, 2),
                              "samples": [round(m[1] / 1024) for m in anon]},
    }
    print(json.dumps(report, indent=2))
    sys.exit(0 if not errors and not deliberate_wrong else 1)


if __name__ == "__main__":
    main()
