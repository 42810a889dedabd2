/* store_harness — run a store test against both engines: SQLite in a fresh temporary
 * file, and the real PostgreSQL that tests/services.sh started (GUST_TEST_PG_URL). A
 * missing PostgreSQL is a failure that says how to start it, never a silent skip. */
#ifndef GUST_TEST_STORE_HARNESS_H
#define GUST_TEST_STORE_HARNESS_H

#include <stdlib.h>
#include <unistd.h>

#include "store/store.h"
#include "unit.h"

static char harness_sqlite_url[256];

static inline const char *harness_url(int pg)
{
    if (pg) return getenv("GUST_TEST_PG_URL");
    char dir[] = "/tmp/gust-test-XXXXXX";
    if (!mkdtemp(dir)) return NULL;
    snprintf(harness_sqlite_url, sizeof harness_sqlite_url, "sqlite://%s/gust.db", dir);
    return harness_sqlite_url;
}

/* Open a freshly reset store; NULL (with a CUnit failure) if it cannot. */
static inline Store *harness_open(int pg)
{
    const char *url = harness_url(pg);
    if (!url) {
        fprintf(stderr, "\n  GUST_TEST_PG_URL is not set: run tests/services.sh start and "
                        "eval \"$(tests/services.sh env)\" (make test does both)\n");
        CU_FAIL("no PostgreSQL to test against");
        return NULL;
    }
    char err[512];
    Store *s = store_open(url, err, sizeof err);
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

static inline Store *harness_reopen(const Store *like)
{
    char err[512];
    Store *s = store_open(like->url, err, sizeof err);
    if (!s) {
        fprintf(stderr, "\n  cannot reopen: %s\n", err);
        CU_FAIL("store_open");
    }
    return s;
}

/* Define test_NAME_sqlite and test_NAME_postgres from body(Store *s). */
#define BOTH_DRIVERS(name)                                   \
    static void name(Store *s);                              \
    static void name##_sqlite(void)                          \
    {                                                        \
        Store *s = harness_open(0);                          \
        if (s) name(s);                                      \
        store_free(s);                                       \
    }                                                        \
    static void name##_postgres(void)                        \
    {                                                        \
        Store *s = harness_open(1);                          \
        if (s) name(s);                                      \
        store_free(s);                                       \
    }
#define UNIT2(name) UNIT(name##_sqlite), UNIT(name##_postgres)

#endif
