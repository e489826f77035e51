"""tools/batch/embed_jsonl.py against two `leanembed serve` replicas: every line embedded once, in
order, with the replicas' own vectors; 429 and 503 answers retried; a run killed (SIGKILL) after some
shards resumes without rewriting them; a text too long fails the run naming shard and line unless
--truncate.

    python3 test_batch_driver.py <leanembed program> <model folder> <shared folder> <embed_jsonl.py>
"""
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_support import Replica, corpus_sentences, post, wait_until  # noqa: E402


class FlakyProxy:
    """Forwards POST /embed to the replicas in turn after `delay` seconds; the first `refusals`
    requests get 429 and 503 instead (alternately)."""

    def __init__(self, replicas, delay):
        self.replicas, self.delay, self.refusals, self.count, self.lock = replicas, delay, 0, 0, threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                with proxy.lock:
                    n = proxy.count
                    proxy.count += 1
                    refuse = proxy.refusals > 0
                    if refuse:
                        proxy.refusals -= 1
                if refuse:
                    status = 429 if n % 2 == 0 else 503
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                time.sleep(proxy.delay)
                target = proxy.replicas[n % len(proxy.replicas)].url + self.path
                request = urllib.request.Request(target, data=body, headers={"content-type": "application/json"})
                try:
                    with urllib.request.urlopen(request, timeout=60) as r:
                        status, answer = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, answer = e.code, e.read()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                try:
                    self.wfile.write(answer)
                except BrokenPipeError:
                    pass  # the driver killed on purpose

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def main():
    program, model, shared, driver = sys.argv[1:5]
    failures = []
    work = tempfile.mkdtemp(prefix="leanembed-batch-")
    a = Replica(program, model)
    b = Replica(program, model)
    proxy = FlakyProxy([a, b], delay=0.1)
    try:
        texts = corpus_sentences(shared, 500)
        source = os.path.join(work, "in.jsonl")
        with open(source, "w", encoding="utf-8") as f:
            for i, t in enumerate(texts):
                f.write(json.dumps({"id": f"doc-{i}", "text": t}) + "\n")
        want = []
        for at in range(0, len(texts), 32):
            status, got = post(a.url + "/embed", {"inputs": texts[at:at + 32]})
            assert status == 200, got
            want.extend(got)
        out = os.path.join(work, "out")
        command = [sys.executable, driver, source, out, "--url", proxy.url, "--shard-lines", "60", "--batch", "30",
                   "--concurrency", "1"]

        # First run: killed once two shards are written.
        proxy.refusals = 4
        first = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        shards = lambda: sorted(n for n in os.listdir(out) if n.endswith(".jsonl")) if os.path.isdir(out) else []
        wait_until(lambda: len(shards()) >= 2 or first.poll() is not None, 120, step=0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        before = {n: os.stat(os.path.join(out, n)) for n in shards()}
        if not 2 <= len(before) < 9:
            failures.append(f"the first run was killed with {len(before)} of 9 shards written (expected 2..8)")

        # Second run: finishes; the shards written before are not rewritten.
        proxy.refusals = 5
        second = subprocess.run(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, timeout=300)
        report = second.stderr.decode()
        if second.returncode != 0:
            failures.append(f"the resumed run failed: {report}")
        if f"{len(before)} already done" not in report:
            failures.append(f"the resumed run did not skip the {len(before)} finished shards: {report}")
        retries = int(report.split(" retries")[0].rsplit(" ", 1)[-1]) if " retries" in report else 0
        if retries < 5:
            failures.append(f"expected at least 5 retries (429/503), got: {report}")
        for n, st in before.items():
            now = os.stat(os.path.join(out, n))
            if (now.st_ino, now.st_mtime_ns) != (st.st_ino, st.st_mtime_ns):
                failures.append(f"{n} was rewritten by the resumed run")
        if any(".tmp" in n for n in os.listdir(out)):
            failures.append("partial shard files left behind")
        rows = []
        for n in shards():
            with open(os.path.join(out, n), encoding="utf-8") as f:
                rows.extend(json.loads(line) for line in f)
        if [r["id"] for r in rows] != [f"doc-{i}" for i in range(len(texts))]:
            failures.append("ids missing, repeated or out of order")
        elif [r["embedding"] for r in rows] != want:
            failures.append("vectors differ from the replica's own")

        # A text too long: the run stops naming shard and line; --truncate embeds it.
        bad = os.path.join(work, "long.jsonl")
        with open(bad, "w") as f:
            f.write(json.dumps({"id": 0, "text": "short"}) + "\n")
            f.write(json.dumps({"id": 1, "text": "word " * 3000}) + "\n")
        refused = subprocess.run([sys.executable, driver, bad, os.path.join(work, "long"), "--url", a.url],
                                 stderr=subprocess.PIPE, timeout=120)
        message = refused.stderr.decode()
        if refused.returncode != 1 or "shard 0" not in message or "422" not in message:
            failures.append(f"a text too long should stop the run with 422 naming the shard: {message}")
        truncated = subprocess.run([sys.executable, driver, bad, os.path.join(work, "long2"), "--url", a.url, "--truncate"],
                                   stderr=subprocess.PIPE, timeout=120)
        if truncated.returncode != 0:
            failures.append(f"--truncate should embed the long text: {truncated.stderr.decode()}")
    finally:
        proxy.server.shutdown()
        a.kill()
        b.kill()
        shutil.rmtree(work, ignore_errors=True)
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print(f"ok: killed after {len(before)} shards, resumed without rewriting them, {retries} retries, 500 vectors exact")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
