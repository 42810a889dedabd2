/* Variables, connections, pools, XComs, task logs, the event log and import errors, each
 * checked on both engines: SQLite in a fresh temporary folder, and the PostgreSQL that
 * tests/services.sh runs (GUST_TEST_PG_URL). A missing PostgreSQL fails the PostgreSQL half
 * with the commands that start it. On PostgreSQL the suite works in a schema of its own
 * (gust_test_kv), so another suite resetting the public schema at the same time cannot
 * pull tables from under it. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/secret.h"
#include "core/util.h"
#include "store/kv.h"
#include "store/store.h"
#include "store/xcom.h"
#include "unit.h"

#define PG_SCHEMA "gust_test_kv"

/* ---- harness ------------------------------------------------------------------------------ */

static char sqlite_dir[64];

static Store *open_fresh(int pg)
{
    char err[512];
    char *url;
    if (pg) {
        const char *base = getenv("GUST_TEST_PG_URL");
        if (!base || !*base) {
            fprintf(stderr, "\n  GUST_TEST_PG_URL is not set: run tests/services.sh start and "
                            "eval \"$(tests/services.sh env)\" (make test does both)\n");
            CU_FAIL("no PostgreSQL to test against");
            return NULL;
        }
        Store *admin = store_open(base, err, sizeof err);
        if (!admin) {
            fprintf(stderr, "\n  cannot open postgres store: %s\n", err);
            CU_FAIL("store_open");
            return NULL;
        }
        if (store_x(admin, "CREATE SCHEMA IF NOT EXISTS " PG_SCHEMA, NULL, 0, NULL) != 0)
            fprintf(stderr, "\n  create schema: %s\n", store_last_error(admin));
        store_free(admin);
        url = xasprintf("%s%soptions=-csearch_path%%3D" PG_SCHEMA, base, strchr(base, '?') ? "&" : "?");
    } else {
        snprintf(sqlite_dir, sizeof sqlite_dir, "/tmp/gust-test-kv-XXXXXX");
        if (!mkdtemp(sqlite_dir)) {
            CU_FAIL("mkdtemp");
            return NULL;
        }
        url = xasprintf("sqlite://%s/gust.db", sqlite_dir);
    }
    Store *s = store_open(url, err, sizeof err);
    free(url);
    if (!s) {
        fprintf(stderr, "\n  cannot open %s store: %s\n", pg ? "postgres" : "sqlite", err);
        CU_FAIL("store_open");
        return NULL;
    }
    if (store_reset(s) != 0) {
        fprintf(stderr, "\n  reset failed: %s\n", store_last_error(s));
        CU_FAIL("store_reset");
        store_free(s);
        return NULL;
    }
    return s;
}

static void close_store(Store *s, int pg)
{
    store_free(s);
    if (!pg && sqlite_dir[0]) {
        static const char *const files[] = {"gust.db", "gust.db-wal", "gust.db-shm", "gust.db-journal"};
        for (size_t i = 0; i < GUST_ARRAY_LEN(files); i++) {
            char *p = xasprintf("%s/%s", sqlite_dir, files[i]);
            unlink(p);
            free(p);
        }
        rmdir(sqlite_dir);
        sqlite_dir[0] = '\0';
    }
}

/* test_NAME_sqlite and test_NAME_postgres from a body NAME(Store *s). */
#define BOTH(name)                                      \
    static void name(Store *s);                         \
    static void name##_sqlite(void)                     \
    {                                                   \
        Store *s = open_fresh(0);                       \
        if (s) name(s);                                 \
        close_store(s, 0);                              \
    }                                                   \
    static void name##_postgres(void)                   \
    {                                                   \
        Store *s = open_fresh(1);                       \
        if (s) name(s);                                 \
        close_store(s, 1);                              \
    }
#define UNIT2(name) UNIT(name##_sqlite), UNIT(name##_postgres)

/* Assert that a store call succeeded, printing the store's message when it did not. */
#define OK(s, call)                                                                                     \
    do {                                                                                                \
        int rc_ = (call);                                                                               \
        if (rc_ < 0) fprintf(stderr, "\n  %s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,          \
                             store_last_error(s));                                                      \
        CU_ASSERT(rc_ >= 0);                                                                            \
    } while (0)

/* Strings that have broken SQL built by pasting, and text handling in general. */
static const char *const HOSTILE[] = {
    "plain",
    "it's",
    "'; DROP TABLE variable; --",
    "\"; DROP TABLE xcom; --",
    "what?",
    "? ?? ?1 $1 :name @p %s %n",
    "back\\slash\\",
    "\\x00\\'",
    "tab\there\nnew line\r\n",
    "Unicode: 日本語 ✓ é 🚀 \u00a0",
    "' OR '1'='1",
    "",
};

/* A big value: 1 MiB of printable text with quotes and question marks sprinkled in. */
static char *big_text(size_t n)
{
    char *b = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) b[i] = "abc'?\\\"xyz 0123456789"[i % 21];
    b[n] = '\0';
    return b;
}

static SecretKey *key_from_hex(char c)
{
    char hex[65];
    memset(hex, c, 64);
    hex[64] = '\0';
    char err[256];
    SecretKey *k = secret_key_parse(hex, err, sizeof err);
    if (!k) fprintf(stderr, "\n  secret_key_parse: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL(k);
    return k;
}

/* ---- variables ------------------------------------------------------------------------------ */

BOTH(test_variables_round_trip_hostile_keys_and_values)
static void test_variables_round_trip_hostile_keys_and_values(Store *s)
{
    size_t n = GUST_ARRAY_LEN(HOSTILE);
    for (size_t i = 0; i < n; i++) {
        if (!*HOSTILE[i]) continue; /* an empty key is refused; an empty value is fine (below) */
        int created = -1;
        OK(s, store_var_set(s, HOSTILE[i], HOSTILE[n - 1 - i], NULL, &created));
        CU_ASSERT_EQUAL(created, 1);
    }
    for (size_t i = 0; i < n; i++) {
        if (!*HOSTILE[i]) continue;
        StoreVariable *v = store_var_get(s, HOSTILE[i], NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        ASSERT_STR_EQ(v->key, HOSTILE[i]);
        ASSERT_STR_EQ(v->val, HOSTILE[n - 1 - i]);
        CU_ASSERT_PTR_NULL(v->description);
        store_var_free(v);
    }
    /* the tables the hostile strings name are still there */
    int64_t count = -1;
    OK(s, store_q_int(s, "SELECT COUNT(*) FROM variable", NULL, 0, -1, &count));
    CU_ASSERT_EQUAL(count, (int64_t)n - 1);

    /* 1 MiB value, and a 1 MiB key-sized value replaced in place */
    char *big = big_text(1024 * 1024);
    int created = -1;
    OK(s, store_var_set(s, "big", big, "one mebibyte", &created));
    CU_ASSERT_EQUAL(created, 1);
    StoreVariable *v = store_var_get(s, "big", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(strlen(v->val), strlen(big));
    CU_ASSERT(strcmp(v->val, big) == 0);
    ASSERT_STR_EQ(v->description, "one mebibyte");
    store_var_free(v);
    free(big);
}

BOTH(test_variables_upsert_keeps_description_unless_given)
static void test_variables_upsert_keeps_description_unless_given(Store *s)
{
    int created = -1;
    OK(s, store_var_set(s, "k", "v1", "first", &created));
    CU_ASSERT_EQUAL(created, 1);
    OK(s, store_var_set(s, "k", "v2", NULL, &created));
    CU_ASSERT_EQUAL(created, 0);
    StoreVariable *v = store_var_get(s, "k", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    ASSERT_STR_EQ(v->val, "v2");
    ASSERT_STR_EQ(v->description, "first");
    store_var_free(v);
    OK(s, store_var_set(s, "k", "", "second", NULL));
    v = store_var_get(s, "k", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    ASSERT_STR_EQ(v->val, "");
    ASSERT_STR_EQ(v->description, "second");
    store_var_free(v);
}

BOTH(test_variables_missing_list_delete_and_invalid_text)
static void test_variables_missing_list_delete_and_invalid_text(Store *s)
{
    int missing = 0;
    CU_ASSERT_PTR_NULL(store_var_get(s, "nope", &missing));
    CU_ASSERT_EQUAL(missing, 1);
    ASSERT_STR_EQ(store_last_error(s), "no variable 'nope'");

    const char *keys[] = {"b", "a", "c", "B", "a_1"};
    for (size_t i = 0; i < GUST_ARRAY_LEN(keys); i++) OK(s, store_var_set(s, keys[i], "x", NULL, NULL));
    StoreVariableList l;
    OK(s, store_var_list(s, 0, 0, &l));
    CU_ASSERT_EQUAL_FATAL(l.n, 5);
    /* byte order on both engines, whatever PostgreSQL's locale */
    ASSERT_STR_EQ(l.items[0].key, "B");
    ASSERT_STR_EQ(l.items[1].key, "a");
    ASSERT_STR_EQ(l.items[2].key, "a_1");
    ASSERT_STR_EQ(l.items[3].key, "b");
    ASSERT_STR_EQ(l.items[4].key, "c");
    store_var_list_free(&l);
    OK(s, store_var_list(s, 2, 1, &l));
    CU_ASSERT_EQUAL_FATAL(l.n, 2);
    ASSERT_STR_EQ(l.items[0].key, "a");
    ASSERT_STR_EQ(l.items[1].key, "a_1");
    store_var_list_free(&l);

    CU_ASSERT_EQUAL(store_var_delete(s, "a"), 1);
    CU_ASSERT_EQUAL(store_var_delete(s, "a"), 0);
    CU_ASSERT_PTR_NULL(store_var_get(s, "a", &missing));
    CU_ASSERT_EQUAL(missing, 1);

    /* not text: refused with the same words on both engines */
    CU_ASSERT_EQUAL(store_var_set(s, "bad", "\xff\xfe", NULL, NULL), -1);
    ASSERT_STR_EQ(store_last_error(s), "variable value is not valid UTF-8 text");
    CU_ASSERT_EQUAL(store_var_set(s, "", "x", NULL, NULL), -1);
    ASSERT_CONTAINS(store_last_error(s), "variable key");
}

/* ---- XCom ----------------------------------------------------------------------------------- */

BOTH(test_xcom_round_trips_hostile_json_values)
static void test_xcom_round_trips_hostile_json_values(Store *s)
{
    for (size_t i = 0; i < GUST_ARRAY_LEN(HOSTILE); i++) {
        cJSON *j = cJSON_CreateString(HOSTILE[i]);
        char *value = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        char key[32];
        snprintf(key, sizeof key, "k%02zu", i);
        OK(s, store_xcom_push(s, "d'; --", "run?1", "t\\x", -1, key, value));
        char *got = store_xcom_pull(s, "d'; --", "run?1", "t\\x", -1, key, NULL);
        ASSERT_STR_EQ(got, value);
        free(got);
        free(value);
    }
    /* a hostile string as the key itself */
    OK(s, store_xcom_push(s, "d", "r", "t", -1, "'; DROP TABLE xcom; --", "{\"a\": [1, 2, \"?\"]}"));
    char *got = store_xcom_pull(s, "d", "r", "t", -1, "'; DROP TABLE xcom; --", NULL);
    ASSERT_STR_EQ(got, "{\"a\": [1, 2, \"?\"]}");
    free(got);

    /* 1 MiB document */
    char *big = big_text(1024 * 1024);
    cJSON *j = cJSON_CreateString(big);
    char *doc = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    OK(s, store_xcom_push(s, "d", "r", "t", -1, NULL, doc));
    got = store_xcom_pull(s, "d", "r", "t", -1, "return_value", NULL);
    CU_ASSERT_PTR_NOT_NULL(got);
    CU_ASSERT(got && strcmp(got, doc) == 0);
    free(got);
    free(doc);
    free(big);
}

BOTH(test_xcom_upsert_list_clear_and_missing)
static void test_xcom_upsert_list_clear_and_missing(Store *s)
{
    OK(s, store_xcom_push(s, "d", "r", "t", -1, NULL, "1"));
    OK(s, store_xcom_push(s, "d", "r", "t", -1, NULL, "2")); /* replaces */
    OK(s, store_xcom_push(s, "d", "r", "t", -1, "b", "\"x\""));
    OK(s, store_xcom_push(s, "d", "r", "t", -1, "a", "null"));
    OK(s, store_xcom_push(s, "d", "r", "t", 3, NULL, "{\"mapped\": true}")); /* another instance */
    char *v = store_xcom_pull(s, "d", "r", "t", -1, NULL, NULL);
    ASSERT_STR_EQ(v, "2");
    free(v);
    v = store_xcom_pull(s, "d", "r", "t", 3, NULL, NULL);
    ASSERT_STR_EQ(v, "{\"mapped\": true}");
    free(v);

    StoreXcomList l;
    OK(s, store_xcom_list(s, "d", "r", "t", -1, &l));
    CU_ASSERT_EQUAL_FATAL(l.n, 3);
    ASSERT_STR_EQ(l.items[0].key, "a");
    ASSERT_STR_EQ(l.items[1].key, "b");
    ASSERT_STR_EQ(l.items[2].key, "return_value");
    ASSERT_STR_EQ(l.items[2].value, "2");
    CU_ASSERT(l.items[2].timestamp > 0);
    CU_ASSERT_EQUAL(l.items[2].map_index, -1);
    store_xcom_list_free(&l);

    CU_ASSERT_EQUAL(store_xcom_clear(s, "d", "r", "t", -1), 3);
    int missing = 0;
    CU_ASSERT_PTR_NULL(store_xcom_pull(s, "d", "r", "t", -1, NULL, &missing));
    CU_ASSERT_EQUAL(missing, 1);
    ASSERT_CONTAINS(store_last_error(s), "no XCom 'return_value' for t");
    v = store_xcom_pull(s, "d", "r", "t", 3, NULL, NULL); /* the mapped one is untouched */
    CU_ASSERT_PTR_NOT_NULL(v);
    free(v);

    CU_ASSERT_EQUAL(store_xcom_push(s, "d", "r", "t", -1, NULL, "{not json"), -1);
    ASSERT_STR_EQ(store_last_error(s), "XCom value is not valid JSON");
}

typedef struct JoinTx {
    int fail;
} JoinTx;

static int join_tx_fn(Store *s, void *ud)
{
    JoinTx *j = ud;
    if (store_xcom_push(s, "d", "r", "t", -1, NULL, "42") != 0) return -1;
    if (store_var_set(s, "in_tx", "yes", NULL, NULL) != 0) return -1;
    if (store_log_append(s, "ti1", 1, "tail\n", 5, NULL) != 0) return -1;
    return j->fail ? -1 : 0;
}

BOTH(test_writes_join_the_callers_transaction)
static void test_writes_join_the_callers_transaction(Store *s)
{
    JoinTx j = {1};
    CU_ASSERT_EQUAL(store_tx(s, join_tx_fn, &j), -1); /* rolled back: nothing stays */
    int missing = 0;
    CU_ASSERT_PTR_NULL(store_xcom_pull(s, "d", "r", "t", -1, NULL, &missing));
    CU_ASSERT_EQUAL(missing, 1);
    CU_ASSERT_PTR_NULL(store_var_get(s, "in_tx", &missing));
    CU_ASSERT_EQUAL(store_log_size(s, "ti1", 1), 0);
    j.fail = 0;
    CU_ASSERT_EQUAL(store_tx(s, join_tx_fn, &j), 0); /* committed: everything stays */
    char *v = store_xcom_pull(s, "d", "r", "t", -1, NULL, NULL);
    ASSERT_STR_EQ(v, "42");
    free(v);
    StoreVariable *var = store_var_get(s, "in_tx", NULL);
    CU_ASSERT_PTR_NOT_NULL(var);
    store_var_free(var);
    CU_ASSERT_EQUAL(store_log_size(s, "ti1", 1), 5);
}

/* ---- connections ---------------------------------------------------------------------------- */

BOTH(test_connection_secrets_are_encrypted_at_rest)
static void test_connection_secrets_are_encrypted_at_rest(Store *s)
{
    SecretKey *k = key_from_hex('a');
    StoreConnection c = {0};
    c.conn_id = (char *)"my_pg";
    c.conn_type = (char *)"postgres";
    c.host = (char *)"db.example.com";
    c.login = (char *)"gust";
    c.password = (char *)"s3cr3t-p@ss'; DROP TABLE connection; --";
    c.port = 5432;
    c.schema = (char *)"warehouse";
    c.extra = (char *)"{\"sslmode\": \"require\", \"token\": \"tok-123456\"}";
    c.description = (char *)"the warehouse";
    OK(s, store_conn_add(s, k, &c));

    /* the raw columns hold tokens, not the secrets */
    StoreParam p[] = {SP_S("my_pg")};
    char *raw_pw = store_q_str(s, "SELECT password FROM connection WHERE conn_id = ?", p, 1);
    char *raw_extra = store_q_str(s, "SELECT extra FROM connection WHERE conn_id = ?", p, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw_pw);
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw_extra);
    CU_ASSERT(secret_is_token(raw_pw));
    CU_ASSERT(secret_is_token(raw_extra));
    CU_ASSERT_PTR_NULL(strstr(raw_pw, "s3cr3t"));
    CU_ASSERT_PTR_NULL(strstr(raw_extra, "sslmode"));
    CU_ASSERT_PTR_NULL(strstr(raw_extra, "tok-123456"));
    free(raw_pw);
    free(raw_extra);

    StoreConnection *got = store_conn_get(s, k, "my_pg", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    ASSERT_STR_EQ(got->conn_type, "postgres");
    ASSERT_STR_EQ(got->host, "db.example.com");
    ASSERT_STR_EQ(got->login, "gust");
    ASSERT_STR_EQ(got->password, c.password);
    ASSERT_STR_EQ(got->schema, "warehouse");
    ASSERT_STR_EQ(got->extra, c.extra);
    ASSERT_STR_EQ(got->description, "the warehouse");
    CU_ASSERT_EQUAL(got->port, 5432);
    store_conn_free(got);

    /* add refuses a duplicate; upsert replaces every field */
    CU_ASSERT_EQUAL(store_conn_add(s, k, &c), -1);
    ASSERT_STR_EQ(store_last_error(s), "connection 'my_pg' already exists");
    StoreConnection u = {0};
    u.conn_id = (char *)"my_pg";
    u.conn_type = (char *)"http";
    int created = -1;
    OK(s, store_conn_upsert(s, k, &u, &created));
    CU_ASSERT_EQUAL(created, 0);
    got = store_conn_get(s, k, "my_pg", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    ASSERT_STR_EQ(got->conn_type, "http");
    CU_ASSERT_PTR_NULL(got->password);
    CU_ASSERT_PTR_NULL(got->extra);
    CU_ASSERT_PTR_NULL(got->host);
    CU_ASSERT_EQUAL(got->port, 0);
    store_conn_free(got);

    /* list, delete */
    u.conn_id = (char *)"another";
    u.password = (char *)"pw";
    OK(s, store_conn_upsert(s, k, &u, &created));
    CU_ASSERT_EQUAL(created, 1);
    StoreConnectionList l;
    OK(s, store_conn_list(s, k, 0, 0, &l));
    CU_ASSERT_EQUAL_FATAL(l.n, 2);
    ASSERT_STR_EQ(l.items[0].conn_id, "another");
    ASSERT_STR_EQ(l.items[0].password, "pw");
    CU_ASSERT_PTR_NULL(l.items[0].error);
    ASSERT_STR_EQ(l.items[1].conn_id, "my_pg");
    store_conn_list_free(&l);
    CU_ASSERT_EQUAL(store_conn_delete(s, "another"), 1);
    CU_ASSERT_EQUAL(store_conn_delete(s, "another"), 0);
    int missing = 0;
    CU_ASSERT_PTR_NULL(store_conn_get(s, k, "another", &missing));
    CU_ASSERT_EQUAL(missing, 1);
    ASSERT_STR_EQ(store_last_error(s), "no connection 'another'");

    /* invalid input */
    StoreConnection bad = {0};
    bad.conn_id = (char *)"bad id!";
    bad.conn_type = (char *)"http";
    CU_ASSERT_EQUAL(store_conn_add(s, k, &bad), -1);
    ASSERT_CONTAINS(store_last_error(s), "invalid connection id");
    bad.conn_id = (char *)"bad";
    bad.extra = (char *)"[1, 2]";
    CU_ASSERT_EQUAL(store_conn_add(s, k, &bad), -1);
    ASSERT_CONTAINS(store_last_error(s), "is not a JSON object");
    secret_key_free(k);
}

BOTH(test_connection_wrong_key_or_moved_secret_is_a_clear_error)
static void test_connection_wrong_key_or_moved_secret_is_a_clear_error(Store *s)
{
    SecretKey *a = key_from_hex('a'), *b = key_from_hex('b');
    StoreConnection c = {0};
    c.conn_id = (char *)"one";
    c.conn_type = (char *)"http";
    c.password = (char *)"hunter2";
    OK(s, store_conn_add(s, a, &c));
    c.conn_id = (char *)"two";
    c.password = (char *)"other";
    OK(s, store_conn_add(s, a, &c));

    CU_ASSERT_PTR_NULL(store_conn_get(s, b, "one", NULL));
    ASSERT_CONTAINS(store_last_error(s), "connection 'one' password: cannot decrypt: the secret was encrypted with key");
    ASSERT_CONTAINS(store_last_error(s), secret_key_id(a));
    ASSERT_CONTAINS(store_last_error(s), secret_key_id(b));

    /* list still lists, with the reason on each row */
    StoreConnectionList l;
    OK(s, store_conn_list(s, b, 0, 0, &l));
    CU_ASSERT_EQUAL_FATAL(l.n, 2);
    CU_ASSERT_PTR_NULL(l.items[0].password);
    ASSERT_CONTAINS(l.items[0].error, "cannot decrypt");
    store_conn_list_free(&l);

    /* a ciphertext copied to another row does not decrypt there (the id is bound in) */
    OK(s, store_x(s, "UPDATE connection SET password = (SELECT password FROM connection WHERE conn_id = 'one') "
                     "WHERE conn_id = 'two'",
                  NULL, 0, NULL));
    CU_ASSERT_PTR_NULL(store_conn_get(s, a, "two", NULL));
    ASSERT_CONTAINS(store_last_error(s), "cannot decrypt");
    StoreConnection *got = store_conn_get(s, a, "one", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    ASSERT_STR_EQ(got->password, "hunter2");
    store_conn_free(got);

    /* a value written in clear by hand is read as it is */
    OK(s, store_x(s, "UPDATE connection SET password = 'plain' WHERE conn_id = 'two'", NULL, 0, NULL));
    got = store_conn_get(s, b, "two", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    ASSERT_STR_EQ(got->password, "plain");
    store_conn_free(got);
    secret_key_free(a);
    secret_key_free(b);
}

/* Parse uri and check the fields (NULL = absent). */
static void check_uri(const char *uri, const char *type, const char *login, const char *password, const char *host,
                      int port, const char *schema, const char *extra_json)
{
    StoreConnection c;
    char err[256];
    int rc = store_conn_parse_uri(uri, &c, err, sizeof err);
    if (rc != 0) fprintf(stderr, "\n  %s: %s\n", uri, err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    ASSERT_STR_EQ(c.conn_type, type);
    ASSERT_STR_EQ(c.login, login);
    ASSERT_STR_EQ(c.password, password);
    ASSERT_STR_EQ(c.host, host);
    CU_ASSERT_EQUAL(c.port, port);
    ASSERT_STR_EQ(c.schema, schema);
    if (!extra_json) {
        ASSERT_STR_EQ(c.extra, NULL);
    } else {
        cJSON *want = cJSON_Parse(extra_json), *got = c.extra ? cJSON_Parse(c.extra) : NULL;
        int same = got && cJSON_Compare(want, got, 1);
        if (!same) fprintf(stderr, "\n  %s: extra %s, want %s\n", uri, c.extra ? c.extra : "(null)", extra_json);
        CU_ASSERT(same);
        cJSON_Delete(want);
        cJSON_Delete(got);
    }
    store_conn_clear(&c);
}

static void check_uri_error(const char *uri, const char *message)
{
    StoreConnection c;
    char err[256] = "";
    CU_ASSERT_EQUAL(store_conn_parse_uri(uri, &c, err, sizeof err), -1);
    ASSERT_CONTAINS(err, message);
    CU_ASSERT_PTR_NULL(c.conn_type);
}

static void test_connection_uris_parse_as_airflow_does(void)
{
    check_uri("postgres://user:p%40ss@host:5432/db?sslmode=require", "postgres", "user", "p@ss", "host", 5432, "db",
              "{\"sslmode\":\"require\"}");
    check_uri("postgresql://h/db", "postgres", NULL, NULL, "h", 0, "db", NULL);
    check_uri("google-cloud-platform://?key_path=%2Fkeys%2Fk.json&scope=a+b&empty=", "google_cloud_platform", NULL,
              NULL, NULL, 0, NULL, "{\"key_path\":\"/keys/k.json\",\"scope\":\"a b\",\"empty\":\"\"}");
    check_uri("http://MyHost.Example.COM:8080/", "http", NULL, NULL, "myhost.example.com", 8080, NULL, NULL);
    check_uri("http://https://example.com:443/api", "http", NULL, NULL, "https://example.com", 443, "api", NULL);
    check_uri("aws://?__extra__=%7B%22region_name%22%3A+%22eu-west-1%22%7D", "aws", NULL, NULL, NULL, 0, NULL,
              "{\"region_name\":\"eu-west-1\"}");
    check_uri("postgres://u@[::1]:5432/my%20db", "postgres", "u", NULL, "::1", 5432, "my db", NULL);
    check_uri("mysql://us%3Aer:pa%3Ass%2Fw@h?a=1&a=2", "mysql", "us:er", "pa:ss/w", "h", 0, NULL, "{\"a\":\"2\"}");
    check_uri("sqlite://%2Ftmp%2FMy.db", "sqlite", NULL, NULL, "/tmp/My.db", 0, NULL, NULL);
    check_uri("ssh://user:pa@ss@host#frag", "ssh", "user", "pa@ss", "host", 0, NULL, NULL);

    check_uri_error("no-scheme-here", "invalid connection URI");
    check_uri_error("a://b://c://d", "more than two '://'");
    check_uri_error("http://h:abc", "the port is not a number");
    check_uri_error("http://h:99999", "out of range");
    check_uri_error("aws://?__extra__=nope", "__extra__ is not a JSON object");
    check_uri_error("http://h/%FF", "schema is not UTF-8");
    check_uri_error("http://u:p@x://h", "protocol");
}

BOTH(test_connection_from_uri_round_trips_through_the_store)
static void test_connection_from_uri_round_trips_through_the_store(Store *s)
{
    SecretKey *k = key_from_hex('c');
    StoreConnection c;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(
        store_conn_parse_uri("postgres://user:p%40ss@host:5432/db?sslmode=require", &c, err, sizeof err), 0);
    c.conn_id = xstrdup("from_uri");
    OK(s, store_conn_add(s, k, &c));
    StoreConnection *got = store_conn_get(s, k, "from_uri", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    ASSERT_STR_EQ(got->password, "p@ss");
    ASSERT_STR_EQ(got->extra, "{\"sslmode\":\"require\"}");
    ASSERT_STR_EQ(got->schema, "db");
    store_conn_free(got);
    store_conn_clear(&c);
    secret_key_free(k);
}

/* ---- pools ------------------------------------------------------------------------------------ */

static void add_ti(Store *s, const char *id, const char *task, const char *state, const char *pool, int slots)
{
    StoreParam p[] = {SP_S(id), SP_S(task), SP_S(state), SP_S(pool), SP_I(slots)};
    OK(s, store_x(s,
                  "INSERT INTO task_instance (id, dag_id, run_id, task_id, state, pool, pool_slots) "
                  "VALUES (?, 'd', 'r', ?, ?, ?, ?)",
                  p, 5, NULL));
}

BOTH(test_pools_default_pool_and_slot_accounting)
static void test_pools_default_pool_and_slot_accounting(Store *s)
{
    StorePool *p = store_pool_get(s, "default_pool", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(p->slots, 128);
    CU_ASSERT_EQUAL(p->open, 128);
    store_pool_free(p);
    CU_ASSERT_EQUAL(store_pool_delete(s, "default_pool"), -1);
    ASSERT_STR_EQ(store_last_error(s), "default_pool cannot be deleted");

    int created = -1;
    OK(s, store_pool_set(s, "etl", 5, "nightly loads", &created));
    CU_ASSERT_EQUAL(created, 1);
    OK(s, store_pool_set(s, "free", -1, NULL, &created));
    CU_ASSERT_EQUAL(store_pool_set(s, "bad", -2, NULL, NULL), -1);
    ASSERT_CONTAINS(store_last_error(s), ">= 0, or -1");

    OK(s, store_x(s, "INSERT INTO dag (dag_id) VALUES ('d')", NULL, 0, NULL));
    OK(s, store_x(s, "INSERT INTO dag_run (id, dag_id, run_id, run_type, run_after) VALUES ('r1', 'd', 'r', 'manual', 0)",
                  NULL, 0, NULL));
    add_ti(s, "t1", "a", "running", "etl", 2);
    add_ti(s, "t2", "b", "queued", "etl", 1);
    add_ti(s, "t3", "c", "scheduled", "etl", 3); /* not yet occupying */
    add_ti(s, "t4", "d", "success", "etl", 4);   /* done */
    add_ti(s, "t5", "e", "running", "default_pool", 1);
    add_ti(s, "t6", "f", "running", "free", 7);
    add_ti(s, "t7", "g", NULL, "etl", 1);         /* state none */

    int running = -1, queued = -1, open = -1;
    OK(s, store_pool_usage(s, "etl", &running, &queued, &open));
    CU_ASSERT_EQUAL(running, 2);
    CU_ASSERT_EQUAL(queued, 1);
    CU_ASSERT_EQUAL(open, 2);
    OK(s, store_pool_usage(s, "default_pool", &running, &queued, &open));
    CU_ASSERT_EQUAL(running, 1);
    CU_ASSERT_EQUAL(queued, 0);
    CU_ASSERT_EQUAL(open, 127);
    OK(s, store_pool_usage(s, "free", &running, NULL, &open));
    CU_ASSERT_EQUAL(running, 7);
    CU_ASSERT_EQUAL(open, STORE_POOL_UNLIMITED);
    CU_ASSERT_EQUAL(store_pool_usage(s, "nope", &running, &queued, &open), -1);
    ASSERT_STR_EQ(store_last_error(s), "no pool 'nope'");

    /* shrinking under load leaves open negative, as Airflow reports it */
    OK(s, store_pool_set(s, "etl", 1, NULL, &created));
    CU_ASSERT_EQUAL(created, 0);
    OK(s, store_pool_usage(s, "etl", NULL, NULL, &open));
    CU_ASSERT_EQUAL(open, -2);

    StorePoolList l;
    OK(s, store_pool_list(s, &l));
    CU_ASSERT_EQUAL_FATAL(l.n, 3);
    ASSERT_STR_EQ(l.items[0].name, "default_pool");
    ASSERT_STR_EQ(l.items[1].name, "etl");
    ASSERT_STR_EQ(l.items[1].description, "nightly loads"); /* kept: the update gave none */
    CU_ASSERT_EQUAL(l.items[1].running, 2);
    CU_ASSERT_EQUAL(l.items[1].queued, 1);
    ASSERT_STR_EQ(l.items[2].name, "free");
    CU_ASSERT_EQUAL(l.items[2].slots, -1);
    store_pool_list_free(&l);

    CU_ASSERT_EQUAL(store_pool_delete(s, "etl"), 1);
    CU_ASSERT_EQUAL(store_pool_delete(s, "etl"), 0);
}

/* ---- task logs -------------------------------------------------------------------------------- */

static void expect_read(Store *s, const char *ti, int try_number, int64_t offset, size_t max, const char *data,
                        int64_t next)
{
    StoreLogRead r;
    OK(s, store_log_read(s, ti, try_number, offset, max, &r));
    ASSERT_STR_EQ(r.data, data);
    CU_ASSERT_EQUAL(r.len, strlen(data));
    if (r.next_offset != next)
        fprintf(stderr, "\n  read %s@%lld: next %lld, want %lld\n", ti, (long long)offset, (long long)r.next_offset,
                (long long)next);
    CU_ASSERT_EQUAL(r.next_offset, next);
    store_log_read_free(&r);
}

BOTH(test_log_append_and_read_by_offset_tails_a_running_task)
static void test_log_append_and_read_by_offset_tails_a_running_task(Store *s)
{
    int64_t end = -1;
    expect_read(s, "ti", 1, 0, 0, "", 0); /* nothing yet */
    OK(s, store_log_append(s, "ti", 1, "hello ", 6, &end));
    CU_ASSERT_EQUAL(end, 6);
    OK(s, store_log_append(s, "ti", 1, "world\n", 6, &end));
    CU_ASSERT_EQUAL(end, 12);
    expect_read(s, "ti", 1, 0, 0, "hello world\n", 12);
    expect_read(s, "ti", 1, 12, 0, "", 12); /* tailing: nothing new yet */
    OK(s, store_log_append(s, "ti", 1, "more", 4, &end));
    expect_read(s, "ti", 1, 12, 0, "more", 16); /* ... and then the new bytes only */
    expect_read(s, "ti", 1, 0, 3, "hel", 3);    /* bounded reads continue where they stopped */
    expect_read(s, "ti", 1, 3, 5, "lo wo", 8);
    expect_read(s, "ti", 1, 8, 100, "rld\nmore", 16);
    expect_read(s, "ti", 1, 40, 0, "", 40); /* past the end */
    CU_ASSERT_EQUAL(store_log_size(s, "ti", 1), 16);

    /* tries are separate logs */
    OK(s, store_log_append(s, "ti", 2, "second try", 10, &end));
    CU_ASSERT_EQUAL(end, 10);
    expect_read(s, "ti", 2, 0, 0, "second try", 10);
    CU_ASSERT_EQUAL(store_log_size(s, "ti", 1), 16);

    /* offsets are bytes; a bounded read does not cut a character in two */
    OK(s, store_log_append(s, "u", 1, "é日", strlen("é日"), &end)); /* 2 + 3 bytes */
    CU_ASSERT_EQUAL(end, 5);
    expect_read(s, "u", 1, 0, 1, "\xc3", 1);  /* a single character longer than max: bytes, not nothing */
    expect_read(s, "u", 1, 0, 4, "é", 2);     /* 4 bytes would split 日 */
    expect_read(s, "u", 1, 2, 100, "日", 5);

    /* invalid UTF-8 and NUL become U+FFFD; offsets count what was stored */
    OK(s, store_log_append(s, "v", 1, "a\xff" "b\0c", 5, &end));
    CU_ASSERT_EQUAL(end, 9);
    expect_read(s, "v", 1, 0, 0, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c", 9);

    /* two connections appending in turn never overlap */
    char err[512];
    Store *s2 = store_open(s->url, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
    for (int i = 0; i < 10; i++) {
        OK(s, store_log_append(i % 2 ? s2 : s, "w", 1, "0123456789", 10, &end));
        CU_ASSERT_EQUAL(end, (i + 1) * 10);
    }
    store_free(s2);
    CU_ASSERT_EQUAL(store_log_size(s, "w", 1), 100);
}

/* Appenders racing on one log, each on its own connection. */
#define RACERS 4
#define RACER_LINES 50

typedef struct Racer {
    const char *url;
    int id;
    int failures;
} Racer;

static void *racer(void *arg)
{
    Racer *r = arg;
    char err[512];
    Store *s = store_open(r->url, err, sizeof err);
    if (!s) {
        fprintf(stderr, "\n  racer %d: %s\n", r->id, err);
        r->failures++;
        return NULL;
    }
    for (int i = 0; i < RACER_LINES; i++) {
        char line[32];
        snprintf(line, sizeof line, "%c%03d-abcd\n", 'A' + r->id, i % 1000); /* 10 bytes */
        if (store_log_append(s, "race", 1, line, 10, NULL) != 0) {
            fprintf(stderr, "\n  racer %d: %s\n", r->id, store_last_error(s));
            r->failures++;
        }
    }
    store_free(s);
    return NULL;
}

BOTH(test_log_appenders_racing_never_overlap_or_lose_a_chunk)
static void test_log_appenders_racing_never_overlap_or_lose_a_chunk(Store *s)
{
    pthread_t th[RACERS];
    Racer r[RACERS];
    for (int i = 0; i < RACERS; i++) {
        r[i] = (Racer){s->url, i, 0};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, racer, &r[i]), 0);
    }
    for (int i = 0; i < RACERS; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(r[i].failures, 0);
    }
    CU_ASSERT_EQUAL(store_log_size(s, "race", 1), RACERS * RACER_LINES * 10);
    StoreLogRead rd;
    OK(s, store_log_read(s, "race", 1, 0, 0, &rd));
    CU_ASSERT_EQUAL(rd.len, (size_t)(RACERS * RACER_LINES * 10));
    /* every line whole, once, and each racer's lines in its own order */
    int next[RACERS] = {0};
    int whole = 1;
    for (size_t off = 0; off + 10 <= rd.len; off += 10) {
        int who = rd.data[off] - 'A', n = -1;
        if (who < 0 || who >= RACERS || sscanf(rd.data + off + 1, "%3d", &n) != 1 || n != next[who] ||
            strncmp(rd.data + off + 4, "-abcd\n", 6) != 0) {
            whole = 0;
            break;
        }
        next[who]++;
    }
    CU_ASSERT(whole);
    for (int i = 0; i < RACERS; i++) CU_ASSERT_EQUAL(next[i], RACER_LINES);
    store_log_read_free(&rd);
}

/* ---- event log -------------------------------------------------------------------------------- */

static void add_event(Store *s, int64_t dttm, const char *event, const char *dag_id)
{
    StoreEvent e = {0};
    e.dttm = dttm;
    e.event = (char *)event;
    e.dag_id = (char *)dag_id;
    e.owner = (char *)"cli:test";
    OK(s, store_event_append(s, &e, NULL));
}

BOTH(test_event_log_lists_newest_first_with_filters)
static void test_event_log_lists_newest_first_with_filters(Store *s)
{
    add_event(s, 1000, "trigger", "a");
    add_event(s, 3000, "pause", "a");
    add_event(s, 2000, "trigger", "b");
    add_event(s, 3000, "trigger", "a"); /* same time as "pause": the later append is newer */
    StoreEvent full = {0};
    full.event = (char *)"running";
    full.owner = (char *)"worker:w1";
    full.dag_id = (char *)"a";
    full.task_id = (char *)"t";
    full.run_id = (char *)"r?1";
    full.map_index = 2;
    full.try_number = 3;
    full.extra = (char *)"{\"host\": \"w1\", \"note\": \"'; --\"}";
    int64_t id = 0;
    OK(s, store_event_append(s, &full, &id));
    CU_ASSERT(id > 0);

    StoreEventList l;
    OK(s, store_event_list(s, NULL, NULL, 0, 0, &l));
    CU_ASSERT_EQUAL_FATAL(l.n, 5);
    ASSERT_STR_EQ(l.items[0].event, "running"); /* dttm now */
    CU_ASSERT_EQUAL(l.items[0].id, id);
    ASSERT_STR_EQ(l.items[0].run_id, "r?1");
    CU_ASSERT_EQUAL(l.items[0].map_index, 2);
    CU_ASSERT_EQUAL(l.items[0].try_number, 3);
    ASSERT_STR_EQ(l.items[0].extra, full.extra);
    ASSERT_STR_EQ(l.items[0].owner, "worker:w1");
    ASSERT_STR_EQ(l.items[1].event, "trigger");
    CU_ASSERT_EQUAL(l.items[1].dttm, 3000);
    ASSERT_STR_EQ(l.items[2].event, "pause");
    CU_ASSERT_EQUAL(l.items[3].dttm, 2000);
    CU_ASSERT_EQUAL(l.items[4].dttm, 1000);
    CU_ASSERT_EQUAL(l.items[4].map_index, -1); /* stored NULL without a task */
    CU_ASSERT_PTR_NULL(l.items[4].task_id);
    store_event_list_free(&l);

    OK(s, store_event_list(s, "a", NULL, 0, 0, &l));
    CU_ASSERT_EQUAL(l.n, 4);
    store_event_list_free(&l);
    OK(s, store_event_list(s, NULL, "trigger", 0, 0, &l));
    CU_ASSERT_EQUAL(l.n, 3);
    store_event_list_free(&l);
    OK(s, store_event_list(s, "a", "trigger", 0, 0, &l));
    CU_ASSERT_EQUAL_FATAL(l.n, 2);
    CU_ASSERT_EQUAL(l.items[0].dttm, 3000);
    CU_ASSERT_EQUAL(l.items[1].dttm, 1000);
    store_event_list_free(&l);
    OK(s, store_event_list(s, NULL, NULL, 2, 1, &l));
    CU_ASSERT_EQUAL_FATAL(l.n, 2);
    ASSERT_STR_EQ(l.items[0].event, "trigger");
    ASSERT_STR_EQ(l.items[1].event, "pause");
    store_event_list_free(&l);

    StoreEvent bad = {0};
    bad.event = (char *)"x";
    bad.extra = (char *)"{oops";
    CU_ASSERT_EQUAL(store_event_append(s, &bad, NULL), -1);
    ASSERT_STR_EQ(store_last_error(s), "event extra is not valid JSON");
}

/* ---- import errors ---------------------------------------------------------------------------- */

BOTH(test_import_errors_upsert_clear_and_list)
static void test_import_errors_upsert_clear_and_list(Store *s)
{
    OK(s, store_import_error_set(s, "/dags/b.yml", "b.yml:3: bad"));
    OK(s, store_import_error_set(s, "/dags/a.yml", "a.yml:1: first"));
    StoreImportErrorList l;
    OK(s, store_import_error_list(s, &l));
    CU_ASSERT_EQUAL_FATAL(l.n, 2);
    int64_t id_a = l.items[0].id;
    ASSERT_STR_EQ(l.items[0].filename, "/dags/a.yml");
    store_import_error_list_free(&l);

    OK(s, store_import_error_set(s, "/dags/a.yml", "a.yml:9: second"));
    OK(s, store_import_error_list(s, &l));
    CU_ASSERT_EQUAL_FATAL(l.n, 2);
    ASSERT_STR_EQ(l.items[0].message, "a.yml:9: second");
    CU_ASSERT_EQUAL(l.items[0].id, id_a); /* the same error, updated */
    CU_ASSERT(l.items[0].timestamp > 0);
    ASSERT_STR_EQ(l.items[1].filename, "/dags/b.yml");
    store_import_error_list_free(&l);

    CU_ASSERT_EQUAL(store_import_error_clear(s, "/dags/a.yml"), 1);
    CU_ASSERT_EQUAL(store_import_error_clear(s, "/dags/a.yml"), 0);
    OK(s, store_import_error_list(s, &l));
    CU_ASSERT_EQUAL_FATAL(l.n, 1);
    ASSERT_STR_EQ(l.items[0].filename, "/dags/b.yml");
    store_import_error_list_free(&l);
}

/* ---- schema ------------------------------------------------------------------------------------ */

BOTH(test_migrate_is_idempotent_and_check_says_what_to_do)
static void test_migrate_is_idempotent_and_check_says_what_to_do(Store *s)
{
    int applied = -1;
    OK(s, store_migrate(s, &applied));
    CU_ASSERT_EQUAL(applied, 0);
    char msg[512];
    CU_ASSERT_EQUAL(store_check(s, msg, sizeof msg), 0);
    ASSERT_CONTAINS(msg, "up to date");
    int target = store_schema_target();
    CU_ASSERT_EQUAL(store_schema_version(s), target);

    /* newer: a version this binary does not know */
    StoreParam p[] = {SP_I(target + 1)};
    OK(s, store_x(s, "INSERT INTO gust_schema (version, name, applied_at) VALUES (?, 'from the future', 0)", p, 1, NULL));
    CU_ASSERT_EQUAL(store_check(s, msg, sizeof msg), -1);
    ASSERT_CONTAINS(msg, "is newer than this gust");
    ASSERT_CONTAINS(msg, "upgrade gust");
    CU_ASSERT_EQUAL(store_migrate(s, NULL), -1);
    ASSERT_CONTAINS(store_last_error(s), "newer than this gust");

    /* older: the last migration not recorded */
    StoreParam q[] = {SP_I(target)};
    OK(s, store_x(s, "DELETE FROM gust_schema WHERE version >= ?", q, 1, NULL));
    CU_ASSERT_EQUAL(store_check(s, msg, sizeof msg), -1);
    ASSERT_CONTAINS(msg, "run gust db migrate");
    if (target > 1) ASSERT_CONTAINS(msg, "this gust needs");

    /* empty: no gust tables at all */
    OK(s, store_x(s, "DROP TABLE gust_schema", NULL, 0, NULL));
    CU_ASSERT_EQUAL(store_schema_version(s), 0);
    CU_ASSERT_EQUAL(store_check(s, msg, sizeof msg), -1);
    ASSERT_STR_EQ(msg, "the database has no gust schema yet: run gust db migrate");

    /* reset brings it back */
    OK(s, store_reset(s));
    CU_ASSERT_EQUAL(store_check(s, msg, sizeof msg), 0);
}

static const UnitTest tests[] = {
    UNIT2(test_variables_round_trip_hostile_keys_and_values),
    UNIT2(test_variables_upsert_keeps_description_unless_given),
    UNIT2(test_variables_missing_list_delete_and_invalid_text),
    UNIT2(test_xcom_round_trips_hostile_json_values),
    UNIT2(test_xcom_upsert_list_clear_and_missing),
    UNIT2(test_writes_join_the_callers_transaction),
    UNIT2(test_connection_secrets_are_encrypted_at_rest),
    UNIT2(test_connection_wrong_key_or_moved_secret_is_a_clear_error),
    UNIT(test_connection_uris_parse_as_airflow_does),
    UNIT2(test_connection_from_uri_round_trips_through_the_store),
    UNIT2(test_pools_default_pool_and_slot_accounting),
    UNIT2(test_log_append_and_read_by_offset_tails_a_running_task),
    UNIT2(test_log_appenders_racing_never_overlap_or_lose_a_chunk),
    UNIT2(test_event_log_lists_newest_first_with_filters),
    UNIT2(test_import_errors_upsert_clear_and_list),
    UNIT2(test_migrate_is_idempotent_and_check_says_what_to_do),
    {0},
};

UNIT_MAIN("kv", tests)
