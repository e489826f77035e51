"""Starting `leanembed serve` replicas and talking to them from Python tests (stdlib only).

Every server listens on 127.0.0.1 with --port 0 (its port is read from the "listening on" line);
every wait is bounded; processes are ended by their own pid.
"""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request


class Replica:
    def __init__(self, program, model, *extra):
        env = dict(os.environ, OMP_WAIT_POLICY="passive")
        self.process = subprocess.Popen(
            [program, "serve", "--model", model, "--port", "0", "--hostname", "127.0.0.1", "--threads", "1", *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        self.stderr = ""
        self.port = None
        ready = threading.Event()

        def read():
            for line in iter(self.process.stderr.readline, b""):
                self.stderr += line.decode("utf-8", "replace")
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.stderr)
                if m and self.port is None:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(120) or self.port is None:
            self.kill()
            raise RuntimeError("the server did not start: " + self.stderr)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            return -2

    def kill(self):
        return self.stop(signal.SIGKILL, 10)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, body, timeout=60):
    """POST JSON; returns (status, parsed body or text)."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", "replace")
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text


def get(url, timeout=30):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except OSError as e:
        return -1, str(e)


def wait_until(predicate, seconds, step=0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def corpus_sentences(shared, n):
    with open(os.path.join(shared, "corpus", "sentences.txt"), encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()][:n]
