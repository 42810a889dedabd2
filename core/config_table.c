/* config_table — every setting gust knows, one row each. Everything else (file, env,
 * flags, `gust config show`, docs/configuration.md) is derived from this table, so a
 * new setting is one line here, followed by regenerating the docs:
 *
 *     GUST_UPDATE_DOCS=1 ./bin/tests/test_config     (or: gust config docs > docs/configuration.md)
 *
 * Reloadable means a running daemon may apply a new value without a restart; the
 * others (listeners, pools, stores) are fixed at start-up. */
#include "core/config.h"

#define SEC(n) ((long long)(n) * 1000000LL)
#define MSEC(n) ((long long)(n) * 1000LL)

/* One macro per type keeps each row to the fields that type uses. */
#define RELOAD 1 /* may change at run time */
#define FIXED 0  /* read at start-up only */
#define STR(key, def, rl, doc) {key, CONFIG_STRING, def, 0, 0, NULL, rl, doc}
#define PATH(key, def, rl, doc) {key, CONFIG_PATH, def, 0, 0, NULL, rl, doc}
#define URL(key, def, rl, doc) {key, CONFIG_URL, def, 0, 0, NULL, rl, doc}
#define SECRET(key, def, rl, doc) {key, CONFIG_SECRET, def, 0, 0, NULL, rl, doc}
#define BOOL(key, def, rl, doc) {key, CONFIG_BOOL, def, 0, 1, NULL, rl, doc}
#define INT(key, def, lo, hi, rl, doc) {key, CONFIG_INT, def, lo, hi, NULL, rl, doc}
#define DUR(key, def, lo, hi, rl, doc) {key, CONFIG_DURATION, def, lo, hi, NULL, rl, doc}
#define ENUM(key, def, allowed, rl, doc) {key, CONFIG_ENUM, def, 0, 0, allowed, rl, doc}

static const ConfigSpec table[] = {
    PATH("core.home", "~/.gust", FIXED, "State folder: the SQLite store, logs and defaults live here (GUST_HOME also sets it)"),
    PATH("core.dags_folder", "$home/dags", FIXED, "Folder the DAG processor scans for YAML and JSON DAG files"),
    BOOL("core.dags_are_paused_at_creation", "true", RELOAD, "Whether a newly discovered DAG starts paused"),
    STR("core.default_timezone", "UTC", FIXED, "Time zone for schedules that do not name one (IANA name, e.g. Europe/Paris)"),
    INT("core.parallelism", "32", 1, 4096, RELOAD, "Most task instances queued or running at once, across all DAGs"),
    INT("core.max_active_tasks_per_dag", "16", 1, 100000, RELOAD, "Default limit of running task instances per DAG"),
    INT("core.max_active_runs_per_dag", "16", 1, 10000, RELOAD, "Default limit of active DAG runs per DAG"),
    INT("core.default_task_retries", "0", 0, 1000, RELOAD, "Retries for tasks that do not set `retries`"),
    SECRET("core.secret_key", "", FIXED, "Key (64 hex chars or base64 of 32 bytes) that encrypts connection passwords and extras in the store; empty = $home/secret.key, created 0600 on first use"),

    URL("database.url", "sqlite:///$home/gust.db", FIXED, "Store: sqlite:///PATH or postgresql://user:pass@host:port/db"),

    URL("broker.url", "local://", FIXED, "Broker: amqp://user:pass@host:port/vhost, or local:// for the in-process broker"),
    ENUM("broker.queue_type", "classic", "classic|quorum", FIXED, "RabbitMQ queue type declared for task queues"),

    URL("redis.url", "", FIXED, "Heartbeats and rate limits: redis://[:pass@]host:port/db; empty = in process (standalone only)"),

    STR("api.host", "127.0.0.1", FIXED, "Address the API and UI listen on"),
    INT("api.port", "8080", 0, 65535, FIXED, "Port the API and UI listen on (0 = any free port, printed at start)"),
    SECRET("api.secret_key", "", FIXED, "Key that signs API tokens; empty = a random key per start (tokens die on restart)"),
    INT("api.workers", "8", 1, 1024, FIXED, "Threads serving API requests"),
    DUR("api.token_ttl", "24h", SEC(60), SEC(86400 * 30), FIXED, "How long a token from POST /auth/token stays valid"),
    INT("api.max_body_bytes", "5242880", 1024, 1073741824, FIXED, "Largest request body accepted; a larger one is answered 413"),
    INT("api.max_header_bytes", "32768", 4096, 1048576, FIXED, "Memory for one request's headers; a request with more is refused (431)"),
    DUR("api.request_timeout", "30s", SEC(1), SEC(3600), FIXED, "A connection idle this long mid-request is closed"),
    INT("api.maximum_page_limit", "100", 1, 100000, FIXED, "Largest `limit` a list endpoint accepts"),
    STR("api.tls_cert", "", FIXED, "PEM certificate (chain): set with api.tls_key to serve HTTPS"),
    STR("api.tls_key", "", FIXED, "PEM private key for api.tls_cert"),
    DUR("api.events_retention", "1h", SEC(60), SEC(30 * 86400), FIXED, "How long the journal of state changes behind /api/v2/gust/events is kept (the scheduler prunes it); a client resuming with Last-Event-ID older than this misses what was pruned"),
    INT("api.events_max_clients", "64", 1, 100000, FIXED, "Most /api/v2/gust/events subscribers at once per API server; one more is answered 503"),
    DUR("api.events_keepalive", "15s", SEC(1), SEC(3600), FIXED, "A \": keepalive\" comment is sent on an event stream silent this long, so proxies keep it open"),

    DUR("scheduler.heartbeat", "5s", MSEC(100), SEC(600), RELOAD, "How often a scheduler records that it is alive"),
    DUR("scheduler.dag_dir_list_interval", "30s", SEC(1), SEC(86400), RELOAD, "How often the DAG folder is scanned for new and changed files"),
    DUR("scheduler.queued_timeout", "600s", SEC(1), SEC(7 * 86400), RELOAD, "Queued task instances unclaimed for this long are published again"),
    DUR("scheduler.zombie_timeout", "300s", SEC(1), SEC(86400), RELOAD, "A running task instance whose worker has not written its heartbeat for this long (and whose worker key is gone from Redis) is failed and retried"),

    INT("worker.concurrency", "16", 1, 4096, FIXED, "Task instances a worker runs at once (its -c)"),
    DUR("worker.shutdown_grace", "60s", 0, SEC(86400), RELOAD, "On SIGTERM, how long running tasks may finish before they are killed"),

    ENUM("logging.level", "info", "debug|info|warning|error", RELOAD, "Lowest level of log lines written"),
    ENUM("logging.format", "text", "text|json", FIXED, "Log line format: text for people, json for collectors"),
};

const ConfigSpec *config_specs(size_t *n_out)
{
    *n_out = GUST_ARRAY_LEN(table);
    return table;
}
