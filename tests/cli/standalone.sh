#!/usr/bin/env bash
# gust standalone end to end, against the real binary: it starts on a temporary GUST_HOME
# with a copy of the example DAGs, says where its state is, comes up in well under a
# second, runs a triggered DAG (conf reaching the template, the try's log file on disk,
# list-runs showing it), picks up new and broken DAG files (a broken file is an import
# error for itself only), and stops cleanly on SIGTERM and on SIGINT: exit 0 after the
# grace period, with nothing it started left behind — a task that runs `sleep`, with a
# background child and an orphaned grandchild, is killed to the last process.
# GUST_BIN is the binary under test (the sanitizer build in `make test`). Needs jq, pgrep, ps.
set -uo pipefail
cd "$(dirname "$0")/../.."
GUST=${GUST_BIN:-./bin/gust}
case $GUST in /*) ;; *) GUST=$PWD/$GUST ;; esac
[ -x "$GUST" ] || { echo "standalone: no binary at $GUST (make bin/gust)"; exit 1; }
TMP=$(mktemp -d)
unset $(env | awk -F= '/^GUST__/ {print $1}') 2>/dev/null || true
export GUST_HOME="$TMP/home"
DAGS="$TMP/dags"
GRACE=2 # seconds: --worker.shutdown_grace
ID=$$   # makes the marker DAG and its processes ours alone
MARKER_DAG="standalone_marker_$ID"
BROKEN_DAG="standalone_broken_$ID"
# the marker task's processes: `sleep 300.<pid>` (foreground), 301.<pid> (background
# child), 302.<pid> (orphaned grandchild); the task's bash carries "marker-<pid>"
SLEEP_RE="^sleep 30[0-2]\\.$ID\$"
MARK_RE="marker-$ID"

SPID=""       # the running standalone
PGIDS=""      # process groups of the tasks it started (for cleanup)
cleanup() {
  if [ -n "$SPID" ]; then kill -KILL "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; fi
  for g in $PGIDS; do kill -KILL -- "-$g" 2>/dev/null; done
  for p in $(pgrep -f "$SLEEP_RE") $(pgrep -f "$MARK_RE"); do kill -KILL "$p" 2>/dev/null; done
  if [ -n "${GUST_TEST_KEEP:-}" ]; then echo "standalone: kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

pass=0 fail=0
ok()   { pass=$((pass + 1)); printf '  ok   %s\n' "$1"; }
bad()  { fail=$((fail + 1)); printf '  FAIL %s\n' "$1"; [ -n "${2:-}" ] && printf '       %s\n' "$2"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_for FILE REGEX SECONDS: until FILE has a line matching REGEX
wait_for() {
  local end=$(($(now_ms) + $3 * 1000))
  until grep -qE -- "$2" "$1" 2>/dev/null; do
    [ "$(now_ms)" -ge "$end" ] && return 1
    sleep 0.02
  done
}
# running PID: the process exists and has not exited (a zombie has exited)
running() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$st" ] && [ "${st:0:1}" != Z ]; }
# gone REGEX SECONDS: no process whose command line matches REGEX, within SECONDS
gone() {
  local end=$(($(now_ms) + $2 * 1000))
  while pgrep -f "$1" >/dev/null; do
    [ "$(now_ms)" -ge "$end" ] && return 1
    sleep 0.05
  done
}

mkdir -p "$DAGS"
cp -R dags/. "$DAGS/"
OPTS=(--api.port=0 --core.dags_folder="$DAGS" --core.dags_are_paused_at_creation=false
      --scheduler.dag_dir_list_interval=1s --worker.shutdown_grace=${GRACE}s --worker.concurrency=8)

# start ROUND: launch the standalone in the background, check its banner and start time
start() {
  local round=$1 out="$TMP/standalone-$1.log" t0 t1
  t0=$(now_ms)
  "$GUST" "${OPTS[@]}" standalone >"$out" 2>&1 &
  SPID=$!
  OUT=$out
  if ! wait_for "$out" "^gust standalone is up" 10; then
    bad "$round: standalone comes up" "$(head -c 600 "$out")"
    return 1
  fi
  t1=$(now_ms)
  local ms=$((t1 - t0))
  [ "$ms" -lt 1000 ] && ok "$round: up ${ms} ms after launch (well under a second)" \
    || bad "$round: up in well under a second" "${ms} ms from launch to the 'is up' line"
  local own
  own=$(sed -nE 's/^gust standalone is up \(([0-9]+) ms\).*/\1/p' "$out")
  [ -n "$own" ] && [ "$own" -lt 500 ] && ok "$round: reports its own start time (${own} ms)" \
    || bad "$round: reports its start time under 500 ms" "$(head -1 "$out")"
  grep -qF "  home:     $GUST_HOME" "$out" && ok "$round: prints its home" || bad "$round: prints its home" "$(head -8 "$out")"
  grep -qF "  database: sqlite://$GUST_HOME/gust.db" "$out" && ok "$round: prints its database" \
    || bad "$round: prints its database" "$(head -8 "$out")"
  grep -qF "  logs:     $GUST_HOME/logs" "$out" && ok "$round: prints where the logs go" \
    || bad "$round: prints where the logs go" "$(head -8 "$out")"
  grep -qF "  dags:     $DAGS" "$out" && ok "$round: prints its DAG folder" || bad "$round: prints its DAG folder" "$(head -8 "$out")"
  grep -q "New DAGs start unpaused" "$out" && ok "$round: says new DAGs start unpaused" \
    || bad "$round: says new DAGs start unpaused" "$(head -8 "$out")"
  running "$SPID" && ok "$round: still running after start-up" || bad "$round: still running after start-up" "$(tail -5 "$out")"
}

# start_marker ROUND: trigger the marker DAG and wait until its sleeps run; sets MRID
start_marker() {
  local round=$1 st=""
  "$GUST" "${OPTS[@]}" dags trigger "$MARKER_DAG" --output json >"$TMP/out" 2>"$TMP/err"
  MRID=$(jq -r '.run_id // empty' "$TMP/out" 2>/dev/null)
  if [ -z "$MRID" ]; then
    bad "$round: trigger the long-running marker DAG" "$(cat "$TMP/out" "$TMP/err" | head -c 400)"
    return 1
  fi
  ok "$round: marker DAG triggered ($MRID)"
  grep -q "is paused" "$TMP/err" && bad "$round: the marker DAG is unpaused" "$(cat "$TMP/err")"
  local end=$(($(now_ms) + 15000))
  while [ "$(now_ms)" -lt "$end" ]; do
    st=$("$GUST" tasks states "$MARKER_DAG" "$MRID" --output json 2>/dev/null | jq -r '.tasks[0].state' 2>/dev/null)
    [ "$st" = running ] && [ "$(pgrep -fc "$SLEEP_RE")" -ge 3 ] && break
    sleep 0.05
  done
  [ "$st" = running ] && ok "$round: the marker task is running" \
    || bad "$round: the marker task is running" "state=$st; $(tail -5 "$OUT")"
  [ "$(pgrep -fc "$SLEEP_RE")" -ge 3 ] && ok "$round: its sleep, background child and orphaned grandchild run" \
    || bad "$round: its three sleeps run" "$(pgrep -fa "$SLEEP_RE")"
}

# stray_children PID: its child processes, as "pid:command" words, leaving out clones of
# itself (a sanitizer build's leak checker runs its tracer as one while the process exits)
# and children gone before their command line could be read
stray_children() {
  local self k cmd out=""
  self=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline")
  for k in $(pgrep -P "$1"); do
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$k/cmdline") || continue
    [ -z "$cmd" ] || [ "$cmd" = "$self" ] && continue
    out="$out $k:${cmd// /_}"
  done
  echo "$out"
}

# stop ROUND SIGNAL: stop the standalone with SIGNAL and check that it leaves nothing behind
stop() {
  local round=$1 sig=$2 kids
  kids=$(pgrep -P "$SPID" | tr '\n' ' ')
  PGIDS="$PGIDS $kids"
  [ -n "$kids" ] && ok "$round: tasks run as its children before the stop (pgrep -P: $kids)" \
    || bad "$round: tasks run as its children before the stop" "pgrep -P $SPID found nothing"
  local t0 t1 after_stopped="unseen" end
  t0=$(now_ms)
  kill -"$sig" "$SPID"
  end=$((t0 + (GRACE + 8) * 1000))
  while running "$SPID" && [ "$(now_ms)" -lt "$end" ]; do
    # between "stopped" and its exit it must have no child left
    if [ "$after_stopped" = unseen ] && grep -q "^gust standalone: stopped" "$OUT"; then
      after_stopped=$(stray_children "$SPID")
      running "$SPID" || after_stopped="unseen"
    fi
    sleep 0.02
  done
  t1=$(now_ms)
  if running "$SPID"; then
    bad "$round: exits after $sig" "still running $(( (t1 - t0) / 1000 )) s later; $(tail -5 "$OUT")"
    kill -KILL "$SPID" 2>/dev/null
  fi
  wait "$SPID"
  local rc=$? ms=$((t1 - t0))
  SPID=""
  [ "$rc" -eq 0 ] && ok "$round: exit 0 after $sig" || bad "$round: exit 0 after $sig" "exit $rc; $(tail -5 "$OUT")"
  # the grace, plus: the loop notices the signal at its next wake-up (1 s idle bound at most),
  # then the group is terminated and reaped and the try recorded (well under a second), with
  # room for a loaded machine and the sanitizer build
  [ "$ms" -le $(( (GRACE + 4) * 1000 )) ] && ok "$round: stopped ${ms} ms after $sig (grace ${GRACE}s)" \
    || bad "$round: stops within the grace period" "${ms} ms after $sig, grace ${GRACE}s; $(tail -n 12 "$OUT")"
  [ "$ms" -ge $(( GRACE * 1000 - 300 )) ] && ok "$round: the running task was given the grace period" \
    || bad "$round: the running task was given the grace period" "stopped after ${ms} ms, grace ${GRACE}s"
  grep -q "^gust standalone: stopping (running tasks have ${GRACE}s to finish)" "$OUT" \
    && ok "$round: says it is stopping and for how long" || bad "$round: says it is stopping" "$(tail -5 "$OUT")"
  grep -q "^gust standalone: stopped" "$OUT" && ok "$round: says it stopped" || bad "$round: says it stopped" "$(tail -5 "$OUT")"
  if [ "$after_stopped" != unseen ]; then # (unseen: it exited before we could look; the checks below still hold)
    [ -z "${after_stopped// /}" ] && ok "$round: no child left between 'stopped' and its exit" \
      || bad "$round: no child left when it stops" "children after 'stopped': $after_stopped"
  fi
  local left=""
  for g in $kids; do pgrep -g "$g" >/dev/null && left="$left $(pgrep -g "$g" | tr '\n' ' ')"; done
  [ -z "$left" ] && ok "$round: nothing left in the process groups of its tasks" \
    || bad "$round: nothing left in its tasks' process groups" "$(ps -o pid,ppid,pgid,cmd -p ${left// /,} 2>/dev/null)"
  gone "$SLEEP_RE" 1 && ok "$round: no sleep of the marker task remains (grandchild included)" \
    || bad "$round: no sleep of the marker task remains" "$(pgrep -fa "$SLEEP_RE")"
  gone "$MARK_RE" 1 && ok "$round: no process with the marker remains" || bad "$round: no process with the marker remains" "$(pgrep -fa "$MARK_RE")"
  # the try that was ended is not left 'running' for the zombie sweep to find minutes later
  local st
  "$GUST" tasks states "$MARKER_DAG" "$MRID" --output json >"$TMP/out" 2>"$TMP/err"
  st=$(jq -r '.tasks[0].state' "$TMP/out" 2>/dev/null)
  case $st in
    failed | up_for_retry) ok "$round: the killed try is recorded as $st" ;;
    *) bad "$round: the killed try is recorded as failed or up_for_retry" "state=$st: $(head -c 400 "$TMP/out" "$TMP/err")" ;;
  esac
}

# --- round 1: start, run a DAG, new and broken files, SIGTERM -----------------------------
echo "== gust standalone: SIGTERM"
R=sigterm
if start $R; then
  # a manual run with conf, followed to its end from another process on the same store
  # (bounded: a failing task would wait out its 5-minute retry_delay)
  timeout 30 "$GUST" "${OPTS[@]}" dags trigger hello_qubinode --conf '{"greeting":"hi"}' --wait --output json \
    >"$TMP/trigger.json" 2>"$TMP/trigger.err"
  rc=$?
  [ $rc -eq 0 ] && ok "trigger --wait: exit 0" || bad "trigger --wait: exit 0" "exit $rc: $(head -c 400 "$TMP/trigger.err")"
  if jq -e '.dag_id == "hello_qubinode" and .state == "success" and (.tasks | length == 2)
            and all(.tasks[]; .state == "success" and .try_number == 1)' "$TMP/trigger.json" >/dev/null 2>&1; then
    ok "trigger --wait --output json: the run and both tasks succeeded"
  else
    bad "trigger --wait --output json: the run and both tasks succeeded" "$(head -c 600 "$TMP/trigger.json")"
  fi
  RID=$(jq -r '.run_id // empty' "$TMP/trigger.json" 2>/dev/null)
  [[ $RID == manual__* ]] && ok "trigger: run id $RID" || bad "trigger: a manual__ run id" "'$RID'"
  rdir=${RID//:/_}
  log="$GUST_HOME/logs/dag_id=hello_qubinode/run_id=${rdir// /_}/task_id=print_date/attempt=1.log"
  if [ -f "$log" ]; then
    ok "print_date's log is at logs/dag_id=hello_qubinode/run_id=…/task_id=print_date/attempt=1.log"
    grep -q "hi from gust" "$log" && ok "the conf reached the template: 'hi from gust' in the log" \
      || bad "the conf reached the template" "$(head -c 400 "$log")"
  else
    bad "print_date's log file exists" "no $log; $(find "$GUST_HOME/logs/dag_id=hello_qubinode" -name '*.log' 2>/dev/null | head -5)"
  fi
  "$GUST" "${OPTS[@]}" dags list-runs hello_qubinode --output json >"$TMP/runs.json" 2>"$TMP/err"
  if jq -e --arg r "$RID" '.dag_id == "hello_qubinode"
        and ([.runs[] | select(.run_id == $r and .state == "success" and .run_type == "manual")] | length == 1)' \
        "$TMP/runs.json" >/dev/null 2>&1; then
    ok "list-runs --output json: the manual run, success"
  else
    bad "list-runs --output json shows the run" "$(head -c 600 "$TMP/runs.json" "$TMP/err")"
  fi

  # a broken file and a good one arrive together: the broken one is an import error of its own
  cat >"$DAGS/.broken.tmp" <<YML
$BROKEN_DAG:
  tasks:
    - task_id: a
      operator: bash
      bash_command: echo a
      dependencies: [nope]
YML
  cat >"$DAGS/.marker.tmp" <<YML
$MARKER_DAG:
  schedule: None
  default_args:
    retries: 0
  tasks:
    - task_id: sleep
      operator: bash
      bash_command: "(sleep 302.$ID &); sleep 301.$ID & sleep 300.$ID; echo $MARK_RE done"
YML
  mv "$DAGS/.broken.tmp" "$DAGS/broken.yml"
  mv "$DAGS/.marker.tmp" "$DAGS/marker.yml"
  wait_for "$OUT" "import error in $DAGS/broken.yml: .*broken\\.yml:[0-9]+: $BROKEN_DAG: .*nope" 10 \
    && ok "a broken DAG file: an import error with file, line, DAG and reason in the log" \
    || bad "a broken DAG file shows up as an import error" "$(grep -i "error\|processor" "$OUT" | tail -5)"
  wait_for "$OUT" "dag=$MARKER_DAG: new version from $DAGS/marker.yml" 10 \
    && ok "a new DAG file next to the broken one is picked up" \
    || bad "a new DAG file is picked up" "$(grep processor "$OUT" | tail -5)"

  start_marker $R && stop $R TERM
fi
[ -n "$SPID" ] && { kill -KILL "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; SPID=""; }

# --- round 2: restart on the same home, fix the broken file, SIGINT ------------------------
echo "== gust standalone: restart on the same home, SIGINT"
R=sigint
if start $R; then
  wait_for "$OUT" "import error in $DAGS/broken.yml" 10 && ok "$R: the import error is found again on restart" \
    || bad "$R: the import error is found again on restart" "$(grep processor "$OUT" | tail -5)"
  sed -i 's/dependencies: \[nope\]/dependencies: []/' "$DAGS/broken.yml"
  wait_for "$OUT" "dag=$BROKEN_DAG: new version from $DAGS/broken.yml" 10 \
    && ok "$R: the fixed file is parsed again and its DAG stored" \
    || bad "$R: the fixed file is parsed again" "$(grep processor "$OUT" | tail -5)"
  start_marker $R && stop $R INT
fi

echo "standalone: $pass passed, $fail failed"
[ $fail -eq 0 ]
