#!/usr/bin/env python3
"""Embeds a large JSONL file through `leanembed serve` (one server, a load balancer, or several
servers given as a list), with bounded concurrency, a checkpoint per shard, retries with backoff,
and resumption after a kill without re-embedding finished shards. Python 3 standard library only.

    embed_jsonl.py INPUT.jsonl OUT_DIR --url http://127.0.0.1:3000 [--url …] [--field text]
                   [--id-field id] [--shard-lines 1000] [--batch 32] [--concurrency 4] [--truncate]

Input: one JSON object per line; the text is in --field, the id in --id-field (else the line number).
Output: OUT_DIR/shard-NNNNN.jsonl, one {"id": …, "embedding": […]} per input line in input order,
each shard written to a temporary file and renamed when complete (the checkpoint), and
OUT_DIR/manifest.json (the input's size and the shard size: a resume with other settings is refused).
A run skips the shards already there. Requests answered 429 or 503, or that fail to connect or are
cut, are retried with exponential backoff and jitter (--max-attempts); other errors (422: a text
too long without --truncate, …) stop the run naming the shard, line and the server's message.
Memory: --concurrency shards at a time (their texts and vectors).
"""
import argparse
import concurrent.futures
import itertools
import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request

RETRYABLE = {429, 502, 503, 504}


class BatchError(Exception):
    pass


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = self.retries = self.texts = 0

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)


def post_embed(url, texts, truncate, timeout):
    body = {"inputs": texts}
    if truncate:
        body["truncate"] = True
    request = urllib.request.Request(url.rstrip("/") + "/embed", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as r:
        return json.loads(r.read())


def embed_texts(urls, texts, *, batch=32, truncate=False, max_attempts=8, timeout=120, stats=None, start=0,
                where="texts"):
    """Vectors for `texts` from the servers in `urls` (taken in turn from `start`), `batch` per
    request; retries what a busy or vanishing server refuses. Raises BatchError otherwise."""
    vectors = []
    turn = itertools.count(start)
    for at in range(0, len(texts), batch):
        chunk = texts[at:at + batch]
        for attempt in range(1, max_attempts + 1):
            url = urls[next(turn) % len(urls)]
            try:
                got = post_embed(url, chunk, truncate, timeout)
                if stats:
                    stats.add(requests=1, texts=len(chunk))
                break
            except urllib.error.HTTPError as e:
                message = e.read().decode("utf-8", "replace")
                if e.code not in RETRYABLE:
                    raise BatchError(f"{where}, lines {at}..{at + len(chunk) - 1}: {url} answered {e.code}: {message}")
                reason = f"{e.code}"
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
                reason = str(e)
            if attempt == max_attempts:
                raise BatchError(f"{where}, lines {at}..{at + len(chunk) - 1}: gave up after {attempt} attempts ({reason})")
            if stats:
                stats.add(retries=1)
            time.sleep(min(10.0, 0.1 * 2 ** (attempt - 1)) * (0.5 + random.random()))
        if len(got) != len(chunk):
            raise BatchError(f"{where}: {len(got)} vectors for {len(chunk)} texts")
        vectors.extend(got)
    return vectors


def read_shards(path, shard_lines):
    """Yields (shard index, [(line number, parsed object)]) for consecutive blocks of lines."""
    with open(path, "rb") as f:
        for index in itertools.count():
            block = list(itertools.islice(f, shard_lines))
            if not block:
                return
            first = index * shard_lines
            rows = []
            for k, raw in enumerate(block):
                line = first + k
                try:
                    rows.append((line, json.loads(raw)))
                except ValueError as e:
                    raise BatchError(f"{path}: line {line + 1} is not JSON: {e}")
            yield index, rows


def shard_path(out_dir, index):
    return os.path.join(out_dir, f"shard-{index:05d}.jsonl")


def write_shard(out_dir, index, ids, vectors):
    final = shard_path(out_dir, index)
    temporary = final + f".tmp{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as f:
        for i, v in zip(ids, vectors):
            f.write(json.dumps({"id": i, "embedding": v}) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, final)  # the checkpoint: a shard file exists only when complete


def check_manifest(out_dir, input_path, shard_lines, field):
    manifest = {"input": os.path.abspath(input_path), "input_bytes": os.path.getsize(input_path),
                "shard_lines": shard_lines, "field": field}
    path = os.path.join(out_dir, "manifest.json")
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        if old != manifest:
            raise BatchError(f"{out_dir} holds a run with other settings ({old}); use another folder")
    else:
        with open(path + ".tmp", "w") as f:
            json.dump(manifest, f)
        os.replace(path + ".tmp", path)


def run(args):
    os.makedirs(args.out_dir, exist_ok=True)
    check_manifest(args.out_dir, args.input, args.shard_lines, args.field)
    for name in os.listdir(args.out_dir):  # partial shards of a run that was killed
        if name.startswith("shard-") and ".jsonl.tmp" in name:
            os.remove(os.path.join(args.out_dir, name))
    stats = Stats()
    skipped = done = 0
    started = time.monotonic()

    def one(index, rows):
        texts, ids = [], []
        for line, obj in rows:
            text = obj.get(args.field) if isinstance(obj, dict) else None
            if not isinstance(text, str):
                raise BatchError(f"{args.input}: line {line + 1} has no string field '{args.field}'")
            texts.append(text)
            ids.append(obj.get(args.id_field, line) if args.id_field else line)
        vectors = embed_texts(args.url, texts, batch=args.batch, truncate=args.truncate, max_attempts=args.max_attempts,
                              stats=stats, start=index, where=f"shard {index}")
        write_shard(args.out_dir, index, ids, vectors)
        return index

    with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
        running = set()
        for index, rows in read_shards(args.input, args.shard_lines):
            if os.path.exists(shard_path(args.out_dir, index)):
                skipped += 1
                continue
            while len(running) >= args.concurrency:  # bounded: at most `concurrency` shards in memory
                finished, running = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for f in finished:
                    f.result()
                    done += 1
            running.add(pool.submit(one, index, rows))
        for f in concurrent.futures.as_completed(running):
            f.result()
            done += 1
    seconds = time.monotonic() - started
    print(f"embed_jsonl: {done} shards embedded, {skipped} already done; {stats.texts} texts in {stats.requests} "
          f"requests, {stats.retries} retries, {seconds:.1f} s", file=sys.stderr)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input")
    p.add_argument("out_dir")
    p.add_argument("--url", action="append", required=True, help="a server or load balancer (repeat for several)")
    p.add_argument("--field", default="text")
    p.add_argument("--id-field", default="id", help="'' = the line number")
    p.add_argument("--shard-lines", type=int, default=1000)
    p.add_argument("--batch", type=int, default=32, help="texts per request (the server's --max-client-batch-size)")
    p.add_argument("--concurrency", type=int, default=4, help="shards (and requests) in flight")
    p.add_argument("--truncate", action="store_true", help="let the server truncate long texts instead of refusing them")
    p.add_argument("--max-attempts", type=int, default=8)
    args = p.parse_args(argv)
    if args.shard_lines < 1 or args.batch < 1 or args.concurrency < 1 or args.max_attempts < 1:
        p.error("--shard-lines, --batch, --concurrency and --max-attempts must be positive")
    try:
        return run(args)
    except BatchError as e:
        print(f"embed_jsonl: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
