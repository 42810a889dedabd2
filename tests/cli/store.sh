#!/usr/bin/env bash
# The store commands against the real binary: gust db migrate|check|reset, variables,
# connections and pools — exit codes, text and --output json, the password never printed,
# default_pool protected, the event log written. Runs on SQLite in a temporary GUST_HOME,
# and on PostgreSQL too when GUST_TEST_PG_URL is set (eval "$(tests/services.sh env)"), in a
# schema of its own so that it cannot disturb another suite using the same database.
# GUST_BIN is the binary under test (the sanitizer build in `make test`).
set -uo pipefail
cd "$(dirname "$0")/../.."
GUST=${GUST_BIN:-./bin/gust}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
unset $(env | awk -F= '/^GUST__/ {print $1}') 2>/dev/null || true
export USER=${USER:-tester}
PG_SCHEMA=gust_test_cli_store

pass=0 fail=0
ok()   { pass=$((pass + 1)); printf '  ok   %s\n' "$1"; }
bad()  { fail=$((fail + 1)); printf '  FAIL %s\n' "$1"; [ -n "${2:-}" ] && printf '       %s\n' "$2"; }
# expect NAME RC CMD...: the command exits with RC (its output is kept in $TMP/out, $TMP/err)
expect() {
  local name=$1 want=$2; shift 2
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  if [ "$rc" -eq "$want" ]; then ok "$name"; else bad "$name" "exit $rc, want $want: $(head -c 400 "$TMP/err" "$TMP/out")"; fi
}
# has NAME FILE REGEX: FILE has a line matching REGEX
has() { if grep -qE -- "$3" "$2"; then ok "$1"; else bad "$1" "$(head -c 400 "$2")"; fi; }
hasnt() { if grep -qF -- "$3" "$2"; then bad "$1" "found '$3' in: $(head -c 400 "$2")"; else ok "$1"; fi; }
jqok() { if jq -e "$2" "$TMP/out" >/dev/null 2>&1; then ok "$1"; else bad "$1" "jq '$2' on: $(head -c 400 "$TMP/out")"; fi; }

suite() { # LABEL: every check, against whatever database.url the environment names
  local L=$1
  echo "== store commands on $L"

  # --- db ---------------------------------------------------------------------------
  expect "$L db check: empty database fails" 1 $GUST db check
  has "$L db check: says to migrate" "$TMP/err" "no gust schema yet: run gust db migrate"
  expect "$L variables list: refused before migrate" 1 $GUST variables list
  has "$L variables list: prints store_check's message" "$TMP/err" "^gust variables list: .*run gust db migrate"
  expect "$L db migrate" 0 $GUST db migrate
  has "$L db migrate: reports what it applied" "$TMP/out" "^applied [1-9][0-9]* migrations?; the database schema is at version [0-9]+"
  expect "$L db migrate again: idempotent" 0 $GUST db migrate --output json
  jqok "$L db migrate again: applies 0" '.applied == 0 and .version >= 1'
  expect "$L db check: up to date" 0 $GUST db check
  has "$L db check: message" "$TMP/out" "up to date"
  expect "$L db check --output json" 0 $GUST db check --output json
  jqok "$L db check --output json: ok, version == target" '.ok == true and .version == .target'
  expect "$L db reset without --yes: refused" 2 $GUST db reset
  has "$L db reset without --yes: says why" "$TMP/err" "--yes"
  expect "$L db frob: usage" 2 $GUST db frob

  # --- variables ----------------------------------------------------------------------
  expect "$L variables set" 0 $GUST variables set greeting "hello world" --description "a greeting"
  has "$L variables set: created" "$TMP/out" "^Variable greeting created"
  expect "$L variables get" 0 $GUST variables get greeting
  [ "$(cat "$TMP/out")" = "hello world" ] && ok "$L variables get: prints the value" || bad "$L variables get: prints the value" "$(cat "$TMP/out")"
  local hostile="'; DROP TABLE variable; -- ? \\ \"q\" 日本語"
  expect "$L variables set: hostile value" 0 $GUST variables set 'we?ird key' "$hostile"
  expect "$L variables get --output json: hostile value" 0 $GUST variables get 'we?ird key' --output json
  if [ "$(jq -r .value "$TMP/out")" = "$hostile" ]; then ok "$L variables: hostile value round trip"; else bad "$L variables: hostile value round trip" "$(cat "$TMP/out")"; fi
  expect "$L variables set: update" 0 $GUST variables set greeting "bonjour"
  has "$L variables set: updated" "$TMP/out" "^Variable greeting updated"
  expect "$L variables list" 0 $GUST variables list
  [ "$(cat "$TMP/out")" = "$(printf 'greeting\nwe?ird key')" ] && ok "$L variables list: keys in order" || bad "$L variables list: keys in order" "$(cat "$TMP/out")"
  expect "$L variables list --output json" 0 $GUST variables list --output json
  jqok "$L variables list --output json: values and descriptions" \
    '(.variables | length == 2) and ([.variables[] | select(.key == "greeting" and .value == "bonjour" and .description == "a greeting")] | length == 1)'
  expect "$L variables delete" 0 $GUST variables delete greeting
  expect "$L variables get: missing exits 1" 1 $GUST variables get greeting
  [ "$(cat "$TMP/err")" = "gust variables get: no variable 'greeting'" ] && ok "$L variables get: one-line error" || bad "$L variables get: one-line error" "$(cat "$TMP/err")"
  expect "$L variables delete: missing exits 1" 1 $GUST variables delete greeting
  expect "$L variables set: missing VALUE is usage" 2 $GUST variables set onlykey
  expect "$L variables: unknown option is usage" 2 $GUST variables list --bogus
  expect "$L variables set -- VALUE starting with a dash" 0 $GUST variables set dash -- -x
  expect "$L variables get: value starting with a dash" 0 $GUST variables get dash
  [ "$(cat "$TMP/out")" = "-x" ] && ok "$L variables: '-x' kept" || bad "$L variables: '-x' kept" "$(cat "$TMP/out")"

  # --- connections --------------------------------------------------------------------
  expect "$L connections add --conn-uri" 0 $GUST connections add my_pg --conn-uri 'postgres://user:p%40ss-w0rd@db.example.com:5432/warehouse?sslmode=require&api_token=tok-9876'
  expect "$L connections get" 0 $GUST connections get my_pg
  has "$L connections get: password masked" "$TMP/out" "^password +\*\*\*$"
  hasnt "$L connections get: password not in clear" "$TMP/out" "p@ss-w0rd"
  hasnt "$L connections get: secret extra key masked" "$TMP/out" "tok-9876"
  has "$L connections get: conn_type from the scheme" "$TMP/out" "^conn_type +postgres$"
  expect "$L connections get --output json" 0 $GUST connections get my_pg --output json
  jqok "$L connections get --output json: fields" \
    '.conn_type == "postgres" and .login == "user" and .password == "***" and .host == "db.example.com" and .port == 5432 and .schema == "warehouse" and (.extra | fromjson | .sslmode == "require" and .api_token == "***")'
  hasnt "$L connections get --output json: password not in clear" "$TMP/out" "p@ss-w0rd"
  expect "$L connections add: duplicate exits 1" 1 $GUST connections add my_pg --conn-type http
  has "$L connections add: duplicate says so" "$TMP/err" "connection 'my_pg' already exists"
  expect "$L connections add --conn-type and fields" 0 $GUST connections add web --conn-type http --conn-host example.org --conn-port 443 --conn-password hunter2 --conn-extra '{"verify": false}'
  expect "$L connections list" 0 $GUST connections list
  has "$L connections list: a row per connection" "$TMP/out" "^my_pg +postgres +db.example.com +5432$"
  hasnt "$L connections list: no password" "$TMP/out" "hunter2"
  expect "$L connections list --output json" 0 $GUST connections list --output json
  jqok "$L connections list --output json: both, masked" '[.connections[].conn_id] == ["my_pg", "web"] and all(.connections[]; .password == "***")'
  hasnt "$L connections list --output json: no password" "$TMP/out" "hunter2"
  expect "$L connections add: neither uri nor type is usage" 2 $GUST connections add nothing
  expect "$L connections add: both uri and fields is usage" 2 $GUST connections add both --conn-uri http://h --conn-host h
  expect "$L connections add: bad URI exits 1" 1 $GUST connections add badport --conn-uri 'http://h:abc'
  has "$L connections add: bad URI says why" "$TMP/err" "invalid connection URI: the port is not a number"
  expect "$L connections delete" 0 $GUST connections delete web
  expect "$L connections delete: missing exits 1" 1 $GUST connections delete web
  if [ -f "$GUST_HOME/secret.key" ] && [ "$(stat -c %a "$GUST_HOME/secret.key")" = 600 ]; then ok "$L secret.key created 0600"; else bad "$L secret.key created 0600" "$(ls -l "$GUST_HOME")"; fi
  expect "$L connections get: wrong core.secret_key exits 1" 1 env GUST__CORE__SECRET_KEY="$(printf 'b%.0s' $(seq 64))" $GUST connections get my_pg
  has "$L connections get: wrong key is a clear error" "$TMP/err" "cannot decrypt: the secret was encrypted with key"

  # --- pools --------------------------------------------------------------------------
  expect "$L pools list" 0 $GUST pools list --output json
  jqok "$L pools list: default_pool with 128 slots" '.pools[] | select(.name == "default_pool") | .slots == 128 and .open_slots == 128'
  expect "$L pools set" 0 $GUST pools set etl 5 "nightly loads"
  expect "$L pools set: unlimited" 0 $GUST pools set free -1
  expect "$L pools get --output json" 0 $GUST pools get etl --output json
  jqok "$L pools get --output json" '.name == "etl" and .slots == 5 and .description == "nightly loads" and .open_slots == 5'
  expect "$L pools list: text" 0 $GUST pools list
  has "$L pools list: text row" "$TMP/out" "^etl +5 +0 +0 +5 +nightly loads$"
  has "$L pools list: unlimited" "$TMP/out" "^free +-1 +0 +0 +unlimited"
  expect "$L pools delete default_pool: refused" 1 $GUST pools delete default_pool
  [ "$(cat "$TMP/err")" = "gust pools delete: default_pool cannot be deleted" ] && ok "$L pools delete default_pool: says why" || bad "$L pools delete default_pool: says why" "$(cat "$TMP/err")"
  expect "$L pools set: bad slots is usage" 2 $GUST pools set etl many
  expect "$L pools set: slots below -1 is usage" 2 $GUST pools set etl -2
  expect "$L pools delete" 0 $GUST pools delete etl
  expect "$L pools delete: missing exits 1" 1 $GUST pools delete etl

  # --- the event log, when a client is at hand -----------------------------------------
  local sql="SELECT event || '|' || owner FROM event_log ORDER BY id"
  if [ -n "${PG_URL_CLI:-}" ]; then
    psql -qAt "$PG_URL_CLI" -c "$sql" >"$TMP/events" 2>&1
  elif [ -z "${PG_URL_CLI:-}" ] && command -v sqlite3 >/dev/null; then
    sqlite3 "$GUST_HOME/gust.db" "$sql" >"$TMP/events" 2>&1
  else
    : >"$TMP/events.skip"
  fi
  if [ -f "$TMP/events" ]; then
    has "$L event log: variables set by cli:\$USER" "$TMP/events" "^cli_variables_set\|cli:$USER$"
    has "$L event log: connections add" "$TMP/events" "^cli_connections_add\|cli:"
    has "$L event log: pools delete" "$TMP/events" "^cli_pools_delete\|cli:"
    rm -f "$TMP/events"
  fi

  # --- reset last: it empties everything ------------------------------------------------
  expect "$L db reset --yes" 0 $GUST db reset --yes
  expect "$L variables list after reset" 0 $GUST variables list
  [ ! -s "$TMP/out" ] && ok "$L db reset: variables gone" || bad "$L db reset: variables gone" "$(cat "$TMP/out")"
}

# SQLite: the default database.url, sqlite:///$home/gust.db, in a home that does not exist yet.
export GUST_HOME="$TMP/sqlite-home"
unset PG_URL_CLI
suite sqlite
[ -f "$GUST_HOME/gust.db" ] && ok "sqlite: the store is \$home/gust.db" || bad "sqlite: the store is \$home/gust.db" "$(ls -la "$GUST_HOME")"

# PostgreSQL, in a schema of its own, emptied first.
if [ -n "${GUST_TEST_PG_URL:-}" ]; then
  sep='?'; case $GUST_TEST_PG_URL in *\?*) sep='&';; esac
  # tests/services.sh's PostgreSQL comes with psql
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

echo "store commands: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
