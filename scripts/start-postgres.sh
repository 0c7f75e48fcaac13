#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster on a free loopback port and prints its superuser URL.
#
#   scripts/start-postgres.sh DIR
#
# Installs Debian's `postgresql` package with apt when no server binaries are found. The
# cluster (data, socket, log) lives under DIR with a fixed password and no durability
# (fsync off), so it is only for tests. Stop it with `kill "$(head -n 1 DIR/data/postmaster.pid)"`.
# The URL is printed as the only line on stdout, e.g.
#   export SLUICE_TEST_POSTGRES_URL="$(scripts/start-postgres.sh /tmp/pg)"
#
# The server accepts both plain and TLS connections. Its certificate (for 127.0.0.1 and
# localhost) is signed by a throwaway CA made with the openssl CLI; the CA certificate is
# DIR/tls/ca.crt, e.g.
#   export SLUICE_TEST_POSTGRES_CA=/tmp/pg/tls/ca.crt
set -euo pipefail

dir="${1:?usage: start-postgres.sh DIR}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

find_bin() {
    local candidate
    for candidate in /usr/lib/postgresql/*/bin; do
        if [[ -x "$candidate/initdb" ]]; then
            echo "$candidate"
        fi
    done | sort -V | tail -n 1
}

bin="$(find_bin)"
if [[ -z "$bin" ]]; then
    echo "installing postgresql with apt" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y --no-install-recommends postgresql >&2
    bin="$(find_bin)"
fi
if [[ -z "$bin" ]]; then
    echo "no PostgreSQL server binaries found under /usr/lib/postgresql" >&2
    exit 1
fi

# initdb and postgres refuse to run as root; use the postgres account for the cluster then.
run() {
    if [[ "$(id -u)" == 0 ]]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" postgres
        chown -R postgres "$dir"
        su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    else
        "$@"
    fi
}

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
user=sluice
password=sluice

# A throwaway CA and a server certificate signed by it, made once per cluster directory.
tls="$dir/tls"
if [[ ! -f "$tls/server.crt" ]]; then
    if ! command -v openssl >/dev/null; then
        echo "the openssl CLI is needed for the cluster's TLS certificate (apt-get install openssl)" >&2
        exit 1
    fi
    mkdir -p "$tls"
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 3650 \
        -subj "/CN=Sluice test CA" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$tls/ca.key" -out "$tls/ca.crt" >&2
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -subj "/CN=127.0.0.1" -keyout "$tls/server.key" -out "$tls/server.csr" >&2
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        >"$tls/server.ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
        -CAcreateserial -days 3650 -extfile "$tls/server.ext" -out "$tls/server.crt" >&2
    # The server refuses a key file that others can read.
    chmod 600 "$tls/server.key" "$tls/ca.key"
fi

if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    # Password authentication over TCP, so tests can check that bad credentials are refused.
    printf '%s\n' "$password" >"$dir/pwfile"
    run "$bin/initdb" -D "$dir/data" -U "$user" --pwfile="$dir/pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >&2
    rm -f "$dir/pwfile"
fi
run "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c ssl=on -c ssl_cert_file=$tls/server.crt -c ssl_key_file=$tls/server.key" \
    start >&2

echo "postgres://$user:$password@127.0.0.1:$port/postgres"
