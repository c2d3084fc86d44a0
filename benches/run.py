#!/usr/bin/env python3
"""Side-by-side benchmark of d1snap against the tools a user would pick instead, and against
the machine's limits, on one generated D1-style database in one run.

Every tool runs several times on the same file in the same run, interleaved with the others,
each after a sync(2) so that none pays for the writeback of the one before it. The report
gives medians and ratios, never absolute numbers from different runs. Wall time and peak
RSS come from wait4(2) on each child process (for a shell pipeline, the peak of its largest
process). Stored bytes are the apparent sizes of the files a tool adds.

Needs python3 (standard library only), sqlite3, zstd and restic on PATH, and builds
d1snap and the tools in benches/ with cargo unless --skip-build is given.

Example: python3 benches/run.py --size-mb 1024 --runs 3
"""

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
D1SNAP = RELEASE / "d1snap"
GENERATOR = RELEASE / "gen_d1_app"
LIMITS = RELEASE / "limits"
S3_SERVER = RELEASE / "d1snap-s3-test-server"

# The table restored alone: WebAuthn credentials, about 1% of the generated data.
ONE_TABLE = "credentials"
LARGEST_TABLE = "audit_log"
MIB = 1024 * 1024


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=100, help="size of the generated database in MiB (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each full-database measurement (default 3)")
    parser.add_argument(
        "--chain-runs", type=int, default=None,
        help="runs of the incremental chain: copy, snapshot, then four changes (default: --runs)",
    )
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/d1snap-bench"), help="scratch folder (default /tmp/d1snap-bench)")
    parser.add_argument("--keep-db", action="store_true", help="keep the generated database in the work folder for the next run")
    parser.add_argument("--skip-build", action="store_true", help="use the binaries already in target/release")
    return parser.parse_args()


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def build():
    log("building d1snap and the benchmark tools (release)")
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "d1snap", "-p", "d1snap-s3-test-server"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "--locked", "--bins"], cwd=ROOT / "benches", check=True)


def measure(command, env=None, cwd=None):
    """Run a command (a list, or a string for bash with pipefail) and return its wall time in
    seconds, its peak RSS in bytes and its standard output. A failed command raises."""
    if isinstance(command, str):
        command = ["bash", "-o", "pipefail", "-c", command]
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"d1snap-bench-stdout-{os.getpid()}"
    # Dirty pages of the previous command are written out first, so no command pays for
    # the writeback of the one before it.
    os.sync()
    with open(out_path, "wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, env=env, cwd=cwd)
        stderr = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        process.stderr.close()
    stdout = out_path.read_bytes()
    out_path.unlink()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed with exit code {process.returncode}: {stderr.decode(errors='replace')}")
    # On Linux ru_maxrss is in KiB.
    return {"seconds": wall, "peak_rss": usage.ru_maxrss * 1024, "stdout": stdout.decode(errors="replace")}


def dir_bytes(path):
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(folder, name)).st_size
    return total


def remove(path):
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def d1snap(repo, *args):
    return [str(D1SNAP), "--repo", str(repo), "--json", *map(str, args)]


class Restic:
    """A restic repository in the work folder, with its password and cache kept there."""

    def __init__(self, work, name):
        self.repo = work / name
        self.env = dict(os.environ, RESTIC_PASSWORD="d1snap-bench", RESTIC_CACHE_DIR=str(work / "restic-cache"))
        remove(self.repo)
        subprocess.run(
            ["restic", "-r", str(self.repo), "init", "--repository-version", "2"],
            env=self.env, check=True, stdout=subprocess.DEVNULL,
        )

    def backup(self, file):
        before = dir_bytes(self.repo)
        result = measure(["restic", "-r", str(self.repo), "backup", "--quiet", "--host", "bench", str(file)], env=self.env)
        result["bytes"] = dir_bytes(self.repo) - before
        return result


def s3_requests(work, db):
    """Count the requests of a first snapshot, an unchanged snapshot, a snapshot after a
    one-row update, a full and a one-table restore and a verify against the in-process S3
    server (s3s-fs) on 127.0.0.1, which serves the same S3 API as R2. Returns
    {operation: request counts}."""
    server = subprocess.Popen([str(S3_SERVER), "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        endpoint = server.stdout.readline().split()[1]
        for _ in range(2):
            server.stdout.readline()
        env = dict(os.environ, HOME=str(work / "s3-home"), AWS_ENDPOINT_URL_S3=endpoint,
                   AWS_ACCESS_KEY_ID="d1snap-test-access-key",
                   AWS_SECRET_ACCESS_KEY="d1snap-test-secret-access-key-0123456789")
        repo = "s3://d1snap-test/bench"
        copy = work / "s3-copy.sqlite"
        shutil.copyfile(db, copy)
        counts = {}

        def run(name, *args):
            result = measure([str(D1SNAP), "--repo", repo, "--json", *map(str, args)], env=env)
            counts[name] = dict(json.loads(result["stdout"])["requests"], seconds=result["seconds"])

        run("first snapshot", "snapshot", copy)
        run("unchanged snapshot", "snapshot", copy)
        conn = sqlite3.connect(copy)
        conn.execute(f"UPDATE {LARGEST_TABLE} SET payload = payload || ' ' WHERE rowid = (SELECT max(rowid) / 2 FROM {LARGEST_TABLE})")
        conn.commit()
        conn.close()
        run("snapshot after one-row update", "snapshot", copy)
        restored = work / "s3-restored.sqlite"
        remove(restored)
        run("full restore", "restore", "latest", "--to", restored)
        run(f"restore of `{ONE_TABLE}`", "restore", "latest", "--table", ONE_TABLE, "--to", work / "s3-one-table.sqlite")
        run("verify --read-data", "verify", "latest", "--read-data")
        for path in (copy, restored, work / "s3-one-table.sqlite", work / "s3-home"):
            remove(path)
        return counts
    finally:
        server.stdin.close()
        server.wait(timeout=60)


def record(samples, name, result):
    samples.setdefault(name, []).append({k: v for k, v in result.items() if k != "stdout"})


def full_database_run(work, db, samples, run):
    """Run one interleaved round of every whole-database measurement. Each round snapshots into
    its own repository, and all are deleted at the end: on ext4 without a journal, creating
    files within 30 s of deleting many is slow, which would bias the snapshot times."""
    repo = work / f"repo-full-{run}"
    remove(repo)
    result = measure(d1snap(repo, "snapshot", db, "--label", "base"))
    result["bytes"] = dir_bytes(repo)
    snapshot_report = json.loads(result["stdout"])
    record(samples, "d1snap snapshot", result)

    dump = work / "dump.sql.zst"
    result = measure(f"sqlite3 '{db}' .dump | zstd -3 -q -f -o '{dump}'")
    result["bytes"] = dump.stat().st_size
    record(samples, "sqlite3 .dump | zstd -3", result)

    vacuumed = work / "vacuumed.sqlite"
    remove(vacuumed)
    result = measure(f"sqlite3 '{db}' \"VACUUM INTO '{vacuumed}'\" && zstd -3 -q -f --rm '{vacuumed}' -o '{vacuumed}.zst'")
    result["bytes"] = Path(f"{vacuumed}.zst").stat().st_size
    record(samples, "VACUUM INTO + zstd -3", result)
    remove(Path(f"{vacuumed}.zst"))

    record(samples, "plain SQLite scan", measure([str(LIMITS), "scan", str(db)]))

    restic = Restic(work, "restic-full")
    record(samples, "restic backup (first)", restic.backup(db))
    remove(restic.repo)

    restored = work / "restored.sqlite"
    result = measure(d1snap(repo, "restore", "latest", "--to", restored, "--force"))
    record(samples, "d1snap restore", result)
    remove(restored)

    loaded = work / "loaded.sqlite"
    remove(loaded)
    record(samples, "zstd -dc | sqlite3 (load dump)", measure(f"zstd -dc '{dump}' | sqlite3 '{loaded}'"))
    remove(loaded)

    result = measure(d1snap(repo, "restore", "latest", "--to", restored, "--table", ONE_TABLE, "--force"))
    record(samples, f"d1snap restore --table {ONE_TABLE}", result)
    remove(restored)

    result = measure(d1snap(repo, "verify", "latest", "--read-data"))
    result["plain_bytes"] = json.loads(result["stdout"])["bytes_read"]
    record(samples, "d1snap verify --read-data", result)

    show = json.loads(measure(d1snap(repo, "show", "latest"))["stdout"])
    return snapshot_report, show


def insert_audit_rows(conn, count, seed):
    """Append rows shaped like the generator's audit log."""
    rng = random.Random(seed)
    last = conn.execute(f"SELECT max(id), max(created_at) FROM {LARGEST_TABLE}").fetchone()
    users = conn.execute("SELECT max(id) FROM users").fetchone()[0]
    created_at = last[1]
    rows = []
    for _ in range(count):
        created_at += rng.randrange(4000)
        payload = json.dumps(
            {"request_id": f"{rng.getrandbits(64):016x}", "ip": f"203.0.113.{rng.randrange(1, 255)}", "method": "POST",
             "path": "/api/v1/auth/login", "status": 200, "duration_ms": rng.randrange(3, 900)},
            separators=(",", ":"),
        )
        rows.append((rng.randrange(1, users + 1), "login", created_at, payload))
    conn.executemany(f"INSERT INTO {LARGEST_TABLE}(user_id, action, created_at, payload) VALUES (?, ?, ?, ?)", rows)


# The changes of the incremental chain, applied in this order to a copy of the database.
CHANGES = [
    ("one-row update", lambda conn: conn.execute(
        "UPDATE users SET display_name = 'Renamed User' WHERE id = (SELECT max(id) / 2 FROM users)")),
    ("ALTER TABLE ADD COLUMN", lambda conn: conn.execute(f"ALTER TABLE {LARGEST_TABLE} ADD COLUMN region TEXT")),
    # A multiplicative hash of the id spreads the 1% over the whole table.
    ("1% of rows updated", lambda conn: conn.execute(
        f"UPDATE {LARGEST_TABLE} SET payload = json_set(payload, '$.reviewed', json('true')) "
        "WHERE ((id * 2654435761) % 4294967296) % 100 = 0")),
    ("10,000 rows inserted", lambda conn: insert_audit_rows(conn, 10_000, seed=7)),
]


def incremental_chain(work, db, samples, run):
    """Snapshot a copy of the database with d1snap and restic, then apply each change and
    snapshot again with both, recording the time and the bytes each adds."""
    copy = work / "changed.sqlite"
    shutil.copyfile(db, copy)
    repo = work / f"repo-chain-{run}"
    remove(repo)
    subprocess.run(d1snap(repo, "snapshot", copy, "--label", "before-changes"), check=True, stdout=subprocess.DEVNULL)
    restic = Restic(work, "restic-chain")
    restic.backup(copy)
    for name, apply in CHANGES:
        conn = sqlite3.connect(copy)
        with conn:
            apply(conn)
        conn.close()
        before = dir_bytes(repo)
        result = measure(d1snap(repo, "snapshot", copy, "--label", name))
        result["bytes"] = dir_bytes(repo) - before
        result["new_chunks"] = json.loads(result["stdout"])["new_chunks"]
        record(samples, f"d1snap snapshot after {name}", result)
        record(samples, f"restic backup after {name}", restic.backup(copy))
    remove(restic.repo)
    remove(copy)


def median(samples, name, key="seconds"):
    return statistics.median(s[key] for s in samples[name])


def fmt_seconds(value):
    return f"{value:.2f} s" if value >= 1 else f"{value * 1000:.0f} ms"


def fmt_bytes(value):
    if value >= 10 * MIB:
        return f"{value / MIB:.0f} MiB"
    if value >= MIB:
        return f"{value / MIB:.1f} MiB"
    if value >= 10 * 1024:
        return f"{value / 1024:.0f} KiB"
    return f"{value / 1024:.1f} KiB" if value >= 1024 else f"{value} B"


def report(samples, limits_two, limits_one, show, db_bytes, size_mb, runs, chain_runs, requests):
    """Build the Markdown tables: goals with ratios, then the medians behind them."""
    snap = median(samples, "d1snap snapshot")
    dump = median(samples, "sqlite3 .dump | zstd -3")
    scan = median(samples, "plain SQLite scan")
    restore = median(samples, "d1snap restore")
    load = median(samples, "zstd -dc | sqlite3 (load dump)")
    one_table = median(samples, f"d1snap restore --table {ONE_TABLE}")
    verify = median(samples, "d1snap verify --read-data")
    snap_bytes = median(samples, "d1snap snapshot", "bytes")
    dump_bytes = median(samples, "sqlite3 .dump | zstd -3", "bytes")
    tables = {t["name"]: t for t in show["tables"]}
    total_encoded = sum(t["bytes"] for t in show["tables"])
    largest_bytes = tables[LARGEST_TABLE]["bytes"]
    one_table_share = tables[ONE_TABLE]["bytes"] / total_encoded

    def added(change, tool):
        return median(samples, f"{tool} after {change}", "bytes")

    # Throughput ratio: the limit's time over verify's time for the same plain bytes.
    verify_limit = limits_two["blake3_zstd_decompress_ms"] / 1000
    projected_10gb = restore * (10 * 1024 / size_mb)
    peak = max(max(s["peak_rss"] for s in samples[name]) for name in samples if name.startswith("d1snap"))

    def row(measure_name, value, peer_name, peer, ratio, goal, met):
        if met is None:
            verdict = "n/a"
        elif met:
            verdict = "met"
        else:
            verdict = "**missed**"
        return f"| {measure_name} | {value} | {peer_name} | {peer} | {ratio} | {goal} | {verdict} |"

    lines = [
        f"Database: {fmt_bytes(db_bytes)} file, {show['stats']['rows']:,} rows, {fmt_bytes(total_encoded)} encoded; "
        f"medians of {runs} runs (incremental chain: {chain_runs}).",
        "",
        "| measure | d1snap | compared with | its value | ratio | goal | result |",
        "|---|---|---|---|---|---|---|",
        row("full snapshot, time", fmt_seconds(snap), "`sqlite3 .dump \\| zstd -3`", fmt_seconds(dump),
            f"{snap / dump:.2f}×", "≤ 0.4×", snap / dump <= 0.4),
        row("full snapshot, time", fmt_seconds(snap), "plain SQLite scan", fmt_seconds(scan),
            f"{snap / scan:.2f}×", "≤ 1.5×", snap / scan <= 1.5),
        row("first snapshot, bytes stored", fmt_bytes(snap_bytes), "`.dump \\| zstd -3` output", fmt_bytes(dump_bytes),
            f"{snap_bytes / dump_bytes:.2f}×", "≤ 1×", snap_bytes <= dump_bytes),
    ]
    for change, goal, limit in [("one-row update", "≤ 0.01×", 0.01), ("1% of rows updated", "≤ 0.5×", 0.5)]:
        ours, theirs = added(change, "d1snap snapshot"), added(change, "restic backup")
        lines.append(row(f"bytes added after {change}", fmt_bytes(ours), "restic backup", fmt_bytes(theirs),
                         f"{ours / theirs:.4f}×", goal, ours / theirs <= limit))
    ours = added("ALTER TABLE ADD COLUMN", "d1snap snapshot")
    lines.append(row("bytes added after ALTER TABLE ADD COLUMN", fmt_bytes(ours), f"encoded `{LARGEST_TABLE}` table",
                     fmt_bytes(largest_bytes), f"{ours / largest_bytes:.5f}×", "< 0.01×", ours / largest_bytes < 0.01))
    lines += [
        row("full restore, time", fmt_seconds(restore), "`zstd -dc \\| sqlite3` (load the dump)", fmt_seconds(load),
            f"{restore / load:.2f}×", "≤ 0.5×", restore / load <= 0.5),
        row(f"restore of `{ONE_TABLE}` ({one_table_share:.1%} of the data), time", fmt_seconds(one_table),
            "full restore", fmt_seconds(restore), f"{one_table / restore:.3f}×", "≤ 0.05×", one_table / restore <= 0.05),
        row("`verify --read-data`, throughput", f"{limits_two['plain_bytes'] / verify / MIB:.0f} MiB/s",
            "BLAKE3 + zstd decode, 2 threads", f"{limits_two['plain_bytes'] / verify_limit / MIB:.0f} MiB/s",
            f"{verify_limit / verify:.2f}×", "≥ 0.5×", verify_limit / verify >= 0.5),
        row("peak RSS, any d1snap command", fmt_bytes(peak), "Workers memory limit", "128 MiB",
            f"{peak / (128 * MIB):.2f}×", "≤ 1×", peak <= 128 * MIB),
        row("full restore of 10 GiB, projected", fmt_seconds(projected_10gb), "a few minutes", "5 min",
            f"{projected_10gb / 300:.2f}×", "≤ 1×", projected_10gb <= 300),
        row("R2 requests by kind", "see the table of requests below", "", "", "", "", None),
        "",
        "Incremental snapshots of a copy of the database, each after the change before it:",
        "",
        "| change | d1snap bytes added | d1snap new chunks | d1snap time | restic bytes added | restic time | bytes ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for change, _ in CHANGES:
        ours, theirs = added(change, "d1snap snapshot"), added(change, "restic backup")
        chunks = median(samples, f"d1snap snapshot after {change}", "new_chunks")
        lines.append(
            f"| {change} | {fmt_bytes(ours)} | {chunks:.0f} | {fmt_seconds(median(samples, f'd1snap snapshot after {change}'))} "
            f"| {fmt_bytes(theirs)} | {fmt_seconds(median(samples, f'restic backup after {change}'))} | {ours / theirs:.4f}× |"
        )
    lines += [
        "",
        "Medians of every whole-database measurement, interleaved in each run:",
        "",
        "| tool | wall time | peak RSS | bytes stored or written |",
        "|---|---|---|---|",
    ]
    for name in samples:
        if " after " in name:
            continue
        has_bytes = "bytes" in samples[name][0]
        stored = fmt_bytes(median(samples, name, "bytes")) if has_bytes else ""
        label = name.replace("|", "\\|")
        lines.append(f"| {label} | {fmt_seconds(median(samples, name))} | {fmt_bytes(median(samples, name, 'peak_rss'))} | {stored} |")
    lines += [
        "",
        f"Limits on the {limits_two['chunks']:,} plain chunks ({fmt_bytes(limits_two['plain_bytes'])}, "
        f"{fmt_bytes(limits_two['compressed_bytes'])} after zstd -3), held in memory:",
        "",
        "| work | 1 thread | 2 threads |",
        "|---|---|---|",
    ]
    for key, name in [("blake3_ms", "BLAKE3"), ("zstd_compress_ms", "zstd -3 compress"),
                      ("zstd_decompress_ms", "zstd decompress"), ("blake3_zstd_compress_ms", "BLAKE3 + zstd -3 compress"),
                      ("blake3_zstd_decompress_ms", "zstd decompress + BLAKE3")]:
        rate_one = limits_one["plain_bytes"] / (limits_one[key] / 1000) / MIB
        rate_two = limits_two["plain_bytes"] / (limits_two[key] / 1000) / MIB
        lines.append(f"| {name} | {fmt_seconds(limits_one[key] / 1000)} ({rate_one:.0f} MiB/s) "
                     f"| {fmt_seconds(limits_two[key] / 1000)} ({rate_two:.0f} MiB/s) |")
    hash_only = statistics.median([limits_one["hash_only_scan_ms"], limits_two["hash_only_scan_ms"]]) / 1000
    lines += [
        "",
        f"d1snap's own scan with hashing but no compression or storage (what `verify --against` does) took "
        f"{fmt_seconds(hash_only)} ({limits_two['plain_bytes'] / hash_only / MIB:.0f} MiB/s), median of 2.",
        "",
        "Requests to an S3 repository on the in-process test server (s3s-fs on 127.0.0.1, which answers the "
        "requests R2 would), one run on a copy of the same database:",
        "",
        "| operation | PUT | GET | HEAD | LIST | DELETE | sent | received | wall time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, counts in requests.items():
        lines.append(f"| {name} | {counts['put']} | {counts['get']} | {counts['head']} | {counts['list']} | {counts['delete']} "
                     f"| {fmt_bytes(counts['bytes_sent'])} | {fmt_bytes(counts['bytes_received'])} | {fmt_seconds(counts['seconds'])} |")
    return "\n".join(lines)


def command_output(command):
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "not found"


def machine():
    """Describe the machine and the tool versions for the report's header."""
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "unknown")
    memory_kib = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    return [
        f"- {os.cpu_count()} CPUs (`nproc`), {cpu}, {memory_kib / MIB:.0f} GiB memory; "
        f"load average at the start {os.getloadavg()[0]:.2f}",
        f"- sqlite3 {command_output(['sqlite3', '--version']).split()[0]}, "
        f"{command_output(['zstd', '--version']).strip('* ')}, {command_output(['restic', 'version'])}, "
        f"{command_output(['rustc', '--version'])}",
    ]


def main():
    args = parse_args()
    chain_runs = args.chain_runs if args.chain_runs is not None else args.runs
    if not args.skip_build:
        build()
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"app-{args.size_mb}mib-seed{args.seed}.sqlite"
    if not db.exists():
        log(f"generating {db}")
        subprocess.run([str(GENERATOR), "--size-mb", str(args.size_mb), "--seed", str(args.seed), str(db)], check=True)
    db_bytes = db.stat().st_size

    header = machine()
    samples = {}
    for run in range(args.runs):
        log(f"whole-database run {run + 1} of {args.runs}")
        _, show = full_database_run(work, db, samples, run)
    log("limits: BLAKE3 and zstd on the plain chunks")
    limits_two = json.loads(measure([str(LIMITS), "chunks", str(db), "--threads", "2", "--repeat", str(args.runs)])["stdout"])
    limits_one = json.loads(measure([str(LIMITS), "chunks", str(db), "--threads", "1", "--repeat", str(args.runs)])["stdout"])
    for run in range(chain_runs):
        log(f"incremental chain {run + 1} of {chain_runs}")
        incremental_chain(work, db, samples, run)
    log("requests to an S3 repository")
    requests = s3_requests(work, db)

    header.append(f"- load average at the end {os.getloadavg()[0]:.2f}")
    table = "\n".join(header) + "\n\n" + report(samples, limits_two, limits_one, show, db_bytes, args.size_mb, args.runs, chain_runs, requests)
    results = work / f"results-{args.size_mb}mib.json"
    results.write_text(json.dumps({"samples": samples, "limits_2_threads": limits_two, "limits_1_thread": limits_one,
                                   "database_bytes": db_bytes, "show": show, "s3_requests": requests}, indent=1))
    (work / f"table-{args.size_mb}mib.md").write_text(table + "\n")
    print(table)
    log(f"raw samples in {results}")

    for path in work.iterdir():
        if path.name.startswith(("repo-", "dump.", "restic-")):
            remove(path)
    if not args.keep_db:
        remove(db)


if __name__ == "__main__":
    main()
