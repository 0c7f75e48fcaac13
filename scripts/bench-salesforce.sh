#!/usr/bin/env bash
# Salesforce connector benchmark: Salesforce Account -> Parquet on S3 through the pipeline, from
# the fake Salesforce server running as its own process (so the connector's numbers are its
# own), 1,000,000 records over Bulk API 2.0 and 100,000 over REST.
#
#   scripts/bench-salesforce.sh [BENCH_DIR]
#
# Steps: build `fake-salesforce` and the `sf_bench` example (release); start two fakes, one
# loaded with RECORDS Accounts and one with REST_RECORDS, every field filled, through the
# connector's own destination (Bulk API 2.0 ingest jobs; the load rate is printed too); then
# RUNS rounds of:
#   bulk      BULKV2 from the large fake                 (RECORDS)
#   bulk-s    BULKV2 from the small fake                 (REST_RECORDS; memory against bulk)
#   rest      REST_SYNC from the small fake              (REST_RECORDS)
#   bulk-src  BULKV2 from the large fake, source only    (RECORDS; no pipeline, no Parquet)
# each a separate `sf_bench` process; all but the last write Parquet to local folders under
# BENCH_DIR (or to the S3 server of SLUICE_TEST_S3_ENDPOINT, e.g. moto). Per run it prints records/s, the
# seconds of the transfer and the peak RSS of the connector's process; then the median per
# kind. It exits 1 when the median Bulk API 2.0 rate is below 200,000 records/s or a Bulk run's
# peak RSS exceeds 256 MiB.
#
# Environment: BENCH_DIR (default /tmp/sluice-sf-bench), RECORDS (default 1000000),
# REST_RECORDS (default 100000), RUNS (default 3), CARGO_TARGET_DIR (default <repo>/target).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_dir=${1:-${BENCH_DIR:-/tmp/sluice-sf-bench}}
records=${RECORDS:-1000000}
rest_records=${REST_RECORDS:-100000}
runs=${RUNS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
mkdir -p "$bench_dir"
bench_dir=$(cd "$bench_dir" && pwd)

echo "== building (release)"
(cd "$repo" && cargo build --quiet --release -p sluice-fake-salesforce --bin fake-salesforce \
  && cargo build --quiet --release -p sluice-connector-salesforce --example sf_bench)

B_FAKE=$CARGO_TARGET_DIR/release/fake-salesforce B_BENCH=$CARGO_TARGET_DIR/release/examples/sf_bench \
B_DIR=$bench_dir B_RECORDS=$records B_REST=$rest_records B_RUNS=$runs python3 - <<'PY'
import json, os, re, shutil, statistics, subprocess, sys, time

env = os.environ
fake_bin, bench, bench_dir = env["B_FAKE"], env["B_BENCH"], env["B_DIR"]
records, rest_records, runs = int(env["B_RECORDS"]), int(env["B_REST"]), int(env["B_RUNS"])
target_rps, target_rss = 200_000, 256.0

fakes = []


def start_fake():
    fake = subprocess.Popen([fake_bin, "--accounts", "0"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    fakes.append(fake)
    ready = json.loads(fake.stdout.readline())
    return ready["url"], ready["access_token"]


def measure(argv):
    started = time.monotonic()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        sys.exit(f"failed ({status}): {' '.join(argv)}\n{out}")
    values = dict(re.findall(r"^(\w+)=(\S+)$", out, re.M))
    return (int(values["records"]), float(values["seconds"]), usage.ru_maxrss / 1024,
            time.monotonic() - started)


try:
    large, small = start_fake(), start_fake()
    for (url, token), count in ((large, records), (small, rest_records)):
        print(f"== loading {count} Accounts through Bulk API 2.0 ingest jobs")
        loaded, seconds, rss, _ = measure([bench, "write", url, token, str(count), "0"])
        print(f"  {loaded} records in {seconds:.2f} s ({loaded / seconds:,.0f} records/s), "
              f"peak RSS {rss:.1f} MiB")

    out = os.path.join(bench_dir, "out")
    kinds = [
        ("bulk", ["read", *large, "BULKV2", out], records),
        ("bulk-s", ["read", *small, "BULKV2", out], rest_records),
        ("rest", ["read", *small, "REST_SYNC", out], rest_records),
        ("bulk-src", ["drain", *large, "BULKV2"], records),
    ]
    results = {name: [] for name, _, _ in kinds}
    print(f"== {runs} rounds: Salesforce Account -> Parquet")
    for run in range(runs):
        for name, args, expected in kinds:
            shutil.rmtree(out, ignore_errors=True)
            got, seconds, rss, _ = measure([bench, *args])
            if got != expected:
                sys.exit(f"{name}: read {got} records, expected {expected}")
            results[name].append((got / seconds, seconds, rss))
            print(f"  run {run + 1} {name:<8} {got:>8} records {seconds:7.3f} s "
                  f"{got / seconds:>10,.0f} records/s  peak RSS {rss:6.1f} MiB", flush=True)

    print(f"\n  {'kind':<9}{'records':>9}{'median rec/s':>15}{'median s':>10}{'peak RSS MiB':>14}")
    for name, _, expected in kinds:
        values = results[name]
        print(f"  {name:<9}{expected:>9}{statistics.median(v[0] for v in values):>15,.0f}"
              f"{statistics.median(v[1] for v in values):>10.3f}{max(v[2] for v in values):>14.1f}")
    bulk_rps = statistics.median(v[0] for v in results["bulk"])
    bulk_rss = max(v[2] for v in results["bulk"] + results["bulk-s"])
    met = bulk_rps >= target_rps and bulk_rss <= target_rss
    print(f"\n== target {'met' if met else 'missed'}: Bulk API 2.0 {bulk_rps:,.0f} records/s "
          f"(>= {target_rps:,}), peak RSS {bulk_rss:.1f} MiB (<= {target_rss:.0f})")
    sys.exit(0 if met else 1)
finally:
    for fake in fakes:
        fake.stdin.close()
        try:
            fake.wait(timeout=30)
        except subprocess.TimeoutExpired:
            fake.kill()
PY
