#!/usr/bin/env bash
# max_active_tis_per_dag (Airflow's per-task limit): three runs of a DAG whose task allows one
# instance at a time, in gust standalone with room for all three: the task's tries never
# overlap (a ledger written by the tries says when each ran), while a task without a limit in
# the same runs does overlap, so the runs really were concurrent.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
GUST=${GUST_BIN:-$ROOT/bin/gust}
TMP=$(mktemp -d)
SA=""
pass=0 fail=0
ok() { echo "  ok   $1"; pass=$((pass + 1)); }
bad() { echo "  FAIL $1"; [ -n "${2:-}" ] && echo "       $2"; fail=$((fail + 1)); }
cleanup() { [ -n "$SA" ] && kill "$SA" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
mkdir -p "$TMP/dags" "$TMP/home"
cat >"$TMP/dags/limits.yml" <<YML
limited:
  schedule: null
  max_active_runs: 3
  tasks:
    - task_id: one_at_a_time
      operator: bash
      max_active_tis_per_dag: 1
      bash_command: 'echo "one {{ run_id }} \$(date +%s%N) start" >> $TMP/ledger; sleep 1; echo "one {{ run_id }} \$(date +%s%N) end" >> $TMP/ledger'
    - task_id: free
      operator: bash
      bash_command: 'echo "free {{ run_id }} \$(date +%s%N) start" >> $TMP/ledger; sleep 1; echo "free {{ run_id }} \$(date +%s%N) end" >> $TMP/ledger'
YML
G=("$GUST" --api.port=0 --core.dags_folder="$TMP/dags" --core.dags_are_paused_at_creation=false)
GUST_HOME=$TMP/home "${G[@]}" standalone >"$TMP/sa.log" 2>&1 &
SA=$!
for _ in $(seq 1 100); do grep -qs "is up" "$TMP/sa.log" && break; sleep 0.1; done
for _ in $(seq 1 50); do GUST_HOME=$TMP/home "${G[@]}" dags list 2>/dev/null | grep -q limited && break; sleep 0.2; done
for i in 1 2 3; do
  GUST_HOME=$TMP/home "${G[@]}" dags trigger limited --logical-date "2026-01-0${i}T00:00:00Z" >/dev/null 2>&1 \
    || bad "trigger run $i" "$(tail -3 "$TMP/sa.log")"
done
ends() { local n; n=$(grep -cs ' end$' "$TMP/ledger"); echo "${n:-0}"; }
for _ in $(seq 1 120); do [ "$(ends)" -ge 6 ] && break; sleep 0.25; done
[ "$(ends)" -eq 6 ] && ok "all six tries ran" || bad "six tries" "$(cat "$TMP/ledger" 2>/dev/null; tail -5 "$TMP/sa.log")"
# most instances of a task running at once, from the ledger's start/end times
most() {
  grep "^$1 " "$TMP/ledger" | awk '{print $3, ($4 == "start" ? 1 : -1)}' | sort -n -k1,1 -k2,2n |
    awk 'BEGIN{c=0;m=0} {c+=$2; if (c>m) m=c} END{print m}'
}
one=$(most one); free=$(most free)
[ "$one" = 1 ] && ok "the limited task never ran twice at once (max_active_tis_per_dag: 1)" || bad "limited task overlap" "at most $one at once"
[ "${free:-0}" -ge 2 ] && ok "the unlimited task did overlap ($free at once): the runs were concurrent" || bad "free task overlap" "at most $free at once"
kill "$SA"; wait "$SA"; SA=""
echo "task_limits: $pass passed, $fail failed"
[ $fail -eq 0 ]
