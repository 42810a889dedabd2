#!/usr/bin/env bash
# gust scheduler started before its broker: it waits (retrying with backoff, saying so), stops
# cleanly on SIGTERM while waiting, and starts as soon as RabbitMQ answers; a broker.url that
# waiting cannot fix ends it at once with the message. The RabbitMQ of tests/services.sh is
# reached through a small TCP forwarder started late, on a port that was closed at first.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
GUST=${GUST_BIN:-$ROOT/bin/gust}
TMP=$(mktemp -d)
PIDS=()
pass=0 fail=0
ok() { echo "  ok   $1"; pass=$((pass + 1)); }
bad() { echo "  FAIL $1"; [ -n "${2:-}" ] && echo "       $2"; fail=$((fail + 1)); }
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
if [ -z "${GUST_TEST_AMQP_URL:-}" ]; then
  bash "$ROOT/tests/services.sh" start >/dev/null
  eval "$(bash "$ROOT/tests/services.sh" env)"
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DB="sqlite://$TMP/gust.db"
G=("$GUST" --database.url="$DB" --core.dags_folder="$TMP/dags" --redis.url=)
mkdir -p "$TMP/dags"
"${G[@]}" db migrate >/dev/null || { echo "scheduler_start: gust db migrate failed"; exit 1; }
PORT=$(free_port)
RMQ_PORT=$(python3 -c 'import sys,urllib.parse as u; print(u.urlparse(sys.argv[1]).port)' "$GUST_TEST_AMQP_URL")
URL="amqp://gust:gust@127.0.0.1:$PORT/"

echo "== a broker that is not there yet"
"${G[@]}" --broker.url="$URL" scheduler >"$TMP/s1.log" 2>&1 &
S1=$!; PIDS+=("$S1")
for _ in $(seq 1 40); do [ "$(grep -c 'retrying in' "$TMP/s1.log")" -ge 2 ] && break; sleep 0.25; done
kill -0 "$S1" 2>/dev/null && ok "still running while the broker is down" || bad "still running" "$(tail -3 "$TMP/s1.log")"
grep -q "127.0.0.1:$PORT.*retrying in 1s" "$TMP/s1.log" && grep -q "retrying in 2s" "$TMP/s1.log" \
  && ok "says which server it waits for, with a growing delay" || bad "retry lines" "$(tail -3 "$TMP/s1.log")"
kill "$S1"; t0=$(date +%s%N); wait "$S1"; rc=$?; t1=$(date +%s%N)
[ $rc -eq 0 ] && [ $(( (t1 - t0) / 1000000 )) -lt 3000 ] && ok "SIGTERM while waiting: exit 0 at once" || bad "SIGTERM while waiting" "rc=$rc"

echo "== the broker comes up while it waits"
"${G[@]}" --broker.url="$URL" scheduler >"$TMP/s2.log" 2>&1 &
S2=$!; PIDS+=("$S2")
for _ in $(seq 1 40); do grep -q 'retrying in' "$TMP/s2.log" && break; sleep 0.25; done
cat >"$TMP/fwd.py" <<'PY'
import socket, sys, threading
lp, rp = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", lp)); srv.listen(16)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
    except OSError: pass
    finally:
        for s in (a, b):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
while True:
    c, _ = srv.accept()
    u = socket.create_connection(("127.0.0.1", rp))
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
PY
python3 "$TMP/fwd.py" "$PORT" "$RMQ_PORT" &
FWD=$!; PIDS+=("$FWD")
for _ in $(seq 1 80); do grep -q "scheduler: started" "$TMP/s2.log" && break; sleep 0.25; done
grep -q "scheduler: started" "$TMP/s2.log" && ok "starts once RabbitMQ answers" || bad "starts when the broker is up" "$(tail -5 "$TMP/s2.log")"
kill "$S2"; wait "$S2"; rc=$?
[ $rc -eq 0 ] && ok "then stops with exit 0" || bad "stop after start" "rc=$rc $(tail -3 "$TMP/s2.log")"

echo "== what waiting cannot fix"
timeout 10 "${G[@]}" --broker.url="amqp://gust:gust@127.0.0.1:notaport/" scheduler >"$TMP/s3.log" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "broker.url: bad port" "$TMP/s3.log" && ! grep -q "retrying" "$TMP/s3.log" \
  && ok "a malformed broker.url: exit 1 at once, naming it" || bad "malformed url" "rc=$rc $(tail -2 "$TMP/s3.log")"
timeout 20 "${G[@]}" --broker.url="amqp://gust:wrong-password@127.0.0.1:$PORT/" scheduler >"$TMP/s4.log" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "login refused for user 'gust'" "$TMP/s4.log" && ! grep -q "retrying" "$TMP/s4.log" \
  && ok "a refused login: exit 1 at once, naming the user" || bad "refused login" "rc=$rc $(tail -2 "$TMP/s4.log")"

echo "== SIGTERM while PostgreSQL is unreachable"
# The scheduler reaches PostgreSQL through a forwarder that then dies: its reconnect loop
# (up to 30 s) and store_tx's retries (up to 30 s) must give way to SIGTERM.
if [ -n "${GUST_TEST_PG_ADMIN_URL:-}" ] && command -v psql >/dev/null; then
  PGDB=gust_sstart_$$
  psql "$GUST_TEST_PG_ADMIN_URL" -qAtX -c "CREATE DATABASE $PGDB OWNER gust" >/dev/null
  PG_PORT=$(python3 -c 'import sys,urllib.parse as u; print(u.urlparse(sys.argv[1]).port)' "$GUST_TEST_PG_URL")
  PPORT=$(free_port)
  python3 "$TMP/fwd.py" "$PPORT" "$PG_PORT" &
  PFWD=$!; PIDS+=("$PFWD")
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PPORT") 2>/dev/null && break; sleep 0.1; done
  P=("$GUST" --database.url="postgresql://gust:gust@127.0.0.1:$PPORT/$PGDB" --core.dags_folder="$TMP/dags" --redis.url=)
  "${P[@]}" db migrate >/dev/null 2>&1
  "${P[@]}" --broker.url="$GUST_TEST_AMQP_URL" scheduler >"$TMP/s5.log" 2>&1 &
  S5=$!; PIDS+=("$S5")
  for _ in $(seq 1 80); do grep -q "scheduler: started" "$TMP/s5.log" && break; sleep 0.25; done
  grep -q "scheduler: started" "$TMP/s5.log" && ok "started on PostgreSQL through the forwarder" \
    || bad "scheduler on PostgreSQL" "$(tail -3 "$TMP/s5.log")"
  kill "$PFWD"; wait "$PFWD" 2>/dev/null
  sleep 3 # a pass or two meet the dead connection and start reconnecting
  kill -0 "$S5" 2>/dev/null && ok "still running while PostgreSQL is unreachable" || bad "running without PostgreSQL" "$(tail -3 "$TMP/s5.log")"
  kill "$S5"; t0=$(date +%s%N); wait "$S5"; rc=$?; t1=$(date +%s%N)
  ms=$(( (t1 - t0) / 1000000 ))
  [ $rc -eq 0 ] && [ $ms -lt 3000 ] && ok "SIGTERM while PostgreSQL is unreachable: exit 0 in $ms ms" \
    || bad "SIGTERM while PostgreSQL is unreachable" "rc=$rc after $ms ms: $(tail -3 "$TMP/s5.log")"
  psql "$GUST_TEST_PG_ADMIN_URL" -qAtX -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null
else
  bad "PostgreSQL case" "GUST_TEST_PG_ADMIN_URL is not set or psql is missing (run via make test)"
fi

echo "scheduler_start: $pass passed, $fail failed"
[ $fail -eq 0 ]
