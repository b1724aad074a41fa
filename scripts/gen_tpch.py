#!/usr/bin/env python3
"""TPC-H-like data generator: the eight TPC-H tables as Parquet, one folder per table.

    python3 scripts/gen_tpch.py --scale 1 --out DIR [--seed 42] [--compression zstd]

Writes DIR/region, DIR/nation, DIR/supplier, DIR/customer, DIR/part, DIR/partsupp, DIR/orders
and DIR/lineitem, each holding part-N.parquet files (orders and lineitem are split into files of
about one million rows, and so is partsupp from scale 2 up; earlier part files in those folders
are removed first). Prints each table's row count, file sizes and the time taken.

This is TPC-H-*like*, not the audited dbgen: the schemas, row counts, key relations and value
rules follow the TPC-H specification (section 4.2.3) closely enough that the standard queries
return the same kind of non-trivial answers, but the random streams differ from dbgen's, so
answers are not the spec's reference answers. The same --seed and --scale always give the same
data. What is simplified:

  * Money and other DECIMAL columns are float64 (for portability across readers); every value
    is still a whole number of cents. Dates are date32, keys int64, small integers int32.
  * Comments are random substrings of a text pool built from the spec's weighted word lists
    with a simplified version of its sentence grammar (as dbgen does, with a smaller pool).

Needs: numpy and pyarrow (pip install numpy pyarrow). SF 1 takes about 20 s on 2 cores and
about 1 GB of memory; --scale 0.1 is a small set for tests.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import os
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# --- Sizes -------------------------------------------------------------------------------------

# Rows per scale factor 1 (spec 4.2.5); partsupp is 4 per part, lineitem 1..7 per order.
BASE_ROWS = {"supplier": 10_000, "customer": 150_000, "part": 200_000, "orders": 1_500_000}
ORDERS_PER_CHUNK = 250_000  # one lineitem file per chunk: ~1M rows (4 lines per order on average)
ORDERS_PER_FILE = 1_000_000  # orders are written in files of up to this many rows
PARTS_PER_CHUNK = 250_000  # one partsupp file per chunk: 1M rows
ROW_GROUP_ROWS = 1 << 20  # one row group per file of ~1M rows (also pyarrow's default)
TEXT_POOL_BYTES = 16 << 20  # dbgen uses 300 MB; a smaller pool repeats more but reads the same

# --- Dates (spec 4.2.2.12 and 4.2.3) -----------------------------------------------------------

EPOCH = dt.date(1970, 1, 1)


def days(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01: the date32 representation."""
    return (dt.date(y, m, d) - EPOCH).days


START_DATE = days(1992, 1, 1)
END_DATE = days(1998, 12, 31)
CURRENT_DATE = days(1995, 6, 17)  # splits returned/shipped (R, A) from not yet (N), F from O

# --- Word lists from the spec (4.2.2.13 and 4.2.3) ---------------------------------------------

REGIONS = ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]
NATIONS = [  # (name, regionkey), nationkey is the position
    ("ALGERIA", 0), ("ARGENTINA", 1), ("BRAZIL", 1), ("CANADA", 1), ("EGYPT", 4),
    ("ETHIOPIA", 0), ("FRANCE", 3), ("GERMANY", 3), ("INDIA", 2), ("INDONESIA", 2),
    ("IRAN", 4), ("IRAQ", 4), ("JAPAN", 2), ("JORDAN", 4), ("KENYA", 0),
    ("MOROCCO", 0), ("MOZAMBIQUE", 0), ("PERU", 1), ("CHINA", 2), ("ROMANIA", 3),
    ("SAUDI ARABIA", 4), ("VIETNAM", 2), ("RUSSIA", 3), ("UNITED KINGDOM", 3), ("UNITED STATES", 1),
]
SEGMENTS = ["AUTOMOBILE", "BUILDING", "FURNITURE", "MACHINERY", "HOUSEHOLD"]
PRIORITIES = ["1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW"]
SHIP_INSTRUCT = ["DELIVER IN PERSON", "COLLECT COD", "NONE", "TAKE BACK RETURN"]
SHIP_MODES = ["REG AIR", "AIR", "RAIL", "SHIP", "TRUCK", "MAIL", "FOB"]
TYPE_S1 = ["STANDARD", "SMALL", "MEDIUM", "LARGE", "ECONOMY", "PROMO"]
TYPE_S2 = ["ANODIZED", "BURNISHED", "PLATED", "POLISHED", "BRUSHED"]
TYPE_S3 = ["TIN", "NICKEL", "BRASS", "STEEL", "COPPER"]
CONTAINER_S1 = ["SM", "LG", "MED", "JUMBO", "WRAP"]
CONTAINER_S2 = ["CASE", "BOX", "BAG", "JAR", "PKG", "PACK", "CAN", "DRUM"]
COLORS = (  # p_name is five distinct words from these 92
    "almond antique aquamarine azure beige bisque black blanched blue blush brown burlywood "
    "burnished chartreuse chiffon chocolate coral cornflower cornsilk cream cyan dark deep dim "
    "dodger drab firebrick floral forest frosted gainsboro ghost goldenrod green grey honeydew "
    "hot indian ivory khaki lace lavender lawn lemon light lime linen magenta maroon medium "
    "metallic midnight mint misty moccasin navajo navy olive orange orchid pale papaya peach "
    "peru pink plum powder puff purple red rose rosy royal saddle salmon sandy seashell sienna "
    "sky slate smoke snow spring steel tan thistle tomato turquoise violet wheat white yellow"
).split()
assert len(COLORS) == 92

# Comment grammar word lists as "word:weight" (weights approximate dbgen's dists.dss).
NOUNS = (
    "packages:40 requests:40 accounts:40 deposits:40 foxes:20 ideas:20 theodolites:20 "
    "pinto_beans:20 instructions:20 dependencies:10 excuses:10 platelets:10 asymptotes:10 "
    "courts:5 dolphins:5 multipliers:1 sauternes:1 warthogs:1 frets:1 dinos:1 attainments:1 "
    "somas:1 Tiresias:1 patterns:1 forges:1 braids:1 hockey_players:1 frays:1 warhorses:1 "
    "dugouts:1 notornis:1 epitaphs:1 pearls:1 tithes:1 waters:1 orbits:1 gifts:1 sheaves:1 "
    "depths:1 sentiments:1 decoys:1 realms:1 pains:1 grouches:1 escapades:1"
)
VERBS = (
    "sleep:20 wake:20 are:20 cajole:20 haggle:20 nag:10 use:10 boost:10 affix:5 detect:5 "
    "integrate:5 maintain:1 nod:1 was:1 lose:1 sublate:1 solve:1 thrash:1 promise:1 engage:1 "
    "hinder:1 print:1 x-ray:1 breach:1 eat:1 grow:1 impress:1 mold:1 poach:1 serve:1 run:1 "
    "dazzle:1 snooze:1 doze:1 unwind:1 kindle:1 play:1 hang:1 believe:1 doubt:1"
)
ADJECTIVES = (
    "special:20 pending:20 unusual:20 express:20 furious:1 sly:1 careful:1 blithe:1 quick:1 "
    "fluffy:1 slow:1 quiet:1 ruthless:1 thin:1 close:1 dogged:1 daring:1 brave:1 stealthy:1 "
    "permanent:1 enticing:1 idle:1 busy:1 regular:50 final:40 ironic:40 even:30 bold:20 silent:10"
)
ADVERBS = (
    "sometimes:1 always:1 never:1 furiously:50 slyly:50 carefully:50 blithely:40 quickly:30 "
    "fluffily:20 slowly:1 quietly:1 ruthlessly:1 thinly:1 closely:1 doggedly:1 daringly:1 "
    "bravely:1 stealthily:1 permanently:1 enticingly:1 idly:1 busily:1 regularly:1 finally:1 "
    "ironically:1 evenly:1 boldly:1 silently:1"
)
PREPOSITIONS = (
    "about:50 above:50 according_to:50 across:50 after:50 against:40 along:40 alongside_of:30 "
    "among:30 around:20 at:10 atop:1 before:1 behind:1 beneath:1 beside:1 besides:1 between:1 "
    "beyond:1 by:1 despite:1 during:1 except:1 for:1 from:1 in_place_of:1 inside:1 "
    "instead_of:1 into:1 near:1 of:1 on:1 outside:1 over:1 past:1 since:1 through:1 "
    "throughout:1 to:1 toward:1 under:1 until:1 up:1 upon:1 without:1 with:1 within:1"
)
AUXILIARIES = (
    "do:1 may:1 might:1 shall:1 will:1 would:1 can:1 could:1 should:1 ought_to:1 must:1 "
    "will_have_to:1 shall_have_to:1 could_have_to:1 should_have_to:1 must_have_to:1 need_to:1 "
    "try_to:1"
)
TERMINATORS = ".:50 ;:1 :::1 ?:1 !:1 --:1"
# Address characters (dbgen's "v-string" alphabet).
ADDRESS_CHARS = np.frombuffer(
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ,", dtype=np.uint8
)


# --- Helpers -----------------------------------------------------------------------------------


def rng_for(seed: int, table: int, chunk: int = 0) -> np.random.Generator:
    """An independent, reproducible random stream for one table (and one chunk of it)."""
    return np.random.default_rng([seed, table, chunk])


def strings(values: list[str]) -> pa.Array:
    return pa.array(values, type=pa.string())


def pick(words: list[str], idx: np.ndarray) -> pa.Array:
    """words[idx] as a string column (a take from a small dictionary, done in Arrow)."""
    return strings(words).take(pa.array(idx, type=pa.int32()))


def string_array(lengths: np.ndarray, data: np.ndarray) -> pa.Array:
    """A string column from per-row byte lengths and the concatenated ASCII bytes."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.string(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def padded(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """prefix + number zero-padded to width digits ("Customer#000000042"), vectorised."""
    n = len(numbers)
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    out = np.empty((n, len(head) + width), dtype=np.uint8)
    out[:, : len(head)] = head
    out[:, len(head) :] = digits(numbers, width)
    return string_array(np.full(n, out.shape[1]), out.reshape(-1))


def digits(numbers: np.ndarray, width: int) -> np.ndarray:
    """The ASCII digits of each number, zero-padded to width: an (n, width) uint8 matrix."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    values = np.asarray(numbers, dtype=np.int64)[:, None]
    return ((values // powers) % 10 + ord("0")).astype(np.uint8)


def phones(rng: np.random.Generator, nationkeys: np.ndarray) -> pa.Array:
    """Spec phone numbers: CC-LLL-LLL-LLLL, CC = nationkey + 10."""
    n = len(nationkeys)
    out = np.full((n, 15), ord("-"), dtype=np.uint8)
    out[:, 0:2] = digits(nationkeys + 10, 2)
    out[:, 3:6] = digits(rng.integers(100, 1000, n), 3)
    out[:, 7:10] = digits(rng.integers(100, 1000, n), 3)
    out[:, 11:15] = digits(rng.integers(1000, 10000, n), 4)
    return string_array(np.full(n, 15), out.reshape(-1))


def addresses(rng: np.random.Generator, n: int) -> pa.Array:
    """Random 10..40 character strings (spec: v-string)."""
    lengths = rng.integers(10, 41, n)
    data = ADDRESS_CHARS[rng.integers(0, len(ADDRESS_CHARS), int(lengths.sum()))]
    return string_array(lengths, data)


def money(rng: np.random.Generator, lo_cents: int, hi_cents: int, n: int) -> np.ndarray:
    """Uniform whole-cent amounts in [lo, hi], as float64."""
    return rng.integers(lo_cents, hi_cents + 1, n) / 100.0


def retail_price_cents(partkey: np.ndarray) -> np.ndarray:
    """p_retailprice in cents (spec 4.2.3): 90000 + (key/10 mod 20001) + 100 * (key mod 1000)."""
    return 90000 + (partkey // 10) % 20001 + 100 * (partkey % 1000)


def part_supplier(partkey: np.ndarray, i: np.ndarray | int, suppliers: int) -> np.ndarray:
    """The i-th (0..3) supplier of a part (spec 4.2.3, PARTSUPP)."""
    return (partkey + i * (suppliers // 4 + (partkey - 1) // suppliers)) % suppliers + 1


def order_key(index: np.ndarray) -> np.ndarray:
    """dbgen's sparse order keys for 1-based order indexes: 8 used out of every 32."""
    return ((index >> 3) << 5) + (index & 7)


class TextPool:
    """Random comment text: substrings of one pool of pseudo-sentences (as dbgen does)."""

    def __init__(self, seed: int, size: int = TEXT_POOL_BYTES):
        rng = rng_for(seed, 99)
        lists = {
            name: self._weighted(spec)
            for name, spec in [
                ("N", NOUNS), ("V", VERBS), ("J", ADJECTIVES), ("D", ADVERBS),
                ("P", PREPOSITIONS), ("X", AUXILIARIES), ("T", TERMINATORS),
            ]
        }
        # Sentence shapes from the spec's grammar: noun phrase, verb phrase, optional
        # prepositional phrase (P + "the" + noun phrase), terminator.
        noun_phrases = ["N", "J N", "J, J N", "D J N"]
        verb_phrases = ["V", "X V", "V D", "X V D"]
        sentences = [
            "{np} {vp}", "{np} {vp} P the {np2}", "{np} {vp} {np2}", "{np} P the {np2} {vp}",
        ]
        parts: list[str] = []
        total = 0
        batch = 10_000
        while total < size:
            # Words for a batch of sentences, drawn in bulk (8 per sentence and list is plenty).
            draws = {
                key: iter(rng.choice(words, size=batch * 8, p=weights))
                for key, (words, weights) in lists.items()
            }
            for s, a, b, c in rng.integers(0, 4, (batch, 4)):
                template = sentences[s].format(
                    np=noun_phrases[a], vp=verb_phrases[b], np2=noun_phrases[c]
                )
                # A placeholder letter becomes a word from its list ("J," keeps its comma).
                words = [
                    next(draws[token[0]]) + token[1:] if token[0] in lists else token
                    for token in template.split()
                ]
                sentence = " ".join(words) + next(draws["T"]) + " "
                parts.append(sentence)
                total += len(sentence)
        self.pool = np.frombuffer("".join(parts).encode("ascii"), dtype=np.uint8)[:size]

    @staticmethod
    def _weighted(spec: str) -> tuple[np.ndarray, np.ndarray]:
        words, weights = [], []
        for item in spec.split():
            word, weight = item.rsplit(":", 1)
            words.append(word.replace("_", " "))
            weights.append(float(weight))
        w = np.array(weights)
        return np.array(words, dtype=object), w / w.sum()

    def comments(self, rng: np.random.Generator, n: int, lo: int, hi: int) -> pa.Array:
        """n comments of lo..hi characters, each a random substring of the pool."""
        lengths = rng.integers(lo, hi + 1, n)
        starts = rng.integers(0, len(self.pool) - hi, n)
        # Byte positions to gather: runs of consecutive pool offsets, one run per row. Built as
        # a cumulative sum of steps (1 inside a run, a jump at each row start) to stay in int32.
        total = int(lengths.sum())
        steps = np.ones(total, dtype=np.int32)
        row_starts = np.zeros(n, dtype=np.int64)
        np.cumsum(lengths[:-1], out=row_starts[1:])
        prev_end = np.concatenate(([0], starts[:-1] + lengths[:-1] - 1))
        steps[row_starts] = (starts - prev_end).astype(np.int32)
        steps[0] = starts[0]
        return string_array(lengths, self.pool[np.cumsum(steps, out=steps)])


# --- Tables ------------------------------------------------------------------------------------


class Writer:
    """Writes one table's part-N.parquet files, in a background thread (numpy and Arrow release
    the GIL, so generating the next chunk overlaps with compressing the last one)."""

    def __init__(self, out: str, compression: str):
        self.out, self.compression = out, compression
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.pending: list[concurrent.futures.Future] = []
        self.rows: dict[str, int] = {}
        self.files: dict[str, int] = {}

    def start(self, table: str) -> None:
        """Clears the table's folder of part files from an earlier run."""
        folder = os.path.join(self.out, table)
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):
            if name.startswith("part-") and name.endswith(".parquet"):
                os.remove(os.path.join(folder, name))
        self.rows[table], self.files[table] = 0, 0

    def write(self, table: str, data: pa.Table) -> None:
        path = os.path.join(self.out, table, f"part-{self.files[table]}.parquet")
        self.files[table] += 1
        self.rows[table] += data.num_rows
        self.pending.append(
            self.pool.submit(
                pq.write_table, data, path, compression=self.compression,
                row_group_size=ROW_GROUP_ROWS,
            )
        )
        # At most one write in flight: keeps memory to about two chunks.
        while len(self.pending) > 1:
            self.pending.pop(0).result()

    def finish(self) -> None:
        for f in self.pending:
            f.result()
        self.pending.clear()
        self.pool.shutdown()


def gen_region(w: Writer, text: TextPool, seed: int) -> None:
    rng = rng_for(seed, 1)
    w.start("region")
    w.write("region", pa.table({
        "r_regionkey": pa.array(range(len(REGIONS)), pa.int64()),
        "r_name": strings(REGIONS),
        "r_comment": text.comments(rng, len(REGIONS), 31, 115),
    }))


def gen_nation(w: Writer, text: TextPool, seed: int) -> None:
    rng = rng_for(seed, 2)
    w.start("nation")
    w.write("nation", pa.table({
        "n_nationkey": pa.array(range(len(NATIONS)), pa.int64()),
        "n_name": strings([name for name, _ in NATIONS]),
        "n_regionkey": pa.array([region for _, region in NATIONS], pa.int64()),
        "n_comment": text.comments(rng, len(NATIONS), 31, 114),
    }))


def gen_supplier(w: Writer, text: TextPool, seed: int, n: int) -> None:
    rng = rng_for(seed, 3)
    keys = np.arange(1, n + 1, dtype=np.int64)
    nations = rng.integers(0, 25, n)
    comments = text.comments(rng, n, 25, 100)
    # Spec: SF*5 suppliers have "Customer ... Complaints" and SF*5 "Customer ... Recommends"
    # somewhere in their comment (Q16 looks for them).
    special = rng.choice(n, size=min(n, 2 * max(1, n // 2000)), replace=False)
    values = comments.to_pylist()
    for j, row in enumerate(special):
        word = "Complaints" if j % 2 == 0 else "Recommends"
        c = values[row]
        need = len("Customer ") + len(word)
        start = int(rng.integers(0, len(c) - need + 1))
        gap = int(rng.integers(0, len(c) - need - start + 1))
        values[row] = (c[:start] + "Customer " + c[start : start + gap] + word
                       + c[start + gap + need :])[: len(c)]
    w.start("supplier")
    w.write("supplier", pa.table({
        "s_suppkey": keys,
        "s_name": padded("Supplier#", keys, 9),
        "s_address": addresses(rng, n),
        "s_nationkey": nations.astype(np.int64),
        "s_phone": phones(rng, nations),
        "s_acctbal": money(rng, -99999, 999999, n),
        "s_comment": strings(values),
    }))


def gen_customer(w: Writer, text: TextPool, seed: int, n: int) -> None:
    rng = rng_for(seed, 4)
    keys = np.arange(1, n + 1, dtype=np.int64)
    nations = rng.integers(0, 25, n)
    w.start("customer")
    w.write("customer", pa.table({
        "c_custkey": keys,
        "c_name": padded("Customer#", keys, 9),
        "c_address": addresses(rng, n),
        "c_nationkey": nations.astype(np.int64),
        "c_phone": phones(rng, nations),
        "c_acctbal": money(rng, -99999, 999999, n),
        "c_mktsegment": pick(SEGMENTS, rng.integers(0, len(SEGMENTS), n)),
        "c_comment": text.comments(rng, n, 29, 116),
    }))


def gen_part(w: Writer, text: TextPool, seed: int, n: int) -> None:
    rng = rng_for(seed, 5)
    keys = np.arange(1, n + 1, dtype=np.int64)
    # p_name: five distinct colours; the smallest five of 92 random keys, 50k rows at a time.
    colors = np.array(COLORS, dtype=object)
    names: list[str] = []
    for lo in range(0, n, 50_000):
        m = min(n, lo + 50_000) - lo
        chosen = np.argpartition(rng.random((m, len(COLORS))), 5, axis=1)[:, :5]
        names.extend(" ".join(row) for row in colors[chosen])
    mfgr = rng.integers(1, 6, n)
    brand = mfgr * 10 + rng.integers(1, 6, n)
    types = [f"{a} {b} {c}" for a in TYPE_S1 for b in TYPE_S2 for c in TYPE_S3]
    containers = [f"{a} {b}" for a in CONTAINER_S1 for b in CONTAINER_S2]
    w.start("part")
    w.write("part", pa.table({
        "p_partkey": keys,
        "p_name": strings(names),
        "p_mfgr": padded("Manufacturer#", mfgr, 1),
        "p_brand": padded("Brand#", brand, 2),
        "p_type": pick(types, rng.integers(0, len(types), n)),
        "p_size": rng.integers(1, 51, n).astype(np.int32),
        "p_container": pick(containers, rng.integers(0, len(containers), n)),
        "p_retailprice": retail_price_cents(keys) / 100.0,
        "p_comment": text.comments(rng, n, 5, 22),
    }))


def gen_partsupp(w: Writer, text: TextPool, seed: int, parts: int, suppliers: int) -> None:
    """Four suppliers per part, in files of PARTS_PER_CHUNK parts (4 rows each)."""
    w.start("partsupp")
    for chunk, first in enumerate(range(0, parts, PARTS_PER_CHUNK)):
        rng = rng_for(seed, 6, chunk)
        count = min(parts, first + PARTS_PER_CHUNK) - first
        partkey = np.repeat(np.arange(first + 1, first + count + 1, dtype=np.int64), 4)
        n = len(partkey)
        w.write("partsupp", pa.table({
            "ps_partkey": partkey,
            "ps_suppkey": part_supplier(partkey, np.tile(np.arange(4), count), suppliers),
            "ps_availqty": rng.integers(1, 10000, n).astype(np.int32),
            "ps_supplycost": money(rng, 100, 100000, n),
            "ps_comment": text.comments(rng, n, 49, 198),
        }))


def gen_orders_lineitem(
    w: Writer, text: TextPool, seed: int, orders: int, customers: int, parts: int,
    suppliers: int, clerks: int,
) -> None:
    """Orders and their lineitems, generated together in chunks of orders: an order's status
    and total price come from its lines."""
    w.start("orders")
    w.start("lineitem")
    clerk_names = padded("Clerk#", np.arange(1, clerks + 1), 9)
    buffered: list[pa.Table] = []
    buffered_rows = 0
    # Customers whose key is a multiple of 3 place no orders (spec 4.2.3, O_CUSTKEY).
    ordering_customers = customers - customers // 3
    for chunk, first in enumerate(range(0, orders, ORDERS_PER_CHUNK)):
        rng = rng_for(seed, 7, chunk)
        n = min(orders, first + ORDERS_PER_CHUNK) - first
        okey = order_key(np.arange(first + 1, first + n + 1, dtype=np.int64))
        r = rng.integers(0, ordering_customers, n)
        custkey = 3 * (r // 2) + r % 2 + 1  # the r-th key that is not a multiple of 3
        orderdate = rng.integers(START_DATE, END_DATE - 151 + 1, n)

        # Lines: 1..7 per order.
        lines = rng.integers(1, 8, n)
        m = int(lines.sum())
        order_of_line = np.repeat(np.arange(n), lines)
        line_start = np.cumsum(lines) - lines
        linenumber = np.arange(m) - np.repeat(line_start, lines) + 1
        partkey = rng.integers(1, parts + 1, m)
        suppkey = part_supplier(partkey, rng.integers(0, 4, m), suppliers)
        quantity = rng.integers(1, 51, m)
        extended_cents = quantity * retail_price_cents(partkey)
        discount = rng.integers(0, 11, m)  # hundredths
        tax = rng.integers(0, 9, m)  # hundredths
        line_orderdate = orderdate[order_of_line]
        shipdate = line_orderdate + rng.integers(1, 122, m)
        commitdate = line_orderdate + rng.integers(30, 91, m)
        receiptdate = shipdate + rng.integers(1, 31, m)
        returned = receiptdate <= CURRENT_DATE
        # R or A (at random) once received by the current date, else N.
        returnflag = np.where(returned, rng.integers(0, 2, m), 2)
        shipped = shipdate <= CURRENT_DATE  # F (shipped) or O (open)

        # Order status: F if every line shipped, O if none did, P otherwise.
        shipped_lines = np.bincount(order_of_line, weights=shipped, minlength=n)
        status = np.where(shipped_lines == lines, 0, np.where(shipped_lines == 0, 1, 2))
        # Total price: sum of extendedprice * (1 + tax) * (1 - discount), rounded to cents.
        charge = extended_cents * (100 + tax) * (100 - discount) / 10_000
        total_cents = np.round(np.bincount(order_of_line, weights=charge, minlength=n))

        order_table = pa.table({
            "o_orderkey": okey,
            "o_custkey": custkey,
            "o_orderstatus": pick(["F", "O", "P"], status),
            "o_totalprice": total_cents / 100.0,
            "o_orderdate": pa.array(orderdate.astype(np.int32), pa.date32()),
            "o_orderpriority": pick(PRIORITIES, rng.integers(0, len(PRIORITIES), n)),
            "o_clerk": clerk_names.take(pa.array(rng.integers(0, clerks, n))),
            "o_shippriority": np.zeros(n, dtype=np.int32),
            "o_comment": text.comments(rng, n, 19, 78),
        })
        w.write("lineitem", pa.table({
            "l_orderkey": okey[order_of_line],
            "l_partkey": partkey,
            "l_suppkey": suppkey,
            "l_linenumber": linenumber.astype(np.int32),
            "l_quantity": quantity.astype(np.float64),
            "l_extendedprice": extended_cents / 100.0,
            "l_discount": discount / 100.0,
            "l_tax": tax / 100.0,
            "l_returnflag": pick(["R", "A", "N"], returnflag),
            "l_linestatus": pick(["O", "F"], shipped.astype(np.int8)),
            "l_shipdate": pa.array(shipdate.astype(np.int32), pa.date32()),
            "l_commitdate": pa.array(commitdate.astype(np.int32), pa.date32()),
            "l_receiptdate": pa.array(receiptdate.astype(np.int32), pa.date32()),
            "l_shipinstruct": pick(SHIP_INSTRUCT, rng.integers(0, len(SHIP_INSTRUCT), m)),
            "l_shipmode": pick(SHIP_MODES, rng.integers(0, len(SHIP_MODES), m)),
            "l_comment": text.comments(rng, m, 10, 43),
        }))
        buffered.append(order_table)
        buffered_rows += n
        if buffered_rows >= ORDERS_PER_FILE or first + n >= orders:
            w.write("orders", pa.concat_tables(buffered))
            buffered, buffered_rows = [], 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="scale factor (1 = ~6M lineitems)")
    parser.add_argument("--out", required=True, help="output folder (one subfolder per table)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--compression", default="zstd", choices=["zstd", "snappy", "none"])
    args = parser.parse_args()
    if args.scale <= 0:
        parser.error("--scale must be positive")

    sf = args.scale
    rows = {t: max(1, int(round(base * sf))) for t, base in BASE_ROWS.items()}
    suppliers = max(4, rows["supplier"])  # partsupp needs 4 distinct suppliers per part
    clerks = max(1, int(round(1000 * sf)))
    t0 = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    text = TextPool(args.seed)
    w = Writer(args.out, args.compression)
    steps = [
        ("region", lambda: gen_region(w, text, args.seed)),
        ("nation", lambda: gen_nation(w, text, args.seed)),
        ("supplier", lambda: gen_supplier(w, text, args.seed, suppliers)),
        ("customer", lambda: gen_customer(w, text, args.seed, rows["customer"])),
        ("part", lambda: gen_part(w, text, args.seed, rows["part"])),
        ("partsupp", lambda: gen_partsupp(w, text, args.seed, rows["part"], suppliers)),
        ("orders+lineitem", lambda: gen_orders_lineitem(
            w, text, args.seed, rows["orders"], rows["customer"], rows["part"], suppliers, clerks)),
    ]
    try:
        for name, step in steps:
            t = time.perf_counter()
            step()
            print(f"gen_tpch: {name} generated in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    finally:
        w.finish()

    total_bytes = 0
    print(f"TPC-H-like data, scale {sf:g}, seed {args.seed}, in {args.out}:")
    for table, count in w.rows.items():
        folder = os.path.join(args.out, table)
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        total_bytes += size
        print(f"  {table:<9} {count:>11,} rows  {w.files[table]:>3} file(s)  "
              f"{size / 2**20:9.1f} MiB")
    print(f"  total {total_bytes / 2**20:.1f} MiB in {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
