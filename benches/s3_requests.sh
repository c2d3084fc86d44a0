#!/usr/bin/env bash
# Measures the requests d1snap sends to an S3 repository for each sample database: a first
# snapshot, a snapshot of the same data with a warm and with a cold cache, a snapshot after
# a one-row update, a full restore and a verify. It runs against the in-process test
# server directly, then through its fault proxy. Everything listens on 127.0.0.1.
# Usage: benches/s3_requests.sh [FAULT_SHARE] (default 0.2)
set -euo pipefail
cd "$(dirname "$0")/.."
share="${1:-0.2}"

cargo build -j 1 -p d1snap -p d1snap-s3-test-server >/dev/null 2>&1
bin=target/debug/d1snap
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A generated D1-style database: 200,000 audit-log rows with JSON payloads.
mkdir -p "$work/pristine"
python3 - "$work/pristine/events.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("CREATE TABLE events(id INTEGER PRIMARY KEY, user TEXT NOT NULL, kind TEXT, payload TEXT, at INTEGER)")
db.executemany("INSERT INTO events VALUES (?,?,?,?,?)",
    ((i, f"usr_{i % 5000:06}", ("login", "logout", "update")[i % 3],
      f'{{"seq":{i},"ip":"10.0.{i % 251}.{i % 13}","agent":"Mozilla/5.0 ({i % 97})","ok":{str(i % 3 == 0).lower()}}}',
      1_700_000_000 + i) for i in range(200_000)))
db.commit()
PY
cp tests/data/chinook/Chinook_Sqlite.sqlite "$work/pristine/chinook.sqlite"
cp -r tests/data/d1-local "$work/pristine/d1-local"

summary() {
    python3 -c '
import json, sys
r = json.load(sys.stdin); q = r["requests"]; root = r.get("root", "-")[:16]
print("%-22s root %-16s new chunks %4s PUT %6d GET %6d HEAD %5d LIST %4d DELETE %3d  sent %10d B  received %10d B  retries %4d"
      % (sys.argv[1], root, r.get("new_chunks", "-"), q["put"], q["get"], q["head"], q["list"], q["delete"], q["bytes_sent"], q["bytes_received"], q["retries"]))
' "$1"
}

run_all() {
    local endpoint="$1" label="$2"
    export HOME="$work/home-$label" AWS_ENDPOINT_URL_S3="$endpoint" AWS_ACCESS_KEY_ID=d1snap-test-access-key \
        AWS_SECRET_ACCESS_KEY=d1snap-test-secret-access-key-0123456789 D1SNAP_S3_RETRY_BASE_MS=20 D1SNAP_S3_ATTEMPTS=12
    mkdir -p "$HOME" "$work/$label"
    # Each round starts from the same data, because the one-row update changes it.
    cp "$work/pristine/chinook.sqlite" "$work/pristine/events.sqlite" "$work/$label/"
    cp -r "$work/pristine/d1-local" "$work/$label/"
    for name in chinook d1-local events; do
        local repo="s3://d1snap-test/$label-$name" source
        if [ "$name" = d1-local ]; then source=(--wrangler "$work/$label/d1-local"); else source=("$work/$label/$name.sqlite"); fi
        echo "== $name ($label)"
        "$bin" --repo "$repo" --json snapshot "${source[@]}" | summary "first snapshot"
        "$bin" --repo "$repo" --json snapshot "${source[@]}" | summary "unchanged snapshot"
        rm -rf "$HOME/.cache"
        "$bin" --repo "$repo" --json snapshot "${source[@]}" | summary "unchanged, cold cache"
        if [ "$name" != d1-local ]; then
            python3 - "$work/$label/$name.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
table = "Track" if "chinook" in sys.argv[1] else "events"
column = "Name" if table == "Track" else "payload"
db.execute(f"UPDATE {table} SET {column} = {column} || ' (edited)' WHERE rowid = 1000")
db.commit()
PY
            "$bin" --repo "$repo" --json snapshot "${source[@]}" | summary "one row updated"
        fi
        "$bin" --repo "$repo" --json restore latest --to "$work/$label-$name.sqlite" | summary "restore"
        "$bin" --repo "$repo" --json verify latest | summary "verify"
        "$bin" --repo "$repo" --json verify latest --against "$work/$label-$name.sqlite" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("verify --against restored:", "clean" if not r["findings"] else r["findings"])'
    done
    "$bin" --repo "s3://d1snap-test/$label-events" --json list | python3 -c 'import json,sys; print("roots:", [s["root"][:16] for s in json.load(sys.stdin)["snapshots"]])'
}

coproc SERVER { exec target/debug/d1snap-s3-test-server "$share"; }
read -r _ server <&"${SERVER[0]}"
read -r _ proxy <&"${SERVER[0]}"
read -r _ <&"${SERVER[0]}"
run_all "$server" direct
run_all "$proxy" faults
exec {SERVER[1]}>&-
wait "$SERVER_PID" 2>/dev/null || true
