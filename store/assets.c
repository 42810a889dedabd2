/* assets — asset events and the per-DAG event queue (see assets.h). */
#include "store/assets.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static int asset_id(Store *s, const char *uri, int64_t *id)
{
    int64_t now = util_now_us();
    StoreParam p[] = {SP_S(uri), SP_S(uri), SP_I(now), SP_I(now)};
    if (store_x(s, "INSERT INTO asset (uri, name, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                p, 4, NULL) != 0)
        return -1;
    StoreParam q[] = {SP_S(uri)};
    return store_q_int(s, "SELECT id FROM asset WHERE uri = ?", q, 1, -1, id);
}

typedef struct Refs {
    const char *dag_id;
    const char *const *uris;
    size_t n;
    const char *task_id, *run_id;
} Refs;

static int refs_tx(Store *s, void *ud)
{
    Refs *r = ud;
    StoreParam d[] = {SP_S(r->dag_id)};
    if (store_x(s, "DELETE FROM dag_schedule_asset_reference WHERE dag_id = ?", d, 1, NULL) != 0) return -1;
    for (size_t i = 0; i < r->n; i++) {
        int64_t id;
        if (asset_id(s, r->uris[i], &id) != 0) return -1;
        StoreParam p[] = {SP_I(id), SP_S(r->dag_id)};
        if (store_x(s, "INSERT INTO dag_schedule_asset_reference (asset_id, dag_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    p, 2, NULL) != 0)
            return -1;
    }
    return 0;
}

int store_asset_refs_sync(Store *s, const char *dag_id, const char *const *uris, size_t n)
{
    Refs r = {dag_id, uris, n, NULL, NULL};
    return store_tx(s, refs_tx, &r);
}

static int emit_tx(Store *s, void *ud)
{
    Refs *r = ud;
    int64_t now = util_now_us();
    for (size_t i = 0; i < r->n; i++) {
        int64_t id;
        if (asset_id(s, r->uris[i], &id) != 0) return -1;
        StoreParam e[] = {SP_I(id), SP_I(now), SP_S(r->dag_id), SP_S(r->task_id), SP_S(r->run_id)};
        if (store_x(s,
                    "INSERT INTO asset_event (asset_id, timestamp, source_dag_id, source_task_id, source_run_id, "
                    "source_map_index) VALUES (?, ?, ?, ?, ?, -1)",
                    e, 5, NULL) != 0)
            return -1;
        StoreParam q[] = {SP_I(now), SP_I(id)};
        if (store_x(s,
                    "INSERT INTO asset_dag_run_queue (asset_id, target_dag_id, created_at) "
                    "SELECT asset_id, dag_id, ? FROM dag_schedule_asset_reference WHERE asset_id = ? "
                    "ON CONFLICT DO NOTHING",
                    q, 2, NULL) != 0)
            return -1;
    }
    return store_notify(s, "assets");
}

int store_asset_emit(Store *s, const char *const *uris, size_t n, const char *dag_id, const char *task_id,
                     const char *run_id)
{
    if (n == 0) return 0;
    Refs r = {dag_id, uris, n, task_id, run_id};
    return store_tx(s, emit_tx, &r);
}

static int text_list(Store *s, const char *sql, const StoreParam *p, int np, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    StoreRows *r = store_q(s, sql, p, np);
    if (!r) return -1;
    while (rows_next(r)) {
        *out = xrealloc(*out, (*n + 1) * sizeof **out);
        (*out)[(*n)++] = xstrdup(rows_text(r, 0));
    }
    rows_free(r);
    return 0;
}

int store_asset_queued_dags(Store *s, char ***dag_ids, size_t *n)
{
    return text_list(s, "SELECT DISTINCT target_dag_id FROM asset_dag_run_queue ORDER BY target_dag_id", NULL, 0,
                     dag_ids, n);
}

int store_asset_queued_uris(Store *s, const char *dag_id, char ***uris, size_t *n)
{
    StoreParam p[] = {SP_S(dag_id)};
    return text_list(s,
                     "SELECT a.uri FROM asset_dag_run_queue q JOIN asset a ON a.id = q.asset_id "
                     "WHERE q.target_dag_id = ? ORDER BY a.uri",
                     p, 1, uris, n);
}

static int consume_tx(Store *s, void *ud)
{
    Refs *r = ud;
    for (size_t i = 0; i < r->n; i++) {
        StoreParam p[] = {SP_S(r->dag_id), SP_S(r->uris[i])};
        if (store_x(s,
                    "DELETE FROM asset_dag_run_queue WHERE target_dag_id = ? AND asset_id = "
                    "(SELECT id FROM asset WHERE uri = ?)",
                    p, 2, NULL) != 0)
            return -1;
    }
    return 0;
}

int store_asset_consume(Store *s, const char *dag_id, const char *const *uris, size_t n)
{
    Refs r = {dag_id, uris, n, NULL, NULL};
    return store_tx(s, consume_tx, &r);
}

int asset_condition_holds(const cJSON *cond, const char *const *have, size_t n)
{
    if (cJSON_IsString(cond)) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(have[i], cond->valuestring) == 0) return 1;
        return 0;
    }
    const cJSON *all = cJSON_GetObjectItemCaseSensitive(cond, "all");
    const cJSON *any = cJSON_GetObjectItemCaseSensitive(cond, "any");
    const cJSON *it;
    if (all) {
        cJSON_ArrayForEach(it, all) if (!asset_condition_holds(it, have, n)) return 0;
        return 1;
    }
    if (any) {
        cJSON_ArrayForEach(it, any) if (asset_condition_holds(it, have, n)) return 1;
        return 0;
    }
    return 0;
}
