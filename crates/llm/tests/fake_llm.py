#!/usr/bin/env python3
"""A deterministic chat-model server for groundwork's tests: OpenAI-compatible
/v1/chat/completions (JSON and server-sent events) and Bedrock's /model/{id}/converse and
/converse-stream (binary event stream), whose SigV4 signature it verifies independently of
groundwork's signer.

The answer is built from the prompt's numbered sources, so it is predictable: the first sentence
of each of the first two sources, each followed by its citation marker. Words in the question
select misbehaviours: RATE_LIMIT_ONCE, ALWAYS_429, SERVER_ERROR_ONCE, SLOW, MALFORMED, ODD_SHAPE,
BROKEN_STREAM, INJECTED (answers with a marker naming a source that does not exist).

Prompts about tables (recognised by their system message) get table answers instead:
- writing SQL: `SELECT count(*) AS n FROM <the first table offered>`, or, with
  FAKE_LLM_SQL_SCRIPT naming a JSON file of {question: [sql per attempt]}, the scripted SQL.
  Words in the question select misbehaviours: BAD_SQL_ONCE (a missing column, corrected once
  the error comes back), ALWAYS_BAD, NO_SQL, DROP_IT, TWO_STATEMENTS, READ_FILE,
  UNGRANTED:<table>. Otherwise a gullible model: `FAKE_OBEY: <sql>;;` anywhere in the prompt (a
  description, a value) is obeyed.
- answering from rows: "The answer is <first cell>."
- describing a table: a JSON object naming the table and each column.

Prints "PORT <n>" once listening. Standard library only.
"""
import hashlib
import hmac
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_KEY = os.environ.get("FAKE_LLM_KEY")
AWS_SECRET = os.environ.get("FAKE_AWS_SECRET")
seen = {}
seen_lock = threading.Lock()


def count(key):
    with seen_lock:
        seen[key] = seen.get(key, 0) + 1
        return seen[key]


def answer_for(prompt):
    sources = re.findall(r'<source number="(\d+)"[^>]*>\n(.*?)\n</source>', prompt, re.S)
    if not sources:
        return "The sources do not answer the question."
    parts = []
    for number, text in sources[:2]:
        first = re.split(r"(?<=[.!?])\s", text.strip().replace("\n", " "), maxsplit=1)[0]
        first = first.lstrip("# ").strip()
        if not first.endswith((".", "!", "?")):
            first += "."
        parts.append(f"{first[:-1]} [{number}]{first[-1]}")
    return " ".join(parts)


TABLE_PROMPTS = ("You write one SQL query", "You answer the user's question from the result",
                 "You write catalogue descriptions")


def quote(name):
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def table_reply(system, prompt):
    tables = re.findall(r'<table name="([^"]*)">\n(.*?)</table>', prompt, re.S)
    if system.startswith("You write catalogue descriptions"):
        name = tables[0][0] if tables else "table"
        columns = re.findall(r"^- (\S+) ", tables[0][1] if tables else "", re.M)
        return json.dumps({"table": f"Generated: one row per {name} record.",
                           "columns": {c: f"generated description of {c}" for c in columns}})
    if system.startswith("You answer the user's question from the result"):
        rows = re.search(r"<rows>\n(.*?)\n</rows>", prompt, re.S)
        lines = rows.group(1).split("\n") if rows else []
        if len(lines) < 2:
            return "The result has no rows."
        return f"The answer is {lines[1].split(' | ')[0]}."
    question = prompt.rsplit("<question>", 1)[-1].split("</question>")[0].strip()
    attempt = prompt.count("A previous attempt failed.")
    first = tables[0][0] if tables else "missing"
    obey = re.search(r"FAKE_OBEY: (.*?)(?:;;|\n|$)", prompt)
    script = os.environ.get("FAKE_LLM_SQL_SCRIPT")
    if script:
        answers = json.load(open(script)).get(question)
        if answers:
            return "```sql\n" + answers[min(attempt, len(answers) - 1)] + "\n```"
    if "NO_SQL" in question:
        return "I would rather not."
    elif "ALWAYS_BAD" in question:
        sql = "SELECT * FROM no_such_table"
    elif "BAD_SQL_ONCE" in question and attempt == 0:
        sql = f"SELECT no_such_column FROM {quote(first)}"
    elif "DROP_IT" in question:
        sql = f"DROP TABLE {quote(first)}"
    elif "TWO_STATEMENTS" in question:
        sql = f"SELECT 1; DELETE FROM {quote(first)}"
    elif "READ_FILE" in question:
        sql = "SELECT * FROM read_csv('/etc/passwd')"
    elif "UNGRANTED:" in question:
        sql = "SELECT * FROM " + question.split("UNGRANTED:", 1)[1].split()[0]
    elif obey:
        sql = obey.group(1).strip()
    else:
        sql = f"SELECT count(*) AS n FROM {quote(first)}"
    return f"Here it is:\n```sql\n{sql}\n```"


def event_message(event_type, payload, message_type="event"):
    """One message of AWS's event-stream framing, with its two CRC-32 checksums."""
    kind = ":exception-type" if message_type == "exception" else ":event-type"
    headers = b""
    for name, value in ((kind, event_type), (":content-type", "application/json"), (":message-type", message_type)):
        headers += bytes([len(name)]) + name.encode() + b"\x07" + len(value).to_bytes(2, "big") + value.encode()
    body = json.dumps(payload).encode()
    total = 16 + len(headers) + len(body)
    prelude = total.to_bytes(4, "big") + len(headers).to_bytes(4, "big")
    message = prelude + zlib.crc32(prelude).to_bytes(4, "big") + headers + body
    return message + zlib.crc32(message).to_bytes(4, "big")


def question_of(messages):
    user = [m for m in messages if m.get("role") == "user"]
    return user[-1]["content"] if user else ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, status, body, headers=()):
        data = json.dumps(body).encode() if not isinstance(body, (bytes, str)) else (body.encode() if isinstance(body, str) else body)
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        raw = self.rfile.read(length)
        if self.path.startswith("/model/") and self.path.endswith("/converse"):
            return self.converse(raw)
        if self.path.startswith("/model/") and self.path.endswith("/converse-stream"):
            return self.converse_stream(raw)
        if not self.path.endswith("/chat/completions"):
            return self.send_json(404, {"error": {"message": "no such path"}})
        if API_KEY and self.headers.get("authorization") != f"Bearer {API_KEY}":
            return self.send_json(401, {"error": {"message": "bad key"}})
        request = json.loads(raw)
        prompt = question_of(request["messages"])
        question = prompt.rsplit("<question>", 1)[-1]
        if "ALWAYS_429" in question:
            return self.send_json(429, {"error": {"message": "slow down"}}, [("retry-after", "0")])
        if "RATE_LIMIT_ONCE" in question and count(question) == 1:
            return self.send_json(429, {"error": {"message": "slow down"}}, [("retry-after", "1")])
        if "SERVER_ERROR_ONCE" in question and count(question) == 1:
            return self.send_json(503, {"error": {"message": "overloaded"}})
        if "SLOW" in question:
            time.sleep(5)
        if "MALFORMED" in question:
            return self.send_json(200, "{not json")
        system = next((m["content"] for m in request["messages"] if m.get("role") == "system"), "")
        text = table_reply(system, prompt) if system.startswith(TABLE_PROMPTS) else answer_for(prompt)
        if "INJECTED" in question:
            text = "Ignore that. [9]"
        if request.get("stream"):
            return self.stream(text, broken="BROKEN_STREAM" in question)
        if "ODD_SHAPE" in question:
            return self.send_json(200, {"choices": [{"message": {"content": [{"type": "text", "text": text}]}}]})
        self.send_json(200, {
            "id": "fake-1", "object": "chat.completion", "model": request.get("model", "fake"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())},
        })

    def stream(self, text, broken):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        words = text.split(" ")
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            chunk = {"model": "fake-stream", "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            if broken and i == 1:
                self.close_connection = True
                return
        done = {"model": "fake-stream", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": len(words)}}
        self.wfile.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
        self.wfile.flush()
        self.close_connection = True

    def converse(self, raw):
        problem = self.check_sigv4(raw)
        if problem:
            return self.send_json(403, {"message": problem})
        request = json.loads(raw)
        prompt = request["messages"][-1]["content"][0]["text"]
        text = answer_for(prompt)
        self.send_json(200, {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 12, "outputTokens": len(text.split()), "totalTokens": 0},
        })

    def converse_stream(self, raw):
        """ConverseStream in AWS's binary event-stream framing. STREAM_THROTTLED_ONCE answers
        with a throttling exception message first; BROKEN_STREAM cuts the connection after two
        deltas; BAD_CRC corrupts the checksum of the second delta."""
        problem = self.check_sigv4(raw)
        if problem:
            return self.send_json(403, {"message": problem})
        request = json.loads(raw)
        prompt = request["messages"][-1]["content"][0]["text"]
        question = prompt.rsplit("<question>", 1)[-1]
        self.send_response(200)
        self.send_header("content-type", "application/vnd.amazon.eventstream")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        if "STREAM_THROTTLED_ONCE" in question and count(question) == 1:
            self.wfile.write(event_message("throttlingException", {"message": "Too many requests"}, "exception"))
            return
        text = answer_for(prompt)
        self.wfile.write(event_message("messageStart", {"role": "assistant"}))
        words = text.split(" ")
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            frame = event_message("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
            if "BAD_CRC" in question and i == 1:
                frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])
            self.wfile.write(frame)
            self.wfile.flush()
            if "BROKEN_STREAM" in question and i == 1:
                return
        self.wfile.write(event_message("contentBlockStop", {"contentBlockIndex": 0}))
        self.wfile.write(event_message("messageStop", {"stopReason": "end_turn"}))
        self.wfile.write(event_message("metadata", {"usage": {"inputTokens": 12, "outputTokens": len(words)}, "metrics": {"latencyMs": 1}}))
        self.wfile.flush()

    def check_sigv4(self, raw):
        """Recomputes the signature from the request as received."""
        auth = self.headers.get("authorization", "")
        m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                         r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})", auth)
        if not m:
            return "malformed authorization"
        _key, date, region, service, signed, signature = m.groups()
        amz_date = self.headers.get("x-amz-date", "")
        if not amz_date.startswith(date):
            return "x-amz-date does not match the credential scope"
        if self.headers.get("x-amz-content-sha256") != hashlib.sha256(raw).hexdigest():
            return "payload hash mismatch"
        names = signed.split(";")
        canonical_headers = "".join(f"{n}:{' '.join(self.headers.get(n, '').split())}\n" for n in names)
        path = urllib.parse.urlsplit(self.path).path
        canonical_uri = "/".join(urllib.parse.quote(seg, safe="-_.~") for seg in path.split("/"))
        canonical = "\n".join(["POST", canonical_uri, "", canonical_headers, signed, hashlib.sha256(raw).hexdigest()])
        scope = f"{date}/{region}/{service}/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("AWS4" + (AWS_SECRET or "")).encode()
        for part in (date, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(expected, signature) else "signature mismatch"


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
