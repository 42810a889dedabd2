#!/usr/bin/env bash
# Throw-away PostgreSQL, RabbitMQ and Redis servers for gust's tests, from Debian's packages
# (tests/deps.sh installs them), on loopback, on ports of their own, all under one state folder.
#
#   tests/services.sh start   [pg|rabbitmq|redis ...]   start (idempotent), wait until ready, print URLs
#   tests/services.sh stop    [--purge] [SERVICE ...]    stop; --purge also deletes their state
#   tests/services.sh restart [SERVICE ...]              stop then start (chaos tests: `restart pg`)
#   tests/services.sh kill    SERVICE ...                SIGKILL the server (simulated crash); `start` recovers
#   tests/services.sh status  [SERVICE ...]              which are up; exit 0 only if all asked are up
#   tests/services.sh env                                `export` lines: eval "$(tests/services.sh env)"
#   tests/services.sh psql|rabbitmqctl|redis-cli ARGS    the client, pointed at our server (psql as superuser)
#
# Settings (environment): GUST_TEST_SERVICES_DIR (/tmp/gust-test-services), GUST_TEST_PG_PORT (55432),
# GUST_TEST_AMQP_PORT (55672), GUST_TEST_RABBITMQ_DIST_PORT (55673), GUST_TEST_RABBITMQ_NODE
# (gust-test@localhost), GUST_TEST_REDIS_PORT (56379), GUST_TEST_SERVICES_TIMEOUT (60 s a server),
# GUST_TEST_PG_BINDIR (newest /usr/lib/postgresql/*/bin). docs/testing-services.md tells more.
set -euo pipefail

SELF=$(realpath "$0")
S=$(realpath -m "${GUST_TEST_SERVICES_DIR:-/tmp/gust-test-services}")
PG_PORT=${GUST_TEST_PG_PORT:-55432}
AMQP_PORT=${GUST_TEST_AMQP_PORT:-55672}
DIST_PORT=${GUST_TEST_RABBITMQ_DIST_PORT:-55673}
NODE=${GUST_TEST_RABBITMQ_NODE:-gust-test@localhost}
REDIS_PORT=${GUST_TEST_REDIS_PORT:-56379}
TIMEOUT=${GUST_TEST_SERVICES_TIMEOUT:-60}
ALL=(pg rabbitmq redis)

PG_URL="postgresql://gust:gust@127.0.0.1:$PG_PORT/gust"
AMQP_URL="amqp://gust:gust@127.0.0.1:$AMQP_PORT/"
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"

PGD=$S/pg              # owned by postgres: data/ (PGDATA), run/ (unix socket), postgres.log
PGDATA=$PGD/data
PG_LOG=$PGD/postgres.log
RD=$S/rabbitmq         # owned by rabbitmq: home/ (HOME, erlang cookie), mnesia/, log/, rabbitmq.pid
R_PID=$RD/rabbitmq.pid
R_LOG=$RD/log/rabbitmq.log
R_OUT=$RD/log/startup.log
XD=$S/redis            # redis-server's --dir, pid file and log
X_PID=$XD/redis.pid
X_LOG=$XD/redis.log

say() { printf '%s\n' "services: $*"; }
die() { printf '%s\n' "services: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }
q() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }   # single-quote for sh

pg_bindir() {
  if [ -n "${GUST_TEST_PG_BINDIR:-}" ]; then echo "$GUST_TEST_PG_BINDIR"; return; fi
  local d best=""
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && best=$d; done
  # the glob sorts 10 before 9; fine: Debian 12 ships one version (15)
  echo "${best:-/usr/lib/postgresql/15/bin}"
}
PGBIN=$(pg_bindir)

# Run a command as a service's system user when we are root (initdb and rabbitmq refuse or
# misbehave as root); as ourselves otherwise. Lock fd 9 is closed so daemons never inherit it.
as_user() {
  local u=$1; shift
  if is_root; then runuser -u "$u" -- "$@" 9>&-; else "$@" 9>&-; fi
}
pg_user() { if is_root; then echo postgres; else id -un; fi; }
rmq_user() { if is_root; then echo rabbitmq; else id -un; fi; }

# Is PID alive and a process of ours: its working folder is DIR (postgres, redis and
# rabbitmq's beam all run with their state folder as cwd).
pid_in_dir() {
  local pid=$1 dir=$2
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -d "/proc/$pid" ] || return 1
  [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$dir" ]
}
pidfile_pid() { if [ -s "$1" ]; then head -n1 "$1" | tr -dc '0-9'; fi; }
# All processes whose cwd is DIR (leftover postgres children after a crash, say).
procs_in_dir() {
  find /proc -mindepth 2 -maxdepth 2 -name cwd -lname "$1" -printf '%h\n' 2>/dev/null | sed 's|^/proc/||' || true
}
elapsed() { local now=${EPOCHREALTIME//[!0-9]/} t0=${1//[!0-9]/}; local us=$((now - t0)); printf '%d.%d' $((us / 1000000)) $((us % 1000000 / 100000)); }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A process that exited but is not reaped yet (a zombie: here PID 1 may reap late) counts as gone.
alive() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [ "${st%% *}" != Z ]
}
wait_gone() {  # PID SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do alive "$1" || return 0; sleep 0.1; done
  return 1
}
show_log() {  # LABEL FILE...: the error to read, with the file's last lines for CI logs
  local name=$1 f; shift
  printf 'services: %s did not come up; read %s\n' "$name" "$*" >&2
  for f in "$@"; do
    [ -f "$f" ] || continue
    printf -- '----- last lines of %s -----\n' "$f" >&2
    tail -n 25 "$f" >&2 || true
  done
  printf -- '-----\n' >&2
}
port_free_or_die() {  # PORT NAME ENVVAR
  if port_open "$1"; then
    die "$2: port $1 on 127.0.0.1 is taken by a process that is not our server; stop it or set $3 to another port"
  fi
}

prepare_dir() {
  if [ ! -d "$S" ]; then
    mkdir -p "$S"
    chmod 755 "$S"
  fi
  [ -w "$S" ] || die "cannot write the state folder $S"
  touch "$S/.gust-test-services"
}
# mkdir DIR owned by USER, and check that USER can reach it (a state folder under /root fails here).
own_dir() {  # USER DIR MODE
  mkdir -p "$2"
  if is_root; then chown "$1:" "$2"; fi
  chmod "$3" "$2"
  as_user "$1" test -w "$2" ||
    die "user $1 cannot write $2: put GUST_TEST_SERVICES_DIR where $1 can reach it (e.g. under /tmp)"
}

# ---------------------------------------------------------------- PostgreSQL
pg_pid() {
  local pid
  pid=$(pidfile_pid "$PGDATA/postmaster.pid")
  pid_in_dir "$pid" "$PGDATA" && echo "$pid"
}
pg_up() { pg_pid >/dev/null && "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; }
pg_ctl() { as_user "$(pg_user)" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PG_LOG" "$@"; }
pg_admin_psql() {
  "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGD/run" -p "$PG_PORT" -U postgres -d "${PGDB:-postgres}" "$@"
}

pg_config() {
  cat >"$PGDATA/gust.conf" <<EOF
# written by tests/services.sh on each start: a throw-away test server
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PGD/run'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
log_min_messages = warning
log_connections = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
  chown "$(pg_user):" "$PGDATA/gust.conf"
  grep -q "^include 'gust.conf'" "$PGDATA/postgresql.conf" ||
    echo "include 'gust.conf'" >>"$PGDATA/postgresql.conf"
}

start_pg() {
  [ -x "$PGBIN/initdb" ] || die "pg: no PostgreSQL server in $PGBIN: run tests/deps.sh (package postgresql)"
  local i
  if pg_pid >/dev/null; then  # running, maybe still starting or recovering: wait for it
    for ((i = 0; i < TIMEOUT * 10; i++)); do pg_up && break; pg_pid >/dev/null || break; sleep 0.1; done
    if pg_up; then
      pg_ensure_role
      say "pg already running (pid $(pg_pid))"
      return 0
    fi
    if pg_pid >/dev/null; then
      show_log "PostgreSQL (port $PG_PORT, pid $(pg_pid), running but not accepting connections)" "$PG_LOG"
      return 1
    fi
  fi
  local u; u=$(pg_user)
  own_dir "$u" "$PGD" 755
  own_dir "$u" "$PGD/run" 755
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    rm -rf "$PGDATA"
    if ! (cd / && as_user "$u" "$PGBIN/initdb" -D "$PGDATA" -U postgres -E UTF8 --no-locale \
          --auth-local=trust --auth-host=scram-sha-256 --no-sync) >"$PGD/initdb.log" 2>&1; then
      show_log "PostgreSQL (initdb)" "$PGD/initdb.log"; return 1
    fi
  fi
  local have; have=$(cat "$PGDATA/PG_VERSION")
  [ "$have" = "$("$PGBIN/pg_config" --version 2>/dev/null | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')" ] ||
    [ ! -x "$PGBIN/pg_config" ] ||
    die "pg: $PGDATA is a PostgreSQL $have cluster but $PGBIN is another version: tests/services.sh stop --purge pg"
  # After a crash (kill -9 of the postmaster) its children may linger a moment and hold the
  # shared memory: wait for them. Then no server of ours runs, so the lock files are stale: the
  # dead postmaster's PID may still exist as an unreaped zombie, or be reused, and postgres
  # would refuse to start over them ("lock file ... already exists").
  local p
  for p in $(procs_in_dir "$PGDATA"); do wait_gone "$p" 5 || kill -9 "$p" 2>/dev/null || true; done
  rm -f "$PGDATA/postmaster.pid" "$PGD"/run/.s.PGSQL.*
  port_free_or_die "$PG_PORT" pg GUST_TEST_PG_PORT
  pg_config
  touch "$PG_LOG"
  if is_root; then chown "$u:" "$PG_LOG"; fi
  if ! (cd / && pg_ctl -w -t "$TIMEOUT" start) >"$PGD/pg_ctl.log" 2>&1; then
    show_log "PostgreSQL (port $PG_PORT)" "$PG_LOG" "$PGD/pg_ctl.log"; return 1
  fi
  for ((i = 0; i < TIMEOUT * 10; i++)); do pg_up && break; sleep 0.1; done
  pg_up || { show_log "PostgreSQL (port $PG_PORT)" "$PG_LOG"; return 1; }
  pg_ensure_role
  say "pg started (pid $(pg_pid))"
}

pg_ensure_role() {
  pg_admin_psql <<'EOF' >/dev/null
SET client_min_messages = warning;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gust') THEN
    CREATE ROLE gust LOGIN CREATEDB PASSWORD 'gust';
  ELSE
    ALTER ROLE gust LOGIN PASSWORD 'gust';
  END IF;
END $$;
SELECT 'CREATE DATABASE gust OWNER gust' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'gust')
\gexec
EOF
}

stop_pg() {
  local pid
  if pid=$(pg_pid); then
    (cd / && pg_ctl -w -t 30 -m fast stop) >/dev/null 2>&1 ||
      (cd / && pg_ctl -w -t 10 -m immediate stop) >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || true
  fi
  local p
  for p in $(procs_in_dir "$PGDATA"); do kill -9 "$p" 2>/dev/null || true; done
  if [ -n "${pid:-}" ]; then say "pg stopped"; else say "pg was not running"; fi
}
status_pg() { pg_up; }
kill_pg() { local pid; pid=$(pg_pid) && kill -9 "$pid" && say "pg: killed postmaster $pid"; }

# ---------------------------------------------------------------- RabbitMQ
# the environment of every rabbitmq program we run: nothing from /etc/rabbitmq, all state in $RD
rmq() {  # PROGRAM ARGS...: run a program of /usr/lib/rabbitmq/bin as the rabbitmq user
  local prog=$1; shift
  (cd "$RD/home" 2>/dev/null || cd /
   as_user "$(rmq_user)" env HOME="$RD/home" \
    RABBITMQ_NODENAME="$NODE" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$AMQP_PORT" \
    RABBITMQ_DIST_PORT="$DIST_PORT" RABBITMQ_MNESIA_BASE="$RD/mnesia" RABBITMQ_LOG_BASE="$RD/log" \
    RABBITMQ_LOGS="$R_LOG" RABBITMQ_PID_FILE="$R_PID" RABBITMQ_CONFIG_FILE="$RD/rabbitmq.conf" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$RD/advanced.config" RABBITMQ_CONF_ENV_FILE="$RD/rabbitmq-env.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$RD/enabled_plugins" ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    "/usr/lib/rabbitmq/bin/$prog" "$@")
}
rmq_pid() {
  local pid
  pid=$(pidfile_pid "$R_PID")
  pid_in_dir "$pid" "$RD/home" && echo "$pid"
}
rmq_beams() {  # beam processes of our node, pid file or not
  local p
  for p in $(procs_in_dir "$RD/home"); do
    [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == beam* ]] && echo "$p"
  done
  return 0
}
rmq_up() { rmq_pid >/dev/null && port_open "$AMQP_PORT"; }

start_rabbitmq() {
  [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] ||
    die "rabbitmq: rabbitmq-server is not installed: run tests/deps.sh (package rabbitmq-server)"
  local i p
  if [ -n "$(rmq_beams)" ]; then  # a node of ours, maybe still booting: wait for it
    for ((i = 0; i < TIMEOUT * 10; i++)); do rmq_up && break; [ -n "$(rmq_beams)" ] || break; sleep 0.1; done
  fi
  if rmq_up; then say "rabbitmq already running (pid $(rmq_pid))"; return 0; fi
  local u; u=$(rmq_user)
  own_dir "$u" "$RD" 755
  own_dir "$u" "$RD/home" 700
  own_dir "$u" "$RD/mnesia" 750
  own_dir "$u" "$RD/log" 755
  # a node of ours that did not come up in time (hung): end it
  for p in $(rmq_beams); do kill -9 "$p" 2>/dev/null || true; wait_gone "$p" 5 || true; done
  rm -f "$R_PID"
  port_free_or_die "$AMQP_PORT" rabbitmq GUST_TEST_AMQP_PORT
  port_free_or_die "$DIST_PORT" "rabbitmq (erlang distribution)" GUST_TEST_RABBITMQ_DIST_PORT
  # the server's own config: only what we write here (nothing from /etc/rabbitmq), no plugins
  cat >"$RD/rabbitmq.conf" <<EOF
# written by tests/services.sh: a throw-away test broker
default_user = gust
default_pass = gust
default_vhost = /
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
default_user_tags.administrator = true
loopback_users = none
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = info
EOF
  # Share the package's Erlang cookie, so that Debian's own `rabbitmqctl -n NODE ...` (which runs
  # as rabbitmq with HOME=/var/lib/rabbitmq) can talk to our node too; else one is made at boot.
  local cookie=/var/lib/rabbitmq/.erlang.cookie
  if is_root && [ -s "$cookie" ] && ! cmp -s "$cookie" "$RD/home/.erlang.cookie"; then
    install -m 400 -o "$u" -g "$u" "$cookie" "$RD/home/.erlang.cookie"
  fi
  echo '[].' >"$RD/enabled_plugins"
  : >"$RD/rabbitmq-env.conf"
  if is_root; then chown "$u:" "$RD/rabbitmq.conf" "$RD/enabled_plugins" "$RD/rabbitmq-env.conf"; fi
  : >"$R_OUT"
  if is_root; then chown "$u:" "$R_OUT"; fi
  if ! rmq rabbitmq-server -detached >>"$R_OUT" 2>&1; then
    show_log "RabbitMQ ($NODE, port $AMQP_PORT)" "$R_OUT" "$R_LOG"; return 1
  fi
  # Up = the pid file names a live beam of ours and the AMQP port accepts connections
  # (RabbitMQ opens its listeners last, after creating the default user).
  local seen=0
  for ((i = 0; i < TIMEOUT * 10; i++)); do
    if rmq_up; then break; fi
    if rmq_pid >/dev/null; then seen=1                      # it wrote its pid file early in boot
    elif [ $seen -eq 1 ]; then break                        # ... and died
    elif [ $((i % 10)) -eq 9 ] && [ -z "$(rmq_beams)" ]; then break   # it never started
    fi
    sleep 0.1
  done
  if ! rmq_up; then
    show_log "RabbitMQ ($NODE, port $AMQP_PORT)" "$R_LOG" "$R_OUT"; return 1
  fi
  say "rabbitmq started (pid $(rmq_pid))"
}

stop_rabbitmq() {
  local pid p any=0
  # SIGTERM makes the node shut down cleanly (like rabbitmqctl shutdown, without an Erlang VM start)
  for p in $(rmq_pid) $(rmq_beams); do
    any=1; kill -TERM "$p" 2>/dev/null || true
  done
  for p in $(rmq_beams); do wait_gone "$p" 30 || kill -9 "$p" 2>/dev/null || true; done
  rm -f "$R_PID"
  if [ $any -eq 1 ]; then say "rabbitmq stopped"; else say "rabbitmq was not running"; fi
}
status_rabbitmq() { rmq_up; }
kill_rabbitmq() { local pid; pid=$(rmq_pid) && kill -9 "$pid" && say "rabbitmq: killed beam $pid"; }

# ---------------------------------------------------------------- Redis
redis_pid() {
  local pid
  pid=$(pidfile_pid "$X_PID")
  pid_in_dir "$pid" "$XD" && echo "$pid"
}
redis_up() { redis_pid >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

start_redis() {
  command -v redis-server >/dev/null ||
    die "redis: redis-server is not installed: run tests/deps.sh (package redis-server)"
  if redis_up; then say "redis already running (pid $(redis_pid))"; return 0; fi
  mkdir -p "$XD"
  rm -f "$X_PID"
  port_free_or_die "$REDIS_PORT" redis GUST_TEST_REDIS_PORT
  if ! (cd "$XD" && redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --dir "$XD" \
        --save '' --appendonly no --pidfile "$X_PID" --logfile "$X_LOG" 9>&-) >"$XD/startup.log" 2>&1; then
    show_log "Redis (port $REDIS_PORT)" "$X_LOG" "$XD/startup.log"; return 1
  fi
  local i
  for ((i = 0; i < TIMEOUT * 10; i++)); do redis_up && break; sleep 0.1; done
  redis_up || { show_log "Redis (port $REDIS_PORT)" "$X_LOG" "$XD/startup.log"; return 1; }
  say "redis started (pid $(redis_pid))"
}
stop_redis() {
  local pid
  if pid=$(redis_pid); then
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || kill -9 "$pid" 2>/dev/null || true
    rm -f "$X_PID"
    say "redis stopped"
  else
    rm -f "$X_PID"
    say "redis was not running"
  fi
}
status_redis() { redis_up; }
kill_redis() { local pid; pid=$(redis_pid) && kill -9 "$pid" && say "redis: killed $pid"; }

# ---------------------------------------------------------------- commands
svc_name() {
  case "$1" in
    pg|postgres|postgresql) echo pg ;;
    rabbitmq|rabbit|amqp) echo rabbitmq ;;
    redis) echo redis ;;
    *) die "unknown service '$1' (pg, rabbitmq, redis)" ;;
  esac
}
url_of() { case "$1" in pg) echo "$PG_URL" ;; rabbitmq) echo "$AMQP_URL" ;; redis) echo "$REDIS_URL" ;; esac; }
log_of() { case "$1" in pg) echo "$PG_LOG" ;; rabbitmq) echo "$R_LOG" ;; redis) echo "$X_LOG" ;; esac; }

lock() {
  prepare_dir
  exec 9>"$S/.lock"
  flock -w 300 9 || die "another tests/services.sh holds $S/.lock"
}

print_status() {  # prints one line a service; returns 1 if any is down
  local s rc=0
  for s in "$@"; do
    if "status_$s"; then
      printf '%-9s up    %s   (log %s)\n' "$s" "$(url_of "$s")" "$(log_of "$s")"
    else
      printf '%-9s down\n' "$s"; rc=1
    fi
  done
  return $rc
}

# The servers' ports lie inside Linux's ephemeral range (32768-60999): a client socket that
# happens to get 55672 as its local port stops RabbitMQ from listening there again after a
# restart (seen: "could_not_start_listener 127.0.0.1:55672" in a busy run). Reserved ports
# are never handed out as ephemeral ones. Needs root; elsewhere the risk stays, and is rare.
reserve_ports() {
  local f=/proc/sys/net/ipv4/ip_local_reserved_ports cur want p
  [ -w "$f" ] || return 0
  cur=$(cat "$f" 2>/dev/null) || return 0
  want=$cur
  for p in "$PG_PORT" "$AMQP_PORT" "$DIST_PORT" "$REDIS_PORT"; do
    case ",$want," in *",$p,"*) ;; *) want=${want:+$want,}$p ;; esac
  done
  [ "$want" = "$cur" ] || echo "$want" >"$f" 2>/dev/null || true
}

cmd_start() {
  local svcs=("$@") s rc=0 t0=$EPOCHREALTIME
  reserve_ports
  lock
  if [ ${#svcs[@]} -eq 1 ]; then
    "start_${svcs[0]}" || rc=1
  else
    # in parallel: RabbitMQ's boot (~5 s) dominates; output is shown in order when all are done
    local -A pid
    for s in "${svcs[@]}"; do ("start_$s") >"$S/.start-$s.out" 2>&1 & pid[$s]=$!; done
    for s in "${svcs[@]}"; do
      wait "${pid[$s]}" || rc=1
      cat "$S/.start-$s.out"; rm -f "$S/.start-$s.out"
    done
  fi
  if [ $rc -ne 0 ]; then
    say "FAILED to start (see above); state folder $S"
    return 1
  fi
  say "ready in $(elapsed "$t0") s; state folder $S"
  print_status "${svcs[@]}"
  echo "# to use them:  eval \"\$($SELF env)\""
}

cmd_stop() {
  local purge=0 svcs=() a
  for a in "$@"; do
    case "$a" in --purge) purge=1 ;; *) svcs+=("$(svc_name "$a")") ;; esac
  done
  [ ${#svcs[@]} -gt 0 ] || svcs=("${ALL[@]}")
  if [ ! -d "$S" ]; then say "nothing to stop: $S does not exist"; return 0; fi
  lock
  local s
  for s in "${svcs[@]}"; do "stop_$s"; done
  if [ $purge -eq 1 ]; then
    [ -e "$S/.gust-test-services" ] || die "$S has no .gust-test-services marker: not deleting it"
    for s in "${svcs[@]}"; do
      case "$s" in pg) rm -rf "$PGD" ;; rabbitmq) rm -rf "$RD" ;; redis) rm -rf "$XD" ;; esac
    done
    if [ ${#svcs[@]} -eq ${#ALL[@]} ]; then
      exec 9>&-
      rm -rf "$S"
      # the epmd that RabbitMQ started stays for other nodes; it refuses to die while any is registered
      if command -v epmd >/dev/null; then epmd -kill >/dev/null 2>&1 || true; fi
    fi
    say "purged state for: ${svcs[*]}"
  fi
}

cmd_env() {
  local pgctl="$PGBIN/pg_ctl -D $PGDATA -l $PG_LOG"
  is_root && pgctl="runuser -u postgres -- $pgctl"
  local v
  while IFS='=' read -r k v; do printf 'export %s=%s\n' "$k" "$(q "$v")"; done <<EOF
GUST_TEST_SERVICES_DIR=$S
GUST_TEST_SERVICES=$SELF
GUST_TEST_PG_URL=$PG_URL
GUST_TEST_PG_PORT=$PG_PORT
GUST_TEST_PG_ADMIN_URL=postgresql://postgres@/postgres?host=$PGD/run&port=$PG_PORT
GUST_TEST_PG_DATA=$PGDATA
GUST_TEST_PG_LOG=$PG_LOG
GUST_TEST_PG_CTL=$pgctl
GUST_TEST_PG_STOP=bash $SELF stop pg
GUST_TEST_PG_START=bash $SELF start pg
GUST_TEST_PG_RESTART=bash $SELF restart pg
GUST_TEST_PG_KILL=bash $SELF kill pg
GUST_TEST_AMQP_URL=$AMQP_URL
GUST_TEST_AMQP_PORT=$AMQP_PORT
GUST_TEST_RABBITMQ_NODE=$NODE
GUST_TEST_RABBITMQ_DIST_PORT=$DIST_PORT
GUST_TEST_RABBITMQ_LOG=$R_LOG
GUST_TEST_RABBITMQCTL=bash $SELF rabbitmqctl
GUST_TEST_REDIS_URL=$REDIS_URL
GUST_TEST_REDIS_PORT=$REDIS_PORT
GUST_TEST_REDIS_LOG=$X_LOG
EOF
}

usage() { sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }


main() {
  local cmd=${1:-}; [ $# -gt 0 ] && shift
  local svcs=()
  case "$cmd" in
    start|restart|status|kill)
      local a
      for a in "$@"; do svcs+=("$(svc_name "$a")"); done
      [ ${#svcs[@]} -gt 0 ] || svcs=("${ALL[@]}") ;;
  esac
  case "$cmd" in
    start) cmd_start "${svcs[@]}" ;;
    stop) cmd_stop "$@" ;;
    restart) cmd_stop "${svcs[@]}" && cmd_start "${svcs[@]}" ;;
    status) print_status "${svcs[@]}" ;;
    kill) lock; local s; for s in "${svcs[@]}"; do "kill_$s" || say "$s was not running"; done ;;
    env) cmd_env ;;
    psql) PGDB=${PGDB:-gust}; pg_admin_psql "$@" ;;
    redis-cli) exec redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@" ;;
    rabbitmqctl) rmq rabbitmqctl -n "$NODE" "$@" ;;
    -h|--help|help|"") usage ;;
    *) echo "services: unknown command '$cmd'" >&2; usage ;;
  esac
}
main "$@"
