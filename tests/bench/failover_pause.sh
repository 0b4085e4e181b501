#!/usr/bin/env bash
# Failover pause benchmark (issue 4, DESIGN.md "Numbers to beat": a
# controlled upgrade of any one server stalls I/O for under 1 s, with zero
# errors).
#
# Runs tests/e2e/test_upgrade.py (DLM + MDS + 4 OSS rolled N -> N+1 -> N one
# server at a time under fio --verify and two latency probes) and reports,
# per server restart, the longest I/O pause seen against the 1 s target.
#
# Environment:
#   STRIPEFS_BUILD      build dir of release N+1 (default REPO/build)
#   STRIPEFS_BUILD_N    build dir of release N (default REPO/build-n)
#   PAUSE_TARGET_S      the target (1)
#   BENCH_STRICT=1      exit 1 when a restart is over the target
#   BENCH_JSON          also keep the per-restart JSON at this path
# Both builds must exist (tests/run.sh builds them). Exits non-zero if the
# upgrade test itself fails.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export STRIPEFS_BUILD="${STRIPEFS_BUILD:-$REPO/build}"
export STRIPEFS_BUILD_N="${STRIPEFS_BUILD_N:-$REPO/build-n}"
TARGET="${PAUSE_TARGET_S:-1}"
PY=/usr/bin/python3
[[ -x "$PY" ]] || PY=python3
export PYTHONDONTWRITEBYTECODE=1

for b in "$STRIPEFS_BUILD/bin/stripefs" "$STRIPEFS_BUILD_N/bin/stripefs-mds"; do
  [[ -x "$b" ]] || { echo "failover_pause: $b is missing (build both releases; see tests/run.sh)" >&2; exit 1; }
done

JSON="${BENCH_JSON:-$(mktemp "${TMPDIR:-/tmp}/stripefs-pause.XXXXXX.json")}"
export STRIPEFS_PAUSE_JSON="$JSON"
rm -f "$JSON"
cd "$REPO"
set +e
"$PY" -m pytest -q -s -p no:cacheprovider \
  tests/e2e/test_upgrade.py::test_roll_up_and_down_with_files_open \
  > "${JSON%.json}.log" 2>&1
rc=$?
set -e
if [[ ! -s "$JSON" ]]; then
  echo "failover_pause: the upgrade test produced no measurements (exit $rc); log:" >&2
  tail -n 60 "${JSON%.json}.log" >&2
  exit 1
fi

"$PY" - "$JSON" "$TARGET" "$rc" <<'PYEOF'
import json, sys
rows = json.load(open(sys.argv[1]))
target = float(sys.argv[2])
rc = int(sys.argv[3])
print(f"failover pause (longest I/O stall per server restart; target < {target:g} s)")
print(f"{'restart':<24}{'roll s':>8}{'fio s':>8}{'probe A s':>11}{'probe B s':>11}{'worst s':>9}  verdict")
over = 0
for r in rows:
    p = r["pauses"]
    verdict = "OK" if r["worst"] < target else "OVER"
    over += verdict == "OVER"
    label = f"{r['target']} {r['from']}->{r['to']}"
    print(f"{label:<24}{r['roll']:>8.2f}{p.get('fio', 0):>8.3f}"
          f"{p.get('probe-A', 0):>11.3f}{p.get('probe-B', 0):>11.3f}"
          f"{r['worst']:>9.3f}  {verdict}")
worst = max(r["worst"] for r in rows) if rows else 0
print(f"worst stall {worst:.3f} s over {len(rows)} restarts; "
      f"{over} over target; upgrade test {'passed' if rc == 0 else 'FAILED (exit %d)' % rc}")
PYEOF
if [[ "$rc" -ne 0 ]]; then
  echo "failover_pause: upgrade test failed; log: ${JSON%.json}.log" >&2
  exit "$rc"
fi
if [[ "${BENCH_STRICT:-}" == 1 ]]; then
  "$PY" -c "import json,sys; sys.exit(any(r['worst'] >= $TARGET for r in json.load(open('$JSON'))))"
fi
