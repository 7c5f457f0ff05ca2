#!/usr/bin/env bash
# Benchmark: the TAXII 2.1 server with the OASIS Python client
# (taxii2-client), as the issue asks: a collection growing to N objects
# (default 100,000) added in envelopes of 5,000 indicators; after each 20%
# of them: the add rate of that step, the rate of paging through the whole
# collection (1,000 per page), and get-by-id latency (p50/p99 of 300 random
# objects, measured in the client). Release build, SQLite, `crrt serve --demo`,
# the demo partner's API token as the Basic password.
# Usage: [CRRT_BIN=PATH] bench/taxii.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-100000}
. bench/taxii-server.sh
python3 - "http://127.0.0.1:$port" "$token" "$total" <<'PY'
import random, statistics, sys, time, uuid
from taxii2client.v21 import Server, as_pages
base, token, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
server = Server(base + "/taxii2/", user="bench", password=token)
inbox = [c for c in server.api_roots[0].collections if c.can_write][0]
batch, ids = 5000, []
step = total // 5
def indicator(n):
    i = str(uuid.uuid4())
    ids.append("indicator--" + i)
    return {"type": "indicator", "spec_version": "2.1", "id": "indicator--" + i,
            "created": "2022-02-24T06:00:00.000Z", "modified": "2022-02-24T06:00:00.000Z",
            "pattern": "[ipv4-addr:value = '10.%d.%d.%d']" % (n >> 16 & 255, n >> 8 & 255, n & 255),
            "pattern_type": "stix", "valid_from": "2022-02-24T06:00:00Z"}
print(f"{'objects':>8} {'add obj/s':>10} {'page obj/s':>11} {'get p50 ms':>11} {'get p99 ms':>11}")
n = 0
while n < total:
    started = time.perf_counter()
    for _ in range(step // batch):
        objects = [indicator(n + k) for k in range(batch)]
        status = inbox.add_objects({"objects": objects})
        assert status.success_count == batch, status._raw
        n += batch
    add_rate = step / (time.perf_counter() - started)
    started = time.perf_counter()
    seen = sum(len(p.get("objects", [])) for p in as_pages(inbox.get_objects, per_request=1000))
    page_rate = seen / (time.perf_counter() - started)
    assert seen == n, (seen, n)
    times = []
    for object_id in random.sample(ids, 300):
        t = time.perf_counter()
        got = inbox.get_object(object_id)
        times.append((time.perf_counter() - t) * 1000)
        assert got["objects"][0]["id"] == object_id
    times.sort()
    print(f"{n:>8} {add_rate:>10.0f} {page_rate:>11.0f} {statistics.median(times):>11.2f} {times[int(len(times) * 0.99) - 1]:>11.2f}")
PY
