#!/usr/bin/env bash
# Sustained retrieve load over HTTP on loopback, measured with wrk (a Debian package).
#
#   scripts/bench_http.sh HOME KB QUERIES.jsonl [CONNECTIONS] [SECONDS] [SEARCH_TYPE]
#
# HOME must hold KB, synced (for example the `eval-scifact` knowledge base that
# `groundwork eval retrieval` builds). Starts `groundwork serve` on a free port, replays the
# distinct query texts round-robin as Bedrock-shaped retrieve requests (wrk's threads take turns,
# so no query repeats until the list is used up), then prints wrk's report and a summary:
# requests/s, latency p50/p99, errors (non-2xx answers and socket errors), the server's CPU time
# per request and peak resident memory, how it embedded the queries (batches gathered from
# concurrent requests; query-cache hits), and whether the serving target is met. Needs: a built
# `groundwork` (GROUNDWORK_BIN, default target/release/groundwork, else target/debug/groundwork),
# wrk, python3, curl.
#
# The headline figure is a run with the query cache off (`[search] query_cache_entries = 0`, the
# default): every request runs the model, so a query replayed once the list is used up costs what
# a new one does (the summary checks the model embedded a query per request). A run with the cache
# on (set in HOME/config.toml) says so and is reported apart: its hits skip the model.
set -euo pipefail
home=$1 kb=$2 queries=$3 connections=${4:-8} seconds=${5:-30} search_type=${6:-HYBRID}
cd "$(dirname "$0")/.."
bin=${GROUNDWORK_BIN:-target/release/groundwork}
[ -x "$bin" ] || bin=target/debug/groundwork
command -v wrk >/dev/null || { echo "bench_http.sh: install wrk (apt-get install wrk)" >&2; exit 2; }
work=$(mktemp -d) server=
trap '[ -n "$server" ] && { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; }; rm -rf "$work"' EXIT

token=$("$bin" --home "$home" --json token create --user admin --name bench-http --expires 1h |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
"$bin" --home "$home" --json serve --listen 127.0.0.1:0 > "$work/serve.out" 2> "$work/serve.err" &
server=$!
for _ in $(seq 1 600); do [ -s "$work/serve.out" ] && break; sleep 0.1; done
url=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["listening"])' "$work/serve.out")

# The request bodies, as a Lua table wrk cycles through: each distinct query text once, in file
# order.
python3 - "$queries" "$search_type" > "$work/requests.lua" <<'PY'
import json, sys
bodies, seen = [], set()
for line in open(sys.argv[1]):
    line = line.strip()
    if line:
        text = json.loads(line)["text"]
        if text in seen:
            continue
        seen.add(text)
        bodies.append(json.dumps({"retrievalQuery": {"text": text},
            "retrievalConfiguration": {"vectorSearchConfiguration":
                {"numberOfResults": 10, "overrideSearchType": sys.argv[2]}}}))
print("bodies = {")
for body in bodies:
    print("  " + json.dumps(body) + ",")
print("}")
PY
# wrk's threads take turns through the list (thread i sends queries i, i+threads, ...), so no two
# requests carry the same query until the list is used up.
threads=2
cat >> "$work/requests.lua" <<LUA
local started = 0
setup = function(thread)
  thread:set("offset", started)
  started = started + 1
end
init = function(args)
  counter = offset or 0
end
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer $token"
request = function()
  local body = bodies[(counter % #bodies) + 1]
  counter = counter + $threads
  return wrk.format(nil, "/v1/knowledge-bases/$kb/retrieve", nil, body)
end
LUA
distinct=$(grep -c '^  "' "$work/requests.lua")

# Warm the model and the loaded knowledge base before measuring.
curl -s -o /dev/null -X POST "$url/v1/knowledge-bases/$kb/retrieve" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"retrievalQuery":{"text":"warm up"}}'
echo "bench_http.sh: $bin, $connections connections, ${seconds}s, $search_type, k=10, $distinct distinct queries"
# The server's CPU time (user + system clock ticks), to tell its cost per request from the
# load other processes put on the cores.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
curl -s "$url/metrics" > "$work/metrics.before"
ticks_before=$(cpu_ticks)
wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency -s "$work/requests.lua" "$url" | tee "$work/wrk.out"
ticks_after=$(cpu_ticks)
curl -s "$url/metrics" > "$work/metrics.after"
peak_rss_kib=$(awk '/^VmHWM/ {print $2}' "/proc/$server/status")

# The summary: wrk's figures, the server's cost, and how the queries were embedded during the
# run (the counters' growth; the warm-up request is left out).
python3 - "$work/wrk.out" "$work/metrics.before" "$work/metrics.after" "$((ticks_after - ticks_before))" \
  "$(getconf CLK_TCK)" "$seconds" "$distinct" "$search_type" "$peak_rss_kib" <<'PY'
import re, sys
wrk_out, before_path, after_path, ticks, clk_tck, seconds, distinct, search_type, rss_kib = sys.argv[1:]
text = open(wrk_out).read()
requests = int(re.search(r"(\d+) requests in", text).group(1))
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
unit_ms = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
def percentile(p):
    m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    return float(m.group(1)) * unit_ms[m.group(2)] if m else float("nan")
p50, p99 = percentile(50), percentile(99)
non_2xx = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", text))
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
socket_errors = sum(int(n) for n in m.groups()) if m else 0
errors = non_2xx + socket_errors

def read(path):
    values = {}
    for line in open(path):
        if line.startswith("groundwork_query_"):
            name, value = line.split()
            values[name] = float(value)
    return values
before, after = read(before_path), read(after_path)
grow = lambda name: after.get(name, 0) - before.get(name, 0)
batches = grow("groundwork_query_embed_batches_total")
batched = grow("groundwork_query_embed_batched_texts_total")
direct = grow("groundwork_query_embed_direct_calls_total")
hits, misses = grow("groundwork_query_cache_hits_total"), grow("groundwork_query_cache_misses_total")
cache_on = after.get("groundwork_query_cache_capacity", 0) > 0
cpu_s = int(ticks) / int(clk_tck)

print()
print(f"server CPU: {cpu_s:.1f} s over {seconds} s of load, {1000 * cpu_s / max(requests, 1):.2f} ms per request; "
      f"peak RSS {int(rss_kib) / 1024:.0f} MiB")
print(f"query embedding: {batched:.0f} queries in {batches:.0f} batched model calls "
      f"(mean {batched / max(batches, 1):.2f}, largest since start "
      f"{after.get('groundwork_query_embed_largest_batch', 0):.0f}), {direct:.0f} direct calls")
print(f"queries replayed: {requests} requests over {distinct} distinct queries"
      + (f" (the list went round {requests / max(int(distinct), 1):.1f} times)" if requests > int(distinct) else ""))
if cache_on:
    print(f"query cache ON ({after['groundwork_query_cache_capacity']:.0f} entries): {hits:.0f} hits, "
          f"{misses:.0f} misses. Hits skip the model: NOT the headline figure (set "
          f"[search] query_cache_entries = 0 for that)")
    label = "cache-on run (reported apart)"
else:
    print("query cache off: no request was answered from a cached vector")
    label = "HEADLINE (query cache off)"
    if search_type.upper() != "LEXICAL" and batched < requests:
        print(f"warning: the model embedded {batched:.0f} queries for {requests} requests")
print(f"{label}: {rate:.1f} requests/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, {errors} errors "
      f"({non_2xx} non-2xx, {socket_errors} socket)")
met = rate >= 200 and p99 <= 100 and errors == 0
print(f"target (>= 200 requests/s, p99 <= 100 ms, 0 errors): {'met' if met else 'NOT met'}"
      + ("" if not cache_on else " (cache on: does not count)"))
PY
