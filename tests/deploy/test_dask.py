"""The batch job on an existing distributed engine: Dask distributed (Debian's python3-distributed)
with a LocalCluster of 2 worker processes on 127.0.0.1; the input's partitions are mapped to two
`leanembed serve` replicas (partition i → replica i mod 2) through tools/batch/embed_jsonl.py's
embed_texts (retries included). Every vector must be the replicas' own, in order, and both replicas
must have served partitions.

    /usr/bin/python3 test_dask.py <leanembed program> <model folder> <shared folder> <tools/batch folder>
"""
import json
import os
import sys


def embed_partition(rows, url):
    import embed_jsonl  # on the workers' PYTHONPATH (tools/batch)
    texts = [r["text"] for r in rows]
    vectors = embed_jsonl.embed_texts([url], texts, batch=32)
    return [{"id": r["id"], "embedding": v} for r, v in zip(rows, vectors)]


def main():
    program, model, shared, batch_dir = sys.argv[1:5]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, batch_dir)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [batch_dir, os.path.dirname(os.path.abspath(__file__)),
                                                           os.environ.get("PYTHONPATH", "")] if p)
    import dask
    import dask.bag as db
    from distributed import Client, LocalCluster

    from serve_support import Replica, corpus_sentences, get, post

    failures = []
    replicas = [Replica(program, model), Replica(program, model)]
    cluster = None
    try:
        texts = corpus_sentences(shared, 300)
        want = []
        for at in range(0, len(texts), 32):
            status, got = post(replicas[0].url + "/embed", {"inputs": texts[at:at + 32]})
            assert status == 200, got
            want.extend(got)

        def served(r):
            for line in get(r.url + "/metrics")[1].splitlines():
                if line.startswith('leanembed_requests_total{route="/embed",status="200"'):
                    return int(line.split()[-1])
            return 0

        before = [served(r) for r in replicas]
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        with Client(cluster) as client:
            rows = [{"id": i, "text": t} for i, t in enumerate(texts)]
            partitions = db.from_sequence(rows, npartitions=6).to_delayed()
            tasks = [dask.delayed(embed_partition)(p, replicas[i % 2].url) for i, p in enumerate(partitions)]
            results = client.gather(client.compute(tasks))
            workers = len(client.scheduler_info()["workers"])
        out = [row for part in results for row in part]
        if workers != 2:
            failures.append(f"{workers} workers instead of 2")
        if [r["id"] for r in out] != list(range(len(texts))):
            failures.append("ids missing, repeated or out of order")
        elif [r["embedding"] for r in out] != want:
            failures.append("vectors differ from the replicas' own")
        after = [served(r) for r in replicas]
        if not all(a > b for a, b in zip(after, before)):
            failures.append(f"not every replica served partitions: {before} -> {after}")
    finally:
        if cluster is not None:
            cluster.close()
        for r in replicas:
            if r.stop() != 0:
                failures.append("a replica did not exit 0 on SIGTERM")
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print(f"ok: {len(texts)} texts in 6 partitions on a 2-worker Dask LocalCluster, 2 replicas, vectors exact")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
