#!/usr/bin/env bash
# A running try whose state is changed under it, against the real binary (`gust standalone`,
# whose worker pool is `gust worker`'s): the pool's heartbeat finds the try refused and ends it,
# as Airflow's LocalTaskJob does.
#   `gust tasks clear` of a running task: the worker logs "its state was changed elsewhere",
#   the task's process is gone within a few seconds (not at the end of its 30 s sleep), and the
#   instance runs again (try 2) to success.
# The opposite case, a try whose heartbeat is refused by its own finish (worker/pool.c marks the
# slot 'finishing' first), is a race a script cannot provoke at will: on PostgreSQL it showed as
# 1-2 false warnings per 100 tries of a fan-out (tests/bench/bench_dist.sh's worker logs).
# GUST_BIN is the binary under test (the sanitizer build in `make test`). Needs jq, pgrep.
set -uo pipefail
cd "$(dirname "$0")/../.."
GUST=${GUST_BIN:-./bin/gust}
case $GUST in /*) ;; *) GUST=$PWD/$GUST ;; esac
[ -x "$GUST" ] || { echo "worker_cancel: no binary at $GUST (make bin/gust)"; exit 1; }
TMP=$(mktemp -d)
unset $(env | awk -F= '/^GUST__/ {print $1}') 2>/dev/null || true
export GUST_HOME="$TMP/home"
DAGS="$TMP/dags"
ID=$$
SLEEP_RE="^sleep 30\\.$ID\$"

SPID=""
cleanup() {
  if [ -n "$SPID" ]; then kill -KILL "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; fi
  for p in $(pgrep -f "$SLEEP_RE"); do kill -KILL "$p" 2>/dev/null; done
  if [ -n "${GUST_TEST_KEEP:-}" ]; then echo "worker_cancel: kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

pass=0 fail=0
ok()   { pass=$((pass + 1)); printf '  ok   %s\n' "$1"; }
bad()  { fail=$((fail + 1)); printf '  FAIL %s\n' "$1"; [ -n "${2:-}" ] && printf '       %s\n' "$2"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
wait_for() { # FILE REGEX SECONDS
  local end=$(($(now_ms) + $3 * 1000))
  until grep -qE -- "$2" "$1" 2>/dev/null; do
    [ "$(now_ms)" -ge "$end" ] && return 1
    sleep 0.05
  done
}

mkdir -p "$DAGS"
# try 1 sleeps 30 s (and leaves a mark); try 2 finds the mark and succeeds at once
cat >"$DAGS/cancel.yml" <<EOF
cancel_$ID:
  default_args: {retries: 0}
  tasks:
    - task_id: long
      operator: bash
      bash_command: 'test -e $TMP/mark && exit 0; touch $TMP/mark; exec sleep 30.$ID'
EOF
OPTS=(--api.port=0 --core.dags_folder="$DAGS" --core.dags_are_paused_at_creation=false
      --scheduler.dag_dir_list_interval=1s --worker.shutdown_grace=2s --worker.concurrency=8)

"$GUST" "${OPTS[@]}" standalone >"$TMP/standalone.log" 2>&1 &
SPID=$!
if ! wait_for "$TMP/standalone.log" "^gust standalone is up" 20; then
  bad "standalone comes up" "$(head -c 600 "$TMP/standalone.log")"
  echo "worker_cancel: $pass passed, $fail failed"
  exit 1
fi
# (triggered as soon as the DAG processor has put the DAG in the store)
RID=""
for ((i = 0; i < 200; i++)); do
  [ -n "$RID" ] && break
  "$GUST" "${OPTS[@]}" dags trigger "cancel_$ID" --output json >"$TMP/out" 2>"$TMP/err"
  RID=$(jq -r '.run_id // empty' "$TMP/out" 2>/dev/null)
  [ -n "$RID" ] || sleep 0.1
done
[ -n "$RID" ] && ok "cancel DAG triggered ($RID)" || bad "trigger the cancel DAG" "$(cat "$TMP/out" "$TMP/err" | head -c 400)"
st=""
for ((i = 0; i < 300; i++)); do
  st=$("$GUST" "${OPTS[@]}" tasks states "cancel_$ID" "$RID" --output json 2>/dev/null | jq -r '.tasks[0].state' 2>/dev/null)
  [ "$st" = running ] && pgrep -f "$SLEEP_RE" >/dev/null && break
  sleep 0.1
done
[ "$st" = running ] && ok "the long task runs (try 1)" || bad "the long task runs" "state $st"
t0=$(now_ms)
"$GUST" "${OPTS[@]}" tasks clear "cancel_$ID" -t '^long$' --yes >"$TMP/out" 2>"$TMP/err" ||
  bad "tasks clear of the running task" "$(cat "$TMP/out" "$TMP/err" | head -c 400)"
if wait_for "$TMP/standalone.log" "try=1: its state was changed elsewhere \\(cleared or marked\\): ending it" 15; then
  ok "the worker's heartbeat sees the change and ends the try"
else
  bad "the worker ends the cleared try" "$(grep -i worker "$TMP/standalone.log" | tail -n 5)"
fi
end=$(($(now_ms) + 15000))
while pgrep -f "$SLEEP_RE" >/dev/null && [ "$(now_ms)" -lt "$end" ]; do sleep 0.05; done
if ! pgrep -f "$SLEEP_RE" >/dev/null; then
  ok "the task's process is gone $(( ($(now_ms) - t0) / 1000 )) s after the clear (its sleep was 30 s)"
else
  bad "the task's process is ended" "still running 15 s after the clear"
fi
for ((i = 0; i < 300; i++)); do
  "$GUST" "${OPTS[@]}" tasks states "cancel_$ID" "$RID" --output json >"$TMP/states.json" 2>/dev/null
  [ "$(jq -r '.tasks[0].state' "$TMP/states.json" 2>/dev/null)" = success ] && break
  sleep 0.1
done
jq -e '.tasks[0].state == "success" and .tasks[0].try_number == 2' "$TMP/states.json" >/dev/null 2>&1 &&
  ok "the cleared task ran again and succeeded on try 2" || bad "try 2 succeeds" "$(head -c 400 "$TMP/states.json")"

kill -TERM "$SPID" 2>/dev/null
wait "$SPID"
rc=$?
SPID=""
[ $rc -eq 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: exit 0" "exit $rc"
grep -q "ERROR: AddressSanitizer\|runtime error:" "$TMP/standalone.log" &&
  bad "no sanitizer report" "$(grep -m1 -A5 "AddressSanitizer\|runtime error" "$TMP/standalone.log")"

echo "worker_cancel: $pass passed, $fail failed"
[ $fail -eq 0 ]
