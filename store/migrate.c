/* migrate — applying, checking and resetting the schema (see store.h, schema.h).
 *
 * Each migration runs in its own transaction together with the row that records it, so a
 * database is always at a whole version. On PostgreSQL an advisory lock serialises two
 * `gust db migrate` started at once; the loser re-reads the version and finds nothing to do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/schema.h"
#include "store/store.h"

/* Children before parents, so foreign keys never block a drop. Every table any migration
 * creates must be listed here. */
static const char *const TABLES[] = {
    "outbox", "asset_dag_run_queue", "dag_schedule_asset_reference", "asset_event", "asset", "event_log",
    "import_error", "task_log", "slot_pool", "connection", "variable", "xcom", "task_instance_history",
    "task_instance", "dag_run", "dag_version", "dag", "state_event", "api_user", "job", "gust_schema",
};

int store_schema_target(void)
{
    int n;
    const Migration *m = schema_migrations(&n);
    return m[n - 1].version;
}

static int table_exists(Store *s, const char *name)
{
    int64_t n = 0;
    const char *sql = store_is_sqlite(s) ? "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
                                         : "SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE schemaname = "
                                           "current_schema() AND tablename = ?";
    StoreParam p[] = {SP_S(name)};
    if (store_q_int(s, sql, p, 1, 0, &n) != 0) return -1;
    return n > 0;
}

int store_schema_version(Store *s)
{
    int exists = table_exists(s, "gust_schema");
    if (exists <= 0) return exists;
    int64_t v = 0;
    if (store_q_int(s, "SELECT MAX(version) FROM gust_schema", NULL, 0, 0, &v) != 0) return -1;
    return (int)v;
}

static char *expand(const Store *s, const char *sql)
{
    const char *id = strcmp(s->drv->name, "sqlite") == 0 ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGSERIAL PRIMARY KEY";
    StrBuf b = {0};
    const char *p = sql, *at;
    while ((at = strstr(p, "{{ID}}"))) {
        sb_appendn(&b, p, (size_t)(at - p));
        sb_append(&b, id);
        p = at + 6;
    }
    sb_append(&b, p);
    return sb_take(&b);
}

typedef struct MigrateStep {
    const Migration *m;
    int skipped;  /* another process applied it first */
} MigrateStep;

static int apply_one(Store *s, void *ud)
{
    MigrateStep *st = ud;
    st->skipped = 0;
    if (!store_is_sqlite(s) && store_x(s, "SELECT pg_advisory_xact_lock(7301001)", NULL, 0, NULL) != 0) return -1;
    if (store_x(s, "CREATE TABLE IF NOT EXISTS gust_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                   "applied_at BIGINT NOT NULL)",
                NULL, 0, NULL) != 0)
        return -1;
    int64_t have = 0;
    if (store_q_int(s, "SELECT MAX(version) FROM gust_schema", NULL, 0, 0, &have) != 0) return -1;
    if (have >= st->m->version) {
        st->skipped = 1;
        return 0;
    }
    for (const char *const *stmt = st->m->sql; *stmt; stmt++) {
        char *sql = expand(s, *stmt);
        int rc = store_x(s, sql, NULL, 0, NULL);
        free(sql);
        if (rc != 0) {
            char why[400];
            util_strlcpy(why, s->err, sizeof why);
            store_set_error(s, "migration %d (%s) failed: %s", st->m->version, st->m->name, why);
            return -1;
        }
    }
    StoreParam p[] = {SP_I(st->m->version), SP_S(st->m->name), SP_I(util_now_us())};
    return store_x(s, "INSERT INTO gust_schema (version, name, applied_at) VALUES (?, ?, ?)", p, 3, NULL);
}

int store_migrate(Store *s, int *applied)
{
    if (applied) *applied = 0;
    int have = store_schema_version(s);
    if (have < 0) return -1;
    if (have > store_schema_target()) {
        store_set_error(s, "the database schema (version %d) is newer than this gust (%d): upgrade gust", have,
                        store_schema_target());
        return -1;
    }
    int n;
    const Migration *ms = schema_migrations(&n);
    for (int i = 0; i < n; i++) {
        if (ms[i].version <= have) continue;
        MigrateStep st = {&ms[i], 0};
        if (store_tx(s, apply_one, &st) != 0) return -1;
        if (!st.skipped && applied) (*applied)++;
    }
    return 0;
}

int store_check(Store *s, char *msg, size_t msglen)
{
    int have = store_schema_version(s);
    int want = store_schema_target();
    if (have < 0) {
        snprintf(msg, msglen, "cannot read the schema version: %s", s->err);
        return -1;
    }
    if (have == want) {
        snprintf(msg, msglen, "the database schema is up to date (version %d)", have);
        return 0;
    }
    if (have == 0)
        snprintf(msg, msglen, "the database has no gust schema yet: run gust db migrate");
    else if (have < want)
        snprintf(msg, msglen, "the database schema is version %d, this gust needs %d: run gust db migrate", have,
                 want);
    else
        snprintf(msg, msglen, "the database schema (version %d) is newer than this gust (%d): upgrade gust", have,
                 want);
    return -1;
}

static int drop_all(Store *s, void *ud)
{
    (void)ud;
    for (size_t i = 0; i < GUST_ARRAY_LEN(TABLES); i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s%s", TABLES[i], store_is_sqlite(s) ? "" : " CASCADE");
        if (store_x(s, sql, NULL, 0, NULL) != 0) return -1;
    }
    return 0;
}

int store_reset(Store *s)
{
    if (store_tx(s, drop_all, NULL) != 0) return -1;
    return store_migrate(s, NULL);
}
