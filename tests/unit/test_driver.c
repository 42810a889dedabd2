/* The store drivers, each behaviour checked on both engines: SQLite in a temporary file and
 * the PostgreSQL that tests/services.sh runs (GUST_TEST_PG_URL). Without that URL the
 * PostgreSQL half fails and says how to start the server; it never skips silently.
 *
 * Every test works in its own table, named after this process (gust_drvtest_PID), and drops
 * it, so parallel runs and the real schema do not collide. */
#include "core/util.h"
#include "store/driver.h"
#include "unit.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct Eng {
    int pg;           /* 1 = PostgreSQL, 0 = SQLite */
    const char *name; /* for failure messages */
    const char *url;
} Eng;

static const Eng *g_eng; /* the engine the running test body is checking */
static char g_dir[64];   /* temporary folder of the SQLite database */
static char g_sqlite_url[128];
static char g_table[64];

/* CU_ASSERT that names the engine when it fails. */
#define CHECK(cond)                                                                              \
    do {                                                                                         \
        int ok_ = !!(cond);                                                                      \
        if (!ok_) fprintf(stderr, "\n  [%s] %s:%d: %s\n", g_eng ? g_eng->name : "-", __FILE__,  \
                          __LINE__, #cond);                                                      \
        CU_assertImplementation(ok_, __LINE__, #cond, __FILE__, "", CU_FALSE);                   \
    } while (0)

/* ---- helpers --------------------------------------------------------------------- */

static void cleanup_dir(void)
{
    if (!g_dir[0]) return;
    const char *files[] = {"drv.db", "drv.db-wal", "drv.db-shm", "notadb.db"};
    for (size_t i = 0; i < GUST_ARRAY_LEN(files); i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", g_dir, files[i]);
        unlink(p);
    }
    rmdir(g_dir);
}

static const char *sqlite_url(void)
{
    if (!g_dir[0]) {
        util_strlcpy(g_dir, "/tmp/gust-drvtest-XXXXXX", sizeof g_dir);
        if (!mkdtemp(g_dir)) return NULL;
        atexit(cleanup_dir);
        snprintf(g_sqlite_url, sizeof g_sqlite_url, "sqlite://%s/drv.db", g_dir);
    }
    return g_sqlite_url;
}

/* SQL with every "{T}" replaced by this run's table name. The result lives in one of eight
 * rotating static buffers: use it before calling T() eight more times. */
static const char *T(const char *fmt)
{
    static char bufs[8][1024];
    static int next;
    char *out = bufs[next++ % 8];
    size_t o = 0;
    for (const char *p = fmt; *p && o + 64 < sizeof bufs[0];) {
        if (strncmp(p, "{T}", 3) == 0) {
            o += util_strlcpy(out + o, g_table, sizeof bufs[0] - o);
            p += 3;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return out;
}

static StoreConn *open_conn(void)
{
    char err[512];
    StoreConn *c = store_connect(g_eng->url, err, sizeof err);
    if (!c) fprintf(stderr, "\n  [%s] cannot connect: %s\n", g_eng->name, err);
    CHECK(c != NULL);
    return c;
}

/* Run SQL without parameters; report the error if it fails. */
static int run(StoreConn *c, const char *sql)
{
    int rc = store_exec(c, sql, NULL, 0, NULL);
    if (rc != 0) fprintf(stderr, "\n  [%s] %s: %s\n", g_eng->name, sql, store_error(c));
    return rc;
}

/* The test table: id, an integer, a text and a blob column. */
static void make_table(StoreConn *c)
{
    run(c, T("DROP TABLE IF EXISTS {T}"));
    CHECK(run(c, g_eng->pg ? T("CREATE TABLE {T} (id INTEGER PRIMARY KEY, n BIGINT, txt TEXT NOT NULL DEFAULT '', "
                               "data BYTEA)")
                           : T("CREATE TABLE {T} (id INTEGER PRIMARY KEY, n BIGINT, txt TEXT NOT NULL DEFAULT '', "
                               "data BLOB)")) == 0);
}

static void drop_table(StoreConn *c) { run(c, T("DROP TABLE IF EXISTS {T}")); }

static int64_t count_rows(StoreConn *c)
{
    StoreRows *r = store_query(c, T("SELECT COUNT(*) FROM {T}"), NULL, 0);
    CHECK(r != NULL);
    int64_t n = -1;
    if (r && rows_next(r)) n = rows_int(r, 0);
    rows_free(r);
    return n;
}

static const void *blob_of(StoreRows *r, int col, size_t *len)
{
    return ((StoreRowsBase *)r)->drv->rows_blob(r, col, len);
}

static int ncols_of(StoreRows *r) { return ((StoreRowsBase *)r)->drv->rows_ncols(r); }

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int one_line(const char *s) { return s && !strchr(s, '\n') && !strchr(s, '\t'); }

/* Define name_sqlite and name_postgres, each running body name(eng). */
#define BOTH(name)                                                                                    \
    static void name(const Eng *e);                                                                   \
    static void name##_sqlite(void) { run_on(0, name); }                                              \
    static void name##_postgres(void) { run_on(1, name); }
#define UNIT2(name) UNIT(name##_sqlite), UNIT(name##_postgres)

static void run_on(int pg, void (*body)(const Eng *))
{
    Eng e = {pg, pg ? "postgres" : "sqlite", pg ? getenv("GUST_TEST_PG_URL") : sqlite_url()};
    if (!e.url || !*e.url) {
        if (pg)
            fprintf(stderr, "\n  GUST_TEST_PG_URL is not set: run `tests/services.sh start` and "
                            "`eval \"$(tests/services.sh env)\"`, then run this test again\n");
        CU_FAIL(pg ? "no PostgreSQL to test against (GUST_TEST_PG_URL unset)" : "cannot make a temp folder");
        return;
    }
    snprintf(g_table, sizeof g_table, "gust_drvtest_%ld", (long)getpid());
    g_eng = &e;
    body(&e);
    g_eng = NULL;
}

/* ---- URLs and drivers ------------------------------------------------------------ */

static void test_driver_is_chosen_by_url_scheme(void)
{
    CU_ASSERT_PTR_EQUAL(store_driver_for_url("postgresql://u@h/db"), &store_driver_postgres);
    CU_ASSERT_PTR_EQUAL(store_driver_for_url("postgres://u@h/db"), &store_driver_postgres);
    CU_ASSERT_PTR_EQUAL(store_driver_for_url("sqlite:///tmp/x.db"), &store_driver_sqlite);
    CU_ASSERT_PTR_EQUAL(store_driver_for_url("sqlite://:memory:"), &store_driver_sqlite);
    CU_ASSERT_PTR_NULL(store_driver_for_url("mysql://u@h/db"));
    CU_ASSERT_PTR_NULL(store_driver_for_url("/tmp/x.db"));
    CU_ASSERT_PTR_NULL(store_driver_for_url(NULL));
    char err[256];
    CU_ASSERT_PTR_NULL(store_connect("mysql://root:hunter2secret@db/x", err, sizeof err));
    ASSERT_CONTAINS(err, "'mysql://'");
    CU_ASSERT(strstr(err, "hunter2secret") == NULL);
    CU_ASSERT_PTR_NULL(store_connect("root:hunter2secret@db/x", err, sizeof err));
    ASSERT_CONTAINS(err, "no scheme");
    CU_ASSERT(strstr(err, "hunter2secret") == NULL);
}

static void test_engines_spell_row_locks_their_own_way(void)
{
    char err[256];
    StoreConn *c = store_connect("sqlite://:memory:", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    ASSERT_STR_EQ(store_sql(c, STORE_SQL_SKIP_LOCKED), "");
    ASSERT_STR_EQ(store_sql(c, STORE_SQL_FOR_UPDATE), "");
    store_close(c);
    const char *url = getenv("GUST_TEST_PG_URL");
    if (!url) {
        CU_FAIL("GUST_TEST_PG_URL unset: run `tests/services.sh start` and `eval \"$(tests/services.sh env)\"`");
        return;
    }
    c = store_connect(url, err, sizeof err);
    if (!c) fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    ASSERT_STR_EQ(store_sql(c, STORE_SQL_SKIP_LOCKED), " FOR UPDATE SKIP LOCKED");
    ASSERT_STR_EQ(store_sql(c, STORE_SQL_FOR_UPDATE), " FOR UPDATE");
    store_close(c);
}

/* ---- values ---------------------------------------------------------------------- */

BOTH(test_ints_nulls_text_and_blobs_round_trip)
static void test_ints_nulls_text_and_blobs_round_trip(const Eng *e)
{
    (void)e;
    StoreConn *c = open_conn();
    if (!c) return;
    make_table(c);
    unsigned char bytes[256];
    for (int i = 0; i < 256; i++) bytes[i] = (unsigned char)i; /* NULs and high bytes included */
    const int64_t ints[] = {0, 1, -1, INT64_MAX, INT64_MIN, 1700000000123456};
    const char *ins = T("INSERT INTO {T} (id, n, txt, data) VALUES (?, ?, ?, ?)");
    for (int i = 0; i < 6; i++) {
        StoreParam p[] = {SP_I(i + 1), SP_I(ints[i]), SP_S("t"), SP_B(bytes, sizeof bytes)};
        CHECK(store_exec(c, ins, p, 4, NULL) == 0);
    }
    StoreParam p7[] = {SP_I(7), SP_NIL, SP_S(""), SP_NIL};
    CHECK(store_exec(c, ins, p7, 4, NULL) == 0);
    StoreParam p8[] = {SP_I(8), SP_NIL, SP_S("x"), SP_B("", 0)};
    CHECK(store_exec(c, ins, p8, 4, NULL) == 0);

    StoreRows *r = store_query(c, T("SELECT id, n, txt, data FROM {T} ORDER BY id"), NULL, 0);
    CHECK(r != NULL);
    if (!r) return;
    CHECK(ncols_of(r) == 4);
    for (int i = 0; i < 6; i++) {
        CHECK(rows_next(r) == 1);
        CHECK(rows_int(r, 0) == i + 1);
        CHECK(rows_int(r, 1) == ints[i]);
        char want[32];
        snprintf(want, sizeof want, "%lld", (long long)ints[i]);
        ASSERT_STR_EQ(rows_text(r, 1), want);
        size_t len = 0;
        const void *b = blob_of(r, 3, &len);
        CHECK(len == sizeof bytes && b && memcmp(b, bytes, sizeof bytes) == 0);
    }
    CHECK(rows_next(r) == 1); /* id 7: NULLs and an empty text */
    CHECK(rows_isnull(r, 1) && rows_text(r, 1) == NULL && rows_int(r, 1) == 0);
    CHECK(!rows_isnull(r, 2));
    ASSERT_STR_EQ(rows_text(r, 2), "");
    size_t len = 99;
    CHECK(rows_isnull(r, 3) && blob_of(r, 3, &len) == NULL && len == 0);
    CHECK(rows_next(r) == 1); /* id 8: an empty blob is not NULL */
    CHECK(!rows_isnull(r, 3));
    blob_of(r, 3, &len);
    CHECK(len == 0);
    CHECK(rows_next(r) == 0);
    CHECK(rows_next(r) == 0);
    rows_free(r);

    /* A parameter read back without a column type still comes back as given. */
    StoreParam q[] = {SP_I(42), SP_S("forty-two")};
    r = store_query(c, "SELECT ?, ?", q, 2);
    CHECK(r && rows_next(r) == 1);
    if (r) {
        CHECK(rows_int(r, 0) == 42);
        ASSERT_STR_EQ(rows_text(r, 1), "forty-two");
    }
    rows_free(r);
    drop_table(c);
    store_close(c);
}

BOTH(test_hostile_strings_round_trip_exactly)
static void test_hostile_strings_round_trip_exactly(const Eng *e)
{
    (void)e;
    StoreConn *c = open_conn();
    if (!c) return;
    make_table(c);
    char *big = xmalloc(1024 * 1024 + 1);
    for (size_t i = 0; i < 1024 * 1024; i++) big[i] = (char)('a' + i % 26);
    big[1024 * 1024] = '\0';
    big[1000] = '\'';
    big[2000] = '?';
    const char *vals[] = {
        "it's",
        "\"double\" and 'single' and `back`",
        "'; DROP TABLE x; --",
        "x'); DELETE FROM gust_drvtest; --",
        "what? really?? ?1 $1 :name @p",
        "back\\slash \\' \\\\ \\n",
        "Unicode: héllo wörld — 日本語 🚀 \u00a0",
        "$$ dollar $tag$ quoted $tag$",
        "/* not a comment */ -- nor this",
        "tab\there\r\nnewline",
        big,
    };
    const char *ins = T("INSERT INTO {T} (id, txt) VALUES (?, ?)");
    for (int i = 0; i < (int)GUST_ARRAY_LEN(vals); i++) {
        StoreParam p[] = {SP_I(i), SP_S(vals[i])};
        CHECK(store_exec(c, ins, p, 2, NULL) == 0);
    }
    for (int i = 0; i < (int)GUST_ARRAY_LEN(vals); i++) {
        StoreParam p[] = {SP_I(i)};
        StoreRows *r = store_query(c, T("SELECT txt FROM {T} WHERE id = ?"), p, 1);
        CHECK(r && rows_next(r) == 1);
        if (r && i < (int)GUST_ARRAY_LEN(vals) - 1) ASSERT_STR_EQ(rows_text(r, 0), vals[i]);
        else if (r) CHECK(rows_text(r, 0) && strcmp(rows_text(r, 0), big) == 0);
        rows_free(r);
    }
    /* Looking a hostile value up by equality finds exactly it. */
    StoreParam k[] = {SP_S("'; DROP TABLE x; --")};
    StoreRows *r = store_query(c, T("SELECT id FROM {T} WHERE txt = ?"), k, 1);
    CHECK(r && rows_next(r) == 1 && rows_int(r, 0) == 2 && rows_next(r) == 0);
    rows_free(r);
    CHECK(count_rows(c) == (int64_t)GUST_ARRAY_LEN(vals));

    /* A text parameter with an explicit length stops there. */
    StoreParam sized[] = {SP_I(100), {SP_TEXT, 0, "abcdef", 3}};
    CHECK(store_exec(c, T("INSERT INTO {T} (id, txt) VALUES (?, ?)"), sized, 2, NULL) == 0);
    StoreParam k100[] = {SP_I(100)};
    r = store_query(c, T("SELECT txt FROM {T} WHERE id = ?"), k100, 1);
    CHECK(r && rows_next(r) == 1);
    if (r) ASSERT_STR_EQ(rows_text(r, 0), "abc");
    rows_free(r);

    /* `?` in literals, quoted identifiers and comments is not a placeholder. */
    StoreParam one[] = {SP_S("param")};
    r = store_query(c,
                    "SELECT 'lit?' AS \"q?\", ? AS v, 'it''s ?' AS w /* ? */ -- trailing ?\n", one, 1);
    CHECK(r && rows_next(r) == 1);
    if (r) {
        CHECK(ncols_of(r) == 3);
        ASSERT_STR_EQ(rows_text(r, 0), "lit?");
        ASSERT_STR_EQ(rows_text(r, 1), "param");
        ASSERT_STR_EQ(rows_text(r, 2), "it's ?");
    }
    rows_free(r);
    if (e->pg) { /* PostgreSQL's own quoting: E'' strings and dollar quotes */
        r = store_query(c, "SELECT E'a\\'?', $$b?$$, $x$c?'$x$, ?", one, 1);
        CHECK(r && rows_next(r) == 1);
        if (r) {
            ASSERT_STR_EQ(rows_text(r, 0), "a'?");
            ASSERT_STR_EQ(rows_text(r, 1), "b?");
            ASSERT_STR_EQ(rows_text(r, 2), "c?'");
            ASSERT_STR_EQ(rows_text(r, 3), "param");
        }
        rows_free(r);
    }
    free(big);
    drop_table(c);
    store_close(c);
}

BOTH(test_exec_reports_rows_affected)
static void test_exec_reports_rows_affected(const Eng *e)
{
    (void)e;
    StoreConn *c = open_conn();
    if (!c) return;
    make_table(c);
    int64_t n = -1;
    for (int i = 1; i <= 3; i++) {
        StoreParam p[] = {SP_I(i), SP_I(i * 10)};
        CHECK(store_exec(c, T("INSERT INTO {T} (id, n) VALUES (?, ?)"), p, 2, &n) == 0 && n == 1);
    }
    StoreParam ge[] = {SP_I(20)};
    CHECK(store_exec(c, T("UPDATE {T} SET txt = 'big' WHERE n >= ?"), ge, 1, &n) == 0);
    CHECK(n == 2);
    StoreParam none[] = {SP_I(1000)};
    CHECK(store_exec(c, T("UPDATE {T} SET txt = 'huge' WHERE n >= ?"), none, 1, &n) == 0);
    CHECK(n == 0);
    CHECK(store_exec(c, T("DELETE FROM {T}"), NULL, 0, &n) == 0);
    CHECK(n == 3);
    /* A statement that changes no rows says 0, not the count of the last one that did. */
    CHECK(store_exec(c, T("CREATE INDEX {T}_n ON {T} (n)"), NULL, 0, &n) == 0);
    CHECK(n == 0);
    drop_table(c);
    store_close(c);
}

BOTH(test_placeholder_count_must_match_parameters)
static void test_placeholder_count_must_match_parameters(const Eng *e)
{
    (void)e;
    StoreConn *c = open_conn();
    if (!c) return;
    StoreParam p[] = {SP_I(1), SP_I(2)};
    CHECK(store_exec(c, "SELECT ?", p, 2, NULL) == -1);
    CHECK(store_error_kind(c) == STORE_ERR_OTHER);
    ASSERT_CONTAINS(store_error(c), "placeholders");
    CHECK(store_exec(c, "SELECT ?, ?", p, 1, NULL) == -1);
    CHECK(store_exec(c, "SELECT 1; SELECT 2", NULL, 0, NULL) == -1); /* one statement per call */
    CHECK(store_exec(c, "SELEKT 1", NULL, 0, NULL) == -1);
    CHECK(store_error_kind(c) == STORE_ERR_OTHER && one_line(store_error(c)) && *store_error(c));
    CHECK(store_exec(c, "SELECT ?, ?", p, 2, NULL) == 0); /* and the connection is fine */
    ASSERT_STR_EQ(store_error(c), "");
    CHECK(store_error_kind(c) == STORE_OK);
    store_close(c);
}

/* The same statement is cached: it must survive the table changing under it and being used
 * again while a result of it is still open. */
BOTH(test_cached_statements_survive_schema_changes_and_nesting)
static void test_cached_statements_survive_schema_changes_and_nesting(const Eng *e)
{
    (void)e;
    StoreConn *c = open_conn();
    if (!c) return;
    make_table(c);
    CHECK(run(c, T("INSERT INTO {T} (id, n) VALUES (1, 10), (2, 20)")) == 0);
    const char *all = T("SELECT * FROM {T} ORDER BY id");
    StoreRows *r = store_query(c, all, NULL, 0);
    CHECK(r && ncols_of(r) == 4);
    rows_free(r);
    CHECK(run(c, T("ALTER TABLE {T} ADD COLUMN extra TEXT")) == 0);
    r = store_query(c, all, NULL, 0);
    CHECK(r && ncols_of(r) == 5);
    rows_free(r);

    const char *one = T("SELECT n FROM {T} WHERE id = ?");
    StoreParam p1[] = {SP_I(1)}, p2[] = {SP_I(2)};
    StoreRows *outer = store_query(c, one, p1, 1);
    StoreRows *inner = store_query(c, one, p2, 1);
    CHECK(outer && inner);
    CHECK(inner && rows_next(inner) && rows_int(inner, 0) == 20);
    CHECK(outer && rows_next(outer) && rows_int(outer, 0) == 10);
    rows_free(inner);
    rows_free(outer);
    drop_table(c);
    store_close(c);
}

/* ---- errors and transactions ------------------------------------------------------ */

BOTH(test_constraint_violation_is_reported_and_connection_stays_usable)
static void test_constraint_violation_is_reported_and_connection_stays_usable(const Eng *e)
{
    (void)e;
    StoreConn *c = open_conn();
    if (!c) return;
    make_table(c);
    const char *ins = T("INSERT INTO {T} (id, txt) VALUES (?, ?)");
    StoreParam p[] = {SP_I(1), SP_S("a")};
    CHECK(store_exec(c, ins, p, 2, NULL) == 0);
    CHECK(store_exec(c, ins, p, 2, NULL) == -1);
    CHECK(store_error_kind(c) == STORE_ERR_CONSTRAINT);
    CHECK(one_line(store_error(c)) && *store_error(c));
    StoreParam nul[] = {SP_I(2), SP_NIL}; /* NOT NULL */
    CHECK(store_exec(c, ins, nul, 2, NULL) == -1);
    CHECK(store_error_kind(c) == STORE_ERR_CONSTRAINT);
    StoreParam p2[] = {SP_I(2), SP_S("b")};
    CHECK(store_exec(c, ins, p2, 2, NULL) == 0);
    CHECK(store_error_kind(c) == STORE_OK);

    /* Inside a transaction: the failure, a rollback, and the connection carries on. */
    CHECK(store_begin(c) == 0);
    StoreParam p3[] = {SP_I(3), SP_S("c")};
    CHECK(store_exec(c, ins, p3, 2, NULL) == 0);
    CHECK(store_exec(c, ins, p, 2, NULL) == -1);
    CHECK(store_error_kind(c) == STORE_ERR_CONSTRAINT);
    CHECK(store_rollback(c) == 0);
    CHECK(count_rows(c) == 2);
    CHECK(store_exec(c, ins, p3, 2, NULL) == 0);
    CHECK(count_rows(c) == 3);
    drop_table(c);
    store_close(c);
}

BOTH(test_transactions_commit_and_roll_back)
static void test_transactions_commit_and_roll_back(const Eng *e)
{
    (void)e;
    StoreConn *c = open_conn(), *other = open_conn();
    if (!c || !other) goto out;
    make_table(c);
    const char *ins = T("INSERT INTO {T} (id) VALUES (?)");
    CHECK(store_begin(c) == 0);
    CHECK(store_begin(c) == -1); /* no nesting */
    StoreParam p1[] = {SP_I(1)};
    CHECK(store_exec(c, ins, p1, 1, NULL) == 0);
    CHECK(count_rows(c) == 1);
    CHECK(count_rows(other) == 0); /* not visible before commit */
    CHECK(store_commit(c) == 0);
    CHECK(count_rows(other) == 1);

    CHECK(store_begin(c) == 0);
    StoreParam p2[] = {SP_I(2)};
    CHECK(store_exec(c, ins, p2, 1, NULL) == 0);
    CHECK(store_rollback(c) == 0);
    CHECK(count_rows(c) == 1);
    CHECK(count_rows(other) == 1);

    CHECK(store_commit(c) == -1); /* nothing open */
    CHECK(store_rollback(c) == 0); /* harmless */
    CHECK(store_rollback(c) == 0);
    drop_table(c);
out:
    store_close(other);
    store_close(c);
}

/* A writer that cannot get its lock in time is told BUSY, and can retry once it is free. */
BOTH(test_lock_conflicts_are_reported_as_busy)
static void test_lock_conflicts_are_reported_as_busy(const Eng *e)
{
    StoreConn *a = open_conn(), *b = open_conn();
    if (!a || !b) goto out;
    make_table(a);
    CHECK(run(a, T("INSERT INTO {T} (id, n) VALUES (1, 0)")) == 0);
    /* wait 100 ms for a lock, not the default 5 s (SQLite) or forever (PostgreSQL) */
    CHECK(run(b, e->pg ? "SET lock_timeout = '100ms'" : "PRAGMA busy_timeout = 100") == 0);
    const char *upd = T("UPDATE {T} SET n = n + 1 WHERE id = 1");
    CHECK(store_begin(a) == 0);
    CHECK(store_exec(a, upd, NULL, 0, NULL) == 0);
    if (e->pg) { /* row locks: the conflict shows at the UPDATE */
        CHECK(store_begin(b) == 0);
        CHECK(store_exec(b, upd, NULL, 0, NULL) == -1);
    } else { /* one writer: BEGIN IMMEDIATE itself waits for the lock */
        CHECK(store_begin(b) == -1);
    }
    CHECK(store_error_kind(b) == STORE_ERR_BUSY);
    if (store_error_kind(b) != STORE_ERR_BUSY) fprintf(stderr, "\n  [%s] %s\n", e->name, store_error(b));
    CHECK(store_rollback(b) == 0);
    CHECK(store_commit(a) == 0);
    CHECK(store_begin(b) == 0);
    CHECK(store_exec(b, upd, NULL, 0, NULL) == 0);
    CHECK(store_commit(b) == 0);
    StoreRows *r = store_query(a, T("SELECT n FROM {T} WHERE id = 1"), NULL, 0);
    CHECK(r && rows_next(r) && rows_int(r, 0) == 2);
    rows_free(r);
    drop_table(a);
out:
    store_close(b);
    store_close(a);
}

/* ---- notifications ---------------------------------------------------------------- */

static int wait_for(StoreConn *c, int ms, char *ch, char *pl)
{
    return store_drv(c)->wait(c, ms, ch, 64, pl, 256);
}

BOTH(test_listener_hears_notify_after_commit_and_not_after_rollback)
static void test_listener_hears_notify_after_commit_and_not_after_rollback(const Eng *e)
{
    (void)e;
    StoreConn *a = open_conn(), *b = open_conn(), *w = open_conn();
    if (!a || !b || !w) goto out;
    const StoreDriver *d = store_drv(w);
    char chan[64], other[64], ch[64], pl[256];
    snprintf(chan, sizeof chan, "gust_drvtest_%ld", (long)getpid());
    snprintf(other, sizeof other, "gust_drvtest_other_%ld", (long)getpid());
    CHECK(d->listen(a, chan) == 0);
    CHECK(d->listen(b, chan) == 0);
    CHECK(d->listen(b, chan) == 0); /* twice is once */

    CHECK(store_begin(w) == 0);
    CHECK(d->notify(w, chan, "it's ? \"payload\" 日本") == 0);
    CHECK(wait_for(a, 150, ch, pl) == 0); /* not before commit */
    CHECK(store_commit(w) == 0);
    CHECK(wait_for(a, 2000, ch, pl) == 1);
    ASSERT_STR_EQ(ch, chan);
    ASSERT_STR_EQ(pl, "it's ? \"payload\" 日本");
    CHECK(wait_for(b, 2000, ch, pl) == 1); /* every listener gets it, once */
    ASSERT_STR_EQ(pl, "it's ? \"payload\" 日本");
    CHECK(wait_for(b, 100, ch, pl) == 0);

    CHECK(store_begin(w) == 0);
    CHECK(d->notify(w, chan, "rolled back") == 0);
    CHECK(store_rollback(w) == 0);
    CHECK(wait_for(a, 300, ch, pl) == 0);

    CHECK(d->notify(w, other, "not listened to") == 0);
    CHECK(d->notify(w, chan, "") == 0); /* outside a transaction: at once */
    CHECK(wait_for(a, 2000, ch, pl) == 1);
    ASSERT_STR_EQ(ch, chan);
    ASSERT_STR_EQ(pl, "");
    CHECK(wait_for(a, 100, ch, pl) == 0);

    /* Truncated to the buffers the caller gives. */
    CHECK(d->notify(w, chan, "0123456789") == 0);
    char small_ch[5], small_pl[4];
    CHECK(d->wait(a, 2000, small_ch, sizeof small_ch, small_pl, sizeof small_pl) == 1);
    ASSERT_STR_EQ(small_pl, "012");
    CHECK(strlen(small_ch) == 4);
out:
    store_close(w);
    store_close(b);
    store_close(a);
}

BOTH(test_wait_times_out_on_time)
static void test_wait_times_out_on_time(const Eng *e)
{
    (void)e;
    StoreConn *c = open_conn();
    if (!c) return;
    char chan[64], ch[64], pl[256];
    snprintf(chan, sizeof chan, "gust_drvtest_%ld", (long)getpid());
    CHECK(store_drv(c)->listen(c, chan) == 0);
    int64_t t0 = now_ms();
    CHECK(wait_for(c, 0, ch, pl) == 0);
    CHECK(now_ms() - t0 < 100);
    t0 = now_ms();
    CHECK(wait_for(c, 300, ch, pl) == 0);
    int64_t took = now_ms() - t0;
    if (took < 290 || took > 800) fprintf(stderr, "\n  [%s] wait(300) took %lld ms\n", e->name, (long long)took);
    CHECK(took >= 290 && took <= 800);
    store_close(c);
}

/* Another process cannot use the in-process hub: its commits show up as channel "*". */
static void test_sqlite_reports_other_process_commits_as_star(void)
{
    Eng e = {0, "sqlite", sqlite_url()};
    snprintf(g_table, sizeof g_table, "gust_drvtest_%ld", (long)getpid());
    g_eng = &e;
    StoreConn *c = open_conn();
    if (!c) return;
    make_table(c);
    char ch[64], pl[256];
    CHECK(store_drv(c)->listen(c, "gust") == 0);
    CHECK(wait_for(c, 250, ch, pl) == 0); /* this process's own commits are not "*" */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char err[256];
        StoreConn *w = store_connect(e.url, err, sizeof err);
        int rc = w && store_exec(w, T("INSERT INTO {T} (id) VALUES (1)"), NULL, 0, NULL) == 0;
        _exit(rc ? 0 : 1); /* no store_close: the hub's memory is the parent's copy */
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    int64_t t0 = now_ms();
    CHECK(wait_for(c, 2000, ch, pl) == 1);
    CHECK(now_ms() - t0 < 500);
    ASSERT_STR_EQ(ch, "*");
    ASSERT_STR_EQ(pl, "");
    CHECK(wait_for(c, 250, ch, pl) == 0);
    drop_table(c);
    store_close(c);
    g_eng = NULL;
}

/* ---- connecting ------------------------------------------------------------------- */

/* A TCP port on 127.0.0.1 that nothing listens on. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int port = 1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* The test URL with one part replaced (NULL keeps it). */
static void pg_url_with(const char *url, const char *host, const char *port, const char *password,
                        const char *db, char *out, size_t outlen)
{
    const char *u = "gust", *pw = "", *h = "127.0.0.1", *p = "5432", *d = "gust";
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &err);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val) continue;
        if (!strcmp(o->keyword, "user")) u = o->val;
        if (!strcmp(o->keyword, "password")) pw = o->val;
        if (!strcmp(o->keyword, "host")) h = o->val;
        if (!strcmp(o->keyword, "port")) p = o->val;
        if (!strcmp(o->keyword, "dbname")) d = o->val;
    }
    snprintf(out, outlen, "postgresql://%s:%s@%s:%s/%s", u, password ? password : pw, host ? host : h,
             port ? port : p, db ? db : d);
    PQconninfoFree(opts);
    PQfreemem(err);
}

static void expect_connect_error(const char *url, const char *want, const char *secret)
{
    char err[512] = "";
    StoreConn *c = store_connect(url, err, sizeof err);
    CHECK(c == NULL);
    store_close(c);
    ASSERT_CONTAINS(err, want);
    CHECK(one_line(err));
    if (secret && strstr(err, secret)) fprintf(stderr, "\n  password shown in: %s\n", err);
    CHECK(!secret || !strstr(err, secret));
}

BOTH(test_connect_errors_name_the_problem)
static void test_connect_errors_name_the_problem(const Eng *e)
{
    char url[512], want[256];
    if (e->pg) {
        char port[16];
        snprintf(port, sizeof port, "%d", free_port());
        pg_url_with(e->url, NULL, port, NULL, NULL, url, sizeof url);
        snprintf(want, sizeof want, "cannot connect to PostgreSQL at 127.0.0.1:%s: connection refused", port);
        expect_connect_error(url, want, NULL);
        pg_url_with(e->url, NULL, NULL, "wrong-Secret-pw", NULL, url, sizeof url);
        expect_connect_error(url, "password authentication failed for user '", "wrong-Secret-pw");
        pg_url_with(e->url, NULL, NULL, NULL, "gust_no_such_db", url, sizeof url);
        expect_connect_error(url, "database 'gust_no_such_db' does not exist", NULL);
        pg_url_with(e->url, "dbx.invalid", NULL, "s3cret-pw", NULL, url, sizeof url);
        expect_connect_error(url, "could not resolve host 'dbx.invalid'", "s3cret-pw");
        expect_connect_error("postgresql://gust:pw%zzSecret@127.0.0.1/gust", "invalid PostgreSQL URL", "zzSecret");
        expect_connect_error("postgresql://gust:pw@tSecret@127.0.0.1/gust", "write '@' in a password as %40",
                             "tSecret");
        /* postgres:// is the same thing as postgresql:// */
        snprintf(url, sizeof url, "postgres%s", strchr(e->url, ':'));
        char err[512];
        StoreConn *c = store_connect(url, err, sizeof err);
        CHECK(c != NULL);
        store_close(c);
        return;
    }
    snprintf(url, sizeof url, "sqlite://%s/no/such/dir/x.db", g_dir);
    snprintf(want, sizeof want, "cannot open SQLite database '%s/no/such/dir/x.db': directory '%s/no/such/dir' "
             "does not exist", g_dir, g_dir);
    expect_connect_error(url, want, NULL);
    snprintf(url, sizeof url, "sqlite://%s", g_dir);
    expect_connect_error(url, "it is a directory", NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/notadb.db", g_dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        for (int i = 0; i < 100; i++) fputs("this is not a database, just some text\n", f);
        fclose(f);
    }
    snprintf(url, sizeof url, "sqlite://%s", path);
    expect_connect_error(url, "not a SQLite database", NULL);
    expect_connect_error("sqlite://", "has no path", NULL);
    expect_connect_error("sqlite:///tmp/x.db?mode=ro", "query string", NULL);
    if (geteuid() != 0) { /* root reads everything */
        chmod(path, 0);
        expect_connect_error(url, "cannot read and write it", NULL);
    }
    /* A relative path and :memory: both open. */
    char err[256];
    StoreConn *m = store_connect("sqlite://:memory:", err, sizeof err);
    CHECK(m && store_exec(m, "CREATE TABLE t (x)", NULL, 0, NULL) == 0);
    store_close(m);
}

/* ---- PostgreSQL restarts ------------------------------------------------------------ */

static void test_postgres_restart_is_survived(void)
{
    Eng e = {1, "postgres", getenv("GUST_TEST_PG_URL")};
    const char *restart = getenv("GUST_TEST_PG_RESTART");
    if (!e.url || !restart) {
        fprintf(stderr, "\n  GUST_TEST_PG_URL or GUST_TEST_PG_RESTART is not set: run `tests/services.sh start` "
                        "and `eval \"$(tests/services.sh env)\"`, then run this test again\n");
        CU_FAIL("no PostgreSQL to restart (GUST_TEST_PG_URL / GUST_TEST_PG_RESTART unset)");
        return;
    }
    snprintf(g_table, sizeof g_table, "gust_drvtest_%ld", (long)getpid());
    g_eng = &e;
    StoreConn *c = open_conn(), *tx = open_conn(), *l = open_conn();
    if (!c || !tx || !l) goto out;
    make_table(c);
    const char *ins = T("INSERT INTO {T} (id) VALUES (?)");
    StoreParam p1[] = {SP_I(1)}, p2[] = {SP_I(2)}, p3[] = {SP_I(3)};
    CHECK(store_exec(c, ins, p1, 1, NULL) == 0); /* prepared before the restart */
    CHECK(store_drv(l)->listen(l, g_table) == 0); /* a channel of this run only */
    CHECK(store_begin(tx) == 0);
    CHECK(store_exec(tx, ins, p2, 1, NULL) == 0);

    int64_t t0 = now_ms();
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s >/dev/null 2>&1", restart);
    int rc = system(cmd);
    CHECK(rc == 0);
    if (rc != 0) fprintf(stderr, "\n  `%s` failed (%d)\n", restart, rc);

    /* Outside a transaction: reconnected and retried, invisibly. */
    CHECK(store_exec(c, ins, p3, 1, NULL) == 0);
    if (store_error_kind(c) != STORE_OK) fprintf(stderr, "\n  after restart: %s\n", store_error(c));
    CHECK(count_rows(c) == 2); /* 1 and 3: the open transaction's row died with the server */

    /* Inside one: told, rolls back (reconnecting), runs it again. */
    CHECK(store_exec(tx, ins, p2, 1, NULL) == -1);
    CHECK(store_error_kind(tx) == STORE_ERR_CONNECTION);
    ASSERT_CONTAINS(store_error(tx), "lost the connection to PostgreSQL at");
    CHECK(store_exec(tx, ins, p2, 1, NULL) == -1); /* still, until rollback */
    CHECK(store_commit(tx) == -1 && store_error_kind(tx) == STORE_ERR_CONNECTION);
    CHECK(store_rollback(tx) == 0);
    CHECK(store_begin(tx) == 0);
    CHECK(store_exec(tx, ins, p2, 1, NULL) == 0);
    CHECK(store_commit(tx) == 0);
    CHECK(count_rows(c) == 3);

    /* The listener reconnects, says it may have missed something ("*"), and still listens. */
    char ch[64], pl[256];
    CHECK(wait_for(l, 5000, ch, pl) == 1);
    ASSERT_STR_EQ(ch, "*");
    CHECK(store_drv(c)->notify(c, g_table, "after restart") == 0);
    CHECK(wait_for(l, 5000, ch, pl) == 1);
    ASSERT_STR_EQ(ch, g_table);
    ASSERT_STR_EQ(pl, "after restart");
    int64_t took = now_ms() - t0;
    if (took > 10000) fprintf(stderr, "\n  restart and recovery took %lld ms\n", (long long)took);
    CHECK(took < 10000);
    drop_table(c);
out:
    store_close(l);
    store_close(tx);
    store_close(c);
    g_eng = NULL;
}

/* The server is down when a statement comes: the call waits (backoff) until it is back. */
static void test_postgres_outage_is_waited_out(void)
{
    Eng e = {1, "postgres", getenv("GUST_TEST_PG_URL")};
    const char *stop = getenv("GUST_TEST_PG_STOP"), *start = getenv("GUST_TEST_PG_START");
    if (!e.url || !stop || !start) {
        fprintf(stderr, "\n  GUST_TEST_PG_URL, GUST_TEST_PG_STOP or GUST_TEST_PG_START is not set: run "
                        "`tests/services.sh start` and `eval \"$(tests/services.sh env)\"`, then run this test again\n");
        CU_FAIL("no PostgreSQL to stop and start (GUST_TEST_PG_* unset)");
        return;
    }
    snprintf(g_table, sizeof g_table, "gust_drvtest_%ld", (long)getpid());
    g_eng = &e;
    StoreConn *c = open_conn();
    if (!c) goto out;
    make_table(c);
    const char *ins = T("INSERT INTO {T} (id) VALUES (?)");
    StoreParam p1[] = {SP_I(1)}, p2[] = {SP_I(2)};
    CHECK(store_exec(c, ins, p1, 1, NULL) == 0);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s >/dev/null 2>&1", stop);
    CHECK(system(cmd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) { /* bring it back in a second, while the parent is already waiting */
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
        snprintf(cmd, sizeof cmd, "%s >/dev/null 2>&1", start);
        _exit(system(cmd) == 0 ? 0 : 1);
    }
    int64_t t0 = now_ms();
    CHECK(store_exec(c, ins, p2, 1, NULL) == 0);
    int64_t took = now_ms() - t0;
    if (store_error_kind(c) != STORE_OK) fprintf(stderr, "\n  during the outage: %s\n", store_error(c));
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(took >= 500 && took < 10000); /* it did wait, and not for long */
    CHECK(count_rows(c) == 2);
    drop_table(c);
out:
    store_close(c);
    g_eng = NULL;
}

static const UnitTest tests[] = {
    UNIT(test_driver_is_chosen_by_url_scheme),
    UNIT(test_engines_spell_row_locks_their_own_way),
    UNIT2(test_ints_nulls_text_and_blobs_round_trip),
    UNIT2(test_hostile_strings_round_trip_exactly),
    UNIT2(test_exec_reports_rows_affected),
    UNIT2(test_placeholder_count_must_match_parameters),
    UNIT2(test_cached_statements_survive_schema_changes_and_nesting),
    UNIT2(test_constraint_violation_is_reported_and_connection_stays_usable),
    UNIT2(test_transactions_commit_and_roll_back),
    UNIT2(test_lock_conflicts_are_reported_as_busy),
    UNIT2(test_listener_hears_notify_after_commit_and_not_after_rollback),
    UNIT2(test_wait_times_out_on_time),
    UNIT(test_sqlite_reports_other_process_commits_as_star),
    UNIT2(test_connect_errors_name_the_problem),
    UNIT(test_postgres_restart_is_survived),
    UNIT(test_postgres_outage_is_waited_out),
    {0},
};

UNIT_MAIN("driver", tests)
