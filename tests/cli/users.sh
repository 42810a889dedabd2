#!/usr/bin/env bash
# gust users against the real binary: create (with --password and --password-stdin), list in
# text and --output json, set-role, set-password, delete; the errors (duplicate user, unknown
# role naming the allowed ones, bad username, missing user, usage), passwords and hashes never
# printed, and the event log written without them. Runs on SQLite in a temporary GUST_HOME, and
# on PostgreSQL too (GUST_TEST_PG_URL, from eval "$(tests/services.sh env)") in a schema of its
# own. GUST_BIN is the binary under test (the sanitizer build in `make test`).
set -uo pipefail
cd "$(dirname "$0")/../.."
GUST=${GUST_BIN:-./bin/gust}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
unset $(env | awk -F= '/^GUST__/ {print $1}') 2>/dev/null || true
export USER=${USER:-tester}
PG_SCHEMA=gust_test_cli_users
PW1='Corr3ct-horse battery'
PW2='s3cond-Secret!'
PW3='third:pass word'

pass=0 fail=0
ok()   { pass=$((pass + 1)); printf '  ok   %s\n' "$1"; }
bad()  { fail=$((fail + 1)); printf '  FAIL %s\n' "$1"; [ -n "${2:-}" ] && printf '       %s\n' "$2"; }
# expect NAME RC CMD...: the command exits with RC (its output is kept in $TMP/out, $TMP/err)
expect() {
  local name=$1 want=$2; shift 2
  "$@" >"$TMP/out" 2>"$TMP/err" </dev/null; local rc=$?
  if [ "$rc" -eq "$want" ]; then ok "$name"; else bad "$name" "exit $rc, want $want: $(head -c 400 "$TMP/err" "$TMP/out")"; fi
}
# expect_in NAME RC INPUT CMD...: the same with INPUT on stdin
expect_in() {
  local name=$1 want=$2 input=$3; shift 3
  printf '%s' "$input" | "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  if [ "$rc" -eq "$want" ]; then ok "$name"; else bad "$name" "exit $rc, want $want: $(head -c 400 "$TMP/err" "$TMP/out")"; fi
}
has() { if grep -qE -- "$3" "$2"; then ok "$1"; else bad "$1" "$(head -c 400 "$2")"; fi; }
hasnt() { if grep -qF -- "$3" "$2"; then bad "$1" "found '$3' in: $(head -c 400 "$2")"; else ok "$1"; fi; }
same() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "got '$2', want '$3'"; fi; }
jqok() { if jq -e "$2" "$TMP/out" >/dev/null 2>&1; then ok "$1"; else bad "$1" "jq '$2' on: $(head -c 400 "$TMP/out")"; fi; }
# No password and no hash in anything the commands printed.
no_secrets() {
  for f in "$TMP/out" "$TMP/err"; do
    for p in "$PW1" "$PW2" "$PW3" pbkdf2; do
      if grep -qF -- "$p" "$f"; then bad "$1: no password or hash printed" "found '$p' in $(basename "$f")"; return; fi
    done
  done
  ok "$1: no password or hash printed"
}

suite() { # LABEL: every check, against whatever database.url the environment names
  local L=$1
  echo "== users commands on $L"
  expect "$L db migrate" 0 $GUST db migrate

  # --- usage --------------------------------------------------------------------------
  expect "$L users: no verb is usage" 2 $GUST users
  has "$L users: usage on stderr" "$TMP/err" "^usage: gust users create"
  expect "$L users --help" 0 $GUST users --help
  has "$L users --help: names every verb" "$TMP/out" "set-password"
  has "$L users --help: names the roles" "$TMP/out" "Roles, .*: Admin .*Op "
  has "$L users --help: names User and Viewer" "$TMP/out" "User .*Viewer "
  expect "$L users create --help" 0 $GUST users create --help
  has "$L users create --help: usage" "$TMP/out" "^usage: gust users create"
  expect "$L users frob: usage" 2 $GUST users frob
  has "$L users frob: says which" "$TMP/err" "unknown subcommand 'frob'"
  expect "$L users create: no --password is usage" 2 $GUST users create --username alice --role Op
  has "$L users create: names the missing option" "$TMP/err" "--password or --password-stdin is required"
  expect "$L users create: no --role is usage" 2 $GUST users create --username alice --password x
  has "$L users create: names --role" "$TMP/err" "--role is required"
  expect "$L users create: both password options" 2 $GUST users create --username alice --role Op --password x --password-stdin
  expect "$L users list: unknown option" 2 $GUST users list --bogus
  expect "$L users delete: takes no --role" 2 $GUST users delete --username alice --role Op
  expect "$L users set-role: takes no password" 2 $GUST users set-role --username alice --role Op --password x
  expect "$L users list: --output yaml refused" 2 $GUST users list --output yaml

  # --- create -------------------------------------------------------------------------
  expect "$L users list: empty" 0 $GUST users list --output json
  jqok "$L users list: empty json" '.users == []'
  expect "$L users create alice" 0 $GUST users create --username alice --password "$PW1" --role op
  same "$L users create: says so with the canonical role" "$(cat "$TMP/out")" "User alice created with role Op"
  no_secrets "$L users create"
  expect "$L users create: duplicate exits 1" 1 $GUST users create --username alice --password other --role Viewer
  same "$L users create: duplicate one-line error" "$(cat "$TMP/err")" "gust users create: user 'alice' already exists"
  expect "$L users create: unknown role exits 1" 1 $GUST users create --username carol --password x --role superuser
  same "$L users create: unknown role names the allowed ones" "$(cat "$TMP/err")" \
    "gust users create: role 'superuser' is not one of Admin, Op, User, Viewer"
  expect "$L users create: bad username exits 1" 1 $GUST users create --username 'carol smith' --password x --role User
  has "$L users create: bad username says why" "$TMP/err" "^gust users create: username may only contain letters, digits and _ . @ -$"
  expect "$L users create: 65-character username exits 1" 1 $GUST users create --username "$(printf 'a%.0s' $(seq 65))" --password x --role User
  has "$L users create: long username says why" "$TMP/err" "longer than 64"
  expect "$L users create: empty password exits 1" 1 $GUST users create --username carol --password '' --role User
  has "$L users create: empty password says why" "$TMP/err" "password must not be empty"
  expect_in "$L users create --password-stdin" 0 "$PW2"$'\n' $GUST users create --username bob@example.com --role VIEWER --password-stdin
  same "$L users create --password-stdin: created" "$(cat "$TMP/out")" "User bob@example.com created with role Viewer"
  expect_in "$L users create --password-stdin: empty stdin exits 1" 1 "" $GUST users create --username dave --role User --password-stdin
  has "$L users create --password-stdin: says stdin was empty" "$TMP/err" "nothing on stdin"
  expect "$L users create -u -p -r (airflow's short options)" 0 $GUST users create -u erin -p "$PW3" -r User

  # --- list ---------------------------------------------------------------------------
  expect "$L users list" 0 $GUST users list
  has "$L users list: header" "$TMP/out" "^username +role +created +last login$"
  has "$L users list: alice" "$TMP/out" "^alice +Op +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z +never$"
  has "$L users list: bob" "$TMP/out" "^bob@example.com +Viewer "
  no_secrets "$L users list"
  expect "$L users list --output json" 0 $GUST users list --output json
  jqok "$L users list --output json: three users in name order" '[.users[].username] == ["alice", "bob@example.com", "erin"]'
  jqok "$L users list --output json: roles" '[.users[].role] == ["Op", "Viewer", "User"]'
  jqok "$L users list --output json: fields" \
    '.users | all(has("username") and has("role") and has("created_at") and has("changed_at") and (.last_login == null))'
  jqok "$L users list --output json: no password field" '[.. | objects | keys[]] | all(test("pass|hash") | not)'
  no_secrets "$L users list --output json"
  local changed0
  changed0=$(jq -r '.users[] | select(.username == "alice") | .changed_at' "$TMP/out")

  # --- set-role, set-password -----------------------------------------------------------
  expect "$L users set-role" 0 $GUST users set-role --username alice --role ADMIN
  same "$L users set-role: says so" "$(cat "$TMP/out")" "User alice now has role Admin"
  expect "$L users set-role: unknown role exits 1" 1 $GUST users set-role --username alice --role god
  has "$L users set-role: unknown role names the allowed ones" "$TMP/err" "not one of Admin, Op, User, Viewer"
  expect "$L users set-role: missing user exits 1" 1 $GUST users set-role --username zed --role Op
  same "$L users set-role: missing user one-line error" "$(cat "$TMP/err")" "gust users set-role: no user 'zed'"
  expect "$L users list after set-role" 0 $GUST users list --output json
  jqok "$L users set-role: alice is Admin" '.users[] | select(.username == "alice") | .role == "Admin"'
  local changed1
  changed1=$(jq -r '.users[] | select(.username == "alice") | .changed_at' "$TMP/out")
  [ "$changed1" != "$changed0" ] && ok "$L users set-role: changed_at moved" || bad "$L users set-role: changed_at moved" "$changed0 -> $changed1"
  expect_in "$L users set-password --password-stdin" 0 "$PW3"$'\r\n' $GUST users set-password --username alice --password-stdin
  same "$L users set-password: says so" "$(cat "$TMP/out")" "Password of user alice changed"
  no_secrets "$L users set-password"
  expect "$L users set-password: missing user exits 1" 1 $GUST users set-password --username zed --password x
  same "$L users set-password: missing user one-line error" "$(cat "$TMP/err")" "gust users set-password: no user 'zed'"
  expect "$L users list after set-password" 0 $GUST users list --output json
  local changed2
  changed2=$(jq -r '.users[] | select(.username == "alice") | .changed_at' "$TMP/out")
  [ "$changed2" != "$changed1" ] && ok "$L users set-password: changed_at moved" || bad "$L users set-password: changed_at moved" "$changed1 -> $changed2"

  # --- delete -------------------------------------------------------------------------
  expect "$L users delete" 0 $GUST users delete --username erin
  same "$L users delete: says so" "$(cat "$TMP/out")" "User erin deleted"
  expect "$L users delete: again exits 1" 1 $GUST users delete --username erin
  same "$L users delete: missing user one-line error" "$(cat "$TMP/err")" "gust users delete: no user 'erin'"
  expect "$L users list after delete" 0 $GUST users list --output json
  jqok "$L users delete: erin gone" '[.users[].username] == ["alice", "bob@example.com"]'

  # --- the event log, when a client is at hand -------------------------------------------
  local sql="SELECT event || '|' || owner || '|' || COALESCE(extra, '') FROM event_log ORDER BY id"
  if [ -n "${PG_URL_CLI:-}" ]; then
    psql -qAt "$PG_URL_CLI" -c "$sql" >"$TMP/events" 2>&1
  elif command -v sqlite3 >/dev/null; then
    sqlite3 "$GUST_HOME/gust.db" "$sql" >"$TMP/events" 2>&1
  fi
  if [ -f "$TMP/events" ]; then
    has "$L event log: create by cli:\$USER" "$TMP/events" "^cli_users_create\|cli:$USER\|.*\"username\":\"alice\".*\"role\":\"Op\""
    has "$L event log: set-role" "$TMP/events" "^cli_users_set_role\|cli:$USER\|.*\"role\":\"Admin\""
    has "$L event log: set-password" "$TMP/events" "^cli_users_set_password\|cli:$USER\|"
    has "$L event log: delete" "$TMP/events" "^cli_users_delete\|cli:$USER\|.*erin"
    for p in "$PW1" "$PW2" "$PW3" pbkdf2; do hasnt "$L event log: no password ($p)" "$TMP/events" "$p"; done
    rm -f "$TMP/events"
  else
    bad "$L event log: no sqlite3 or psql to read it with"
  fi
}

export GUST_HOME="$TMP/sqlite-home"
unset PG_URL_CLI
suite sqlite

if [ -n "${GUST_TEST_PG_URL:-}" ]; then
  sep='?'; case $GUST_TEST_PG_URL in *\?*) sep='&';; esac
  if ! psql -qAt "$GUST_TEST_PG_URL" -c "DROP SCHEMA IF EXISTS $PG_SCHEMA CASCADE; CREATE SCHEMA $PG_SCHEMA" >/dev/null 2>"$TMP/psql.err"; then
    bad "postgres: cannot prepare schema $PG_SCHEMA with psql" "$(cat "$TMP/psql.err")"
  fi
  export PG_URL_CLI="${GUST_TEST_PG_URL}${sep}options=-csearch_path%3D$PG_SCHEMA"
  export GUST_HOME="$TMP/pg-home"
  export GUST__DATABASE__URL="$PG_URL_CLI"
  suite postgres
  unset GUST__DATABASE__URL
  psql -qAt "$GUST_TEST_PG_URL" -c "DROP SCHEMA IF EXISTS $PG_SCHEMA CASCADE" >/dev/null 2>&1
else
  bad "postgres: GUST_TEST_PG_URL is not set" "run tests/services.sh start and eval \"\$(tests/services.sh env)\" (make test does both)"
fi

echo "users commands: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
