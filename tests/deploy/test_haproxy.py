"""Scale-out on loopback: two `leanembed serve` replicas behind HAProxy with health checks; one
replica is killed (SIGKILL) mid-load; every client request still gets 200 and exactly the vector the
replicas gave before (HAProxy retries requests whose replica vanished on the other one).

    python3 test_haproxy.py <leanembed program> <model folder> <shared folder>
The HAProxy configuration is docs/DEPLOY.md's, with this test's ports.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_support import Replica, corpus_sentences, free_port, get, post, wait_until  # noqa: E402

CONFIG = """global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # A request whose replica fails (refused, reset, no answer) is sent again, to the other one.
    option http-buffer-request
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 503
frontend embeddings
    bind 127.0.0.1:{front}
    default_backend leanembed
backend leanembed
    balance leastconn
    option httpchk GET /health
    http-check expect status 200
    default-server inter 200ms fall 2 rise 2
    server a 127.0.0.1:{a} check
    server b 127.0.0.1:{b} check
"""


def main():
    program, model, shared = sys.argv[1:4]
    haproxy = shutil.which("haproxy")
    if not haproxy:
        print("FAIL: haproxy is not installed (scripts/setup.sh installs it)")
        return 1
    texts = corpus_sentences(shared, 40)
    a = Replica(program, model)
    b = Replica(program, model)
    front = free_port()
    work = tempfile.mkdtemp(prefix="leanembed-haproxy-")
    config = os.path.join(work, "haproxy.cfg")
    with open(config, "w") as f:
        f.write(CONFIG.format(front=front, a=a.port, b=b.port))
    proxy = subprocess.Popen([haproxy, "-db", "-f", config], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    failures = []
    served_by_b = killed_after = 0
    try:
        url = f"http://127.0.0.1:{front}"
        if not wait_until(lambda: get(url + "/health")[0] == 200, 30):
            failures.append("haproxy did not come up")
            return 1
        # The reference: each replica's own answer (the two agree bitwise).
        status, want = post(a.url + "/embed", {"inputs": texts[:20]})
        status_b, want_b = post(b.url + "/embed", {"inputs": texts[20:]})
        assert status == 200 and status_b == 200
        want = want + want_b
        _, again = post(b.url + "/embed", {"inputs": texts[:20]})
        if again != want[:20]:
            failures.append("the two replicas disagree")

        def embeds_served(replica):
            for line in get(replica.url + "/metrics")[1].splitlines():
                if line.startswith('leanembed_requests_total{route="/embed",status="200"'):
                    return int(line.split()[-1])
            return 0

        b_before = embeds_served(b)
        done = []
        lock = threading.Lock()
        stop_at = time.monotonic() + 120  # bound

        def client(k):
            for i in range(k, k + 60):
                if time.monotonic() > stop_at:
                    break
                idx = [i % len(texts), (i * 7 + 3) % len(texts)]
                status, got = post(url + "/embed", {"inputs": [texts[j] for j in idx]})
                with lock:
                    done.append(i)
                    if status != 200:
                        failures.append(f"request {i}: status {status}: {got}")
                    elif got != [want[j] for j in idx]:
                        failures.append(f"request {i}: vectors differ from the replicas' own")

        threads = [threading.Thread(target=client, args=(k * 100,)) for k in range(6)]
        for t in threads:
            t.start()
        wait_until(lambda: len(done) >= 60, 60)
        served_by_b = embeds_served(b) - b_before
        killed_after = len(done)
        b.kill()  # mid-load, without warning
        for t in threads:
            t.join(180)
        total = len(done)
        if total != 360:
            failures.append(f"{total} of 360 requests finished")
        if not served_by_b:
            failures.append("replica b served nothing before it was killed (the test proves nothing then)")
        # After the kill, a's metrics show it carried the rest.
        if a.stop() != 0:
            failures.append("replica a did not exit 0 on SIGTERM")
    finally:
        proxy.terminate()
        try:
            proxy.wait(10)
        except subprocess.TimeoutExpired:
            proxy.kill()
        a.kill()
        b.kill()
        shutil.rmtree(work, ignore_errors=True)
    for f in failures[:20]:
        print("FAIL:", f)
    if failures:
        return 1
    print(f"ok: 360 requests through haproxy; replica b served {served_by_b}, was killed after {killed_after}; "
          "every answer 200 and bitwise the replicas' own")
    return 0


if __name__ == "__main__":
    sys.exit(main())
