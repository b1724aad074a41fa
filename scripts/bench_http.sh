#!/usr/bin/env bash
# Sustained retrieve load over HTTP on loopback, measured with wrk (a Debian package).
#
#   scripts/bench_http.sh HOME KB QUERIES.jsonl [CONNECTIONS] [SECONDS] [SEARCH_TYPE]
#
# HOME must hold KB, synced (for example the `eval-scifact` knowledge base that
# `groundwork eval retrieval` builds). Starts `groundwork serve` on a free port, replays the
# queries round-robin as Bedrock-shaped retrieve requests, then prints wrk's report (which counts
# non-2xx answers) and the server's peak resident memory. Needs: a built `groundwork` (GROUNDWORK_BIN,
# default target/release/groundwork, else target/debug/groundwork), wrk, python3.
set -euo pipefail
home=$1 kb=$2 queries=$3 connections=${4:-8} seconds=${5:-30} search_type=${6:-HYBRID}
cd "$(dirname "$0")/.."
bin=${GROUNDWORK_BIN:-target/release/groundwork}
[ -x "$bin" ] || bin=target/debug/groundwork
command -v wrk >/dev/null || { echo "bench_http.sh: install wrk (apt-get install wrk)" >&2; exit 2; }
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT

token=$("$bin" --home "$home" --json token create --user admin --name bench-http --expires 1h |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
"$bin" --home "$home" --json serve --listen 127.0.0.1:0 > "$work/serve.out" 2> "$work/serve.err" &
server=$!
for _ in $(seq 1 600); do [ -s "$work/serve.out" ] && break; sleep 0.1; done
url=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["listening"])' "$work/serve.out")

# The request bodies, as a Lua table wrk cycles through.
python3 - "$queries" "$search_type" > "$work/requests.lua" <<'PY'
import json, sys
bodies = []
for line in open(sys.argv[1]):
    line = line.strip()
    if line:
        text = json.loads(line)["text"]
        bodies.append(json.dumps({"retrievalQuery": {"text": text},
            "retrievalConfiguration": {"vectorSearchConfiguration":
                {"numberOfResults": 10, "overrideSearchType": sys.argv[2]}}}))
print("bodies = {")
for body in bodies:
    print("  " + json.dumps(body) + ",")
print("}")
PY
cat >> "$work/requests.lua" <<LUA
counter = 0
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer $token"
request = function()
  counter = counter + 1
  return wrk.format(nil, "/v1/knowledge-bases/$kb/retrieve", nil, bodies[(counter % #bodies) + 1])
end
LUA

# Warm the model and the loaded knowledge base before measuring.
curl -s -o /dev/null -X POST "$url/v1/knowledge-bases/$kb/retrieve" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"retrievalQuery":{"text":"warm up"}}'
echo "bench_http.sh: $bin, $connections connections, ${seconds}s, $search_type, k=10"
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/requests.lua" "$url"
echo "server peak RSS: $(grep VmHWM /proc/$server/status | awk '{print $2/1024 " MiB"}')"
