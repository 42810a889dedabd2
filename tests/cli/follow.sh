#!/usr/bin/env bash
# Following a run to its end (cli/run_follow.c), through `gust dags test` (in process) and
# `gust dags trigger --wait` (against a running gust standalone): the progress lines on stderr
# (one per change of the per-state counts, newly failed tasks named, the last one complete),
# none in --output json mode, the final document's exact shape (every instance with its state,
# try, start_date and end_date), and the exit code of a run that fails.
# GUST_BIN is the binary under test (the sanitizer build in `make test`).
set -uo pipefail
cd "$(dirname "$0")/../.."
GUST=${GUST_BIN:-./bin/gust}
TMP=$(mktemp -d)
SA_PID=
cleanup() {
  [ -n "$SA_PID" ] && kill -TERM "$SA_PID" 2>/dev/null && wait "$SA_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
export GUST_HOME="$TMP/home"
unset $(env | awk -F= '/^GUST__/ {print $1}') 2>/dev/null || true

pass=0 fail=0
ok()  { pass=$((pass + 1)); printf '  ok   %s\n' "$1"; }
bad() { fail=$((fail + 1)); printf '  FAIL %s\n' "$1"; [ -n "${2:-}" ] && printf '       %s\n' "$2"; }
command -v jq >/dev/null || { echo "follow: jq is needed"; exit 1; }

FAN=40
mkdir -p "$TMP/dags"
cat >"$TMP/dags/fails.yml" <<'YML'
fails:
  tasks:
    - {task_id: a, operator: bash, bash_command: "true"}
    - {task_id: breaks, operator: bash, bash_command: "echo boom; exit 3", dependencies: [a]}
    - {task_id: after, operator: bash, bash_command: "true", dependencies: [breaks]}
    - {task_id: aside, operator: bash, bash_command: "sleep 0.3"}
YML
{ echo "fan:"; echo "  tasks:"
  for i in $(seq -w 1 $FAN); do echo "    - {task_id: t$i, operator: bash, bash_command: \"true\"}"; done
} >"$TMP/dags/fan.yml"
G=("$GUST" --core.dags_folder="$TMP/dags" --core.dags_are_paused_at_creation=false)

# progress lines: "  [D/T done]  state n ..."
progress() { grep -E '^  \[[0-9]+/[0-9]+ done\]' "$1"; }

# The JSON document's shape: exactly these keys, every task with exactly these, dates set
# when the task ran. $1 file, $2 expected task count, $3 expected run state.
shape_ok() {
  jq -e --argjson n "$2" --arg st "$3" '
    (keys == ["dag_id", "run_id", "state", "tasks"]) and .state == $st and (.tasks | length) == $n and
    all(.tasks[]; keys == ["end_date", "start_date", "state", "task_id", "try_number"])' "$1" >/dev/null
}
all_ran_ok() { # file: every task succeeded on try 1 with a start before its end
  jq -e 'all(.tasks[]; .state == "success" and .try_number == 1 and (.start_date | type) == "string"
         and (.end_date | type) == "string" and .start_date <= .end_date)' "$1" >/dev/null
}

# ---- dags test ----------------------------------------------------------------------------
echo "dags test"
timeout -k 5 120 "${G[@]}" dags test fails >"$TMP/ft.out" 2>"$TMP/ft.err"; rc=$?
[ $rc -eq 1 ] && ok "dags test of a failing DAG: exit 1" || bad "dags test fails: exit 1" "rc=$rc $(tail -3 "$TMP/ft.err")"
grep -qE '^  breaks +failed +try 1 +\[[0-9]+/4 done\]$' "$TMP/ft.err" \
  && ok "dags test: the failed task is named on stderr as it fails" || bad "dags test: failed task named" "$(cat "$TMP/ft.err")"
last=$(progress "$TMP/ft.err" | tail -1)
[[ "$last" =~ ^\ \ \[4/4\ done\] ]] && [[ "$last" == *"success 2"* ]] && [[ "$last" == *"failed 1"* ]] \
  && [[ "$last" == *"upstream_failed 1"* ]] \
  && ok "dags test: the last progress line has every task done, by state ($last)" || bad "dags test: last progress line" "$(cat "$TMP/ft.err")"
n=$(progress "$TMP/ft.err" | wc -l)
u=$(progress "$TMP/ft.err" | sort -u | wc -l)
[ "$n" -ge 1 ] && [ "$n" -eq "$u" ] && ok "dags test: a progress line only when the counts changed ($n lines)" \
  || bad "dags test: repeated progress lines" "$(progress "$TMP/ft.err")"
head -1 "$TMP/ft.out" | grep -qE '^fails manual__.*: failed$' && grep -qE '^  breaks +failed +try 1 ' "$TMP/ft.out" \
  && grep -qE '^  after +upstream_failed ' "$TMP/ft.out" \
  && ok "dags test: stdout lists the run and every task with its final state" || bad "dags test: stdout" "$(cat "$TMP/ft.out")"

timeout -k 5 120 "${G[@]}" dags test fails --output json >"$TMP/ftj.json" 2>"$TMP/ftj.err"; rc=$?
[ $rc -eq 1 ] && shape_ok "$TMP/ftj.json" 4 failed \
  && [ "$(jq -r '.tasks[] | select(.task_id == "breaks") | .state' "$TMP/ftj.json")" = failed ] \
  && [ "$(jq -r '.tasks[] | select(.task_id == "after") | .state' "$TMP/ftj.json")" = upstream_failed ] \
  && ok "dags test --output json of a failing DAG: exit 1, the document names the failed task" \
  || bad "dags test --output json fails" "rc=$rc $(head -c 600 "$TMP/ftj.json")"
! progress "$TMP/ftj.err" >/dev/null && ok "dags test --output json: no progress lines" \
  || bad "dags test --output json: progress lines" "$(progress "$TMP/ftj.err" | head -3)"

timeout -k 5 120 "${G[@]}" dags test fan --output json >"$TMP/fan.json" 2>"$TMP/fan.err"; rc=$?
[ $rc -eq 0 ] && shape_ok "$TMP/fan.json" $FAN success && all_ran_ok "$TMP/fan.json" \
  && ok "dags test --output json: all $FAN instances, each with its start_date and end_date" \
  || bad "dags test fan --output json" "rc=$rc $(head -c 600 "$TMP/fan.json") $(tail -3 "$TMP/fan.err")"
timeout -k 5 120 "${G[@]}" dags test fan >"$TMP/fan.out" 2>"$TMP/fan.err"; rc=$?
last=$(progress "$TMP/fan.err" | tail -1)
[ $rc -eq 0 ] && [ "$last" = "  [$FAN/$FAN done]  success $FAN" ] && [ "$(grep -c '^  t[0-9]' "$TMP/fan.out")" -eq $FAN ] \
  && ok "dags test: a fan-out ends on [$FAN/$FAN done], stdout lists every task" \
  || bad "dags test fan" "rc=$rc last='$last' $(tail -3 "$TMP/fan.err")"

# ---- dags trigger --wait against gust standalone --------------------------------------------
echo "dags trigger --wait"
"${G[@]}" --api.port=$((20000 + ($$ + 7) % 20000)) --scheduler.dag_dir_list_interval=1s standalone >"$TMP/sa.log" 2>&1 &
SA_PID=$!
for _ in $(seq 150); do grep -q "is up" "$TMP/sa.log" && break; sleep 0.1; done
grep -q "is up" "$TMP/sa.log" && ok "standalone: up" || bad "standalone: up" "$(tail -5 "$TMP/sa.log")"

timeout -k 5 120 "${G[@]}" dags trigger fails --wait >"$TMP/tr.out" 2>"$TMP/tr.err"; rc=$?
[ $rc -eq 1 ] && grep -qE '^  breaks +failed +try 1 +\[[0-9]+/4 done\]$' "$TMP/tr.err" \
  && progress "$TMP/tr.err" | tail -1 | grep -q '^  \[4/4 done\]' && grep -qE '^  breaks +failed +try 1 ' "$TMP/tr.out" \
  && ok "trigger --wait of a failing DAG: exit 1, the failed task named in the progress and in the final list" \
  || bad "trigger --wait fails" "rc=$rc $(cat "$TMP/tr.err") $(cat "$TMP/tr.out")"
timeout -k 5 120 "${G[@]}" dags trigger fan --wait --output json >"$TMP/trj.json" 2>"$TMP/trj.err"; rc=$?
[ $rc -eq 0 ] && shape_ok "$TMP/trj.json" $FAN success && all_ran_ok "$TMP/trj.json" \
  && ok "trigger --wait --output json: all $FAN instances, each with its start_date and end_date" \
  || bad "trigger --wait --output json" "rc=$rc $(head -c 600 "$TMP/trj.json") $(tail -3 "$TMP/trj.err")"
! progress "$TMP/trj.err" >/dev/null && ok "trigger --wait --output json: no progress lines" \
  || bad "trigger --wait --output json: progress lines" "$(progress "$TMP/trj.err" | head -3)"

kill -TERM "$SA_PID"
for _ in $(seq 150); do kill -0 "$SA_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SA_PID" 2>/dev/null; then bad "standalone: stops on SIGTERM" "still running after 15 s"
else wait "$SA_PID"; rc=$?; [ $rc -eq 0 ] && ok "standalone: stops on SIGTERM, exit 0" || bad "standalone: stop" "rc=$rc"; fi
SA_PID=

san=$(grep -lE "AddressSanitizer|LeakSanitizer|runtime error:" "$TMP"/*.err "$TMP/sa.log" 2>/dev/null)
[ -z "$san" ] && ok "no sanitizer report from any gust process" || bad "sanitizer reports" "$(cat $san | head -20)"

echo "follow: $pass passed, $fail failed"
[ $fail -eq 0 ]
