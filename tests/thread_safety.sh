#!/usr/bin/env bash
# Clang's thread-safety analysis (-Wthread-safety, as errors) over every
# stripefs source file the build compiles: libraries, binaries and unit
# tests (generated protobuf code excepted). GCC ignores the ABSL_GUARDED_BY /
# ABSL_EXCLUSIVE_LOCKS_REQUIRED annotations; this is what checks them. Runs
# clang in syntax-only mode with each file's own flags from
# $BUILD/compile_commands.json (so no second build tree), in parallel.
# tests/run.sh runs it after the build; exits non-zero on any finding.
#   tests/thread_safety.sh [FILE...]   only these source files
#
# Environment: STRIPEFS_BUILD (configured build dir, default build/),
# CLANG (default clang++).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${STRIPEFS_BUILD:-$ROOT/build}"
CLANG="${CLANG:-clang++}"
DB="$BUILD/compile_commands.json"

command -v "$CLANG" >/dev/null ||
  { echo "thread_safety: $CLANG not found (deploy/install-deps.sh installs clang)" >&2; exit 1; }
[ -f "$DB" ] ||
  { echo "thread_safety: $DB missing (configure $BUILD with cmake first)" >&2; exit 1; }

ONLY=()
for f in "$@"; do ONLY+=("$(realpath "$f")"); done
exec /usr/bin/python3 - "$DB" "$ROOT" "$BUILD" "$CLANG" "$(nproc)" "${ONLY[@]}" <<'PY'
import concurrent.futures, json, os, shlex, subprocess, sys, time

db, root, build, clang, jobs = sys.argv[1:6]
only = set(sys.argv[6:])
build = os.path.realpath(build)
entries = []
for e in json.load(open(db)):
    src = os.path.realpath(os.path.join(e["directory"], e["file"]))
    if not src.startswith(root + "/") or src.startswith(build + "/"):
        continue  # generated code (protobuf) and anything outside the tree
    if only and src not in only:
        continue
    entries.append((src, e))

def command(e):
    args = shlex.split(e["command"]) if "command" in e else list(e["arguments"])
    # Drop the launcher (ccache) and the compiler (everything before the
    # first option), then the output and dependency-file options.
    first = next((i for i, a in enumerate(args) if a.startswith("-")), len(args))
    args = args[first:]
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-o", "-MT", "-MF", "-MQ"):
            skip = True
            continue
        if a in ("-c", "-MD", "-MMD"):
            continue
        out.append(a)
    return [clang, "-fsyntax-only", "-Wthread-safety", "-Werror=thread-safety",
            "-Wno-unknown-warning-option"] + out

def check(item):
    src, e = item
    r = subprocess.run(command(e), cwd=e["directory"], capture_output=True, text=True)
    return src, r.returncode, r.stderr

start = time.time()
failed = []
with concurrent.futures.ThreadPoolExecutor(int(jobs)) as pool:
    for src, rc, err in pool.map(check, entries):
        findings = [l for l in err.splitlines() if "thread-safety" in l]
        if rc != 0 or findings:
            failed.append(os.path.relpath(src, root))
            sys.stderr.write(err)
print("thread_safety: %d files checked in %.0f s, %d with findings%s" % (
    len(entries), time.time() - start, len(failed),
    (": " + " ".join(failed)) if failed else ""))
sys.exit(1 if failed or not entries else 0)
PY
