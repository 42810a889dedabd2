#!/usr/bin/env bash
# The CLI contract of DESIGN.md, checked against the real binary: exit codes, the
# FILE:LINE: DAG_ID: message format, the JSON shapes, next-runs across DST, dot output,
# configuration precedence as `config show` reports it.
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

# --- dags validate ---------------------------------------------------------------
$GUST dags validate dags/ >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 0 ] && ok "validate: the example DAGs are valid (exit 0)" || bad "validate: the example DAGs are valid" "$(cat "$TMP/out" "$TMP/err")"
[ ! -s "$TMP/out" ] && ok "validate: no problems printed for valid DAGs" || bad "validate: no problems printed" "$(cat "$TMP/out")"

mkdir -p "$TMP/bad"
cat >"$TMP/bad/mixed.yml" <<'YML'
good:
  tasks:
    - task_id: a
      operator: bash
      bash_command: echo a
broken:
  tasks:
    - task_id: a
      operator: bash
      bash_command: echo a
      dependencies: [nope]
YML
printf 'x:\n  tasks: [\n' >"$TMP/bad/syntax.yml"
$GUST dags validate "$TMP/bad" >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 1 ] && ok "validate: exit 1 when there are errors" || bad "validate: exit 1 when there are errors" "rc=$rc"
grep -qE "^$TMP/bad/mixed.yml:11: broken: 'a' depends on unknown task or group 'nope'" "$TMP/out" \
  && ok "validate: FILE:LINE: DAG_ID: message" || bad "validate: FILE:LINE: DAG_ID: message" "$(cat "$TMP/out")"
grep -qE "^$TMP/bad/syntax.yml:[0-9]+: -: YAML syntax error" "$TMP/out" \
  && ok "validate: syntax error with file and line" || bad "validate: syntax error with file and line" "$(cat "$TMP/out")"
[ "$(wc -l <"$TMP/out")" -eq 2 ] && ok "validate: one line per problem" || bad "validate: one line per problem" "$(cat "$TMP/out")"

$GUST dags validate --output json "$TMP/bad" >"$TMP/json"; rc=$?
[ $rc -eq 1 ] && ok "validate --output json: exit 1 with errors" || bad "validate --output json: exit 1" "rc=$rc"
check "validate --output json: good DAG listed with file and tasks" \
  jq -e '.dags | length == 1 and .[0].dag_id == "good" and (.[0].file | endswith("mixed.yml")) and .[0].tasks == ["a"]' "$TMP/json"
check "validate --output json: errors carry file, line, dag_id, message" \
  jq -e '[.errors[] | select(.dag_id == "broken" and .line == 11 and (.message | contains("nope")))] | length == 1' "$TMP/json"

$GUST dags validate "$TMP/does-not-exist" >"$TMP/out" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "does-not-exist:0: -: no such file or folder" "$TMP/out" \
  && ok "validate: a missing path is an error naming it" || bad "validate: missing path" "$(cat "$TMP/out")"

# --- dags list / show -------------------------------------------------------------
$GUST --core.dags_folder=dags dags list --output json >"$TMP/json"; rc=$?
check "list --output json: the six example DAGs" \
  jq -e '[.dags[].dag_id] | sort == ["aws_infrastructure","azure_infrastructure","gcp_infrastructure","hello_qubinode","multi_cloud_sync","qubinode_deploy"]' "$TMP/json"
GUST__CORE__DAGS_FOLDER=dags $GUST dags list | grep -q "^hello_qubinode " \
  && ok "list: text table from GUST__CORE__DAGS_FOLDER" || bad "list: text table"
$GUST --core.dags_folder=dags dags show hello_qubinode --format dot >"$TMP/dot"
grep -q '"print_date" -> "check_qubinode_status";' "$TMP/dot" && head -1 "$TMP/dot" | grep -q '^digraph "hello_qubinode"' \
  && ok "show --format dot: Graphviz edges" || bad "show --format dot" "$(cat "$TMP/dot")"
$GUST --core.dags_folder=dags dags show qubinode_deploy --output json >"$TMP/json"
check "show --output json: groups prefix task ids and expand dependencies" \
  jq -e '(.tasks[] | select(.task_id == "provision.create_vms") | .upstream) == ["configure_host"]' "$TMP/json"
$GUST --core.dags_folder=dags dags show nope >"$TMP/out" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "no DAG 'nope'" "$TMP/out" && ok "show: unknown DAG exits 1 and says so" || bad "show: unknown DAG" "$(cat "$TMP/out")"

# --- dags next-runs: DST ------------------------------------------------------------
mkdir -p "$TMP/dst"
cat >"$TMP/dst/ny.yml" <<'YML'
ny_nine:
  schedule: "0 9 * * *"
  timezone: America/New_York
  start_date: 2026-01-01
  tasks: [{task_id: t, operator: empty}]
leap:
  schedule: "0 0 29 2 *"
  start_date: 2020-01-01
  tasks: [{task_id: t, operator: empty}]
YML
got=$($GUST --core.dags_folder="$TMP/dst" dags next-runs ny_nine -n 4 --after 2026-03-06T00:00:00Z)
want=$'2026-03-06T14:00:00Z\n2026-03-07T14:00:00Z\n2026-03-08T13:00:00Z\n2026-03-09T13:00:00Z'
[ "$got" = "$want" ] && ok "next-runs: 09:00 New York is 14:00Z in winter, 13:00Z after the DST change" \
  || bad "next-runs across DST" "$got"
got=$($GUST --core.dags_folder="$TMP/dst" dags next-runs leap -n 2 --after 2025-01-01T00:00:00Z)
[ "$got" = $'2028-02-29T00:00:00Z\n2032-02-29T00:00:00Z' ] && ok "next-runs: leap days only" || bad "next-runs leap days" "$got"
$GUST --core.dags_folder="$TMP/dst" dags next-runs ny_nine --after yesterday >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--after" "$TMP/err" && ok "next-runs: a bad --after is a usage error" || bad "next-runs bad --after" "rc=$rc"

# --- config ---------------------------------------------------------------------------
printf '[api]\nport = 9000\n[database]\nurl = postgresql://gust:s3cret@db:5432/gust\n' >"$TMP/gust.ini"
GUST__API__PORT=9100 $GUST --config "$TMP/gust.ini" --api.port=9200 config show --output json >"$TMP/json"
check "config: flag beats env beats file" \
  jq -e '(.settings[] | select(.key == "api.port") | .value) == "9200"' "$TMP/json"
check "config: secrets are redacted in show" \
  jq -e '(.settings[] | select(.key == "database.url") | .value | contains("s3cret") | not)' "$TMP/json"
$GUST --core.dag_folder=x config show >/dev/null 2>"$TMP/err"; rc=$?
[ $rc -ne 0 ] && grep -q "dags_folder" "$TMP/err" && ok "config: unknown key suggests the closest" || bad "config: unknown key" "$(cat "$TMP/err")"

# --- help and version -------------------------------------------------------------------
for sub in "dags validate" "dags list" "dags show" "dags next-runs" "config"; do
  # shellcheck disable=SC2086
  $GUST $sub --help >/dev/null 2>&1 && ok "--help on gust $sub" || bad "--help on gust $sub"
done
$GUST version | grep -qE '^gust [0-9]+\.[0-9]+\.[0-9]+' && ok "version" || bad "version"
$GUST frobnicate >/dev/null 2>&1; [ $? -eq 2 ] && ok "unknown command exits 2" || bad "unknown command exits 2"

echo "cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
