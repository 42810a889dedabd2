/* dags — DAG rows and versions (see dags.h). */
#include "store/dags.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

void store_dag_clear(StoreDag *d)
{
    if (!d) return;
    free(d->dag_id);
    free(d->fileloc);
    free(d->owners);
    free(d->tags);
    free(d->description);
    free(d->timetable_summary);
    free(d->timezone);
    free(d->latest_version_id);
    memset(d, 0, sizeof *d);
}

void store_dag_list_free(StoreDag *d, size_t n)
{
    for (size_t i = 0; i < n; i++) store_dag_clear(&d[i]);
    free(d);
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

typedef struct Sync {
    const Dag *d;
    int paused;
    const char *json;
    const char *tags;
    char hash[65];
    char version_id[33];
    int new_version;
} Sync;

static int sync_tx(Store *s, void *ud)
{
    Sync *y = ud;
    const Dag *d = y->d;
    int64_t now = util_now_us();
    y->new_version = 0;
    StoreParam ins[] = {SP_S(d->dag_id), SP_I(y->paused)};
    if (store_x(s, "INSERT INTO dag (dag_id, is_paused) VALUES (?, ?) ON CONFLICT DO NOTHING", ins, 2, NULL) != 0)
        return -1;
    /* what the API's DAG list shows from the serialised DAG lives on the row too (the list
     * reads no JSON), rewritten at every sync so it always matches the latest version */
    int concurrency_limits = 0;
    for (size_t i = 0; i < d->n_tasks && !concurrency_limits; i++)
        concurrency_limits = d->tasks[i]->max_active_tis_per_dag > 0;
    StoreParam up[] = {SP_S(d->file),
                       SP_S(d->owner),
                       SP_S(y->tags),
                       SP_S(d->description),
                       SP_S(d->schedule_text ? d->schedule_text : "None"),
                       SP_S(d->timezone),
                       SP_I(d->max_active_runs),
                       SP_I(d->max_active_tasks),
                       SP_I(now),
                       SP_S(d->display_name),
                       SP_S(schedule_kind_name(d->schedule.kind)),
                       SP_I(d->max_consecutive_failed_dag_runs),
                       SP_I(concurrency_limits),
                       SP_S(d->dag_id)};
    if (store_x(s,
                "UPDATE dag SET is_active = 1, fileloc = ?, owners = ?, tags = ?, description = ?, "
                "timetable_summary = ?, timezone = ?, max_active_runs = ?, max_active_tasks = ?, "
                "last_parsed_time = ?, has_import_errors = 0, display_name = ?, schedule_kind = ?, "
                "max_consecutive_failed_dag_runs = ?, has_task_concurrency_limits = ? WHERE dag_id = ?",
                up, 14, NULL) != 0)
        return -1;
    StoreParam q[] = {SP_S(d->dag_id)};
    StoreRows *r = store_q(s,
                           "SELECT id, hash, version_number FROM dag_version WHERE dag_id = ? "
                           "ORDER BY version_number DESC LIMIT 1",
                           q, 1);
    if (!r) return -1;
    int64_t last_number = 0;
    int same = 0;
    if (rows_next(r)) {
        same = strcmp(rows_text(r, 1), y->hash) == 0;
        last_number = rows_int(r, 2);
        util_strlcpy(y->version_id, rows_text(r, 0), sizeof y->version_id);
    }
    rows_free(r);
    if (same) return 0;
    store_new_id(y->version_id);
    StoreParam v[] = {SP_S(y->version_id), SP_S(d->dag_id), SP_I(last_number + 1), SP_S(y->hash), SP_S(y->json),
                      SP_I(now)};
    if (store_x(s,
                "INSERT INTO dag_version (id, dag_id, version_number, hash, data, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                v, 6, NULL) != 0)
        return -1;
    StoreParam l[] = {SP_S(y->version_id), SP_S(d->dag_id)};
    /* a new version may schedule differently: the scheduler recomputes the next run */
    if (store_x(s, "UPDATE dag SET latest_version_id = ?, next_dagrun_create_after = NULL WHERE dag_id = ?", l, 2,
                NULL) != 0)
        return -1;
    y->new_version = 1;
    return store_notify(s, d->dag_id);
}

int store_dag_sync(Store *s, const Dag *d, int paused_at_creation, char *version_id, int *new_version)
{
    cJSON *j = dag_to_json(d);
    char *json = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    cJSON *tags = cJSON_CreateArray();
    for (size_t i = 0; i < d->n_tags; i++) cJSON_AddItemToArray(tags, cJSON_CreateString(d->tags[i]));
    char *tags_text = cJSON_PrintUnformatted(tags);
    cJSON_Delete(tags);
    Sync y = {d, d->is_paused_upon_creation >= 0 ? d->is_paused_upon_creation : paused_at_creation, json, tags_text,
              {0}, {0}, 0};
    sha256_hex(json, strlen(json), y.hash);
    int rc = store_tx(s, sync_tx, &y);
    free(json);
    free(tags_text);
    if (rc != 0) return -1;
    if (version_id) memcpy(version_id, y.version_id, 33);
    if (new_version) *new_version = y.new_version;
    return 0;
}

int store_dag_set_paused(Store *s, const char *dag_id, int paused)
{
    int64_t n = 0;
    StoreParam p[] = {SP_I(paused ? 1 : 0), SP_S(dag_id)};
    if (store_x(s, "UPDATE dag SET is_paused = ? WHERE dag_id = ?", p, 2, &n) != 0) return -1;
    if (n == 0) store_set_error(s, "no DAG '%s' in the store", dag_id);
    else store_notify(s, dag_id);
    return n > 0;
}

int store_dag_deactivate_missing(Store *s, const char *file, const char *const *keep, size_t n_keep)
{
    StoreParam p[] = {SP_S(file)};
    StoreRows *r = store_q(s, "SELECT dag_id FROM dag WHERE fileloc = ? AND is_active = 1", p, 1);
    if (!r) return -1;
    char **gone = NULL;
    size_t n_gone = 0;
    while (rows_next(r)) {
        const char *id = rows_text(r, 0);
        int kept = 0;
        for (size_t i = 0; i < n_keep && !kept; i++) kept = strcmp(keep[i], id) == 0;
        if (kept) continue;
        gone = xrealloc(gone, (n_gone + 1) * sizeof *gone);
        gone[n_gone++] = xstrdup(id);
    }
    rows_free(r);
    int rc = (int)n_gone;
    for (size_t i = 0; i < n_gone; i++) {
        StoreParam q[] = {SP_S(gone[i])};
        if (store_x(s, "UPDATE dag SET is_active = 0 WHERE dag_id = ?", q, 1, NULL) != 0) rc = -1;
        free(gone[i]);
    }
    free(gone);
    return rc;
}

#define DAG_COLUMNS                                                                                           \
    "dag_id, is_paused, is_active, fileloc, owners, tags, description, timetable_summary, timezone, "        \
    "latest_version_id, last_parsed_time, next_dagrun, next_dagrun_create_after"

static void read_dag(StoreRows *r, StoreDag *d)
{
    memset(d, 0, sizeof *d);
    d->dag_id = xstrdup(rows_text(r, 0));
    d->is_paused = (int)rows_int(r, 1);
    d->is_active = (int)rows_int(r, 2);
    d->fileloc = xstrdup(rows_text(r, 3));
    d->owners = xstrdup(rows_text(r, 4));
    d->tags = xstrdup(rows_text(r, 5));
    d->description = rows_isnull(r, 6) ? NULL : xstrdup(rows_text(r, 6));
    d->timetable_summary = rows_isnull(r, 7) ? NULL : xstrdup(rows_text(r, 7));
    d->timezone = xstrdup(rows_text(r, 8));
    d->latest_version_id = rows_isnull(r, 9) ? NULL : xstrdup(rows_text(r, 9));
    d->last_parsed_time = rows_isnull(r, 10) ? -1 : rows_int(r, 10);
    d->next_dagrun = rows_isnull(r, 11) ? -1 : rows_int(r, 11);
    d->next_dagrun_create_after = rows_isnull(r, 12) ? -1 : rows_int(r, 12);
}

int store_dag_get(Store *s, const char *dag_id, StoreDag *out)
{
    StoreParam p[] = {SP_S(dag_id)};
    StoreRows *r = store_q(s, "SELECT " DAG_COLUMNS " FROM dag WHERE dag_id = ?", p, 1);
    if (!r) return -1;
    int found = rows_next(r);
    if (found) read_dag(r, out);
    rows_free(r);
    return found;
}

int store_dag_list(Store *s, StoreDag **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    StoreRows *r = store_q(s, "SELECT " DAG_COLUMNS " FROM dag ORDER BY dag_id", NULL, 0);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        read_dag(r, &(*out)[(*n)++]);
    }
    rows_free(r);
    return 0;
}

char *store_dag_version_data(Store *s, const char *version_id)
{
    StoreParam p[] = {SP_S(version_id)};
    return store_q_str(s, "SELECT data FROM dag_version WHERE id = ?", p, 1);
}

int store_dag_set_next_run(Store *s, const char *dag_id, int64_t logical, int64_t interval_start,
                           int64_t interval_end, int64_t create_after)
{
#define OPT(v) ((v) >= 0 ? SP_I(v) : SP_NIL)
    StoreParam p[] = {OPT(logical), OPT(interval_start), OPT(interval_end), OPT(create_after), SP_S(dag_id)};
#undef OPT
    return store_x(s,
                   "UPDATE dag SET next_dagrun = ?, next_dagrun_data_interval_start = ?, "
                   "next_dagrun_data_interval_end = ?, next_dagrun_create_after = ? WHERE dag_id = ?",
                   p, 5, NULL);
}

int store_dag_due(Store *s, int64_t now, StoreDag **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    StoreParam p[] = {SP_I(now)};
    StoreRows *r = store_q(s,
                           "SELECT " DAG_COLUMNS " FROM dag WHERE is_paused = 0 AND is_active = 1 "
                           "AND latest_version_id IS NOT NULL "
                           /* a DAG without a time schedule never has a run due: the scheduler
                            * need not load (parse) its version to find that out */
                           "AND COALESCE(schedule_kind, '') NOT IN ('none', 'assets') "
                           "AND (next_dagrun_create_after IS NULL OR next_dagrun_create_after <= ?) ORDER BY dag_id",
                           p, 1);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        read_dag(r, &(*out)[(*n)++]);
    }
    rows_free(r);
    return 0;
}

int store_dag_set_active(Store *s, const char *dag_id, int active)
{
    StoreParam p[] = {SP_I(active ? 1 : 0), SP_S(dag_id)};
    return store_x(s, "UPDATE dag SET is_active = ? WHERE dag_id = ?", p, 2, NULL);
}
