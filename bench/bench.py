#!/usr/bin/env python3
"""driftbridge benchmarks (issue 9); started by bench/run after the release build.

Every figure comes from a command run here: `driftbridge sandbox` (its /__sandbox/stats and
/__sandbox/counts), `driftbridge sync --json` (its run summary) and `/usr/bin/time -v` (wall,
CPU, peak RSS). The peer is run by scripts/peer-check-airbyte. Standard library only.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_SCRIPT = os.path.join(ROOT, "scripts", "peer-check-airbyte")
CONV_PAGE_MAX = 100  # GET /conversations/list limit maximum (REFERENCE §7.2)
MESSAGES_PAGE = 50  # messages per page (REFERENCE §6, the sandbox serves 50)
ACCOUNTS_PAGE_MAX = 65  # GET /accounts size maximum (REFERENCE §7.3)
# "Without a limit": the sandbox runs with --rate-limit-per-min 0; the client still paces, so
# its budget is set far above what one machine can reach (1 million requests per second).
UNLIMITED_PER_MIN = 60_000_000
LATENCY_MS = 150
CORE_STREAMS = "conversations,messages,contacts"

SIZES = {
    # part: (full size, quick size)
    "budget_conversations": (1600, 150),
    "budget_rate": (6000, 6000),
    "budget600_conversations": (650, 60),
    "requests_conversations": (1000, 1000),
    "throughput_conversations": (50_000, 2000),
    "peer_conversations": (2000, 120),
    "scale": ([1000, 10_000, 100_000], [200, 1000, 4000]),
    "shared_conversations": (250, 40),
    "shared_push_rows": (150, 20),
    "burst_conversations": (1000, 200),
    # issue 22: messages created over a period, and the events of the throughput burst
    "realtime_messages": (1000, 100),
    "realtime_seconds": (60, 10),
    "realtime_burst": (20_000, 2000),
}
SHARED_RATE = 600  # issue 18: one credential's budget, requests per minute


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes and measurements


def parse_time_v(path):
    """Wall seconds, CPU seconds (user + system) and peak RSS (MB) from `/usr/bin/time -v`."""
    text = open(path).read()

    def num(label):
        m = re.search(re.escape(label) + r":\s*([0-9.:]+)", text)
        if not m:
            raise RuntimeError(f"{path}: no '{label}' in the /usr/bin/time output")
        return m.group(1)

    wall = 0.0
    for part in num("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"):
        wall = wall * 60 + float(part)
    cpu = float(num("User time (seconds)")) + float(num("System time (seconds)"))
    rss_mb = int(num("Maximum resident set size (kbytes)")) / 1024
    return {"wall_s": wall, "cpu_s": cpu, "rss_mb": rss_mb}


class Sandbox:
    """`driftbridge sandbox --port 0 ...` for the duration of a `with` block."""

    def __init__(self, bench, label, *flags):
        self.bench, self.label, self.flags = bench, label, [str(f) for f in flags]

    def __enter__(self):
        err = open(self.bench.path(f"{self.label}.sandbox.err"), "w")
        self.proc = subprocess.Popen(
            [self.bench.bin, "sandbox", "--port", "0", *self.flags],
            stdout=subprocess.PIPE, stderr=err, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"sandbox did not start: {open(err.name).read()[-500:]}")
        start = json.loads(line)
        self.base_url, self.token = start["base_url"], start["token"]
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def admin(self, route, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.base_url}/__sandbox/{route}", data=data,
                                     method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)


class Bench:
    def __init__(self, args):
        self.bin = args.bin
        self.quick = args.quick
        self.skip = set(filter(None, (args.skip or "").split(",")))
        self.work = args.keep or tempfile.mkdtemp(prefix="driftbridge-bench-")
        os.makedirs(self.work, exist_ok=True)
        self.keep = bool(args.keep)
        self.pg_url = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/test")
        self.sections = []  # (title, markdown lines)
        self.targets = []  # (target, measured, verdict)
        self.counter = 0

    def size(self, name):
        return SIZES[name][1 if self.quick else 0]

    def path(self, name):
        return os.path.join(self.work, name)

    def fresh_dir(self, label):
        self.counter += 1
        d = self.path(f"{self.counter:02d}-{label}")
        os.makedirs(d, exist_ok=True)
        return d

    def credential(self, data_dir, sandbox, rate):
        env = dict(os.environ, BENCH_DRIFT_KEY=sandbox.token)
        subprocess.run(
            [self.bin, "--data-dir", data_dir, "-q", "credentials", "add", "--name", "bench",
             "--base-url", sandbox.base_url, "--api-key-env", "BENCH_DRIFT_KEY",
             "--rate-limit-per-min", str(min(rate, 100_000)), "--no-test"],
            env=env, check=True, stdout=subprocess.DEVNULL)

    def sync(self, data_dir, label, destination, streams="all", mode="full", rate=None,
             extra=()):
        """Run `driftbridge sync --json` under /usr/bin/time -v; returns (summary, time)."""
        tv = os.path.join(data_dir, f"{label}.time")
        cmd = ["/usr/bin/time", "-v", "-o", tv, self.bin, "--data-dir", data_dir, "--json",
               "sync", "--credential", "bench", "--streams", streams, "--destination",
               destination, "--mode", mode]
        if rate is not None:
            cmd += ["--rate-limit-per-min", str(rate)]
        cmd += list(extra)
        p = subprocess.run(cmd, capture_output=True, text=True)
        open(os.path.join(data_dir, f"{label}.summary.json"), "w").write(p.stdout)
        open(os.path.join(data_dir, f"{label}.stderr"), "w").write(p.stderr)
        try:
            summary = json.loads(p.stdout)
        except ValueError:
            raise RuntimeError(f"sync {label} exited {p.returncode}: {p.stderr[-800:]}")
        if summary.get("status") != "succeeded":
            log(f"sync {label}: status {summary.get('status')}, exit {p.returncode}: "
                f"{summary.get('error')}")
        summary["exit_code"] = p.returncode
        return summary, parse_time_v(tv)

    def add(self, title, lines):
        self.sections.append((title, lines))

    def target(self, name, measured, ok, note=""):
        self.targets.append((name, measured, "met" if ok else f"**missed** {note}".strip()))


def records(summary, stream=None):
    return sum(s["records_written"] for s in summary["streams"]
               if stream is None or s["stream"] == stream)


def per_stream(summary):
    return {s["stream"]: (s["records_written"], s["state"]) for s in summary["streams"]}


def fmt(x, digits=1):
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:,.{digits}f}"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


# ---------------------------------------------------------------- part 1: budget use


def budget_run(b, rate, conversations):
    """A full sync of every stream at `rate`/min with LATENCY_MS per response."""
    with Sandbox(b, f"budget{rate}", "--conversations", conversations,
                 "--rate-limit-per-min", rate, "--latency-ms", LATENCY_MS) as sb:
        d = b.fresh_dir(f"budget-{rate}")
        b.credential(d, sb, rate)
        summary, t = b.sync(d, "sync", f"sqlite:{d}/sinks/out.db")
        stats = sb.admin("stats")
    wall = summary["duration_ms"] / 1000
    req = stats["requests_total"]
    per_min = req / wall * 60
    return {
        "rate": rate, "conversations": conversations, "requests": req,
        "client_requests": summary["totals"]["requests"], "wall": wall,
        "per_min": per_min, "pct": 100 * per_min / rate,
        "r429": stats["rate_limited_total"], "peak": stats["peak_requests_per_minute"],
        "ideal": req / rate * 60, "status": summary["status"], "cpu": t["cpu_s"],
    }


def part_budget(b):
    runs = []
    if "budget" not in b.skip:
        rate = b.size("budget_rate")
        log(f"part 1: budget use at {rate}/min, {LATENCY_MS} ms latency")
        runs.append(budget_run(b, rate, b.size("budget_conversations")))
    if "budget600" not in b.skip:
        runs.append(b.budget600.result())
    if not runs:
        return
    rows = [[fmt(r["rate"]), fmt(r["conversations"]), fmt(r["requests"]), fmt(r["wall"]),
             fmt(r["ideal"]), f"{r['wall'] / r['ideal']:.2f}x", fmt(r["per_min"], 0),
             f"{r['pct']:.1f}%", fmt(r["peak"]), fmt(r["r429"]), r["status"]] for r in runs]
    b.add(f"1. Budget use under latency ({LATENCY_MS} ms per response, every stream, SQLite)",
          table(["budget R /min", "conversations", "requests", "wall s", "ideal s (requests/R)",
                 "wall/ideal", "achieved /min", "% of R", "peak /min (sandbox)", "429s",
                 "run"], rows)
          + ["", "Requests and 429s as the sandbox counted them; wall time from the run summary. "
             "The sandbox limits at R (leaky bucket, REFERENCE §4 [SIM]) and driftbridge's budget "
             "is R. The 600/min run goes on in the background while parts 2-5 run (it waits on "
             "the budget; it needs a few percent of one core). Peak /min is over a sliding "
             "minute, so a run shorter than a minute shows its total."])
    for r in runs:
        ok = r["pct"] >= 95 and r["r429"] == 0
        b.target(f"budget use >= 95% of R={r['rate']}, zero 429",
                 f"{r['pct']:.1f}%, {r['r429']} x 429", ok,
                 f"by {95 - r['pct']:.1f} points" if r["pct"] < 95 else
                 f"({r['r429']} responses were 429)")


class Background:
    """Run a function in a thread (the 600/min run waits on the budget most of the time)."""

    def __init__(self, fn, *args):
        self.value, self.error = None, None
        self.thread = threading.Thread(target=self._run, args=(fn, *args), daemon=True)
        self.thread.start()

    def _run(self, fn, *args):
        try:
            self.value = fn(*args)
        except Exception as e:  # reported when the result is asked for
            self.error = e

    def result(self):
        self.thread.join()
        if self.error:
            raise self.error
        return self.value


# ---------------------------------------------------------------- part 2: requests needed


def part_requests(b):
    n = b.size("requests_conversations")
    touch = max(1, n // 100)
    log(f"part 2: requests for {n} conversations, full then incremental after touching {touch}")
    with Sandbox(b, "requests", "--conversations", n, "--rate-limit-per-min", 0) as sb:
        d = b.fresh_dir("requests")
        b.credential(d, sb, 100_000)
        counts = sb.admin("counts")
        # the first incremental run reads everything: that is the full sync
        full, _ = b.sync(d, "full", f"sqlite:{d}/sinks/out.db", CORE_STREAMS, "incremental",
                         UNLIMITED_PER_MIN)
        full_req = sb.admin("stats")["requests_total"]
        incs = []
        # each incremental run after touching 1%: first without the contact rotation (what
        # changed, and the contacts of the conversations that changed), then with the default
        # rotation of known contacts (how deletions and changes without a conversation
        # update reach the sink)
        for label, extra in [("incremental, --contacts-recheck 0", ["--contacts-recheck", "0"]),
                             ("incremental, default rotation", [])]:
            before = sb.admin("stats")["requests_total"]
            changed = sb.admin("mutate", {"touch_conversations": touch})
            summary, _ = b.sync(d, label.split(",")[0] + str(len(incs)), f"sqlite:{d}/sinks/out.db",
                                CORE_STREAMS, "incremental", UNLIMITED_PER_MIN, extra)
            incs.append((label, changed, summary, sb.admin("stats")["requests_total"] - before))
    msgs_per_conv = counts["messages"] / max(1, counts["conversations"])
    contacts = counts["contacts_in_conversations"]
    # list rows lack tags and participants (REFERENCE §7.2): one GET /conversations/{id} each
    ideal_full = (math.ceil(counts["conversations"] / CONV_PAGE_MAX)
                  + counts["conversations"]
                  + counts["conversations"] * max(1, math.ceil(msgs_per_conv / MESSAGES_PAGE))
                  + contacts)
    scale = 1000 / counts["conversations"]
    rows = [["full sync", fmt(full_req), fmt(full_req * scale, 0), fmt(ideal_full * scale, 0),
             f"{full_req / ideal_full:.2f}x", "100%", fmt(records(full))]]
    pcts = []
    for label, changed, summary, req in incs:
        touched = len(changed["touch_conversations"])
        # pages holding the touched conversations, each one itself, its messages and its
        # contact
        ideal = (math.ceil(touched / CONV_PAGE_MAX) + touched
                 + touched * max(1, math.ceil(msgs_per_conv / MESSAGES_PAGE)) + touched)
        if "rotation" in label:
            # plus the rotation: every other known contact, up to 1,000 per run
            ideal += min(1000, max(0, contacts - touched))
        pct = 100 * req / full_req
        pcts.append(pct)
        rows.append([f"{label} after touching {touched} "
                     f"({100 * touched / counts['conversations']:.0f}%)",
                     fmt(req), fmt(req * scale, 1), fmt(ideal * scale, 1),
                     f"{req / ideal:.2f}x", f"{pct:.2f}%", fmt(records(summary))])
    b.add(f"2. Requests needed (conversations + messages + contacts, {counts['conversations']:,} "
          f"conversations, {counts['messages']:,} messages, "
          f"{contacts:,} contacts)",
          table(["run", "requests", "per 1,000 conversations", "ideal per 1,000",
                 "vs ideal", "% of full", "records written"], rows)
          + ["", f"Ideal: conversation pages of {CONV_PAGE_MAX}, per conversation one "
             "`GET /conversations/{id}` (list rows lack its tags and participants, REFERENCE "
             f"§7.2) and one messages page (<= {MESSAGES_PAGE}), one request per distinct "
             "contact; incremental: the pages holding the touched conversations, the touched "
             "conversations themselves, their messages and "
             "their contacts (re-read so that a changed contact arrives), and with the default "
             "rotation every other known contact too (up to 1,000 per run: that is how a "
             "contact deleted or changed in Drift without a conversation update reaches the "
             "sink). Requests counted by the sandbox."])
    b.target("incremental after touching 1% (no rotation) <= 2% of full", f"{pcts[0]:.2f}%",
             pcts[0] <= 2, f"by {pcts[0] - 2:.2f} points")


# ---------------------------------------------------------------- part 3: throughput


def pg_schema_url(b, label):
    schema = f"bench_{label}_{os.getpid()}_{int(time.time())}"
    sep = "&" if "?" in b.pg_url else "?"
    return schema, f"{b.pg_url}{sep}schema={schema}"


def psql(b, sql):
    if shutil.which("psql") is None:
        return False
    return subprocess.run(["psql", b.pg_url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True).returncode == 0


def throughput_row(label, summary, t):
    recs = records(summary)
    return [label, fmt(recs), fmt(t["wall_s"]), fmt(recs / t["wall_s"], 0), fmt(t["cpu_s"]),
            f"{t['cpu_s'] / recs * 10000:.3f}", fmt(t["rss_mb"]),
            fmt(summary["totals"]["requests"]), summary["status"]]


def part_throughput(b):
    n = b.size("throughput_conversations")
    log(f"part 3: throughput, {n} conversations x 5 messages, no limit")
    rows = []
    with Sandbox(b, "throughput", "--conversations", n, "--messages-per-conversation", 5,
                 "--rate-limit-per-min", 0) as sb:
        d = b.fresh_dir("throughput")
        b.credential(d, sb, 100_000)
        s, t = b.sync(d, "sqlite", f"sqlite:{d}/sinks/out.db", "all", "full", UNLIMITED_PER_MIN)
        rows.append(throughput_row("SQLite", s, t))
        b.throughput_sqlite = (s, t)
        schema, url = pg_schema_url(b, "tp")
        if not psql(b, "select 1"):
            rows.append(["PostgreSQL", "not run: psql cannot reach " + b.pg_url] + [""] * 7)
        else:
            psql(b, f'create schema "{schema}"')
            try:
                s, t = b.sync(d, "postgres", url, "all", "full", UNLIMITED_PER_MIN)
                rows.append(throughput_row(f"PostgreSQL (schema {schema}, dropped after)", s, t))
            except RuntimeError as e:
                rows.append(["PostgreSQL", f"failed: {str(e)[:200]}"] + [""] * 7)
            finally:
                psql(b, f'drop schema if exists "{schema}" cascade')
    b.add(f"3. Throughput without a limit ({n:,} conversations x 5 messages, every stream; "
          "sandbox without rate limit or latency on the same machine)",
          table(["destination", "records", "wall s", "records/s", "CPU s", "CPU s per 10k records",
                 "peak RSS MB", "requests", "run"], rows)
          + ["", "CPU and RSS are the driftbridge process only (/usr/bin/time -v); the sandbox "
             "and the PostgreSQL server run beside it on the same cores."])


# ---------------------------------------------------------------- part 4: the peer


PEER_STREAMS = ["conversations", "messages", "contacts", "accounts", "users"]


def peer_results(out):
    counts = json.load(open(os.path.join(out, "counts.json")))
    stats = json.load(open(os.path.join(out, "stats.json")))
    read, statuses, errors = {}, {}, []
    for line in open(os.path.join(out, "read.jsonl")):
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if m.get("type") == "RECORD":
            read[m["record"]["stream"]] = read.get(m["record"]["stream"], 0) + 1
        elif m.get("type") == "TRACE" and m["trace"].get("type") == "STREAM_STATUS":
            st = m["trace"]["stream_status"]
            statuses[st["stream_descriptor"]["name"]] = st["status"]
        elif m.get("type") == "TRACE" and m["trace"].get("type") == "ERROR":
            errors.append(m["trace"]["error"].get("message", "")[:120])
    catalog = [s["stream"]["name"] for s in
               json.load(open(os.path.join(out, "catalog.json")))["streams"]]
    return {"counts": counts, "stats": stats, "read": read, "statuses": statuses,
            "errors": errors, "catalog": catalog, "time": parse_time_v(os.path.join(out, "time.txt"))}


def run_peer(b, n, accounts):
    keep = b.path("peer")
    shutil.rmtree(keep, ignore_errors=True)
    env = dict(os.environ, DRIFTBRIDGE=b.bin, PEER_KEEP=keep, PEER_CONVERSATIONS=str(n),
               PEER_ACCOUNTS=str(accounts), PEER_TIME="1",
               PEER_VENV=os.path.join(b.work, "peer-venv"))
    p = subprocess.run([PEER_SCRIPT], env=env, capture_output=True, text=True)
    open(b.path("peer-check.out"), "w").write(p.stdout + p.stderr)
    if not os.path.isdir(os.path.join(keep, "compat")):
        raise RuntimeError(f"peer-check-airbyte failed (exit {p.returncode}): {p.stderr[-800:]}")
    return (peer_results(os.path.join(keep, "compat")),
            peer_results(os.path.join(keep, "faithful")) if os.path.isdir(os.path.join(keep, "faithful")) else None)


def peer_cell(peer, name):
    if name not in peer["catalog"]:
        return "cannot read (no such stream)"
    cell = fmt(peer["read"].get(name, 0))
    status = peer["statuses"].get(name)
    if status not in (None, "COMPLETE"):
        cell += f" ({status})"
    if name == "contacts":
        cell += " (only contacts with one given email: no contacts of conversations)"
    return cell


def driftbridge_cell(mine, name):
    if name not in mine:
        return "-"
    n, state = mine[name]
    return fmt(n) + ("" if state in ("succeeded", "ok") else f" ({state})")


def expected_cell(peer, counts, name):
    """What a complete read delivers (sandbox /__sandbox/counts)."""
    if name == "contacts":
        return (f"{fmt(peer['counts']['contacts_with_email'])} / "
                f"{fmt(counts['contacts_in_conversations'])}")
    return fmt(counts[name]) if name in counts else ""


def part_peer(b):
    n, accounts = b.size("peer_conversations"), 23
    log(f"part 4: peer airbyte-source-drift 0.3.17 vs driftbridge, {n} conversations")
    peer, faithful = run_peer(b, n, accounts)
    # driftbridge reads the same org (same seed and sizes) from a faithful sandbox
    with Sandbox(b, "peer-driftbridge", "--conversations", n, "--accounts", accounts,
                 "--rate-limit-per-min", 0) as sb:
        d = b.fresh_dir("peer-driftbridge")
        b.credential(d, sb, 100_000)
        s, t = b.sync(d, "sync", f"sqlite:{d}/sinks/out.db", "all", "full", UNLIMITED_PER_MIN)
        db_req = sb.admin("stats")["requests_total"]
        counts = sb.admin("counts")
    pt, pr = peer["time"], sum(peer["read"].values())
    dr = records(s)
    p10k, d10k = pt["cpu_s"] / pr * 10000, t["cpu_s"] / dr * 10000
    rows = [
        ["wall s", fmt(pt["wall_s"]), fmt(t["wall_s"]), f"{pt['wall_s'] / t['wall_s']:.1f}x"],
        ["CPU s", fmt(pt["cpu_s"]), fmt(t["cpu_s"]), f"{pt['cpu_s'] / t['cpu_s']:.1f}x"],
        ["peak RSS MB", fmt(pt["rss_mb"]), fmt(t["rss_mb"]), f"{pt['rss_mb'] / t['rss_mb']:.1f}x"],
        ["requests", fmt(peer["stats"]["requests_total"]), fmt(db_req),
         f"{peer['stats']['requests_total'] / db_req:.2f}x"],
        ["records (all streams)", fmt(pr), fmt(dr), f"{pr / dr:.2f}x"],
        ["CPU s per 10k records", f"{p10k:.3f}", f"{d10k:.3f}", f"{p10k / d10k:.1f}x"],
    ]
    mine = per_stream(s)
    for name in dict.fromkeys(PEER_STREAMS + list(mine)):
        rows.append([f"records: {name}", peer_cell(peer, name), driftbridge_cell(mine, name),
                     expected_cell(peer, counts, name)])
    lines = table(["", "airbyte-source-drift 0.3.17", "driftbridge sync",
                   "peer / driftbridge (records: expected peer / driftbridge)"], rows)
    lines += ["", f"Same org: seed 7, {n:,} conversations, {accounts} accounts, no rate limit or latency. "
              "The peer reads a sandbox started with `--compat airbyte-0.3` (the `next` cursor on "
              "the last record and its `/conversations` and `/users` paths), every stream it offers, "
              "full refresh, its Airbyte messages written to a file; driftbridge reads the faithful "
              "API, every stream, into SQLite. The peer's contacts stream reads only the contacts "
              "with one configured email; driftbridge reads the contact of every conversation "
              "(one request each), which is most of the difference in requests."]
    if faithful:
        fr = faithful["read"]
        lines += [f"Against the faithful API (no compat) the peer reads "
                  + ", ".join(f"{k} {fmt(fr.get(k, 0))}/{fmt(v)}" for k, v in
                              [("conversations", faithful["counts"]["conversations"]),
                               ("messages", faithful["counts"]["messages"]),
                               ("accounts", faithful["counts"]["accounts"]),
                               ("users", faithful["counts"]["users"])])
                  + " and reports "
                  + (", ".join(sorted(set(faithful["statuses"].values()))) or "no stream status")
                  + (f"; errors: {'; '.join(sorted(set(faithful['errors']))[:2])}" if faithful["errors"] else "")
                  + "."]
    b.add("4. Side by side with the peer (airbyte-source-drift 0.3.17, Python 3.10)", lines)
    b.target("CPU per 10k records >= 20x lower than the peer", f"{p10k / d10k:.1f}x lower",
             p10k / d10k >= 20, f"by {20 - p10k / d10k:.1f}x")


# ---------------------------------------------------------------- part 5: scale curve


def part_scale(b):
    rows, last = [], None
    for n in b.size("scale"):
        log(f"part 5: scale, {n} conversations")
        with Sandbox(b, f"scale{n}", "--conversations", n, "--rate-limit-per-min", 0) as sb:
            d = b.fresh_dir(f"scale-{n}")
            b.credential(d, sb, 100_000)
            s, t = b.sync(d, "sync", f"sqlite:{d}/sinks/out.db", "all", "full", UNLIMITED_PER_MIN)
        recs = records(s)
        rows.append([fmt(n), fmt(recs), fmt(s["totals"]["requests"]), fmt(t["wall_s"]),
                     fmt(t["cpu_s"]), f"{t['cpu_s'] / recs * 10000:.3f}",
                     f"{t['wall_s'] / recs * 10000:.2f}", fmt(t["rss_mb"]), s["status"]])
        last = (n, t)
    b.add("5. Scale curve (every stream, SQLite, no limit)",
          table(["conversations", "records", "requests", "wall s", "CPU s",
                 "CPU s per 10k records", "wall s per 10k records", "peak RSS MB", "run"], rows))
    n, t = last
    b.target(f"peak RSS < 100 MB at {n:,} conversations", f"{t['rss_mb']:.1f} MB",
             t["rss_mb"] < 100, f"by {t['rss_mb'] - 100:.1f} MB")


# ---------------------------------------------------------------- part 6: one budget, several processes


def start_timed(b, data_dir, label, args):
    """Start `driftbridge --data-dir D --json ARGS` under /usr/bin/time -v (not waited)."""
    tv = os.path.join(data_dir, f"{label}.time")
    out = open(os.path.join(data_dir, f"{label}.out.json"), "w")
    err = open(os.path.join(data_dir, f"{label}.stderr"), "w")
    cmd = ["/usr/bin/time", "-v", "-o", tv, b.bin, "--data-dir", data_dir, "--json", *args]
    return subprocess.Popen(cmd, stdout=out, stderr=err), tv


def shared_run(b):
    """2 syncs + 1 push in three processes on one credential, blind (no rate-limit headers)."""
    n, rows = b.size("shared_conversations"), b.size("shared_push_rows")
    with Sandbox(b, "shared", "--conversations", n, "--rate-limit-per-min", SHARED_RATE,
                 "--latency-ms", LATENCY_MS, "--no-rate-limit-headers") as sb:
        d = b.fresh_dir("shared")
        b.credential(d, sb, SHARED_RATE)
        csv_path = os.path.join(d, "contacts.csv")
        with open(csv_path, "w") as f:
            f.write("email,name\n")
            for i in range(rows):
                f.write(f"bench-shared-{i}@example.com,Bench Shared {i}\n")
        sync = ["sync", "--credential", "bench", "--streams", CORE_STREAMS, "--mode", "full"]
        out = f"{d}-out"  # sinks may not live inside the data directory
        os.makedirs(out, exist_ok=True)
        started = time.time()
        procs = [
            start_timed(b, d, "sync-a", [*sync, "--destination", f"sqlite:{out}/a.db"]),
            start_timed(b, d, "sync-b", [*sync, "--destination", f"sqlite:{out}/b.db"]),
            start_timed(b, d, "push", ["push", "contacts", "--credential", "bench", "--from",
                                       csv_path, "--key", "email", "--results",
                                       os.path.join(d, "push-results.csv")]),
        ]
        codes = [p.wait() for p, _ in procs]
        wall = time.time() - started
        for (label, code) in zip(["sync-a", "sync-b", "push"], codes):
            if code != 0:
                log(f"{label} exited {code}: "
                    f"{open(os.path.join(d, f'{label}.stderr')).read()[-500:]}")
        stats = sb.admin("stats")
    req = stats["requests_total"]
    per_min = req / wall * 60
    return {"requests": req, "wall": wall, "per_min": per_min,
            "pct": 100 * per_min / SHARED_RATE, "peak": stats["peak_requests_per_minute"],
            "r429": stats["rate_limited_total"], "codes": codes,
            "processes": [parse_time_v(tv)["wall_s"] for _, tv in procs]}


def burst_run(b):
    """A full sync of 1,000 conversations at 600/min, headers on, no latency."""
    n = b.size("burst_conversations")
    with Sandbox(b, "burst", "--conversations", n, "--rate-limit-per-min", SHARED_RATE) as sb:
        d = b.fresh_dir("burst")
        b.credential(d, sb, SHARED_RATE)
        out = f"{d}-out"  # sinks may not live inside the data directory
        os.makedirs(out, exist_ok=True)
        started = time.time()
        summary, t = b.sync(d, "sync", f"sqlite:{out}/out.db",
                            streams="conversations,messages,accounts,users")
        wall = time.time() - started
        stats = sb.admin("stats")
    req = stats["requests_total"]
    return {"conversations": n, "requests": req, "wall": wall, "steady": req / SHARED_RATE * 60,
            "r429": stats["rate_limited_total"], "status": summary["status"],
            "peak": stats["peak_requests_per_minute"]}


def part_shared(b):
    log(f"part 6: 2 syncs + 1 push on one credential at {SHARED_RATE}/min, {LATENCY_MS} ms, "
        "no rate-limit headers")
    r = shared_run(b)
    b.add(f"6. One budget, three processes (2 syncs + 1 push, one credential at {SHARED_RATE}/min, "
          f"{LATENCY_MS} ms latency, sandbox --no-rate-limit-headers)",
          table(["requests (sandbox)", "wall s (first start to last end)", "process walls s",
                 "achieved /min", "% of R", "peak /min (sandbox)", "429s", "exit codes"],
                [[fmt(r["requests"]), fmt(r["wall"]),
                  " / ".join(fmt(w) for w in r["processes"]), fmt(r["per_min"], 0),
                  f"{r['pct']:.1f}%", fmt(r["peak"]), fmt(r["r429"]),
                  " ".join(str(c) for c in r["codes"])]])
          + ["", "The three processes share one data directory, so they draw from the budget "
             "in its metadata store (leases of about a second's worth of permits). Without "
             "rate-limit headers nothing but the shared budget keeps them under R. Peak /min is "
             "over a sliding minute."])
    b.target(f"three processes on one credential: combined use >= 95% of R={SHARED_RATE}, zero 429",
             f"{r['pct']:.1f}%, {r['r429']} x 429", r["pct"] >= 95 and r["r429"] == 0,
             f"({r['pct']:.1f}%, {r['r429']} x 429)")
    log(f"part 6: burst case, {b.size('burst_conversations')} conversations at {SHARED_RATE}/min")
    r = burst_run(b)
    b.add(f"7. Reported quota (full sync of {fmt(r['conversations'])} conversations with messages, "
          f"accounts and users; sandbox at {SHARED_RATE}/min with its X-RateLimit-* headers, no "
          "latency)",
          table(["requests", "wall s", "at the steady pace s (requests/R)", "peak /min (sandbox)",
                 "429s", "run"],
                [[fmt(r["requests"]), fmt(r["wall"]), fmt(r["steady"]), fmt(r["peak"]),
                  fmt(r["r429"]), r["status"]]])
          + ["", "The sandbox's bucket holds R requests; its headers report how many are left. "
             "driftbridge spends that spare quota beyond the steady pace, keeping 10% of the "
             "limit in reserve. Before issue 18 this run took 101 s."])
    b.target("burst case: wall <= 55 s, zero 429", f"{r['wall']:.1f} s, {r['r429']} x 429",
             r["wall"] <= 55 and r["r429"] == 0, f"({r['wall']:.1f} s, {r['r429']} x 429)")


# ---------------------------------------------------------------- part 8: real time (webhooks)


class Serve:
    """`driftbridge serve --bind 127.0.0.1:0` on its own data directory, for a `with` block."""

    def __init__(self, bench, label):
        self.bench, self.label = bench, label
        self.data_dir = bench.fresh_dir(label)

    def __enter__(self):
        out = subprocess.run([self.bench.bin, "--data-dir", self.data_dir, "serve",
                              "--print-token"], capture_output=True, text=True)
        m = re.search(r"dbt_[0-9a-f]+", out.stdout + out.stderr)
        if not m:
            raise RuntimeError(f"serve --print-token printed no token: {out.stderr[-300:]}")
        self.token = m.group(0)
        self.out_path = os.path.join(self.data_dir, "serve.out")
        self.proc = subprocess.Popen(
            [self.bench.bin, "--data-dir", self.data_dir, "serve", "--bind", "127.0.0.1:0",
             "--allow-private-base-urls"],
            stdout=open(self.out_path, "w"),
            stderr=open(os.path.join(self.data_dir, "serve.err"), "w"))
        for _ in range(200):
            m = re.search(r"http://127\.0\.0\.1:[0-9]+", open(self.out_path).read())
            if m:
                self.url = m.group(0)
                return self
            time.sleep(0.05)
        raise RuntimeError("serve did not say where it listens")

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def api(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
            "Origin": self.url})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)

    def queue(self, sql):
        """Rows of `sql` on the metadata store's webhook queue (read-only)."""
        import sqlite3
        con = sqlite3.connect(f"file:{self.data_dir}/driftbridge.db?mode=ro", uri=True,
                              timeout=10)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


def sink_count(b, sink, ids):
    """How many of the message `ids` the sink holds."""
    ids_sql = ",".join(str(i) for i in ids)
    if sink.startswith("sqlite:"):
        import sqlite3
        try:
            con = sqlite3.connect(sink[len("sqlite:"):], timeout=10)
            try:
                return con.execute(f"SELECT count(*) FROM messages WHERE id IN ({ids_sql})").fetchone()[0]
            finally:
                con.close()
        except sqlite3.Error:
            return 0
    schema = re.search(r"schema=([A-Za-z0-9_]+)", sink).group(1)
    out = subprocess.run(["psql", b.pg_url, "-tA", "-c",
                          f'SELECT count(*) FROM "{schema}".messages WHERE id IN ({ids_sql})'],
                         capture_output=True, text=True)
    return int(out.stdout.strip() or 0) if out.returncode == 0 else 0


def realtime_source(b, sv, sb, sink):
    token = "bench-verification-token-0123456789"
    sv.api("POST", "/api/v1/credentials", {"name": "bench", "api_key": sb.token,
                                            "base_url": sb.base_url, "rate_limit_per_min": 100_000})
    src = sv.api("POST", "/api/v1/sources", {
        "name": "rt", "credential": "bench", "streams": ["conversations", "messages"],
        "sink": sink, "realtime": {"verification_token": token}})
    sb.admin("webhooks", {"url": src["webhook_url"], "token": token})
    return src


def realtime_lag_run(b, label, sink):
    """`realtime_messages` new messages over `realtime_seconds` seconds; lag per event from
    the sandbox's createdAt to the commit (serve's queue: done_at - event_at)."""
    n, secs = b.size("realtime_messages"), b.size("realtime_seconds")
    per, steps = 5, max(1, b.size("realtime_messages") // 5)
    with Sandbox(b, f"rt-{label}", "--conversations", 50, "--rate-limit-per-min", 0) as sb, \
            Serve(b, f"rt-{label}") as sv:
        src = realtime_source(b, sv, sb, sink)
        ids = []
        started = time.time()
        for i in range(steps):
            due = started + i * secs / steps
            time.sleep(max(0.0, due - time.time()))
            ids += sb.admin("mutate", {"new_messages": per})["new_messages"]
        deadline = time.time() + 60
        while sink_count(b, sink, ids) < len(ids) and time.time() < deadline:
            time.sleep(0.2)
        landed = sink_count(b, sink, ids)
        lags = [r[0] for r in sv.queue(
            "SELECT lag_ms FROM webhook_events WHERE lag_ms IS NOT NULL "
            "AND event_type = 'new_message'")]
        view = sv.api("GET", f"/api/v1/sources/{src['id']}")
        hooks = sb.admin("webhooks")
    return {"sent": len(ids), "landed": landed, "lags": lags, "view": view["realtime"],
            "failed": hooks["failed"], "n": n, "secs": secs}


def realtime_burst_run(b):
    """`realtime_burst` new messages at once: the sandbox delivers them as fast as serve takes
    them (8 in flight); accepted/s from serve's queue, written/s until the last row landed."""
    n = b.size("realtime_burst")
    sinks_dir = b.fresh_dir("rt-burst-out")
    sink = f"sqlite:{sinks_dir}/burst.db"
    with Sandbox(b, "rt-burst", "--conversations", 50, "--rate-limit-per-min", 0) as sb, \
            Serve(b, "rt-burst") as sv:
        realtime_source(b, sv, sb, sink)
        started = time.time()
        ids = sb.admin("mutate", {"new_messages": n})["new_messages"]
        deadline = time.time() + 300
        while time.time() < deadline:
            if sink_count(b, sink, ids) >= len(ids):
                break
            time.sleep(0.2)
        written_at = time.time()
        landed = sink_count(b, sink, ids)
        (first, last, queued), = sv.queue(
            "SELECT min(received_at), max(received_at), count(*) FROM webhook_events")
        hooks = sb.admin("webhooks")
    accept_s = max((last - first) / 1000, 1e-3)
    return {"n": len(ids), "landed": landed, "queued": queued, "accept_per_s": queued / accept_s,
            "written_per_s": landed / (written_at - started), "wall": written_at - started,
            "delivered": hooks["delivered"], "failed": hooks["failed"]}


def part_realtime(b):
    n, secs = b.size("realtime_messages"), b.size("realtime_seconds")
    rows = []
    results = []
    sinks_dir = b.fresh_dir("rt-out")
    schema, pg_sink = pg_schema_url(b, "rt")
    for label, sink in [("SQLite", f"sqlite:{sinks_dir}/rt.db"), ("PostgreSQL", pg_sink)]:
        if label == "PostgreSQL" and shutil.which("psql") is None:
            log("part 8: no psql, PostgreSQL skipped")
            continue
        log(f"part 8: real time into {label}, {n} messages over {secs} s")
        try:
            r = realtime_lag_run(b, label.lower(), sink)
        finally:
            if label == "PostgreSQL":
                psql(b, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        lags = r["lags"]
        results.append((label, r))
        rows.append([label, fmt(r["sent"]), fmt(r["landed"]), fmt(percentile(lags, 50)),
                     fmt(percentile(lags, 95)), fmt(percentile(lags, 99)),
                     fmt(max(lags) if lags else float("nan")),
                     fmt(r["view"]["lag_ms_p95"] or 0), fmt(r["failed"])])
    log(f"part 8: real time, {b.size('realtime_burst')} events at once into SQLite")
    burst = realtime_burst_run(b)
    b.add(f"8. Real time (webhooks; {fmt(n)} messages created by the sandbox over {secs} s, "
          "each delivered as a `new_message` event to one `serve`)",
          table(["sink", "messages", "rows landed", "lag p50 ms", "p95 ms", "p99 ms", "max ms",
                 "p95 shown by the source", "failed deliveries"], rows)
          + ["", "Lag: from the message's `createdAt` (the sandbox's clock, the same machine) to "
             "the return of the sink commit that wrote it (`webhook_events.done_at`, set right "
             "after the commit). The worker commits at most every 250 ms; each batch's "
             "conversations are then read again from the sandbox.", ""]
          + table(["events", "accepted (queued) /s", "written /s (until the last row landed)",
                   "wall s", "rows landed", "deliveries ok / failed"],
                  [[fmt(burst["n"]), fmt(burst["accept_per_s"], 0),
                    fmt(burst["written_per_s"], 0), fmt(burst["wall"]), fmt(burst["landed"]),
                    f"{fmt(burst['delivered'])} / {fmt(burst['failed'])}"]])
          + ["", "Throughput: the sandbox creates all messages at once and delivers their events "
             "with 8 requests in flight; accepted/s is over the spread of `received_at` in "
             "serve's queue, written/s from the mutation to the last row in the SQLite sink."])
    for label, r in results:
        p95 = percentile(r["lags"], 95)
        b.target(f"real time into {label}: lag p95 <= 1 s, 0 loss",
                 f"p95 {fmt(p95)} ms, {r['landed']}/{r['sent']} rows",
                 p95 <= 1000 and r["landed"] == r["sent"], f"(p95 {fmt(p95)} ms)")
    ok = burst["landed"] == burst["n"] and burst["accept_per_s"] >= 2000
    b.target("one serve sustains >= 2,000 events/s into SQLite with 0 loss",
             f"{fmt(burst['accept_per_s'], 0)} accepted/s, {fmt(burst['written_per_s'], 0)} "
             f"written/s, {burst['landed']}/{burst['n']} rows", ok,
             f"({fmt(burst['accept_per_s'], 0)}/s)")


# ---------------------------------------------------------------- main


def git_rev():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip", default="")
    ap.add_argument("--keep")
    args = ap.parse_args()
    b = Bench(args)
    started = time.time()
    load = os.getloadavg()[0]
    if "budget600" not in b.skip:
        # about 2 minutes of waiting on the budget: runs beside the other parts (it uses a
        # few percent of one core) so the whole script stays under 10 minutes
        log(f"part 1: budget use at 600/min (background, about 2 minutes)")
        b.budget600 = Background(budget_run, b, 600, b.size("budget600_conversations"))
    failures = []
    for name, part in [("budget", part_budget), ("requests", part_requests),
                       ("throughput", part_throughput), ("peer", part_peer), ("scale", part_scale),
                       ("shared", part_shared), ("realtime", part_realtime)]:
        if name in b.skip:
            continue
        if name == "budget":
            continue  # waits for the 600/min run: printed after the others
        try:
            part(b)
        except Exception as e:  # one broken part must not hide the others
            log(f"part {name} failed: {e}")
            failures.append(f"{name}: {e}")
    try:
        if "budget" not in b.skip or "budget600" not in b.skip:
            part_budget(b)
            b.sections.insert(0, b.sections.pop())
    except Exception as e:
        log(f"part budget failed: {e}")
        failures.append(f"budget: {e}")
    elapsed = time.time() - started
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"driftbridge benchmarks, {now}, commit {git_rev()}, `bench/run{' --quick' if b.quick else ''}` "
          f"on {os.cpu_count()} cores ({platform.machine()}), load average {load:.1f} at start; "
          f"{elapsed / 60:.1f} minutes (release build excluded)")
    for title, lines in b.sections:
        print(f"\n### {title}\n")
        print("\n".join(lines))
    print("\n### Targets\n")
    print("\n".join(table(["target", "measured", "verdict"], b.targets)))
    for f in failures:
        print(f"\nPART NOT MEASURED: {f}")
    if not b.keep:
        shutil.rmtree(b.work, ignore_errors=True)
    else:
        log(f"files kept in {b.work}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
