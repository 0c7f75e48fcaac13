#!/usr/bin/env bash
# Postgres connector benchmark: a 1,000,000-row CRM accounts table moved Postgres -> Parquet on
# local disk and Postgres -> Postgres (another database on the same server), side by side with
# DuckDB 1.5.5 and its postgres extension, and a plain binary COPY to /dev/null as the floor.
#
#   scripts/bench-postgres.sh [BENCH_DIR]
#
# Uses the server of SLUICE_TEST_POSTGRES_URL (a superuser URL) or starts a throwaway one under
# BENCH_DIR/pg with scripts/start-postgres.sh (and stops it again at the end). The table is
# generated once with generate_series (deterministic) in database sluice_bench.
#
# DuckDB runs from a Python venv (SLUICE_BENCH_VENV, default ~/.cache/sluice-bench-venv) with
# the pinned packages duckdb==1.5.5 and duckdb-extension-postgres-scanner==1.5.5; the latter
# ships the extension binary, which is loaded by path, so nothing is fetched at run time.
#
# The tools run alternately, RUNS rounds, each as its own process. Per tool the script prints
# the median and minimum of the seconds the tool spent on the transfer itself (connect to
# file closed; the process start and, for DuckDB, the Python import are excluded), the median
# wall time of the whole process, and the peak RSS of the process (the largest over the runs).
# It exits 1 when Sluice's median Postgres -> Parquet time is above DuckDB's or its peak RSS
# above 150 MiB.
#
# Environment: BENCH_DIR (default /tmp/sluice-pg-bench), ROWS (default 1000000), RUNS (default
# 5), PARALLELISM (default 2), DUCKDB (default 1; 0 skips DuckDB), CARGO_TARGET_DIR (default
# <repo>/target).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_dir=${1:-${BENCH_DIR:-/tmp/sluice-pg-bench}}
rows=${ROWS:-1000000}
runs=${RUNS:-5}
parallelism=${PARALLELISM:-2}
want_duckdb=${DUCKDB:-1}
venv=${SLUICE_BENCH_VENV:-$HOME/.cache/sluice-bench-venv}
target_rss_mib=150
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
mkdir -p "$bench_dir"
bench_dir=$(cd "$bench_dir" && pwd)

url=${SLUICE_TEST_POSTGRES_URL:-}
if [[ -z $url ]]; then
  url=$("$repo/scripts/start-postgres.sh" "$bench_dir/pg")
  stop_server() { kill "$(head -n 1 "$bench_dir/pg/data/postmaster.pid")" 2>/dev/null || true; }
  trap stop_server EXIT
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

export PGOPTIONS="-c client_min_messages=warning"
marker=$(psql -qtAX "$base/postgres" -c "SELECT 1 FROM pg_database WHERE datname = 'sluice_bench'")
count=
if [[ $marker == 1 ]]; then
  count=$(psql -qtAX "$base/sluice_bench" -c "SELECT count(*) FROM accounts" 2>/dev/null || true)
fi
if [[ $count != "$rows" ]]; then
  echo "== generating $rows rows in sluice_bench.public.accounts"
  psql -qX "$base/postgres" -c "DROP DATABASE IF EXISTS sluice_bench" \
    -c "CREATE DATABASE sluice_bench"
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
psql -qtAX "$base/sluice_bench" \
  -c "SELECT 'table size: ' || pg_size_pretty(pg_total_relation_size('accounts'))"

duckdb_python=
if [[ $want_duckdb == 1 ]]; then
  echo "== DuckDB venv: $venv"
  if { [[ -x $venv/bin/python ]] || python3 -m venv "$venv"; } \
    && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      duckdb==1.5.5 duckdb-extension-postgres-scanner==1.5.5; then
    duckdb_python=$venv/bin/python
  else
    echo "== DuckDB: cannot install duckdb==1.5.5 and" \
      "duckdb-extension-postgres-scanner==1.5.5; skipped"
  fi
fi

# One transfer by DuckDB: MODE is parquet (TARGET is the file) or postgres (TARGET is the
# database). Prints the seconds of the transfer itself, like pg_bench.
duckdb_script=$bench_dir/duckdb_copy.py
cat > "$duckdb_script" <<'PY'
import pathlib, sys, time
import duckdb
import duckdb_extension_postgres_scanner as package

mode, source, target = sys.argv[1:4]
package_dir = pathlib.Path(package.__file__).parent
extension = next(package_dir.rglob("postgres_scanner.duckdb_extension"))
con = duckdb.connect()
con.execute(f"LOAD '{extension}'")
started = time.monotonic()
con.execute(f"ATTACH '{source}' AS pg (TYPE postgres, READ_ONLY)")
if mode == "parquet":
    con.execute(f"COPY (SELECT * FROM pg.public.accounts) TO '{target}' (FORMAT parquet)")
else:
    con.execute(f"ATTACH '{target}' AS dst (TYPE postgres)")
    con.execute("CREATE TABLE dst.public.accounts AS SELECT * FROM pg.public.accounts")
print(f"seconds={time.monotonic() - started:.3f}")
PY

# The driver: runs each round's commands in turn, measures wall time and the peak RSS of each
# child (wait4's rusage is per process), prints the summary table and checks the target.
# A command's own "seconds=" output is its transfer time; without it the wall time is used.
B_RUNS=$runs B_TARGET_RSS=$target_rss_mib B_BASE=$base B_BENCH=$bench B_DIR=$bench_dir \
B_PARALLELISM=$parallelism B_DUCKDB=$duckdb_python B_DUCKDB_SCRIPT=$duckdb_script B_HOST=$host \
B_PORT=$port B_USER=$user B_PASSWORD=$password python3 - <<'PY'
import os, re, statistics, subprocess, sys, time

env = os.environ
runs, target_rss, base = int(env["B_RUNS"]), float(env["B_TARGET_RSS"]), env["B_BASE"]
bench, bench_dir, parallelism = env["B_BENCH"], env["B_DIR"], env["B_PARALLELISM"]
duckdb, duckdb_script = env["B_DUCKDB"], env["B_DUCKDB_SCRIPT"]
conn = [env["B_HOST"], env["B_PORT"], env["B_USER"], env["B_PASSWORD"], "sluice_bench",
        "public.accounts", parallelism]
parquet_tools = [
    ("sluice", [bench, "parquet", *conn, f"{bench_dir}/sluice.parquet"]),
    ("copy floor", ["psql", "-qX", f"{base}/sluice_bench?sslmode=disable", "-o", "/dev/null", "-c",
                    "COPY (SELECT * FROM public.accounts) TO STDOUT (FORMAT binary)"]),
]
pg_tools = [("sluice", [bench, "postgres", *conn, "sluice_bench_copy"])]
if parallelism != "1":
    # One scan, for comparison: a single COPY can be no faster than the floor.
    parquet_tools.insert(1, ("sluice 1 scan", [bench, "parquet", *conn[:-1], "1",
                                               f"{bench_dir}/sluice.parquet"]))
if duckdb:
    # Every tool connects without TLS (Sluice's profile says sslmode=disable; libpq's default
    # would negotiate TLS with a test cluster that offers it), so they do the same work.
    parquet_tools.insert(1, ("duckdb", [duckdb, duckdb_script, "parquet",
                                        f"{base}/sluice_bench?sslmode=disable",
                                        f"{bench_dir}/duckdb.parquet"]))
    pg_tools.append(("duckdb", [duckdb, duckdb_script, "postgres",
                                f"{base}/sluice_bench?sslmode=disable",
                                f"{base}/sluice_bench_copy?sslmode=disable"]))

def psql(sql):
    subprocess.run(["psql", "-qX", f"{base}/postgres", "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)

def measure(argv):
    started = time.monotonic()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    if status != 0:
        sys.exit(f"failed ({status}): {' '.join(argv)}\n{out}")
    work = re.search(r"seconds=([0-9.]+)", out)
    return (float(work.group(1)) if work else wall), wall, usage.ru_maxrss / 1024

def bench_set(title, tools, before=None):
    results = {name: [] for name, _ in tools}
    for run in range(runs):
        # Rotating the start keeps any tool from always running first (cold caches).
        for name, argv in tools[run % len(tools):] + tools[:run % len(tools)]:
            if before:
                before()
            work, wall, rss = measure(argv)
            results[name].append((work, wall, rss))
            print(f"  run {run + 1} {title:<22} {name:<14} {work:6.3f} s  wall {wall:6.3f} s  "
                  f"peak RSS {rss:6.1f} MiB", flush=True)
    return results

def table(title, results):
    print(f"\n{title}")
    print(f"  {'tool':<15}{'median s':>10}{'min s':>8}{'wall s':>9}{'peak RSS MiB':>14}")
    for name, values in results.items():
        work = [v[0] for v in values]
        print(f"  {name:<15}{statistics.median(work):>10.3f}{min(work):>8.3f}"
              f"{statistics.median(v[1] for v in values):>9.3f}"
              f"{max(v[2] for v in values):>14.1f}")

def fresh_copy_db():
    psql("DROP DATABASE IF EXISTS sluice_bench_copy")
    psql("CREATE DATABASE sluice_bench_copy")

print(f"== {runs} rounds, Sluice parallelism {parallelism}")
to_parquet = bench_set("postgres -> parquet", parquet_tools)
to_pg = bench_set("postgres -> postgres", pg_tools, before=fresh_copy_db)
table("Postgres -> Parquet (local file)", to_parquet)
for name in ("sluice", "duckdb"):
    path = f"{bench_dir}/{name}.parquet"
    if os.path.exists(path):
        print(f"  {name} file: {os.path.getsize(path) / 2**20:.1f} MiB")
table("Postgres -> Postgres (another database)", to_pg)

sluice = statistics.median(v[0] for v in to_parquet["sluice"])
sluice_rss = max(v[2] for v in to_parquet["sluice"])
verdict = sluice_rss <= target_rss
goal = f"peak RSS <= {target_rss:.0f} MiB"
if "duckdb" in to_parquet:
    duck = statistics.median(v[0] for v in to_parquet["duckdb"])
    verdict = verdict and sluice <= duck
    goal = f"median <= DuckDB's ({duck:.3f} s), " + goal
print(f"\n== target {'met' if verdict else 'missed'}: Sluice Postgres -> Parquet {sluice:.3f} s, "
      f"{sluice_rss:.1f} MiB ({goal})")
sys.exit(0 if verdict else 1)
PY
