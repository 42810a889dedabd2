/* assets — runs triggered by datasets (Airflow's assets): a DAG whose schedule is a list of
 * URIs (or a condition over them) runs when the events it waits for have arrived.
 *
 * Workers emit an event per outlet URI when a task succeeds (store_asset_emit), which also
 * queues it for every DAG scheduled on that URI. Each pass, the scheduler looks at the DAGs
 * with queued events, evaluates each one's condition over the URIs it has, and when it holds
 * creates an asset_triggered run and consumes those events, so the next run waits for new
 * ones ("all of them have new events"). */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "scheduler/scheduler.h"
#include "store/assets.h"
#include "store/dags.h"

static void collect(const cJSON *c, char ***out, size_t *n)
{
    if (cJSON_IsString(c)) {
        for (size_t i = 0; i < *n; i++)
            if (strcmp((*out)[i], c->valuestring) == 0) return;
        *out = xrealloc(*out, (*n + 1) * sizeof **out);
        (*out)[(*n)++] = xstrdup(c->valuestring);
        return;
    }
    const cJSON *it, *arr = cJSON_GetObjectItemCaseSensitive(c, "all");
    if (!arr) arr = cJSON_GetObjectItemCaseSensitive(c, "any");
    cJSON_ArrayForEach(it, arr) collect(it, out, n);
}

static void free_v(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

int sched_asset_refs(Store *store, const Dag *d)
{
    char **uris = NULL;
    size_t n = 0;
    if (d->assets) collect(d->assets, &uris, &n);
    int rc = store_asset_refs_sync(store, d->dag_id, (const char *const *)uris, n);
    free_v(uris, n);
    return rc;
}

int sched_create_asset_runs(Store *store, DagCache *cache)
{
    char **dags;
    size_t nd;
    if (store_asset_queued_dags(store, &dags, &nd) != 0) return -1;
    int created = 0;
    for (size_t i = 0; i < nd; i++) {
        StoreDag sd;
        if (store_dag_get(store, dags[i], &sd) != 1) continue;
        char err[256];
        const Dag *d = sd.is_paused || !sd.is_active || !sd.latest_version_id
                           ? NULL
                           : dagcache_get(cache, store, sd.latest_version_id, err, sizeof err);
        char **uris;
        size_t nu;
        if (d && d->assets && store_asset_queued_uris(store, dags[i], &uris, &nu) == 0) {
            if (asset_condition_holds(d->assets, (const char *const *)uris, nu)) {
                char rid[160];
                int64_t now = util_now_us();
                int rc = sched_create_run(store, d, sd.latest_version_id, "asset_triggered", NULL, now, now, now, NULL,
                                          "asset", rid, sizeof rid);
                if (rc == 1) {
                    store_asset_consume(store, dags[i], (const char *const *)uris, nu);
                    log_info("scheduler", "dag=%s run=%s: created (its datasets were updated)", dags[i], rid);
                    created++;
                }
            }
            free_v(uris, nu);
        }
        store_dag_clear(&sd);
    }
    free_v(dags, nd);
    return created;
}
