#!/usr/bin/env bash
# Postgres connector benchmark: a 1,000,000-row CRM accounts table moved Postgres -> Parquet
# on local disk and Postgres -> Postgres (another database on the same server), side by side
# with DuckDB's postgres extension when the `duckdb` Python package and its extension load.
#
#   scripts/bench-postgres.sh [BENCH_DIR]
#
# Uses the server of SLUICE_TEST_POSTGRES_URL (a superuser URL) or starts a throwaway one
# under BENCH_DIR/pg with scripts/start-postgres.sh. The table is generated once with
# generate_series (deterministic) in database sluice_bench. Prints seconds and peak RSS per
# run.
#
# Environment: BENCH_DIR (default /tmp/sluice-pg-bench), ROWS (default 1000000), RUNS
# (default 3), PARALLELISM (default 2), CARGO_TARGET_DIR (default <repo>/target).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_dir=${1:-${BENCH_DIR:-/tmp/sluice-pg-bench}}
rows=${ROWS:-1000000}
runs=${RUNS:-3}
parallelism=${PARALLELISM:-2}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
mkdir -p "$bench_dir"

url=${SLUICE_TEST_POSTGRES_URL:-}
if [[ -z $url ]]; then
  url=$("$repo/scripts/start-postgres.sh" "$bench_dir/pg")
fi
# postgres://user:password@host:port/db
read -r user password host port < <(python3 -c '
import sys, urllib.parse as u
p = u.urlparse(sys.argv[1])
print(u.unquote(p.username or ""), u.unquote(p.password or ""), p.hostname, p.port or 5432)' "$url")
base="postgres://$user:$password@$host:$port"

echo "== building (release)"
(cd "$repo" && cargo build --quiet --release -p sluice-connector-postgres --example pg_bench)
bench=$CARGO_TARGET_DIR/release/examples/pg_bench

marker=$(psql -qtAX "$base/postgres" -c "SELECT 1 FROM pg_database WHERE datname = 'sluice_bench'")
if [[ $marker != 1 ]] || [[ $(psql -qtAX "$base/sluice_bench" -c "SELECT count(*) FROM accounts" 2>/dev/null) != "$rows" ]]; then
  echo "== generating $rows rows in sluice_bench.public.accounts"
  psql -qX "$base/postgres" -c "DROP DATABASE IF EXISTS sluice_bench" -c "CREATE DATABASE sluice_bench"
  psql -qX -v ON_ERROR_STOP=1 "$base/sluice_bench" <<SQL
CREATE TABLE accounts (
  id bigint PRIMARY KEY, first_name text, last_name text, email text, phone text,
  balance numeric(12,2), employees integer, active boolean,
  created_at timestamptz, updated_at timestamptz, notes text, attributes jsonb);
INSERT INTO accounts
SELECT g,
       'First' || (g % 997),
       'Last' || (g % 4999),
       'user' || g || '@example.com',
       '+1-555-' || lpad((g % 10000000)::text, 7, '0'),
       ((g * 7919) % 100000000) / 100.0,
       (g * 31) % 100000,
       g % 3 = 0,
       timestamptz '2020-01-01 00:00:00+00' + g * interval '37 seconds',
       timestamptz '2024-01-01 00:00:00+00' + g * interval '11 seconds',
       left(repeat(md5(g::text), 4), 100),
       jsonb_build_object('tier', (ARRAY['gold','silver','bronze'])[g % 3 + 1],
                          'region', 'region-' || (g % 17), 'score', g % 100,
                          'tags', jsonb_build_array('t' || (g % 7), 't' || (g % 11)))
FROM generate_series(1::bigint, $rows) g;
VACUUM ANALYZE accounts;
SQL
fi
psql -qtAX "$base/sluice_bench" -c "SELECT 'table size: ' || pg_size_pretty(pg_total_relation_size('accounts'))"

duckdb_ok=0
if python3 -c 'import duckdb' 2>/dev/null; then
  if python3 - "$base/sluice_bench" >/dev/null 2>&1 <<'PY'
import sys, duckdb
con = duckdb.connect()
con.execute("INSTALL postgres; LOAD postgres")
PY
  then duckdb_ok=1; else echo "== DuckDB: the postgres extension cannot be installed or loaded; skipped"; fi
else
  echo "== DuckDB: Python package duckdb is not installed; skipped"
fi

peak() { # runs a command; prints its wall time and peak RSS in MiB (getrusage of children)
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
start = time.monotonic()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
elapsed = time.monotonic() - start
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"seconds={elapsed:.3f} peak_rss_mib={rss:.1f}")
PY
}

out=$bench_dir/accounts.parquet
for run in $(seq 1 "$runs"); do
  echo "-- run $run"
  rm -f "$out"
  echo "sluice   pg->parquet (parallelism $parallelism): $(peak "$bench" parquet "$host" "$port" "$user" "$password" sluice_bench public.accounts "$parallelism" "$out")"
  echo "sluice   pg->parquet (parallelism 1): $(peak "$bench" parquet "$host" "$port" "$user" "$password" sluice_bench public.accounts 1 "$out")"
  if [[ $duckdb_ok == 1 ]]; then
    rm -f "$bench_dir/duck.parquet"
    echo "duckdb   pg->parquet: $(peak python3 -c "
import duckdb, sys
con = duckdb.connect()
con.execute(\"LOAD postgres\")
con.execute(\"ATTACH '$base/sluice_bench' AS pg (TYPE postgres, READ_ONLY)\")
con.execute(\"COPY pg.public.accounts TO '$bench_dir/duck.parquet' (FORMAT parquet)\")
")"
  fi
  psql -qX "$base/postgres" -c "DROP DATABASE IF EXISTS sluice_bench_copy" -c "CREATE DATABASE sluice_bench_copy"
  echo "sluice   pg->pg (parallelism $parallelism): $(peak "$bench" postgres "$host" "$port" "$user" "$password" sluice_bench public.accounts "$parallelism" sluice_bench_copy)"
done
echo "copied rows: $(psql -qtAX "$base/sluice_bench_copy" -c 'SELECT count(*) FROM accounts')"
