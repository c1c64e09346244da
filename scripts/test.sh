#!/usr/bin/env bash
# The whole test suite: starts the services the tests need, then runs the test
# files in RUNNEL_TEST_SHARDS (default 2) bun test processes side by side, each
# with its own JUnit report, merged into test-results/junit.xml. Most tests
# wait on processes, brokers and checkpoints rather than compute, so two
# shards finish in a little over half the time on two cores. Each shard's
# output is shown as it comes, prefixed with its number. Extra arguments
# (files or directories) narrow the run; with them, one shard runs them all.
# --timeout is given here: bun test left tests that set none at its 5 s default
# whatever bunfig.toml said.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh start || { echo "could not start the test services; fix the error above and rerun" >&2; exit 1; }
mkdir -p test-results
rm -f test-results/junit*.xml
# Tests (and the jobs they start) make their folders under the temp dir: each run gets its own,
# removed when the run ends, so repeated runs never fill the disk (they once left 52 GB in /tmp).
TMPDIR="$(mktemp -d "${TMPDIR:-/tmp}/runnel-test-run-XXXXXX")"
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT

if [ "$#" -gt 0 ]; then
  bun test --timeout=60000 --reporter=junit --reporter-outfile=test-results/junit.xml "$@"
  exit $?
fi

shards="${RUNNEL_TEST_SHARDS:-2}"
# Files that disrupt a shared service (a broker restarted under every other test) say `@runs-alone`:
# they run after the shards, by themselves.
mapfile -t alone < <(grep -rl --include='*.test.ts' '@runs-alone' test | sort)
# The others go to the shard with the least run time so far, longest first, by the seconds each file took
# in a recorded run (test/timings.tsv; a file not in it counts its size at 600 bytes a second, about the
# suite's average). Dealt by file size alone, one shard ran 1,069 s and the other 743 s.
mapfile -t files < <(find test -name '*.test.ts' | sort | grep -vxF -f <(printf '%s\n' "${alone[@]}" ""))
mapfile -t dealt < <(python3 - "$shards" test/timings.tsv "${files[@]}" <<'PY'
import os, sys
shards, timings, files = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
seconds = {}
if os.path.exists(timings):
    for line in open(timings):
        t, _, path = line.rstrip("\n").partition("\t")
        if path: seconds[path] = float(t)
cost = {f: seconds.get(f, os.path.getsize(f) / 600) for f in files}
load = [0.0] * shards
for f in sorted(files, key=lambda f: (-cost[f], f)):
    i = min(range(shards), key=lambda i: load[i])
    load[i] += cost[f]
    print(f"{i} {f}")
PY
)
pids=()
for ((i = 0; i < shards; i++)); do
  mine=()
  for line in "${dealt[@]}"; do [ "${line%% *}" = "$i" ] && mine+=("${line#* }"); done
  [ "${#mine[@]}" -gt 0 ] || continue
  ( bun test --timeout=60000 --reporter=junit --reporter-outfile="test-results/junit-$i.xml" "${mine[@]}" 2>&1 | sed -u "s/^/[$i] /" ; exit "${PIPESTATUS[0]}" ) &
  pids+=("$!")
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
if [ "${#alone[@]}" -gt 0 ]; then
  bun test --timeout=60000 --reporter=junit --reporter-outfile="test-results/junit-alone.xml" "${alone[@]}" 2>&1 | sed -u "s/^/[alone] /"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi

python3 - test-results <<'PY'
import glob, os, sys, xml.etree.ElementTree as ET
out = ET.Element("testsuites")
totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
times = 0.0
for path in sorted(glob.glob(os.path.join(sys.argv[1], "junit-*.xml"))):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    for s in suites:
        out.append(s)
    for k in totals:
        totals[k] += int(root.get(k, 0) or 0) if root.tag == "testsuites" else sum(int(s.get(k, 0) or 0) for s in suites)
    times = max(times, float(root.get("time", 0) or 0))
for k, v in totals.items():
    out.set(k, str(v))
out.set("time", str(times))
ET.ElementTree(out).write(os.path.join(sys.argv[1], "junit.xml"), encoding="utf-8", xml_declaration=True)
# Seconds per file of this run, to record in test/timings.tsv (copy it there after a full run on a quiet machine).
with open(os.path.join(sys.argv[1], "timings.tsv"), "w") as f:
    for s in sorted(out, key=lambda s: s.get("name") or ""):
        if s.get("name"):
            f.write(f"{float(s.get('time', 0) or 0):.1f}\t{s.get('name')}\n")
print(f"{totals['tests'] - totals['failures'] - totals['errors'] - totals['skipped']} passed, {totals['failures'] + totals['errors']} failed (all shards)")
PY
exit "$status"
