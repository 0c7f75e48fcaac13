#!/usr/bin/env bash
# CSV -> Parquet throughput benchmark of the run engine, through `sluice run`.
#
#   scripts/bench.sh [BENCH_DIR]
#
# Builds the release binary, generates a deterministic 1,000,000-row (~340 MB) CSV into
# BENCH_DIR/buckets/bench-src/in/ (once; it is reused while the row count matches), writes an
# S3 CSV -> S3 Parquet flow (Map_all, SingleFile, preserveSourceDataTyping false) and runs it
# RUNS times on local-folder buckets, then prints rows/s, MB/s of input and peak RSS per run
# with min/median. Exits 1 when the median misses the target (>= 500,000 rows/s with a peak
# RSS <= 200 MB).
#
# Environment: BENCH_DIR (default /tmp/sluice-bench), RUNS (default 3), ROWS (default
# 1000000), CARGO_TARGET_DIR (default <repo>/target).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_dir=${1:-${BENCH_DIR:-/tmp/sluice-bench}}
runs=${RUNS:-3}
rows=${ROWS:-1000000}
target_rows_per_s=500000
target_rss_mb=200
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}

echo "== building (release)"
(cd "$repo" && cargo build --quiet --release -p sluice --bin sluice \
  && cargo build --quiet --release -p sluice-pipeline --example gen_bench_csv)
sluice=$CARGO_TARGET_DIR/release/sluice
generator=$CARGO_TARGET_DIR/release/examples/gen_bench_csv

src_dir=$bench_dir/buckets/bench-src/in
dst_dir=$bench_dir/buckets/bench-dst
csv=$src_dir/customers.csv
marker=$bench_dir/.rows
mkdir -p "$src_dir" "$dst_dir"
if [[ ! -f $csv || ! -f $marker || $(cat "$marker") != "$rows" ]]; then
  echo "== generating $rows rows into $csv"
  start=$(date +%s.%N)
  "$generator" "$csv" "$rows"
  echo "$rows" > "$marker"
  awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "   generated in %.1f s\n", e - s }'
else
  echo "== reusing $csv ($(du -m "$csv" | cut -f1) MiB)"
fi

flow=$bench_dir/flow.json
cat > "$flow" <<'JSON'
{
  "flowName": "bench-csv-to-parquet",
  "description": "1M-row CSV to Parquet benchmark",
  "triggerConfig": {"triggerType": "OnDemand"},
  "sourceFlowConfig": {
    "connectorType": "S3",
    "sourceConnectorProperties": {"S3": {
      "bucketName": "bench-src", "bucketPrefix": "in",
      "s3InputFormatConfig": {"s3InputFileType": "CSV"}}}
  },
  "destinationFlowConfigList": [{
    "connectorType": "S3",
    "destinationConnectorProperties": {"S3": {
      "bucketName": "bench-dst", "bucketPrefix": "out",
      "s3OutputFormatConfig": {
        "fileType": "PARQUET",
        "preserveSourceDataTyping": false,
        "aggregationConfig": {"aggregationType": "SingleFile"}}}}
  }],
  "tasks": [{"sourceFields": [], "connectorOperator": {"S3": "NO_OP"},
             "taskType": "Map_all", "taskProperties": {}}]
}
JSON

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for run in $(seq 1 "$runs"); do
  rm -rf "${dst_dir:?}"/*
  output=$("$sluice" run --data-dir "$bench_dir" --stats "$flow") || {
    echo "$output"
    echo "run $run failed" >&2
    exit 1
  }
  # "  throughput: 612,345 rows/s, 210.5 MB/s of input" and "  peak RSS: 150.2 MB"
  line=$(awk '
    /throughput:/ { gsub(",", "", $2); rows = $2; mbs = $4 }
    /peak RSS:/   { rss = $3 }
    /elapsed:/    { secs = $2 }
    END { print rows, mbs, rss, secs }' <<< "$output")
  read -r rows_s mb_s rss_mb secs <<< "$line"
  printf "run %d: %8.0f rows/s  %6.1f MB/s  peak RSS %6.1f MB  (%.2f s)\n" \
    "$run" "$rows_s" "$mb_s" "$rss_mb" "$secs"
  echo "$rows_s $mb_s $rss_mb" >> "$results"
done
echo "   output: $(find "$dst_dir" -type f | head -1) ($(du -sm "$dst_dir" | cut -f1) MiB)"

summary=$(awk '
  function median(values, n,   sorted, i, j, tmp) {
    for (i = 1; i <= n; i++) sorted[i] = values[i]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
      if (sorted[j] < sorted[i]) { tmp = sorted[i]; sorted[i] = sorted[j]; sorted[j] = tmp }
    return (n % 2) ? sorted[(n + 1) / 2] : (sorted[n / 2] + sorted[n / 2 + 1]) / 2
  }
  { n++; rows[n] = $1; mbs[n] = $2; rss[n] = $3
    if (n == 1 || $1 < min_rows) min_rows = $1
    if (n == 1 || $2 < min_mbs) min_mbs = $2
    if (n == 1 || $3 > max_rss) max_rss = $3 }
  END { printf "%.0f %.0f %.1f %.1f %.1f %.1f\n", min_rows, median(rows, n), min_mbs,
        median(mbs, n), median(rss, n), max_rss }' "$results")
read -r min_rows med_rows min_mbs med_mbs med_rss max_rss <<< "$summary"
echo "== $runs runs: rows/s min $min_rows median $med_rows | MB/s min $min_mbs median $med_mbs" \
  "| peak RSS median $med_rss MB max $max_rss MB"

if awk -v r="$med_rows" -v m="$max_rss" -v tr="$target_rows_per_s" -v tm="$target_rss_mb" \
  'BEGIN { exit !(r >= tr && m <= tm) }'; then
  echo "== target met (>= $target_rows_per_s rows/s, <= $target_rss_mb MB peak RSS)"
else
  echo "== target missed (>= $target_rows_per_s rows/s, <= $target_rss_mb MB peak RSS)"
  exit 1
fi
