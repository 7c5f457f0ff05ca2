#!/usr/bin/env bash
# Benchmark: adding only, the add loop of bench/taxii.sh (envelopes of
# 5,000 indicators through taxii2-client) with the server's CPU time per
# step read from /proc. IDS=random (UUIDv4, as partners send them, the
# default) or IDS=ordered (time-ordered ids: shows what random keys cost
# the store's indexes).
# Usage: [CRRT_BIN=PATH] [IDS=random|ordered] bench/taxii-add.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-100000}
ids=${IDS:-random}
. bench/taxii-server.sh
python3 - "http://127.0.0.1:$port" "$token" "$total" "$ids" "$server" <<'PY'
import os, sys, time, uuid
from taxii2client.v21 import Server
base, token, total, ids, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
server = Server(base + "/taxii2/", user="bench", password=token)
inbox = [c for c in server.api_roots[0].collections if c.can_write][0]
def cpu():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
serial = 0
def object_id():
    global serial
    serial += 1
    if ids == "ordered":
        return "indicator--%08x-0000-4000-8000-%012x" % (int(time.time()), serial)
    return "indicator--" + str(uuid.uuid4())
batch, step, n = 5000, total // 5, 0
print(f"{'objects':>8} {'add obj/s':>10} {'server CPU s':>13}")
started_all, cpu_all = time.perf_counter(), cpu()
while n < total:
    started, cpu_before = time.perf_counter(), cpu()
    for _ in range(step // batch):
        objects = [{"type": "indicator", "spec_version": "2.1", "id": object_id(),
                    "created": "2022-02-24T06:00:00.000Z", "modified": "2022-02-24T06:00:00.000Z",
                    "pattern": "[ipv4-addr:value = '10.%d.%d.%d']" % ((n + k) >> 16 & 255, (n + k) >> 8 & 255, (n + k) & 255),
                    "pattern_type": "stix", "valid_from": "2022-02-24T06:00:00Z"} for k in range(batch)]
        status = inbox.add_objects({"objects": objects})
        assert status.success_count == batch, status._raw
        n += batch
    print(f"{n:>8} {step / (time.perf_counter() - started):>10.0f} {cpu() - cpu_before:>13.2f}", flush=True)
time.sleep(2)  # the spawned sharing of the last envelope's indicators
print(f"all: {time.perf_counter() - started_all:.1f} s wall, {cpu() - cpu_all:.1f} s server CPU")
PY
