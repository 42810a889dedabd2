#!/usr/bin/env bash
# gust tasks test, gust tasks clear and gust dags backfill against the real binary: exit
# codes, the log that tasks test shows, what clear selects (regex, --only-failed,
# --downstream, date range), that a cleared task gets its retries back, the refusal without
# --yes when stdin is not a terminal, backfill's runs (created once, then skipped), its
# dry run, and the logical dates of a range that crosses a DST change.
# GUST_BIN is the binary under test (the sanitizer build in `make test`).
set -uo pipefail
cd "$(dirname "$0")/../.."
GUST=${GUST_BIN:-./bin/gust}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export GUST_HOME="$TMP/home"
unset $(env | awk -F= '/^GUST__/ {print $1}') 2>/dev/null || true

pass=0 fail=0
ok()   { pass=$((pass + 1)); printf '  ok   %s\n' "$1"; }
bad()  { fail=$((fail + 1)); printf '  FAIL %s\n' "$1"; [ -n "${2:-}" ] && printf '       %s\n' "$2"; }
check() { # name, command...: passes when the command succeeds
  local name=$1; shift
  if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$(echo "$out" | head -5)"; fi
}

mkdir -p "$TMP/dags"
cat >"$TMP/dags/t.yml" <<YML
tt:
  schedule: None
  tasks:
    - task_id: first
      operator: bash
      bash_command: "echo never-runs-in-tasks-test; exit 1"
    - task_id: ok
      operator: bash
      bash_command: "echo marker-ok-output"
      dependencies: [first]
    - task_id: bad
      operator: bash
      bash_command: "echo marker-bad-output; exit 3"
      retries: 2
    - task_id: skipper
      operator: bash
      bash_command: "exit 99"
cl:
  schedule: "@daily"
  start_date: 2024-01-01
  catchup: false
  tasks:
    - task_id: a
      operator: bash
      bash_command: "echo a"
    - task_id: b
      operator: bash
      bash_command: "if [ -f $TMP/fail_b ]; then echo b-fails; exit 1; fi; echo b-ok"
      retries: 1
      retry_delay: 0
      dependencies: [a]
    - task_id: c
      operator: bash
      bash_command: "echo c"
      dependencies: [b]
    - task_id: side
      operator: bash
      bash_command: "echo side"
slow:
  schedule: "@daily"
  start_date: 2024-01-01
  tasks:
    - task_id: nap
      operator: bash
      bash_command: "sleep 0.3"
ny:
  schedule: "0 0 * * *"
  timezone: America/New_York
  start_date: 2024-01-01
  tasks: [{task_id: t, operator: empty}]
ny_hourly:
  schedule: "@hourly"
  timezone: America/New_York
  start_date: 2024-01-01
  tasks: [{task_id: t, operator: empty}]
YML
G=("$GUST" --core.dags_folder="$TMP/dags")
DB=("--database.url=sqlite:///$TMP/x.db")

# --- tasks test ----------------------------------------------------------------------------
"${G[@]}" tasks test tt ok 2024-01-01 >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 0 ] && ok "tasks test: a succeeding task exits 0 (its failing upstream is ignored)" \
  || bad "tasks test: success exits 0" "rc=$rc $(tail -3 "$TMP/err")"
grep -q "marker-ok-output" "$TMP/out" && ok "tasks test: the task's log is shown" || bad "tasks test: log shown" "$(cat "$TMP/out")"
grep -q "^tt .* ok: success (try 1)$" "$TMP/out" && ok "tasks test: final state line" || bad "tasks test: final state line" "$(cat "$TMP/out")"
grep -q "never-runs-in-tasks-test" "$TMP/out" "$TMP/err" && bad "tasks test: only the one task runs" || ok "tasks test: only the one task runs"

"${G[@]}" tasks test tt bad >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 1 ] && ok "tasks test: a failing task exits 1" || bad "tasks test: failure exits 1" "rc=$rc"
grep -q "marker-bad-output" "$TMP/out" && grep -q "exit code 3" "$TMP/out" \
  && ok "tasks test: the failing task's log and exit code are shown" || bad "tasks test: failure log" "$(cat "$TMP/out")"
[ "$(grep -c marker-bad-output "$TMP/out")" -eq 1 ] && ok "tasks test: one try, no retries" || bad "tasks test: one try" "$(cat "$TMP/out")"

"${G[@]}" tasks test tt ok 2024-01-01 --output json >"$TMP/json" 2>/dev/null; rc=$?
check "tasks test --output json: state, try_number and log" \
  jq -e '.dag_id == "tt" and .task_id == "ok" and .state == "success" and .try_number == 1 and (.log | contains("marker-ok-output")) and (.run_id | startswith("manual__2024-01-01"))' "$TMP/json"
"${G[@]}" tasks test tt skipper >/dev/null 2>&1; rc=$?
[ $rc -eq 0 ] && ok "tasks test: a skipped task exits 0, as Airflow's" || bad "tasks test: skipped exits 0" "rc=$rc"
"${G[@]}" tasks test tt nope >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 1 ] && grep -q "no task 'nope'" "$TMP/err" && ok "tasks test: an unknown task exits 1 and says so" || bad "tasks test: unknown task" "rc=$rc"
"${G[@]}" tasks test tt >/dev/null 2>&1; [ $? -eq 2 ] && ok "tasks test: missing TASK_ID is a usage error" || bad "tasks test: usage"
"${G[@]}" tasks test tt ok not-a-date >/dev/null 2>&1; [ $? -eq 2 ] && ok "tasks test: a bad date is a usage error" || bad "tasks test: bad date"
[ ! -e "$TMP/x.db" ] && ok "tasks test: throw-away store when database.url is not set" || bad "tasks test: throw-away store"

# --- tasks clear on a finished run ------------------------------------------------------------
"${G[@]}" "${DB[@]}" db migrate >/dev/null || bad "db migrate"
touch "$TMP/fail_b"
"${G[@]}" "${DB[@]}" dags test cl 2024-01-01 --output json >"$TMP/json" 2>/dev/null; rc=$?
[ $rc -eq 1 ] && ok "setup: dags test of cl fails (b fails twice), and persists in the store" || bad "setup: dags test cl" "rc=$rc"
check "setup: b failed on try 2, c upstream_failed, side succeeded" \
  jq -e '[.tasks[] | {(.task_id): "\(.state)/\(.try_number)"}] | add == {"a":"success/1","b":"failed/2","c":"upstream_failed/0","side":"success/1"}' "$TMP/json"
RUN=$(jq -r .run_id "$TMP/json")
"${G[@]}" "${DB[@]}" dags test cl 2024-01-01 >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 1 ] && grep -q "already has a run at 2024-01-01 ($RUN, failed)" "$TMP/err" \
  && ok "dags test: a date that has a run in the configured store is refused, naming the run" || bad "dags test: existing run" "rc=$rc $(cat "$TMP/err")"
"${G[@]}" "${DB[@]}" tasks states cl no_such_run >/dev/null 2>&1; [ $? -eq 1 ] \
  && ok "tasks states: an unknown run exits 1" || bad "tasks states: unknown run"

"${G[@]}" "${DB[@]}" tasks clear cl --only-failed </dev/null >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--yes" "$TMP/err" && ok "clear: refuses without --yes when stdin is not a terminal (exit 2)" \
  || bad "clear: refusal without --yes" "rc=$rc $(cat "$TMP/err")"
grep -q "about to clear these 2 task instance" "$TMP/out" && ok "clear: lists what it would clear" || bad "clear: lists" "$(cat "$TMP/out")"
"${G[@]}" "${DB[@]}" tasks states cl "$RUN" --output json >"$TMP/json"
check "clear: the refusal changed nothing" jq -e '(.state == "failed") and ([.tasks[] | select(.state == null)] | length == 0)' "$TMP/json"

"${G[@]}" "${DB[@]}" tasks clear cl -t '^(a|sid)' --only-failed --yes --output json >"$TMP/json" 2>"$TMP/err"; rc=$?
[ $rc -eq 0 ] && check "clear: --only-failed with a regex matching only successful tasks clears nothing" \
  jq -e '.cleared == []' "$TMP/json" || bad "clear: only-failed + regex" "rc=$rc"

"${G[@]}" "${DB[@]}" tasks clear cl --task-regex '^s' --yes --output json >"$TMP/json" 2>"$TMP/err"; rc=$?
check "clear: --task-regex selects by task_id (side only); the run is queued again" \
  jq -e --arg r "$RUN" '[.cleared[].task_id] == ["side"] and .cleared[0].previous_state == "success" and .cleared[0].state == null and .runs_queued == [$r]' "$TMP/json"
# the run is queued again: a backfill over its date runs it (b still fails)
"${G[@]}" "${DB[@]}" dags backfill cl -s 2024-01-01 -e 2024-01-01 --output json >"$TMP/json" 2>"$TMP/err"; rc=$?
check "clear: backfill carries on the cleared run (side ran again, nothing created)" \
  jq -e --arg r "$RUN" '.runs == [{"run_id": $r, "logical_date": "2024-01-01T00:00:00.000000Z", "state": "failed", "created": false}]' "$TMP/json"
"${G[@]}" "${DB[@]}" tasks states cl "$RUN" --output json >"$TMP/json"
check "clear: only the cleared task ran again" \
  jq -e '[.tasks[] | {(.task_id): "\(.state)/\(.try_number)"}] | add == {"a":"success/1","b":"failed/2","c":"upstream_failed/0","side":"success/2"}' "$TMP/json"

# --only-failed --downstream: b (failed) and c (upstream_failed, and downstream of b), not a
"${G[@]}" "${DB[@]}" tasks clear cl -t '^b$' --downstream --only-failed --yes >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 0 ] && grep -q "Cleared 2 task instance(s); 1 run(s) queued again" "$TMP/out" \
  && ok "clear: -t ^b\$ --downstream --only-failed clears b and c" || bad "clear: downstream" "rc=$rc $(cat "$TMP/out" "$TMP/err")"
if command -v sqlite3 >/dev/null; then
  mt=$(sqlite3 "$TMP/x.db" "SELECT try_number || '/' || max_tries FROM task_instance WHERE dag_id='cl' AND task_id='b'")
  [ "$mt" = "2/3" ] && ok "clear: max_tries = try_number + retries" || bad "clear: max_tries" "$mt"
fi
"${G[@]}" "${DB[@]}" dags backfill cl -s 2024-01-01 -e 2024-01-01 >/dev/null 2>&1; rc=$?
[ $rc -eq 1 ] && ok "clear: the rerun fails again while b fails (backfill exits 1)" || bad "clear: rerun exit" "rc=$rc"
"${G[@]}" "${DB[@]}" tasks states cl "$RUN" --output json >"$TMP/json"
check "clear: the cleared task got its retry back (tries 3 and 4)" \
  jq -e '[.tasks[] | {(.task_id): "\(.state)/\(.try_number)"}] | add == {"a":"success/1","b":"failed/4","c":"upstream_failed/0","side":"success/2"}' "$TMP/json"
rm -f "$TMP/fail_b"
"${G[@]}" "${DB[@]}" tasks clear cl -f -d -t b -y >/dev/null 2>&1 \
  && "${G[@]}" "${DB[@]}" dags backfill cl -s 2024-01-01 -e 2024-01-01 >/dev/null 2>&1; rc=$?
"${G[@]}" "${DB[@]}" tasks states cl "$RUN" --output json >"$TMP/json"
[ $rc -eq 0 ] && check "clear: once b is fixed, the cleared run succeeds" \
  jq -e '.state == "success" and ([.tasks[] | {(.task_id): "\(.state)/\(.try_number)"}] | add == {"a":"success/1","b":"success/5","c":"success/1","side":"success/2"})' "$TMP/json" \
  || bad "clear: fixed rerun" "rc=$rc"
"${G[@]}" "${DB[@]}" tasks clear cl -t b -s 2024-01-02 -y >"$TMP/out" 2>&1
grep -q "No task instances to clear" "$TMP/out" && ok "clear: --start-date after the run selects nothing" || bad "clear: date range" "$(cat "$TMP/out")"
"${G[@]}" "${DB[@]}" tasks clear cl -t '(' -y >/dev/null 2>"$TMP/err"; [ $? -eq 2 ] && grep -q "task-regex" "$TMP/err" \
  && ok "clear: a bad regex is a usage error" || bad "clear: bad regex" "$(cat "$TMP/err")"
"${G[@]}" "${DB[@]}" tasks clear nodag -y >/dev/null 2>&1; [ $? -eq 1 ] && ok "clear: an unknown DAG exits 1" || bad "clear: unknown DAG"
if command -v sqlite3 >/dev/null; then
  ev=$(sqlite3 "$TMP/x.db" "SELECT COUNT(*) FROM event_log WHERE event = 'cli_task_clear' AND owner = 'cli:${USER:-$(id -un)}' AND dag_id = 'cl'")
  [ "$ev" -eq 3 ] && ok "clear: each clear that changed something is recorded in the event log with owner cli:\$USER" || bad "clear: event log" "$ev"
fi
if command -v script >/dev/null; then
  touch "$TMP/fail_b"; "${G[@]}" "${DB[@]}" tasks test cl b 2024-01-01 >/dev/null 2>&1; rm -f "$TMP/fail_b"
  echo n | script -qec "${G[*]} ${DB[*]} tasks clear cl -t b" /dev/null >"$TMP/out" 2>&1
  grep -q "Are you sure" "$TMP/out" && grep -q "nothing was cleared" "$TMP/out" \
    && ok "clear: asks on a terminal; 'n' clears nothing" || bad "clear: tty no" "$(cat "$TMP/out")"
  echo y | script -qec "${G[*]} ${DB[*]} tasks clear cl -t b" /dev/null >"$TMP/out" 2>&1
  grep -q "Cleared 1 task instance" "$TMP/out" && ok "clear: 'y' on a terminal clears" || bad "clear: tty yes" "$(cat "$TMP/out")"
fi

# --- dags backfill ----------------------------------------------------------------------------
"${G[@]}" "${DB[@]}" dags backfill cl -s 2024-02-01 -e 2024-02-03 --output json >"$TMP/json" 2>"$TMP/err"; rc=$?
[ $rc -eq 0 ] && ok "backfill: exit 0 when every run succeeded" || bad "backfill: exit 0" "rc=$rc $(tail -3 "$TMP/err")"
check "backfill: 3 daily runs of type backfill, all success" \
  jq -e '[.runs[] | select(.state == "success" and .created)] | map(.run_id) == ["backfill__2024-02-01T00:00:00+00:00","backfill__2024-02-02T00:00:00+00:00","backfill__2024-02-03T00:00:00+00:00"]' "$TMP/json"
grep -q "3/3 runs done, 12/12 tasks done, 0 failed" "$TMP/err" && ok "backfill: plain progress lines on a non-terminal" || bad "backfill: progress" "$(cat "$TMP/err")"
"${G[@]}" "${DB[@]}" dags list-runs cl --output json >"$TMP/json"
check "backfill: the runs are in the store with run_type backfill" \
  jq -e '[.runs[] | select(.run_type == "backfill")] | length == 3' "$TMP/json"
"${G[@]}" "${DB[@]}" dags backfill cl -s 2024-02-01 -e 2024-02-03 --output json >"$TMP/json" 2>/dev/null; rc=$?
[ $rc -eq 0 ] && check "backfill: a second backfill creates none" jq -e '.runs == [] and (.skipped | length == 3)' "$TMP/json" \
  || bad "backfill: second run" "rc=$rc"
got=$("${G[@]}" "${DB[@]}" dags backfill cl -s 2024-02-02 -e 2024-02-05 --dry-run 2>/dev/null)
[ "$got" = $'2024-02-04T00:00:00Z\n2024-02-05T00:00:00Z' ] && ok "backfill --dry-run: lists only the dates it would create" \
  || bad "backfill --dry-run" "$got"
"${G[@]}" "${DB[@]}" dags list-runs cl --output json >"$TMP/json"
check "backfill --dry-run: creates nothing" jq -e '.runs | length == 4' "$TMP/json"
if command -v script >/dev/null; then
  script -qec "${G[*]} ${DB[*]} dags backfill cl -s 2024-03-01 -e 2024-03-02" /dev/null >"$TMP/out" 2>&1
  grep -q '\[##############################\] 2/2 runs  8/8 tasks  0 failed' "$TMP/out" \
    && ok "backfill: a progress bar on a terminal" || bad "backfill: progress bar" "$(tail -c 400 "$TMP/out")"
fi

# DST: midnight in New York is 05:00Z in winter and 04:00Z in summer; the hourly schedule
# has 23 hours on the spring-forward day and 25 on the fall-back day
got=$("${G[@]}" dags backfill ny -s 2024-03-09 -e 2024-03-11 --dry-run 2>/dev/null)
[ "$got" = $'2024-03-09T05:00:00Z\n2024-03-10T05:00:00Z\n2024-03-11T04:00:00Z' ] \
  && ok "backfill DST: three New York midnights across the spring change" || bad "backfill DST dates" "$got"
"${G[@]}" dags backfill ny -s 2024-11-02 -e 2024-11-04 --output json >"$TMP/json" 2>/dev/null; rc=$?
[ $rc -eq 0 ] && check "backfill DST: three runs across the fall change, all success" \
  jq -e '[.runs[] | select(.state == "success") | .logical_date] == ["2024-11-02T04:00:00.000000Z","2024-11-03T04:00:00.000000Z","2024-11-04T05:00:00.000000Z"]' "$TMP/json" \
  || bad "backfill DST fall" "rc=$rc"
n1=$("${G[@]}" dags backfill ny_hourly -s 2024-03-10T00:00 -e 2024-03-10T23:59 --dry-run 2>/dev/null | wc -l)
n2=$("${G[@]}" dags backfill ny_hourly -s 2024-11-03T00:00 -e 2024-11-03T23:59 --dry-run 2>/dev/null | wc -l)
[ "$n1" -eq 23 ] && [ "$n2" -eq 25 ] && ok "backfill DST: 23 hourly runs on the spring day, 25 on the fall day" \
  || bad "backfill DST hourly" "$n1 $n2"

# --max-active-runs 1: the runs do not overlap
"${G[@]}" "${DB[@]}" dags backfill slow -s 2024-01-01 -e 2024-01-03 --max-active-runs 1 >/dev/null 2>&1; rc=$?
"${G[@]}" "${DB[@]}" dags list-runs slow --output json >"$TMP/json"
[ $rc -eq 0 ] && check "backfill --max-active-runs 1: each run starts after the previous ended" \
  jq -e '[.runs | sort_by(.logical_date)[] | [.start_date, .end_date]] as $r | ($r | length == 3) and ([range(1; 3) | select($r[.][0] < $r[. - 1][1])] | length == 0)' "$TMP/json" \
  || bad "backfill --max-active-runs" "rc=$rc"

"${G[@]}" dags backfill cl -s 2024-01-01 >/dev/null 2>&1; [ $? -eq 2 ] && ok "backfill: --end-date is required (usage, exit 2)" || bad "backfill: usage"
"${G[@]}" dags backfill cl -s 2024-01-03 -e 2024-01-01 >/dev/null 2>&1; [ $? -eq 2 ] && ok "backfill: start after end is a usage error" || bad "backfill: reversed"
"${G[@]}" dags backfill tt -s 2024-01-01 -e 2024-01-02 >/dev/null 2>"$TMP/err"; [ $? -eq 1 ] && grep -q "no time-based schedule" "$TMP/err" \
  && ok "backfill: a DAG without a schedule exits 1" || bad "backfill: unscheduled DAG" "$(cat "$TMP/err")"
"${G[@]}" dags backfill cl -s 2024-01-01 -e 2024-01-02 --max-active-runs 0 >/dev/null 2>&1; [ $? -eq 2 ] \
  && ok "backfill: --max-active-runs 0 is a usage error" || bad "backfill: max-active-runs 0"

# --- help on each ---------------------------------------------------------------------------
for sub in "tasks test" "tasks clear" "tasks states" "dags backfill" "dags test" "dags trigger"; do
  # shellcheck disable=SC2086
  $GUST $sub --help >"$TMP/out" 2>&1 && grep -q "^usage: gust $sub" "$TMP/out" && ok "--help on gust $sub" || bad "--help on gust $sub"
done

echo "run_cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
