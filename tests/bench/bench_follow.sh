#!/usr/bin/env bash
# The cost of following a run: CPU of `gust dags trigger DAG --wait` while a large run moves.
#
#   make bin/gust && bash tests/bench/bench_follow.sh                 # this build
#   GUST_BIN_B=/path/to/other/gust bash tests/bench/bench_follow.sh   # A/B against another build
#
# No scheduler and no workers: the client triggers a fan-out of N independent tasks on its own
# PostgreSQL database, and a driver (psql on a pipe) moves the run's instances as workers would,
# at BENCH_FOLLOW_RATE tasks/s in batches: queued, then running, then success (with start and
# end dates), one transaction per step, each change announced on the store's channel as
# store/ti.c does (so the follower is woken as often as in a real run); then the run succeeds.
# What is measured is the follower alone: user+system CPU of the trigger process (wait4's
# rusage), its wall time and its peak RSS, in --output json mode (what bench_dist.sh runs) and
# in text mode (progress on stderr). Rounds alternate A and B; medians are printed.
#
# Prints "follow <build> <mode> <metric> <value> <unit>" lines on stdout, then the ratios B/A;
# progress on stderr. Checks (and says so) that each final JSON lists every task with its
# start_date and end_date. Leaves nothing behind: its database is dropped.
#
# Settings: GUST_BIN (A, default bin/gust), GUST_BIN_B (optional), BENCH_FOLLOW_N (3000 tasks),
# BENCH_FOLLOW_RATE (500 tasks/s), BENCH_FOLLOW_BATCH (25), BENCH_FOLLOW_ROUNDS (3),
# BENCH_FOLLOW_MODES ("json text"). Needs python3 and psql; uses tests/services.sh's PostgreSQL.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
A=${GUST_BIN:-$ROOT/bin/gust}
B=${GUST_BIN_B:-}
N=${BENCH_FOLLOW_N:-3000}
RATE=${BENCH_FOLLOW_RATE:-500}
BATCH=${BENCH_FOLLOW_BATCH:-25}
ROUNDS=${BENCH_FOLLOW_ROUNDS:-3}
MODES=${BENCH_FOLLOW_MODES:-json text}

say() { printf 'follow-bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[ -x "$A" ] || die "$A is missing: run make bin/gust"
[ -z "$B" ] || [ -x "$B" ] || die "GUST_BIN_B=$B is not executable"
command -v psql >/dev/null || die "psql is needed"
if [ -z "${GUST_TEST_PG_ADMIN_URL:-}" ]; then eval "$(bash "$ROOT/tests/services.sh" env)"; fi

DB=gust_follow_$$
pg_base=${GUST_TEST_PG_URL%%\?*}
pg_query=
[ "$pg_base" != "$GUST_TEST_PG_URL" ] && pg_query="?${GUST_TEST_PG_URL#*\?}"
DB_URL="${pg_base%/*}/$DB$pg_query"
DB_OWNER=$(printf '%s' "$pg_base" | sed -n 's|^[a-z]*://\([^:@/]*\).*|\1|p')
TMP=$(mktemp -d "${TMPDIR:-/tmp}/gust-follow-bench.XXXXXX")
db_made=0
finish() {
  local rc=$?
  [ $db_made -eq 1 ] && { psql "$GUST_TEST_PG_ADMIN_URL" -qX -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >&2 ||
    say "could not drop the database $DB"; }
  rm -rf "$TMP"
  exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM

mkdir -p "$TMP/home" "$TMP/dags"
python3 - "$TMP/dags/bench_follow.yml" "$N" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("bench_follow:\n  tasks:\n")
    for i in range(int(sys.argv[2])):
        f.write('    - {task_id: t%05d, operator: bash, bash_command: "true"}\n' % i)
PY
psql "$GUST_TEST_PG_ADMIN_URL" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$DB\"${DB_OWNER:+ OWNER \"$DB_OWNER\"}" >&2
db_made=1
S=(--database.url="$DB_URL" --core.home="$TMP/home" --core.dags_folder="$TMP/dags" --logging.level=warning)
"$A" "${S[@]}" db migrate >&2
say "$N tasks at $RATE tasks/s in batches of $BATCH, $ROUNDS round(s); load average $(cut -d' ' -f1-3 /proc/loadavg)"

cat >"$TMP/drive.py" <<'PY'
"""One measured follow: start the trigger, drive its run through psql, reap it with wait4."""
import json, os, subprocess, sys, time

gust, mode, n, rate, batch, db_url, out_path, run_id = sys.argv[1:9]
flags = sys.argv[9:]
n, rate, batch = int(n), float(rate), int(batch)
cmd = [gust] + flags + ["dags", "trigger", "bench_follow", "--wait", "--run-id", run_id]
if mode == "json":
    cmd += ["--output", "json"]
out = open(out_path, "w")
err = open(out_path + ".err", "w")
t0 = time.time()
child = subprocess.Popen(cmd, stdout=out, stderr=err)


def on_exit(kind, value, tb):
    """A driver that fails (the server restarted under it) must not leave the follower waiting."""
    if child.poll() is None:
        child.kill()
        child.wait()
    sys.__excepthook__(kind, value, tb)


sys.excepthook = on_exit


def rows(sql):
    return subprocess.run(["psql", db_url, "-AtXq", "-c", sql], check=True, stdout=subprocess.PIPE,
                          universal_newlines=True).stdout.split()


q = "SELECT id FROM task_instance WHERE dag_id = 'bench_follow' AND run_id = '%s' ORDER BY task_id" % run_id
for _ in range(600):
    ids = rows(q)
    if len(ids) == n:
        break
    time.sleep(0.05)
else:
    child.kill()
    raise SystemExit("the trigger made no run of %d instances" % n)

psql = subprocess.Popen(["psql", db_url, "-qX", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                        stdout=subprocess.DEVNULL, universal_newlines=True)


def step(chunk, sets):
    inl = ",".join("'%s'" % i for i in chunk)
    psql.stdin.write("BEGIN; UPDATE task_instance SET %s WHERE id IN (%s); SELECT %s; COMMIT;\n"
                     % (sets, inl, ", ".join("pg_notify('gust', '%s')" % i for i in chunk)))
    psql.stdin.flush()


start = time.time()
for k in range(0, n, batch):
    chunk = ids[k:k + batch]
    now = int(time.time() * 1e6)
    step(chunk, "state = 'queued', queued_at = %d, try_number = 1" % now)
    step(chunk, "state = 'running', start_date = %d" % now)
    step(chunk, "state = 'success', end_date = %d, duration = 1000" % (now + 1000))
    due = start + (k + len(chunk)) / rate
    if due > time.time():
        time.sleep(due - time.time())
now = int(time.time() * 1e6)
psql.stdin.write("UPDATE dag_run SET state = 'success', end_date = %d WHERE dag_id = 'bench_follow' AND run_id = '%s';"
                 " SELECT pg_notify('gust', 'bench_follow');\n" % (now, run_id))
psql.stdin.close()
psql.wait()
_, status, ru = os.wait4(child.pid, 0)
wall = time.time() - t0
out.close()
rc = os.waitstatus_to_exitcode(status)
if rc != 0:
    raise SystemExit("the trigger exited %d: %s" % (rc, open(out_path + ".err").read()[-400:]))
checked = "-"
if mode == "json":
    doc = json.load(open(out_path))
    ok = doc["state"] == "success" and len(doc["tasks"]) == n and all(
        t["state"] == "success" and t["start_date"] and t["end_date"] for t in doc["tasks"])
    if not ok:
        raise SystemExit("the final JSON does not list every task with start and end")
    checked = "ok"
lines = sum(1 for _ in open(out_path + ".err"))
print("%.3f %.3f %.2f %d %d %s" % (ru.ru_utime, ru.ru_stime, wall, ru.ru_maxrss, lines, checked))
PY

# The first trigger parses the DAG file and stores the DAG: a cost of its own, paid here
# (a run that nobody moves), not by the first measured follow.
"$A" "${S[@]}" dags trigger bench_follow --run-id warmup >/dev/null 2>&1 || die "the warm-up trigger failed"

builds=(A)
[ -n "$B" ] && builds+=(B)
: >"$TMP/results"
for ((r = 1; r <= ROUNDS; r++)); do
  for mode in $MODES; do
    for b in "${builds[@]}"; do
      bin=$A
      [ "$b" = B ] && bin=$B
      res=$(python3 "$TMP/drive.py" "$bin" "$mode" "$N" "$RATE" "$BATCH" "$DB_URL" "$TMP/out.$b.$mode.$r" \
        "follow_${b}_${mode}_$r" "${S[@]}")
      say "round $r $b $mode: user sys wall maxrss_kb stderr_lines json_check = $res"
      echo "$b $mode $res" >>"$TMP/results"
    done
  done
done

python3 - "$TMP/results" "$N" <<'PY'
import sys
res = {}
for line in open(sys.argv[1]):
    b, mode, u, s, w, rss, lines, chk = line.split()
    res.setdefault((b, mode), []).append((float(u) + float(s), float(w), int(rss), int(lines)))
med = lambda v: sorted(v)[len(v) // 2]
cpu = {}
for (b, mode), v in sorted(res.items()):
    cpu[(b, mode)] = med([x[0] for x in v])
    print("follow %s %s cpu %.3f s" % (b, mode, cpu[(b, mode)]))
    print("follow %s %s wall %.2f s" % (b, mode, med([x[1] for x in v])))
    print("follow %s %s maxrss %d kB" % (b, mode, med([x[2] for x in v])))
    print("follow %s %s stderr_lines %d lines" % (b, mode, med([x[3] for x in v])))
    print("follow %s %s cpu_per_task %.1f us" % (b, mode, cpu[(b, mode)] / int(sys.argv[2]) * 1e6))
for (b, mode), c in sorted(cpu.items()):
    if b == "B" and ("A", mode) in cpu and cpu[("A", mode)] > 0:
        print("follow ratio_cpu_%s %.3g B/A" % (mode, c / cpu[("A", mode)]))
PY
