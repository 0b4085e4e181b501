#!/usr/bin/env python3
"""Parsers and the printed table of tests/bench/run.sh.

run.sh appends one line per measurement to a results file,
"LABEL JOB VALUE" (LABEL: stripefs, moosefs, passthrough, local), through the
parsers below, and finally calls `table.py print`, which prints one table with
a column per peer and the stripefs/MooseFS and stripefs/passthrough ratios,
sorted so that the worst stripefs/MooseFS ratio comes last, then the goal
line, the lock lines and the N-to-1 line, and writes the JSON file
({job: {label: value}}) when asked.

  table.py fio JSON LABEL JOB RW          MiB/s for seq* jobs, IOPS otherwise
  table.py ior OUT LABEL JOB              mean write/read MiB/s of the summary
  table.py mdtest OUT LABEL               File creation/stat/read/removal
  table.py mdbench JSON_TEXT LABEL [SFX]  stripefs-mdbench create/stat/remove
  table.py dlm OUT                        dlm_bench lines
  table.py mds_addr CLUSTER_JSON          the MDS address of a cluster home
  table.py print RESULTS NOTES LOCAL_FS JSON_PATH HEADER...
"""
import json
import os
import re
import sys

PEERS = ("stripefs", "moosefs", "passthrough", "local")


def fio(path, label, job, rw):
    j = json.load(open(path))["jobs"][0]  # --group_reporting: all jobs
    side = j["read"] if "read" in rw else j["write"]
    value = side["bw_bytes"] / (1 << 20) if job.startswith("seq") else side["iops"]
    print(label, job, "%.1f" % value)


def ior(path, label, job):
    text = open(path).read()
    # "Summary of all tests:" then "write  Max(MiB) Min(MiB) Mean(MiB) ...".
    op = "write" if job.endswith("write") else "read"
    start = text.find("Summary of all tests")
    m = re.search(r"^%s\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s" % op,
                  text[max(start, 0):], re.M)
    if start < 0 or not m:
        sys.exit("ior: no %s line in the summary of %s" % (op, path))
    print(label, job, m.group(3))  # mean MiB/s


def mdtest(path, label):
    text = open(path).read()
    start = text.find("SUMMARY rate")
    if start < 0:
        sys.exit("mdtest: no 'SUMMARY rate' section in %s" % path)
    section = text[start:]
    end = section.find("SUMMARY time")
    if end > 0:
        section = section[:end]
    names = {"creation": "create", "stat": "stat", "read": "read",
             "removal": "remove"}
    found = 0
    for m in re.finditer(r"^\s*File (creation|stat|read|removal)\s*:?\s+"
                         r"([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)", section, re.M):
        print(label, "mdtest_" + names[m.group(1)], m.group(4))  # mean
        found += 1
    if found != 4:
        sys.exit("mdtest: %d of 4 file rates in %s" % (found, path))


def mdbench(text, label, suffix=""):
    d = json.loads(text)
    for k in ("create", "stat", "remove"):
        if suffix:
            print("stripefs", k + "_" + suffix, "%.1f" % d[k])
        else:
            print(label, k, "%.1f" % d[k])


def dlm(text):
    for line in text.splitlines():
        m = re.match(r"grpc empty call: .* ([0-9.]+) us latency, ([0-9.]+) us CPU",
                     line)
        if m:
            print("stripefs grpc_call_us", m.group(1))
            print("stripefs grpc_call_cpu_us", m.group(2))
            continue
        m = re.match(r"dlm (.*?): .* = ([0-9.]+) ops/s .*\(\d+ threads, (\d+) failed\)",
                     line)
        if not m:
            continue
        if int(m.group(3)):
            sys.exit("dlm_bench: %s" % line)
        key = {"enqueue+cancel": "dlm_enqueue_cancel",
               "cached lock reuse": "dlm_cached_reuse"}.get(m.group(1))
        if key:
            print("stripefs", key, m.group(2))


def mds_addr(path):
    c = json.load(open(path))
    print([s["address"] for s in c["servers"] if s.get("role") == "mds"][0])


# (job key, row name); numjobs=4 fio rows are the key + "_j4".
FIO = [("seqwrite", "fio seq write 1M end_fsync, MiB/s"),
       ("seqread", "fio seq read 1M (cold), MiB/s"),
       ("randwrite", "fio rand write 4k, IOPS"),
       ("randread", "fio rand read 4k (cold), IOPS")]
ROWS = ([(k, n.replace("fio ", "fio j1 ")) for k, n in FIO] +
        [(k + "_j4", n.replace("fio ", "fio j4 ")) for k, n in FIO] +
        [("ior_fpp_write", "IOR 2p file/proc write, MiB/s"),
         ("ior_fpp_read", "IOR 2p file/proc read (cold), MiB/s"),
         ("ior_shared_write", "IOR 2p shared file write, MiB/s"),
         ("ior_shared_read", "IOR 2p shared file read (cold), MiB/s"),
         ("mdtest_create", "mdtest -F create/s"),
         ("mdtest_stat", "mdtest -F stat/s"),
         ("mdtest_read", "mdtest -F read/s"),
         ("mdtest_remove", "mdtest -F remove/s"),
         ("create", "mdbench create/s"),
         ("stat", "mdbench stat/s"),
         ("remove", "mdbench remove/s")])
SEQ = ("seqwrite", "seqread", "seqwrite_j4", "seqread_j4")


def num(v):
    if v is None:
        return "-"
    return "%.0f" % v if v >= 100 else "%.1f" % v


def ratio(a, b):
    return None if a is None or not b else a / b


def print_table(results, notes, local_fs, json_path, header):
    res = {}
    for line in open(results):
        label, job, value = line.split()
        res.setdefault(job, {})[label] = float(value)
    rows = []
    for key, name in ROWS:
        vals = [res.get(key, {}).get(p) for p in PEERS]
        if all(v is None for v in vals):
            continue
        rows.append((key, name, vals, ratio(vals[0], vals[1]),
                     ratio(vals[0], vals[2])))
    # Rows without a stripefs/MooseFS ratio first, then best to worst ratio.
    rows.sort(key=lambda r: (r[3] is not None, -(r[3] or 0)))
    notes = [line.rstrip() for line in open(notes)]
    if rows:
        print_rows(rows, local_fs, header, notes)
    else:
        print("\n".join(notes))
    lock_lines(res)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(res, f, indent=1)


def print_rows(rows, local_fs, header, notes):
    fmt = "%-38s %9s %9s %11s %9s %9s %9s"
    print()
    for h in (h for h in header if h):
        print(h)
    print(fmt % ("job", "stripefs", "MooseFS", "passthrough",
                 "local", "sfs/MFS", "sfs/pt"))
    print("-" * 100)
    worst = rows[-1][0] if rows and rows[-1][3] is not None else None
    for key, name, vals, r_mfs, r_pt in rows:
        line = fmt % ((name,) + tuple(num(v) for v in vals) +
                      ("-" if r_mfs is None else "%.2f" % r_mfs,
                       "-" if r_pt is None else "%.2f" % r_pt))
        print(line + ("  <- worst vs MooseFS" if key == worst else ""))
    print("local = %s; passthrough = libfuse passthrough_ll -o writeback over "
          "the same fs; cold = after drop_caches" % local_fs)
    for line in notes:
        print(line)
    print()
    print("goal: >= 1.0, target 2.0 vs MooseFS; seq write/read >= 0.60 of "
          "passthrough")
    r = [x[3] for x in rows if x[3] is not None]
    if r:
        print("now: %d of %d rows >= 1.0 vs MooseFS (%d >= 2.0), worst %.2f"
              % (sum(x >= 1.0 for x in r), len(r), sum(x >= 2.0 for x in r),
                 min(r)))
    p = [x[4] for x in rows if x[0] in SEQ and x[4] is not None]
    if p:
        print("now: %d of %d seq rows >= 0.60 of passthrough, worst %.2f"
              % (sum(x >= 0.6 for x in p), len(p), min(p)))


def lock_lines(res):
    def one(key):
        return res.get(key, {}).get("stripefs")
    enq, reuse = one("dlm_enqueue_cancel"), one("dlm_cached_reuse")
    if enq is not None or reuse is not None:
        print()
        print("lock service (dlm_bench, %s ops, gRPC on 127.0.0.1): "
              "enqueue+cancel %s ops/s, cached lock reuse %s ops/s"
              % (os.environ.get("DLM_OPS", "?"), num(enq), num(reuse)))
    call, call_cpu = one("grpc_call_us"), one("grpc_call_cpu_us")
    if call:
        mfs = [res.get(op, {}).get("moosefs") for op in ("create", "remove")]
        print("gRPC floor (dlm_bench: one empty sync unary call on 127.0.0.1): "
              "%s us latency, %s us CPU (client+server); a create or a remove "
              "waits for 2 calls in a row (the MDS's, and the DLM enqueue it "
              "makes): at most %s files/s per process from gRPC alone "
              "(MooseFS mdbench create %s/s, remove %s/s)"
              % (num(call), num(call_cpu), num(1e6 / (2 * call)), num(mfs[0]),
                 num(mfs[1])))
    for op in ("create", "stat", "remove"):
        with_dlm, without = one(op + "_dlm"), one(op + "_nodlm")
        noad = one(op + "_dlm_noadaptive")
        if with_dlm is not None and without is not None:
            print("file %s (%s files, default layout): with DLM %s files/s "
                  "(adaptive caching off: %s), without DLM (--no-dlm) %s "
                  "files/s, locking costs %.1f%%"
                  % (op, os.environ.get("LOCK_FILES", "?"), num(with_dlm),
                     num(noad), num(without), 100.0 * (1 - with_dlm / without)))
    bigdir_lines(res)
    n1 = one("n1_shared")
    if n1 is not None:
        print("N-to-1 shared file (2 mounts, disjoint halves, 64 KiB writes): "
              "%s MiB/s" % n1)


def bigdir_lines(res):
    names = {"stripefs": "stripefs", "moosefs": "MooseFS"}
    for label in ("stripefs", "moosefs"):
        def get(key):
            return res.get("bigdir_" + key, {}).get(label)
        first, last = get("first"), get("last")
        if first is None or last is None:
            continue
        r = last / first if first else 0.0
        rss = ""
        if get("rss_before") is not None:
            rss = ", metadata server RSS %.0f -> %.0f MiB" % (
                get("rss_before"), get("rss_after"))
        print("%s directory of %s files (2 procs): first 10%% %s files/s, "
              "last 10%% %s files/s, ratio %.2f (%s >= 0.8), %.0f s%s"
              % (names[label], os.environ.get("BIGDIR_FILES", "?"), num(first),
                 num(last), r, "ok" if r >= 0.8 else "FAILS", get("secs") or 0,
                 rss))


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "fio":
        fio(*args)
    elif cmd == "ior":
        ior(*args)
    elif cmd == "mdtest":
        mdtest(*args)
    elif cmd == "mdbench":
        mdbench(*args)
    elif cmd == "dlm":
        dlm(*args)
    elif cmd == "mds_addr":
        mds_addr(*args)
    elif cmd == "print":
        print_table(args[0], args[1], args[2], args[3], args[4:])
    else:
        sys.exit("table.py: unknown command %s" % cmd)


if __name__ == "__main__":
    main(sys.argv)
