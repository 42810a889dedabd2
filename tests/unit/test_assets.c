/* Assets (datasets): outlets emit events, asset-scheduled DAGs are queued, conditions hold. */
#include "store/assets.h"
#include "store_harness.h"

static void free_v(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

BOTH_DRIVERS(test_an_emitted_event_queues_every_dag_scheduled_on_it)
static void test_an_emitted_event_queues_every_dag_scheduled_on_it(Store *s)
{
    CU_ASSERT_EQUAL(store_x(s, "INSERT INTO dag (dag_id) VALUES ('consumer'), ('other'), ('unrelated')", NULL, 0, NULL), 0);
    const char *both[] = {"s3://a", "s3://b"};
    const char *only_a[] = {"s3://a"};
    CU_ASSERT_EQUAL(store_asset_refs_sync(s, "consumer", both, 2), 0);
    CU_ASSERT_EQUAL(store_asset_refs_sync(s, "other", only_a, 1), 0);
    CU_ASSERT_EQUAL(store_asset_emit(s, only_a, 1, "producer", "t", "r1"), 0);
    char **dags;
    size_t n;
    CU_ASSERT_EQUAL(store_asset_queued_dags(s, &dags, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    ASSERT_STR_EQ(dags[0], "consumer");
    ASSERT_STR_EQ(dags[1], "other");
    free_v(dags, n);
    char **uris;
    CU_ASSERT_EQUAL(store_asset_queued_uris(s, "consumer", &uris, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    /* consumer needs both: not yet */
    cJSON *cond = cJSON_Parse("{\"all\": [\"s3://a\", \"s3://b\"]}");
    CU_ASSERT_FALSE(asset_condition_holds(cond, (const char *const *)uris, n));
    free_v(uris, n);
    CU_ASSERT_EQUAL(store_asset_emit(s, both + 1, 1, "producer", "t2", "r1"), 0);
    CU_ASSERT_EQUAL(store_asset_queued_uris(s, "consumer", &uris, &n), 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_TRUE(asset_condition_holds(cond, (const char *const *)uris, n));
    CU_ASSERT_EQUAL(store_asset_consume(s, "consumer", (const char *const *)uris, n), 0);
    free_v(uris, n);
    CU_ASSERT_EQUAL(store_asset_queued_uris(s, "consumer", &uris, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    free_v(uris, n);
    cJSON_Delete(cond);
    int64_t events = 0;
    store_q_int(s, "SELECT COUNT(*) FROM asset_event", NULL, 0, -1, &events);
    CU_ASSERT_EQUAL(events, 2);
}

static void test_conditions_any_all_nested(void)
{
    cJSON *c = cJSON_Parse("{\"any\": [{\"all\": [\"a\", \"b\"]}, \"c\"]}");
    const char *ab[] = {"a", "b"}, *a[] = {"a"}, *cc[] = {"c"};
    CU_ASSERT_TRUE(asset_condition_holds(c, ab, 2));
    CU_ASSERT_FALSE(asset_condition_holds(c, a, 1));
    CU_ASSERT_TRUE(asset_condition_holds(c, cc, 1));
    CU_ASSERT_FALSE(asset_condition_holds(c, NULL, 0));
    cJSON_Delete(c);
}

static const UnitTest tests[] = {
    UNIT2(test_an_emitted_event_queues_every_dag_scheduled_on_it),
    UNIT(test_conditions_any_all_nested),
    {0},
};

UNIT_MAIN("assets", tests)
