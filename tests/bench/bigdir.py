#!/usr/bin/env python3
"""bigdir.py DIR N LABEL [PID]: creates N empty files in DIR with 2 processes
(each open O_CREAT|O_EXCL + close of its own names, interleaved), and prints
result lines for tests/bench/run.sh's table:

  LABEL bigdir_first R       files/s over the first 10% of the files
  LABEL bigdir_last R        files/s over the last 10%
  LABEL bigdir_secs S        the whole run
  LABEL bigdir_rss_before M  VmRSS (MiB) of PID before and after, when given
  LABEL bigdir_rss_after M

The rate of each tenth goes to stderr as it is reached. Exits non-zero on the
first failed create.
"""
import os
import sys
import time

PROCS = 2


def rss_mib(pid):
    try:
        for line in open("/proc/%s/status" % pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def creator(d, n, k, w):
    """Process k of PROCS: files k, k+PROCS, ...; writes to pipe w the
    monotonic time at which each tenth of its share was done."""
    mine = range(k, n, PROCS)
    total = len(mine)
    marks = {total * t // 10 for t in range(1, 11)}
    done = 0
    out = os.fdopen(w, "w")
    for i in mine:
        fd = os.open("%s/f.%d" % (d, i), os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                     0o644)
        os.close(fd)
        done += 1
        if done in marks:
            out.write("%d %.6f\n" % (done, time.monotonic()))
            out.flush()
    out.close()


def main():
    d, n, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    pid = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
    before = rss_mib(pid) if pid else None
    start = time.monotonic()
    readers, kids = [], []
    for k in range(PROCS):
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(r)
            try:
                creator(d, n, k, w)
            except OSError as e:
                sys.stderr.write("bigdir: create: %s\n" % e)
                os._exit(1)
            os._exit(0)
        os.close(w)
        readers.append(os.fdopen(r))
        kids.append(child)
    # Tenth t is reached when every process reached its tenth t.
    marks = [[] for _ in range(PROCS)]
    for k, r in enumerate(readers):
        for line in r:
            marks[k].append(float(line.split()[1]))
    for child in kids:
        _, status = os.waitpid(child, 0)
        if status != 0:
            sys.exit("bigdir: a creator failed")
    if any(len(m) != 10 for m in marks):
        sys.exit("bigdir: a creator reported too few marks")
    ends = [start] + [max(m[t] for m in marks) for t in range(10)]
    tenth = n / 10.0
    rates = [tenth / max(ends[t + 1] - ends[t], 1e-9) for t in range(10)]
    sys.stderr.write("bigdir %s: files/s per tenth: %s\n"
                     % (label, " ".join("%.0f" % r for r in rates)))
    after = rss_mib(pid) if pid else None
    print(label, "bigdir_first", "%.1f" % rates[0])
    print(label, "bigdir_last", "%.1f" % rates[-1])
    print(label, "bigdir_secs", "%.1f" % (ends[-1] - start))
    if before is not None and after is not None:
        print(label, "bigdir_rss_before", "%.1f" % before)
        print(label, "bigdir_rss_after", "%.1f" % after)


if __name__ == "__main__":
    main()
