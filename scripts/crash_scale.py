#!/usr/bin/env python3
"""Crash consistency at scale: real SIGKILLs of `groundwork sync` and `groundwork serve`.

Sync: the SciFact corpus (5,183 documents) is written to a folder and synced into a knowledge
base; the sync is killed with SIGKILL at KILLS random points (random delays, so kills land in
listing, parsing, embedding, commits and index catch-up), then allowed to finish. The result is
compared with a clean sync of the same folder into a second knowledge base of the same home:
the same documents (URI and content hash), the same chunks (URI, ordinal, text), no duplicates,
indexes that agree with the store, and the same semantic results for a sample of queries.

Serve: `groundwork serve` takes a stream of acknowledged administrative writes (users, grants,
tokens, sync jobs) over HTTP and is killed with SIGKILL at random moments, then restarted, SERVE_KILLS
times; afterwards the audit chain must verify and every acknowledged change must be present.

    scripts/crash_scale.py --bin target/release/groundwork [--kills 100] [--serve-kills 20]

Prints one JSON report (kills, lost, duplicated, timings).
"""

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request


def run(bin_, home, *args, check=True, env=None):
    out = subprocess.run([bin_, "--home", home, "--json", *args], capture_output=True, text=True, env=env)
    if check and out.returncode != 0:
        raise SystemExit(f"groundwork {' '.join(args)} failed ({out.returncode}): {out.stdout}{out.stderr}")
    return json.loads(out.stdout) if out.stdout.strip() else None


def write_corpus(corpus, folder, limit):
    os.makedirs(folder, exist_ok=True)
    n = 0
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            with open(os.path.join(folder, f"{doc['_id']}.txt"), "w", encoding="utf-8") as out:
                out.write(f"{doc.get('title', '')}\n\n{doc.get('text', '')}\n")
            n += 1
            if limit and n >= limit:
                break
    return n


def store_state(db, kb):
    conn = sqlite3.connect(db)
    docs = conn.execute(
        "SELECT d.uri, d.content_sha256 FROM documents d JOIN knowledge_bases k ON k.id = d.kb_id "
        "WHERE k.name = ? AND d.content_sha256 IS NOT NULL",
        (kb,),
    ).fetchall()
    chunks = conn.execute(
        "SELECT d.uri, c.ordinal, c.text FROM chunks c JOIN documents d ON d.id = c.document_id "
        "JOIN knowledge_bases k ON k.id = c.kb_id WHERE k.name = ? ORDER BY d.uri, c.ordinal",
        (kb,),
    ).fetchall()
    conn.close()
    return docs, chunks


def sync_phase(args, home, folder, report):
    kb = "crashy"
    run(args.bin, home, "kb", "create", kb)
    run(args.bin, home, "source", "add", kb, folder)
    rng = random.Random(args.seed)
    kills, finished_early = 0, 0
    started = time.time()
    for i in range(args.kills):
        child = subprocess.Popen([args.bin, "--home", home, "sync", kb],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Mostly short delays (many kills early in a run: listing, model load, first batches),
        # some long ones (deep into embedding and index catch-up).
        delay = rng.uniform(0.05, 2.0) if rng.random() < 0.5 else rng.uniform(2.0, args.max_delay)
        time.sleep(delay)
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        else:
            finished_early += 1
        child.wait()
        if finished_early and child.returncode == 0 and i > args.kills // 2:
            break  # Nothing left to interrupt.
    final = run(args.bin, home, "sync", kb)
    sync_seconds = time.time() - started
    run(args.bin, home, "kb", "create", "reference")
    run(args.bin, home, "source", "add", "reference", folder)
    run(args.bin, home, "sync", "reference")
    db = os.path.join(home, "groundwork.db")
    crashed_docs, crashed_chunks = store_state(db, kb)
    ref_docs, ref_chunks = store_state(db, "reference")
    crashed_set, ref_set = set(crashed_docs), set(ref_docs)
    lost_docs = len(ref_set - crashed_set)
    extra_docs = len(crashed_set - ref_set)
    duplicated_docs = len(crashed_docs) - len({uri for uri, _ in crashed_docs})
    duplicated_chunks = len(crashed_chunks) - len({(u, o) for u, o, _ in crashed_chunks})
    chunks_differ = sum(1 for a, b in zip(crashed_chunks, ref_chunks) if a != b) + abs(len(crashed_chunks) - len(ref_chunks))
    status = run(args.bin, home, "index", "status", kb)
    indexes_agree = status["lexical_chunks"] == status["store_chunks"] == status["vectors"] and \
        status["lexical_seq"] == status["store_seq"]
    queries = []
    with open(args.queries, encoding="utf-8") as f:
        for line in f:
            queries.append(json.loads(line)["text"])
    rng.shuffle(queries)
    search_differs = 0
    for q in queries[: args.search_sample]:
        def ranked(name):
            hits = run(args.bin, home, "search", name, q, "-k", "10", "--search-type", "semantic")["hits"]
            return [(h["uri"], h["content"], round(h["score"], 5)) for h in hits]
        if ranked(kb) != ranked("reference"):
            search_differs += 1
    report["sync"] = {
        "documents": len(ref_docs),
        "chunks": len(ref_chunks),
        "kills": kills,
        "runs_that_finished_before_their_kill": finished_early,
        "lost_documents": lost_docs,
        "extra_documents": extra_docs,
        "duplicated_documents": duplicated_docs,
        "duplicated_chunks": duplicated_chunks,
        "chunks_differing": chunks_differ,
        "indexes_agree_with_store": indexes_agree,
        "semantic_searches_compared": min(args.search_sample, len(queries)),
        "semantic_searches_differing": search_differs,
        "final_sync_failed": len(final["failed"]),
        "seconds_with_kills": round(sync_seconds, 1),
    }


class Writer(threading.Thread):
    """Sends administrative writes to a server and remembers the acknowledged ones."""

    def __init__(self, base, token, folder):
        super().__init__(daemon=True)
        self.base, self.token, self.folder = base, token, folder
        self.acked = {"users": set(), "grants": set(), "tokens": set(), "jobs": 0}
        self.stop = threading.Event()
        self.n = 0

    def post(self, path, body):
        request = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")

    def run(self):
        while not self.stop.is_set():
            self.n += 1
            name = f"w{self.n}"
            try:
                kind = self.n % 4
                if kind == 0:
                    status, _ = self.post("/v1/users", {"name": name})
                    if 200 <= status < 300:
                        self.acked["users"].add(name)
                elif kind == 1:
                    status, body = self.post("/v1/grants", {"grantee": "group:crashers",
                                                            "location": self.folder + f"/{name}"})
                    if 200 <= status < 300:
                        self.acked["grants"].add(body["id"])
                elif kind == 2:
                    status, body = self.post("/v1/tokens", {"user": "admin"})
                    if 200 <= status < 300:
                        self.acked["tokens"].add(body["id"])
                else:
                    status, _ = self.post("/v1/knowledge-bases/crashy/sync", {})
                    if 200 <= status < 300:
                        self.acked["jobs"] += 1
            except (urllib.error.URLError, ConnectionError, OSError, TimeoutError, ValueError):
                time.sleep(0.05)  # The server is down or restarting: not acknowledged.


def start_server(bin_, home):
    child = subprocess.Popen([bin_, "--home", home, "--json", "serve", "--listen", "127.0.0.1:0"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = child.stdout.readline()
    return child, json.loads(line)["listening"]


def serve_phase(args, home, folder, report):
    token = run(args.bin, home, "token", "create", "--user", "admin")["token"]
    run(args.bin, home, "group", "add", "crashers")
    rng = random.Random(args.seed + 1)
    child, base = start_server(args.bin, home)
    writer = Writer(base, token, folder)
    writer.start()
    kills = 0
    for _ in range(args.serve_kills):
        time.sleep(rng.uniform(0.3, 3.0))
        child.send_signal(signal.SIGKILL)
        child.wait()
        kills += 1
        child, base = start_server(args.bin, home)
        writer.base = base
    time.sleep(1.0)
    writer.stop.set()
    writer.join()
    child.send_signal(signal.SIGTERM)
    child.wait()
    verify = run(args.bin, home, "audit", "verify")
    users = {u["name"] for u in run(args.bin, home, "user", "list")}
    grants = {g["id"] for g in run(args.bin, home, "grant", "list")}
    tokens = {t["id"] for t in run(args.bin, home, "token", "list")}
    lost = len(writer.acked["users"] - users) + len(writer.acked["grants"] - grants) + \
        len(writer.acked["tokens"] - tokens)
    report["serve"] = {
        "kills": kills,
        "acknowledged": {k: (len(v) if isinstance(v, set) else v) for k, v in writer.acked.items()},
        "lost_acknowledged_changes": lost,
        "audit_intact": verify["intact"],
        "audit_records": verify["records"],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.path.join(here, "..", "..", "shared", "data", "scifact")
    p.add_argument("--bin", required=True)
    p.add_argument("--corpus", default=os.path.join(shared, "corpus.jsonl"))
    p.add_argument("--queries", default=os.path.join(shared, "queries.jsonl"))
    p.add_argument("--documents", type=int, default=0, help="only the first N documents (0: all)")
    p.add_argument("--kills", type=int, default=100)
    p.add_argument("--max-delay", type=float, default=20.0)
    p.add_argument("--serve-kills", type=int, default=20)
    p.add_argument("--search-sample", type=int, default=50)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--work", default=None, help="work folder (default: a temporary one)")
    args = p.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="gw-crash-")
    home, folder = os.path.join(work, "home"), os.path.join(work, "corpus")
    report = {"documents_written": write_corpus(args.corpus, folder, args.documents)}
    run(args.bin, home, "init")
    sync_phase(args, home, folder, report)
    if args.serve_kills:
        serve_phase(args, home, folder, report)
    print(json.dumps(report, indent=2))
    ok = report["sync"]["lost_documents"] == 0 and report["sync"]["duplicated_documents"] == 0 and \
        report["sync"]["duplicated_chunks"] == 0 and report["sync"]["chunks_differing"] == 0 and \
        report["sync"]["indexes_agree_with_store"] and report["sync"]["semantic_searches_differing"] == 0 and \
        report.get("serve", {}).get("lost_acknowledged_changes", 0) == 0 and \
        report.get("serve", {}).get("audit_intact", True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
