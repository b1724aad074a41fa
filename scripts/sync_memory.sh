#!/usr/bin/env bash
# Peak resident memory of a sync: an ordinary corpus (the first N SciFact documents) against the
# same corpus plus the largest inputs the bounds admit — a 60 MB text file, a 50 MB CSV of
# short rows, the 3.6 MB CSV of 200,000 columns, a 40 MB JSON array, a 30 MB HTML page — so
# that the difference is what one hostile document can cost (the bounds keep it to one
# document's bytes and text plus one commit batch).
#
#   scripts/sync_memory.sh BIN [N] [MAX_CHUNKS]
#
# MAX_CHUNKS (default 500) is [ingest] max_chunks_per_document for both runs: it bounds how
# long the embedding takes, not the parse, which sees the whole input either way.
set -euo pipefail
bin=$(realpath "$1")
n=${2:-300}
max_chunks=${3:-500}
cd "$(dirname "$0")/.."
corpus_file=../shared/data/scifact/corpus.jsonl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$corpus_file" "$work/plain" "$n" <<'PY'
import json, os, sys
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out)
for i, line in enumerate(open(src, encoding="utf-8")):
    if i >= n:
        break
    d = json.loads(line)
    open(os.path.join(out, d["_id"] + ".txt"), "w", encoding="utf-8").write(d["title"] + "\n\n" + d["text"] + "\n")
PY
cp -r "$work/plain" "$work/hostile"
python3 - "$work/hostile" <<'PY'
import os, sys, random
out = sys.argv[1]
rng = random.Random(1)
words = "leave budget policy travel salary review office remote audit vendor".split()
with open(os.path.join(out, "big.txt"), "w") as f:
    while f.tell() < 60_000_000:
        f.write(" ".join(rng.choice(words) for _ in range(12)) + ".\n")
with open(os.path.join(out, "rows.csv"), "w") as f:
    f.write("id,name,dept,amount\n")
    i = 0
    while f.tell() < 50_000_000:
        f.write(f"{i},{rng.choice(words)},{rng.choice(words)},{i % 997}\n")
        i += 1
with open(os.path.join(out, "wide.csv"), "w") as f:
    f.write(",".join(f"c{i}" for i in range(200_000)) + "\n" + ",".join("7" for _ in range(200_000)) + "\n")
with open(os.path.join(out, "array.json"), "w") as f:
    f.write("[")
    i = 0
    while f.tell() < 40_000_000:
        f.write(('{"k": %d, "v": "%s"},' % (i, rng.choice(words))))
        i += 1
    f.write("0]")
with open(os.path.join(out, "page.html"), "w") as f:
    f.write("<html><body>")
    while f.tell() < 30_000_000:
        f.write("<p>" + " ".join(rng.choice(words) for _ in range(10)) + "</p>")
    f.write("</body></html>")
PY
for corpus in plain hostile; do
  home="$work/home-$corpus"
  "$bin" --home "$home" init > /dev/null
  sed -i "s/^max_chunks_per_document = .*/max_chunks_per_document = $max_chunks/" "$home/config.toml"
  "$bin" --home "$home" kb create m > /dev/null
  "$bin" --home "$home" source add m "$work/$corpus" > /dev/null
  /usr/bin/time -v "$bin" --home "$home" --json sync m > "$work/report-$corpus.json" 2> "$work/time-$corpus.txt"
  peak=$(grep "Maximum resident set size" "$work/time-$corpus.txt" | awk '{print $NF}')
  wall=$(grep "Elapsed (wall clock)" "$work/time-$corpus.txt" | awk '{print $NF}')
  python3 - "$work/report-$corpus.json" "$corpus" "$peak" "$wall" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
fails = {}
for f in r["failed"]:
    fails[f["code"]] = fails.get(f["code"], 0) + 1
print(f"{sys.argv[2]}: peak RSS {int(sys.argv[3]) / 1024:.0f} MiB, wall {sys.argv[4]}, added {r['added']}, "
      f"chunks {r['chunks_written']}, failed {fails}")
PY
done
