/* routes_dags — the DAG resources of Airflow's REST API v2: DAGs (list, get, details, patch,
 * delete), their tasks, sources, versions, run statistics, tags, import errors and
 * warnings, plus gust's POST /api/v2/gust/dags/validate.
 *
 * The dag table answers the lists (store/dagquery.h: one statement per page); what only the
 * serialised DAG knows (a task's retries, the DAG's params, catchup, ...) comes from the
 * DAG's latest dag_version, parsed with dag_from_json, which is also what the scheduler
 * runs. Where gust has no such concept (bundles, favourites, owner links, DAG warnings)
 * the answer is the schema's null or empty value, so Airflow clients keep working. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/jsontext.h"
#include "core/config.h"
#include "core/dag.h"
#include "core/dagbag.h"
#include "core/operator.h"
#include "core/secret.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "store/dagquery.h"
#include "store/dags.h"
#include "store/kv.h"
#include "store/runs.h"

#define MAX_LIST_ARGS 100              /* values of a repeated query argument we look at */
#define MAX_SOURCE_BYTES (16L << 20)   /* a DAG file larger than this is not served */

/* ---- small helpers ------------------------------------------------------------------------ */

static int text_ok(const char *s) { return s && store_text_valid(s, strlen(s)); }

/* A text query argument: 1 = *v set, 0 = absent, -1 after answering 422 (not UTF-8 text). */
static int q_text(ApiReq *r, ApiResp *out, const char *name, const char **v)
{
    const char *s = api_query(r, name);
    *v = NULL;
    if (!s) return 0;
    if (!text_ok(s)) {
        api_error_422(out, "query", name, "Input should be a valid string (UTF-8 text)");
        return -1;
    }
    *v = s;
    return 1;
}

/* Every value of a repeated text argument; -1 after answering 422. */
static int q_text_all(ApiReq *r, ApiResp *out, const char *name, const char **v, int max)
{
    int n = api_query_all(r, name, v, max);
    for (int i = 0; i < n; i++)
        if (!text_ok(v[i])) {
            api_error_422(out, "query", name, "Input should be a valid string (UTF-8 text)");
            return -1;
        }
    return n;
}

static void dag_not_found(ApiResp *out, const char *dag_id)
{
    api_error(out, 404, "The Dag with ID: `%s` was not found", dag_id);
}

static int effective(ApiReq *r, int v, const char *setting)
{
    return v > 0 ? v : (int)config_get_int(r->ctx->cfg, setting);
}

/* The file's path under core.dags_folder, or NULL when it is not under it. Points into fileloc. */
static const char *relative_fileloc(ApiReq *r, const char *fileloc)
{
    const char *root = r->ctx->dags_folder;
    if (!root || !fileloc) return NULL;
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/') n--;
    if (strncmp(fileloc, root, n) != 0 || fileloc[n] != '/') return NULL;
    return fileloc + n + 1;
}

/* {"__type": "TimeDelta", "days", "seconds", "microseconds"} or null (us < 0). */
static cJSON *timedelta_json(int64_t us)
{
    if (us < 0) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "__type", "TimeDelta");
    cJSON_AddNumberToObject(o, "days", (double)(us / 86400000000LL));
    cJSON_AddNumberToObject(o, "seconds", (double)(us / 1000000 % 86400));
    cJSON_AddNumberToObject(o, "microseconds", (double)(us % 1000000));
    return o;
}

/* ISO 8601 duration as pydantic writes a timedelta ("P1DT2H3M4S", "PT0.5S"); null when us < 0. */
static cJSON *duration_json(int64_t us)
{
    if (us < 0) return cJSON_CreateNull();
    int64_t days = us / 86400000000LL, rest = us % 86400000000LL;
    int64_t h = rest / 3600000000LL, m = rest / 60000000 % 60, sec = rest / 1000000 % 60, frac = rest % 1000000;
    StrBuf b = {0};
    sb_append(&b, "P");
    if (days) sb_printf(&b, "%lldD", (long long)days);
    if (h || m || sec || frac || !days) {
        sb_append(&b, "T");
        if (h) sb_printf(&b, "%lldH", (long long)h);
        if (m) sb_printf(&b, "%lldM", (long long)m);
        if (sec || frac || (!h && !m)) {
            if (frac) {
                char f[16];
                snprintf(f, sizeof f, "%06lld", (long long)frac);
                size_t fl = strlen(f);
                while (fl && f[fl - 1] == '0') f[--fl] = 0;
                sb_printf(&b, "%lld.%sS", (long long)sec, f);
            } else {
                sb_printf(&b, "%lldS", (long long)sec);
            }
        }
    }
    cJSON *j = cJSON_CreateString(sb_str(&b));
    sb_free(&b);
    return j;
}

/* Airflow's Param.dump() for each param: gust params are plain values. */
static cJSON *params_json(const cJSON *params)
{
    if (!cJSON_IsObject(params)) return cJSON_CreateObject();
    cJSON *o = cJSON_CreateObject();
    const cJSON *p;
    cJSON_ArrayForEach(p, params)
    {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "__class", "airflow.sdk.definitions.param.Param");
        cJSON_AddItemToObject(x, "value", cJSON_Duplicate(p, 1));
        cJSON_AddNullToObject(x, "description");
        cJSON_AddItemToObject(x, "schema", cJSON_CreateObject());
        cJSON_AddItemToObject(o, p->string, x);
    }
    return o;
}

static const char *timetable_description(const char *kind, const char *summary)
{
    if (!kind || strcmp(kind, "none") == 0) return "Never, external triggers only";
    if (strcmp(kind, "once") == 0) return "Once, as soon as possible";
    if (strcmp(kind, "assets") == 0) return "Triggered by assets";
    return summary;
}

/* ---- DAGResponse ---------------------------------------------------------------------------- */

/* DAGResponse is written as JSON text straight into one buffer rather than built as a cJSON
 * tree: a page of 100 DAGs is ~3,500 values, and allocating, printing and freeing a node (and
 * its key and value) for each was half the CPU time of GET /dags under load. The text is
 * what cJSON would print (same escaping, same key order), so the details endpoint parses it
 * back to add its own fields. */
/* Answer the text (takes it) as a JSON document. */
static void answer_text(ApiResp *out, int status, JsonText *j)
{
    free(out->body);
    out->status = status;
    out->body_len = j->b.len;
    out->body = sb_take(&j->b);
    out->content_type = "application/json";
}

/* What every DAG of one answer shares: the settings that stand in for an unset limit. */
typedef struct DagDefaults {
    int max_active_tasks, max_active_runs;
} DagDefaults;

static DagDefaults dag_defaults(ApiReq *r)
{
    DagDefaults df = {(int)config_get_int(r->ctx->cfg, "core.max_active_tasks_per_dag"),
                      (int)config_get_int(r->ctx->cfg, "core.max_active_runs_per_dag")};
    return df;
}

/* DAGResponse's members (without the braces), in the spec's order. */
static void put_dag_fields(ApiReq *r, JsonText *j, const DagqRow *d, const DagDefaults *df)
{
    jt_str(j, "dag_id", d->dag_id);
    jt_str(j, "dag_display_name", d->display_name);
    jt_bool(j, "is_paused", d->is_paused);
    jt_bool(j, "is_stale", !d->is_active);
    jt_time(j, "last_parsed_time", d->last_parsed_time);
    jt_null(j, "last_parse_duration");
    jt_null(j, "last_expired");
    jt_null(j, "bundle_name");
    jt_null(j, "bundle_version");
    jt_str(j, "relative_fileloc", relative_fileloc(r, d->fileloc));
    jt_str(j, "fileloc", d->fileloc ? d->fileloc : "");
    jt_str(j, "description", d->description);
    jt_str(j, "timetable_summary", d->timetable_summary);
    jt_str(j, "timetable_description", timetable_description(d->schedule_kind, d->timetable_summary));
    jt_bool(j, "timetable_partitioned", 0);
    jt_open(j, "tags", '[');
    cJSON *tj = cJSON_Parse(d->tags ? d->tags : "[]");
    const cJSON *t;
    cJSON_ArrayForEach(t, tj)
    {
        if (!cJSON_IsString(t)) continue;
        jt_open(j, NULL, '{');
        jt_str(j, "name", t->valuestring);
        jt_str(j, "dag_id", d->dag_id);
        jt_str(j, "dag_display_name", d->display_name);
        jt_close(j, '}');
    }
    cJSON_Delete(tj);
    jt_close(j, ']');
    jt_int(j, "max_active_tasks", d->max_active_tasks > 0 ? d->max_active_tasks : df->max_active_tasks);
    jt_int(j, "max_active_runs", d->max_active_runs > 0 ? d->max_active_runs : df->max_active_runs);
    jt_int(j, "max_consecutive_failed_dag_runs", d->max_consecutive_failed_dag_runs);
    jt_bool(j, "has_task_concurrency_limits", d->has_task_concurrency_limits);
    jt_bool(j, "has_import_errors", d->has_import_errors);
    jt_time(j, "next_dagrun_logical_date", d->next_dagrun);
    jt_time(j, "next_dagrun_data_interval_start", d->next_dagrun_data_interval_start);
    jt_time(j, "next_dagrun_data_interval_end", d->next_dagrun_data_interval_end);
    jt_time(j, "next_dagrun_run_after", d->next_dagrun_create_after);
    jt_open(j, "owners", '[');
    for (const char *c = d->owners ? d->owners : ""; *c;) {
        while (*c == ' ' || *c == ',') c++;
        const char *e = strchr(c, ',');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        while (len && c[len - 1] == ' ') len--;
        if (len) {
            char *one = xstrndup(c, len);
            jt_str(j, NULL, one);
            free(one);
        }
        c = e ? e + 1 : c + strlen(c);
    }
    jt_close(j, ']');
    char *token = secret_b64url_encode(d->dag_id, strlen(d->dag_id));
    jt_str(j, "file_token", token ? token : "");
    free(token);
    jt_null(j, "allowed_run_types");
}

/* One DAGResponse as text. */
static void put_dag(ApiReq *r, JsonText *j, const DagqRow *d, const DagDefaults *df)
{
    jt_open(j, NULL, '{');
    put_dag_fields(r, j, d, df);
    jt_close(j, '}');
}

/* One DAGResponse as a cJSON object, for answers that add to it (details). */
static cJSON *dag_json(ApiReq *r, const DagqRow *d)
{
    JsonText j = {.first = 1};
    DagDefaults df = dag_defaults(r);
    put_dag(r, &j, d, &df);
    cJSON *o = cJSON_ParseWithLength(j.b.s, j.b.len);
    sb_free(&j.b);
    return o;
}

static void answer_dag(ApiReq *r, ApiResp *out, const DagqRow *d)
{
    JsonText j = {.first = 1};
    DagDefaults df = dag_defaults(r);
    put_dag(r, &j, d, &df);
    answer_text(out, 200, &j);
}

/* ---- the DAG list's filters ------------------------------------------------------------------ */

typedef struct ListArgs {
    DagqFilter f;
    const char *tags[MAX_LIST_ARGS];
    const char *owners[MAX_LIST_ARGS];
    const char *states[MAX_LIST_ARGS];
} ListArgs;

static int q_bool_into(ApiReq *r, ApiResp *out, const char *name, int *v)
{
    int b = api_query_bool(r, out, name);
    if (b < 0) return -1;
    if (b != 2) *v = b;
    return 0;
}

static int q_time_into(ApiReq *r, ApiResp *out, const char *name, int64_t *v)
{
    int64_t us;
    int rc = api_query_time(r, out, name, &us);
    if (rc < 0) return -1;
    if (rc == 1) *v = us;
    return 0;
}

static int run_state_ok(ApiResp *out, const char *name, const char *v)
{
    if (run_state_parse(v) >= 0) return 0;
    api_error_422(out, "query", name, "Input should be 'queued', 'running', 'success' or 'failed'");
    return -1;
}

/* The filters GET /dags takes (full) or PATCH /dags takes (tags, owners, dag_id_pattern,
 * exclude_stale, paused). 0, or -1 after answering 422. */
static int parse_filter(ApiReq *r, ApiResp *out, ListArgs *a, int full)
{
    DagqFilter *f = &a->f;
    dagq_filter_init(f);
    f->exclude_stale = 1;
    int n = q_text_all(r, out, "tags", a->tags, MAX_LIST_ARGS);
    if (n < 0) return -1;
    f->tags = a->tags;
    f->n_tags = (size_t)n;
    const char *mode;
    if (q_text(r, out, "tags_match_mode", &mode) < 0) return -1;
    if (mode && strcmp(mode, "any") != 0 && strcmp(mode, "all") != 0) {
        api_error_422(out, "query", "tags_match_mode", "Input should be 'any' or 'all'");
        return -1;
    }
    f->tags_all = mode && strcmp(mode, "all") == 0;
    if ((n = q_text_all(r, out, "owners", a->owners, MAX_LIST_ARGS)) < 0) return -1;
    f->owners = a->owners;
    f->n_owners = (size_t)n;
    if (q_text(r, out, "dag_id_pattern", &f->dag_id_pattern) < 0) return -1;
    if (q_bool_into(r, out, "exclude_stale", &f->exclude_stale) < 0) return -1;
    if (q_bool_into(r, out, "paused", &f->paused) < 0) return -1;
    if (!full) return 0;

    if (q_text(r, out, "dag_display_name_pattern", &f->display_name_pattern) < 0) return -1;
    if (q_bool_into(r, out, "has_import_errors", &f->has_import_errors) < 0) return -1;
    if (q_bool_into(r, out, "has_asset_schedule", &f->has_asset_schedule) < 0) return -1;
    if (q_text(r, out, "asset_dependency", &f->asset_dependency) < 0) return -1;
    if (q_text(r, out, "last_dag_run_state", &f->last_run_state) < 0) return -1;
    if (f->last_run_state && run_state_ok(out, "last_dag_run_state", f->last_run_state) < 0) return -1;
    if ((n = q_text_all(r, out, "dag_run_state", a->states, MAX_LIST_ARGS)) < 0) return -1;
    for (int i = 0; i < n; i++)
        if (run_state_ok(out, "dag_run_state", a->states[i]) < 0) return -1;
    f->run_states = a->states;
    f->n_run_states = (size_t)n;
    if (q_time_into(r, out, "dag_run_start_date_gte", &f->run_start_gte) < 0 ||
        q_time_into(r, out, "dag_run_start_date_gt", &f->run_start_gt) < 0 ||
        q_time_into(r, out, "dag_run_start_date_lte", &f->run_start_lte) < 0 ||
        q_time_into(r, out, "dag_run_start_date_lt", &f->run_start_lt) < 0 ||
        q_time_into(r, out, "dag_run_end_date_gte", &f->run_end_gte) < 0 ||
        q_time_into(r, out, "dag_run_end_date_gt", &f->run_end_gt) < 0 ||
        q_time_into(r, out, "dag_run_end_date_lte", &f->run_end_lte) < 0 ||
        q_time_into(r, out, "dag_run_end_date_lt", &f->run_end_lt) < 0)
        return -1;
    /* no favourites in gust: is_favorite=true matches nothing, false everything */
    int fav = -1;
    if (q_bool_into(r, out, "is_favorite", &fav) < 0) return -1;
    if (fav == 1) f->match_none = 1;
    /* bundle_name, bundle_version, timetable_type: gust has one bundle (the DAG folder) and
     * no timetable classes; they are accepted and ignored (docs/api.md) */
    return 0;
}

/* DAGCollectionResponse. */
static void answer_dag_collection(ApiReq *r, ApiResp *out, DagqRow *rows, size_t n, int64_t total)
{
    JsonText j = {.first = 1};
    DagDefaults df = dag_defaults(r);
    jt_open(&j, NULL, '{');
    jt_open(&j, "dags", '[');
    for (size_t i = 0; i < n; i++) put_dag(r, &j, &rows[i], &df);
    jt_close(&j, ']');
    jt_int(&j, "total_entries", total);
    jt_close(&j, '}');
    answer_text(out, 200, &j);
}

/* ---- GET/PATCH /api/v2/dags ------------------------------------------------------------------- */

static void h_dags_list(ApiReq *r, ApiResp *out)
{
    int limit, offset;
    if (api_page(r, out, &limit, &offset) < 0) return;
    ListArgs a;
    if (parse_filter(r, out, &a, 1) < 0) return;
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        return;
    }
    char order[256];
    if (api_order_by(r, out, dagq_order_names, dagq_order_columns(s), 0, order, sizeof order) < 0) return;
    DagqRow *rows;
    size_t n;
    int64_t total;
    if (store_dagq_list(s, &a.f, order, limit, offset, &rows, &n, &total) != 0) {
        api_store_error(out, s);
        return;
    }
    answer_dag_collection(r, out, rows, n, total);
    dagq_rows_free(rows, n);
}

/* The DAGPatchBody ({"is_paused": bool}, nothing else) and update_mask: 0 with *paused, or
 * -1 after answering 400/422. */
static int parse_patch(ApiReq *r, ApiResp *out, int *paused)
{
    cJSON *doc;
    if (api_body_object(r, out, &doc) < 0) return -1;
    static const char *const allowed[] = {"is_paused", NULL};
    if (api_body_only(out, doc, allowed) < 0) {
        cJSON_Delete(doc);
        return -1;
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(doc, "is_paused");
    if (!p) {
        cJSON_Delete(doc);
        api_error_422(out, "body", "is_paused", "Field required");
        return -1;
    }
    if (!cJSON_IsBool(p)) {
        cJSON_Delete(doc);
        api_error_422(out, "body", "is_paused", "Input should be a valid boolean");
        return -1;
    }
    *paused = cJSON_IsTrue(p);
    cJSON_Delete(doc);
    const char *mask[MAX_LIST_ARGS];
    int nm = api_query_all(r, "update_mask", mask, MAX_LIST_ARGS);
    for (int i = 0; i < nm; i++) {
        /* "is_paused" (also as a comma-separated list, as some clients send it) */
        for (const char *c = mask[i]; *c;) {
            const char *e = strchr(c, ',');
            size_t len = e ? (size_t)(e - c) : strlen(c);
            if (!(len == 9 && strncmp(c, "is_paused", 9) == 0)) {
                api_error(out, 400, "Only `is_paused` field can be updated through the REST API");
                return -1;
            }
            c = e ? e + 1 : c + len;
        }
    }
    return 0;
}

static void h_dags_patch(ApiReq *r, ApiResp *out)
{
    int paused;
    if (parse_patch(r, out, &paused) < 0) return;
    int limit, offset;
    if (api_page(r, out, &limit, &offset) < 0) return;
    ListArgs a;
    if (parse_filter(r, out, &a, 0) < 0) return;
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        return;
    }
    DagqRow *rows;
    size_t n;
    int64_t total;
    if (store_dagq_list(s, &a.f, NULL, limit, offset, &rows, &n, &total) != 0) {
        api_store_error(out, s);
        return;
    }
    const char **ids = xcalloc(n + 1, sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = rows[i].dag_id;
    if (store_dagq_set_paused(s, ids, n, paused) != 0) {
        free(ids);
        dagq_rows_free(rows, n);
        api_store_error(out, s);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        rows[i].is_paused = paused;
        api_audit(r, "api.patch_dags", rows[i].dag_id, NULL, NULL,
                  paused ? "{\"is_paused\":true}" : "{\"is_paused\":false}");
    }
    free(ids);
    answer_dag_collection(r, out, rows, n, total);
    dagq_rows_free(rows, n);
}

/* ---- GET/PATCH/DELETE /api/v2/dags/{dag_id} ----------------------------------------------- */

/* The DAG of the path, or 0 after answering 404/503. */
static int load_dag_row(ApiReq *r, ApiResp *out, Store **sp, DagqRow *row)
{
    const char *dag_id = r->params[0];
    if (!text_ok(dag_id)) {
        dag_not_found(out, dag_id);
        return 0;
    }
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        return 0;
    }
    int found = store_dagq_get(s, dag_id, row);
    if (found < 0) {
        api_store_error(out, s);
        return 0;
    }
    if (!found) {
        dag_not_found(out, dag_id);
        return 0;
    }
    *sp = s;
    return 1;
}

static void h_dag_get(ApiReq *r, ApiResp *out)
{
    Store *s;
    DagqRow row;
    if (!load_dag_row(r, out, &s, &row)) return;
    answer_dag(r, out, &row);
    dagq_row_clear(&row);
}

static void h_dag_patch(ApiReq *r, ApiResp *out)
{
    int paused;
    if (parse_patch(r, out, &paused) < 0) return;
    const char *dag_id = r->params[0];
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        return;
    }
    int rc = text_ok(dag_id) ? store_dag_set_paused(s, dag_id, paused) : 0;
    if (rc < 0) {
        api_store_error(out, s);
        return;
    }
    if (rc == 0) {
        api_error(out, 404, "Dag with id: %s was not found", dag_id);
        return;
    }
    api_audit(r, "api.patch_dag", dag_id, NULL, NULL, paused ? "{\"is_paused\":true}" : "{\"is_paused\":false}");
    DagqRow row;
    if (!load_dag_row(r, out, &s, &row)) return;
    answer_dag(r, out, &row);
    dagq_row_clear(&row);
}

/* Airflow answers 204 No Content here (its generated spec says 200 with any body). */
static void h_dag_delete(ApiReq *r, ApiResp *out)
{
    const char *dag_id = r->params[0];
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        return;
    }
    int rc = text_ok(dag_id) ? store_dagq_delete(s, dag_id) : 0;
    if (rc < 0) {
        api_store_error(out, s);
        return;
    }
    if (rc == 0) {
        api_error(out, 404, "Dag with id: %s was not found", dag_id);
        return;
    }
    if (rc == 2) {
        api_error(out, 409, "Task instances of dag with id: '%s' are still running", dag_id);
        return;
    }
    api_audit(r, "api.delete_dag", dag_id, NULL, NULL, NULL);
    api_no_content(out);
}

/* ---- the serialised DAG ------------------------------------------------------------------------ */

/* The DAG's latest version, parsed (caller frees with dag_free); NULL when it has none or it
 * cannot be read (why says which). */
static Dag *latest_dag(Store *s, const DagqRow *row, char *why, size_t whylen)
{
    if (!row->latest_version_id) {
        snprintf(why, whylen, "the DAG has no stored version yet");
        return NULL;
    }
    char *data = store_dag_version_data(s, row->latest_version_id);
    if (!data) {
        snprintf(why, whylen, "cannot read version %s: %s", row->latest_version_id, store_last_error(s));
        return NULL;
    }
    Dag *d = dag_from_json(data, why, whylen);
    free(data);
    return d;
}

static void version_clear(DagqVersion *v)
{
    free(v->dag_id);
    free(v->display_name);
    v->dag_id = v->display_name = NULL;
}

static cJSON *version_json(const DagqVersion *v)
{
    cJSON *o = cJSON_CreateObject();
    char id[37];
    api_uuid(v->id, id);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddNumberToObject(o, "version_number", v->version_number);
    cJSON_AddStringToObject(o, "dag_id", v->dag_id ? v->dag_id : "");
    cJSON_AddNullToObject(o, "bundle_name");
    cJSON_AddNullToObject(o, "bundle_version");
    api_add_time(o, "created_at", v->created_at);
    cJSON_AddStringToObject(o, "dag_display_name", v->display_name ? v->display_name : "");
    cJSON_AddNullToObject(o, "bundle_url");
    return o;
}

/* gust's asset condition (a URI, or {"all"|"any": [...]}) in Airflow's asset_expression shape. */
static cJSON *asset_expression(const cJSON *a)
{
    if (cJSON_IsString(a)) {
        cJSON *o = cJSON_CreateObject(), *x = cJSON_AddObjectToObject(o, "asset");
        cJSON_AddStringToObject(x, "uri", a->valuestring);
        cJSON_AddStringToObject(x, "name", a->valuestring);
        cJSON_AddStringToObject(x, "group", "asset");
        return o;
    }
    if (cJSON_IsObject(a)) {
        cJSON *o = cJSON_CreateObject();
        const cJSON *kv;
        cJSON_ArrayForEach(kv, a)
        {
            cJSON *arr = cJSON_AddArrayToObject(o, kv->string);
            const cJSON *it;
            cJSON_ArrayForEach(it, kv) cJSON_AddItemToArray(arr, asset_expression(it));
        }
        return o;
    }
    return cJSON_CreateNull();
}

static void h_dag_details(ApiReq *r, ApiResp *out)
{
    Store *s;
    DagqRow row;
    if (!load_dag_row(r, out, &s, &row)) return;
    char why[512];
    Dag *d = latest_dag(s, &row, why, sizeof why);
    DagqVersion v;
    int have_v = store_dagq_version_get(s, row.dag_id, 0, &v);
    int64_t active = 0;
    if (have_v < 0 || store_dagq_active_runs(s, row.dag_id, &active) != 0) {
        if (have_v > 0) version_clear(&v);
        dag_free(d);
        dagq_row_clear(&row);
        api_store_error(out, s);
        return;
    }
    cJSON *o = dag_json(r, &row);
    cJSON_AddBoolToObject(o, "catchup", d ? d->catchup : 0);
    api_add_time(o, "start_date", d ? d->start_date_us : -1);
    api_add_time(o, "end_date", d ? d->end_date_us : -1);
    cJSON_AddItemToObject(o, "dag_run_timeout", duration_json(d ? d->dagrun_timeout_us : -1));
    cJSON_AddItemToObject(o, "asset_expression", d && d->assets ? asset_expression(d->assets) : cJSON_CreateNull());
    api_add_str(o, "doc_md", d ? d->doc_md : NULL);
    cJSON_AddNullToObject(o, "default_args"); /* applied to the tasks when the file is loaded, not kept */
    if (d && d->is_paused_upon_creation >= 0)
        cJSON_AddBoolToObject(o, "is_paused_upon_creation", d->is_paused_upon_creation);
    else
        cJSON_AddNullToObject(o, "is_paused_upon_creation");
    cJSON_AddItemToObject(o, "params", params_json(d ? d->params : NULL));
    cJSON_AddBoolToObject(o, "render_template_as_native_obj", 0);
    cJSON_AddNullToObject(o, "template_search_path");
    api_add_str(o, "timezone", d && d->timezone ? d->timezone : row.timezone);
    api_add_time(o, "last_parsed", row.last_parsed_time);
    cJSON_AddNullToObject(o, "owner_links");
    cJSON_AddBoolToObject(o, "is_favorite", 0);
    cJSON_AddNumberToObject(o, "active_runs_count", (double)active);
    cJSON_AddNumberToObject(o, "concurrency", effective(r, row.max_active_tasks, "core.max_active_tasks_per_dag"));
    if (have_v > 0) {
        cJSON_AddItemToObject(o, "latest_dag_version", version_json(&v));
        version_clear(&v);
    } else {
        cJSON_AddNullToObject(o, "latest_dag_version");
    }
    dag_free(d);
    dagq_row_clear(&row);
    api_json(out, 200, o);
}

/* ---- tasks --------------------------------------------------------------------------------------- */

/* "BashOperator" from the operator's first Airflow class path, else gust's own name. */
static void operator_class(const OperatorDef *op, char *cls, size_t clslen, char *module, size_t modlen)
{
    const char *alias = op && op->aliases ? op->aliases[0] : NULL;
    const char *dot = alias ? strrchr(alias, '.') : NULL;
    module[0] = 0;
    if (!dot) {
        util_strlcpy(cls, op ? op->name : "", clslen);
        return;
    }
    util_strlcpy(cls, dot + 1, clslen);
    snprintf(module, modlen, "%.*s", (int)(dot - alias), alias);
}

static cJSON *task_json(const Dag *d, const DagTask *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task_id", t->task_id);
    cJSON_AddStringToObject(o, "task_display_name", t->display_name ? t->display_name : t->task_id);
    char cls[128], module[256];
    operator_class(t->op, cls, sizeof cls, module, sizeof module);
    cJSON_AddStringToObject(o, "operator_name", cls);
    if (module[0]) {
        cJSON *c = cJSON_AddObjectToObject(o, "class_ref");
        cJSON_AddStringToObject(c, "module_path", module);
        cJSON_AddStringToObject(c, "class_name", cls);
    } else {
        cJSON_AddNullToObject(o, "class_ref");
    }
    api_add_str(o, "owner", t->owner);
    api_add_time(o, "start_date", t->start_date_us >= 0 ? t->start_date_us : d->start_date_us);
    api_add_time(o, "end_date", t->end_date_us >= 0 ? t->end_date_us : d->end_date_us);
    cJSON_AddStringToObject(o, "trigger_rule", trigger_rule_name(t->trigger_rule));
    cJSON_AddBoolToObject(o, "depends_on_past", t->depends_on_past);
    cJSON_AddBoolToObject(o, "wait_for_downstream", t->wait_for_downstream);
    cJSON_AddNumberToObject(o, "retries", t->retries);
    api_add_str(o, "queue", t->queue);
    api_add_str(o, "pool", t->pool);
    cJSON_AddNumberToObject(o, "pool_slots", t->pool_slots);
    cJSON_AddItemToObject(o, "execution_timeout", timedelta_json(t->execution_timeout_us));
    cJSON_AddItemToObject(o, "retry_delay", timedelta_json(t->retry_delay_us));
    /* Airflow 3 made this a multiplier: 0 is off, and its exponential backoff doubles (2) */
    cJSON_AddNumberToObject(o, "retry_exponential_backoff", t->retry_exponential_backoff ? 2 : 0);
    cJSON_AddNumberToObject(o, "priority_weight", t->priority_weight);
    cJSON_AddStringToObject(o, "weight_rule", weight_rule_name(t->weight_rule));
    const cJSON *uc = cJSON_GetObjectItemCaseSensitive(t->args, "ui_color");
    const cJSON *uf = cJSON_GetObjectItemCaseSensitive(t->args, "ui_fgcolor");
    cJSON_AddStringToObject(o, "ui_color", cJSON_IsString(uc) ? uc->valuestring : "#fff");
    cJSON_AddStringToObject(o, "ui_fgcolor", cJSON_IsString(uf) ? uf->valuestring : "#000");
    cJSON *tf = cJSON_AddArrayToObject(o, "template_fields");
    for (const OpField *f = t->op ? t->op->fields : NULL; f && f->name; f++)
        if (f->flags & FIELD_TEMPLATED) cJSON_AddItemToArray(tf, cJSON_CreateString(f->name));
    /* downstream: the tasks that name this one upstream */
    cJSON *down = cJSON_AddArrayToObject(o, "downstream_task_ids");
    for (size_t i = 0; i < d->n_tasks; i++) {
        const DagTask *x = d->tasks[i];
        for (size_t u = 0; u < x->n_upstream; u++)
            if (strcmp(x->upstream[u], t->task_id) == 0) {
                cJSON_AddItemToArray(down, cJSON_CreateString(x->task_id));
                break;
            }
    }
    api_add_str(o, "doc_md", t->doc_md);
    cJSON_AddItemToObject(o, "params", params_json(t->params));
    cJSON_AddBoolToObject(o, "is_mapped", 0);
    cJSON_AddItemToObject(o, "extra_links", cJSON_CreateArray());
    return o;
}

/* The path's DAG parsed from its latest version, or NULL after answering 404/503. */
static Dag *load_dag(ApiReq *r, ApiResp *out)
{
    Store *s;
    DagqRow row;
    if (!load_dag_row(r, out, &s, &row)) return NULL;
    char why[512];
    Dag *d = latest_dag(s, &row, why, sizeof why);
    if (!d) api_error(out, 404, "The Dag with ID: `%s` has no readable version: %s", row.dag_id, why);
    dagq_row_clear(&row);
    return d;
}

static const char *const task_order_names[] = {
    "task_id", "task_display_name", "operator_name", "owner", "pool", "queue", "priority_weight", "retries",
    "trigger_rule", "weight_rule", NULL,
};

typedef struct TaskSort {
    int key;
    int desc;
} TaskSort;

static const char *task_text_key(const DagTask *t, int key)
{
    switch (key) {
    case 1: return t->display_name ? t->display_name : t->task_id;
    case 2: return t->op ? t->op->name : "";
    case 3: return t->owner ? t->owner : "";
    case 4: return t->pool ? t->pool : "";
    case 5: return t->queue ? t->queue : "";
    case 8: return trigger_rule_name(t->trigger_rule);
    case 9: return weight_rule_name(t->weight_rule);
    default: return t->task_id;
    }
}

static int task_cmp(const void *a, const void *b, void *ud)
{
    const TaskSort *ts = ud;
    const DagTask *x = *(const DagTask *const *)a, *y = *(const DagTask *const *)b;
    int c;
    if (ts->key == 6)
        c = (x->priority_weight > y->priority_weight) - (x->priority_weight < y->priority_weight);
    else if (ts->key == 7)
        c = (x->retries > y->retries) - (x->retries < y->retries);
    else
        c = strcmp(task_text_key(x, ts->key), task_text_key(y, ts->key));
    if (ts->desc) c = -c;
    return c ? c : strcmp(x->task_id, y->task_id);
}

static void h_tasks(ApiReq *r, ApiResp *out)
{
    char order[64];
    if (api_order_by(r, out, task_order_names, task_order_names, 0, order, sizeof order) < 0) return;
    Dag *d = load_dag(r, out);
    if (!d) return;
    TaskSort ts = {0, strstr(order, " DESC") != NULL};
    for (int i = 0; task_order_names[i]; i++) {
        size_t len = strlen(task_order_names[i]);
        if (strncmp(order, task_order_names[i], len) == 0 && order[len] == ' ') ts.key = i;
    }
    DagTask **v = xcalloc(d->n_tasks + 1, sizeof *v);
    for (size_t i = 0; i < d->n_tasks; i++) v[i] = d->tasks[i];
    qsort_r(v, d->n_tasks, sizeof *v, task_cmp, &ts);
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "tasks");
    for (size_t i = 0; i < d->n_tasks; i++) cJSON_AddItemToArray(arr, task_json(d, v[i]));
    cJSON_AddNumberToObject(o, "total_entries", (double)d->n_tasks);
    free(v);
    dag_free(d);
    api_json(out, 200, o);
}

static void h_task(ApiReq *r, ApiResp *out)
{
    Dag *d = load_dag(r, out);
    if (!d) return;
    const char *task_id = r->params[1];
    DagTask *t = dag_find_task(d, task_id);
    if (!t)
        api_error(out, 404, "Task with id %s not found", task_id);
    else
        api_json(out, 200, task_json(d, t));
    dag_free(d);
}

/* ---- dagSources ---------------------------------------------------------------------------------- */

/* The file's text when it is a regular file inside core.dags_folder (after resolving links
 * and ".."), else NULL: the API never serves other paths, whatever a dag row says. */
static char *read_source(ApiReq *r, const char *fileloc)
{
    char root[PATH_MAX], file[PATH_MAX];
    if (!r->ctx->dags_folder || !fileloc || !*fileloc) return NULL;
    if (!realpath(r->ctx->dags_folder, root) || !realpath(fileloc, file)) return NULL;
    size_t n = strlen(root);
    if (!(n == 1 && root[0] == '/') && (strncmp(file, root, n) != 0 || file[n] != '/')) return NULL;
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_SOURCE_BYTES) {
        close(fd);
        return NULL;
    }
    StrBuf b = {0};
    char chunk[8192];
    ssize_t k;
    while ((k = read(fd, chunk, sizeof chunk)) > 0 && b.len <= (size_t)MAX_SOURCE_BYTES)
        sb_appendn(&b, chunk, (size_t)k);
    close(fd);
    if (k < 0 || !store_text_valid(sb_str(&b), b.len)) {
        sb_free(&b);
        return NULL;
    }
    return sb_take(&b);
}

static void h_source(ApiReq *r, ApiResp *out)
{
    /* Accept: JSON (also any type) or text/plain, as Airflow */
    const char *accept = api_header(r, "Accept");
    while (accept && *accept == ' ') accept++;
    int text = 0;
    if (accept && *accept && strncmp(accept, "*/*", 3) != 0 && strncasecmp(accept, "application/json", 16) != 0) {
        if (strncasecmp(accept, "text/plain", 10) == 0)
            text = 1;
        else if (!strstr(accept, "application/json") && !strstr(accept, "*/*")) {
            api_error(out, 406, "Only application/json or text/plain is supported");
            return;
        }
    }
    long long want = 0;
    if (api_query_int(r, out, "version_number", 1, INT_MAX, &want) < 0) return;
    Store *s;
    DagqRow row;
    if (!load_dag_row(r, out, &s, &row)) return;
    DagqVersion latest, v;
    int hl = store_dagq_version_get(s, row.dag_id, 0, &latest);
    int hv = want ? store_dagq_version_get(s, row.dag_id, (int)want, &v) : 0;
    if (hl < 0 || hv < 0) {
        if (hl > 0) version_clear(&latest);
        if (hv > 0) version_clear(&v);
        dagq_row_clear(&row);
        api_store_error(out, s);
        return;
    }
    if (want && !hv) {
        api_error(out, 404, "The source code of the DAG %s, version_number %lld was not found", row.dag_id, want);
        if (hl > 0) version_clear(&latest);
        dagq_row_clear(&row);
        return;
    }
    int number = hv > 0 ? v.version_number : hl > 0 ? latest.version_number : 0;
    /* the file holds the latest version only: an older one's text is not kept */
    char *content = (!want || (hl > 0 && number == latest.version_number)) ? read_source(r, row.fileloc) : NULL;
    if (text) {
        free(out->body);
        out->status = 200;
        out->body = content ? content : xstrdup("");
        out->body_len = strlen(out->body);
        out->content_type = "text/plain; charset=utf-8";
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dag_id", row.dag_id);
        cJSON_AddStringToObject(o, "dag_display_name", row.display_name);
        api_add_str(o, "content", content);
        if (number > 0)
            cJSON_AddNumberToObject(o, "version_number", number);
        else
            cJSON_AddNullToObject(o, "version_number");
        free(content);
        api_json(out, 200, o);
    }
    if (hl > 0) version_clear(&latest);
    if (hv > 0) version_clear(&v);
    dagq_row_clear(&row);
}

/* ---- dagStats, dagTags, dagWarnings -------------------------------------------------------------- */

static void h_stats(ApiReq *r, ApiResp *out)
{
    const char *ids[MAX_LIST_ARGS];
    int n_ids = q_text_all(r, out, "dag_ids", ids, MAX_LIST_ARGS);
    if (n_ids < 0) return;
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        return;
    }
    DagqStats *st;
    size_t n;
    if (store_dagq_stats(s, ids, (size_t)n_ids, &st, &n) != 0) {
        api_store_error(out, s);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "dags");
    for (size_t i = 0; i < n; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "dag_id", st[i].dag_id);
        cJSON_AddStringToObject(x, "dag_display_name", st[i].display_name);
        cJSON *stats = cJSON_AddArrayToObject(x, "stats");
        for (int k = 0; k < RUN__COUNT; k++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "state", run_state_name((RunState)k));
            cJSON_AddNumberToObject(e, "count", (double)st[i].count[k]);
            cJSON_AddItemToArray(stats, e);
        }
        cJSON_AddItemToArray(arr, x);
    }
    cJSON_AddNumberToObject(o, "total_entries", (double)n);
    store_dagq_stats_free(st, n);
    api_json(out, 200, o);
}

static void h_tags(ApiReq *r, ApiResp *out)
{
    int limit, offset;
    if (api_page(r, out, &limit, &offset) < 0) return;
    static const char *const names[] = {"name", NULL};
    char order[32];
    if (api_order_by(r, out, names, names, 0, order, sizeof order) < 0) return;
    const char *pattern;
    if (q_text(r, out, "tag_name_pattern", &pattern) < 0) return;
    if (pattern && strcmp(pattern, "~") == 0) pattern = NULL;
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        return;
    }
    char **tags;
    size_t n;
    int64_t total;
    if (store_dagq_tags(s, pattern, strstr(order, " DESC") != NULL, limit, offset, &tags, &n, &total) != 0) {
        api_store_error(out, s);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "tags");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(tags[i]));
    cJSON_AddNumberToObject(o, "total_entries", (double)total);
    store_dagq_strings_free(tags, n);
    api_json(out, 200, o);
}

static void h_warnings(ApiReq *r, ApiResp *out)
{
    int limit, offset;
    if (api_page(r, out, &limit, &offset) < 0) return;
    static const char *const names[] = {"dag_id", "warning_type", "message", "timestamp", NULL};
    char order[32];
    if (api_order_by(r, out, names, names, 0, order, sizeof order) < 0) return;
    const char *wt = api_query(r, "warning_type");
    if (wt && strcmp(wt, "asset conflict") != 0 && strcmp(wt, "non-existent pool") != 0 &&
        strcmp(wt, "runtime varying value") != 0) {
        api_error_422(out, "query", "warning_type",
                      "Input should be 'asset conflict', 'non-existent pool' or 'runtime varying value'");
        return;
    }
    /* gust reports problems as import errors (with file and line), never as DAG warnings */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "dag_warnings", cJSON_CreateArray());
    cJSON_AddNumberToObject(o, "total_entries", 0);
    api_json(out, 200, o);
}

/* ---- import errors ------------------------------------------------------------------------------- */

static cJSON *import_error_json(ApiReq *r, const StoreImportError *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "import_error_id", (double)e->id);
    api_add_time(o, "timestamp", e->timestamp);
    /* relative to the DAG folder, as Airflow 3 records it */
    const char *rel = relative_fileloc(r, e->filename);
    cJSON_AddStringToObject(o, "filename", rel ? rel : e->filename ? e->filename : "");
    cJSON_AddNullToObject(o, "bundle_name");
    cJSON_AddStringToObject(o, "stack_trace", e->message ? e->message : "");
    return o;
}

static void h_import_errors(ApiReq *r, ApiResp *out)
{
    int limit, offset;
    if (api_page(r, out, &limit, &offset) < 0) return;
    const char *pattern;
    if (q_text(r, out, "filename_pattern", &pattern) < 0) return;
    if (pattern && strcmp(pattern, "~") == 0) pattern = NULL;
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        return;
    }
    char order[128];
    if (api_order_by(r, out, dagq_import_error_order_names, dagq_import_error_order_columns(s), 0, order,
                     sizeof order) < 0)
        return;
    StoreImportErrorList l;
    int64_t total;
    if (store_dagq_import_errors(s, pattern, order, limit, offset, &l, &total) != 0) {
        api_store_error(out, s);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "import_errors");
    for (size_t i = 0; i < l.n; i++) cJSON_AddItemToArray(arr, import_error_json(r, &l.items[i]));
    cJSON_AddNumberToObject(o, "total_entries", (double)total);
    store_import_error_list_free(&l);
    api_json(out, 200, o);
}

/* An integer path parameter: 0 and *v, or -1 after answering 422. */
static int path_int(ApiResp *out, const char *name, const char *text, long long *v)
{
    char *end;
    errno = 0;
    long long x = text ? strtoll(text, &end, 10) : 0;
    if (!text || !*text || errno || *end) {
        api_error_422(out, "path", name, "Input should be a valid integer, unable to parse string as an integer");
        return -1;
    }
    *v = x;
    return 0;
}

static void h_import_error(ApiReq *r, ApiResp *out)
{
    long long id;
    if (path_int(out, "import_error_id", r->params[0], &id) < 0) return;
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        return;
    }
    StoreImportErrorList l;
    int found = store_dagq_import_error_get(s, id, &l);
    if (found < 0) {
        api_store_error(out, s);
        return;
    }
    if (!found)
        api_error(out, 404, "The ImportError with import_error_id: `%lld` was not found", id);
    else
        api_json(out, 200, import_error_json(r, &l.items[0]));
    store_import_error_list_free(&l);
}

/* ---- DAG versions --------------------------------------------------------------------------------- */

static void h_versions(ApiReq *r, ApiResp *out)
{
    int limit, offset;
    if (api_page(r, out, &limit, &offset) < 0) return;
    long long number = 0;
    if (api_query_int(r, out, "version_number", LLONG_MIN, LLONG_MAX, &number) < 0) return;
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        return;
    }
    char order[64];
    if (api_order_by(r, out, dagq_version_order_names, dagq_version_order_columns(s), 0, order, sizeof order) < 0)
        return;
    /* bundle_name and bundle_version: gust has one bundle; ignored (docs/api.md) */
    const char *dag_id = r->params[0];
    if (strcmp(dag_id, "~") == 0) {
        dag_id = NULL;
    } else {
        DagqRow row;
        if (!load_dag_row(r, out, &s, &row)) return;
        dagq_row_clear(&row);
    }
    DagqVersion *v = NULL;
    size_t n = 0;
    int64_t total = 0;
    /* a version_number below 1 matches no version */
    int given = api_query(r, "version_number") != NULL;
    if ((!given || (number >= 1 && number <= INT_MAX)) &&
        store_dagq_versions(s, dag_id, given ? (int)number : 0, order, limit, offset, &v, &n, &total) != 0) {
        api_store_error(out, s);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "dag_versions");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, version_json(&v[i]));
    cJSON_AddNumberToObject(o, "total_entries", (double)total);
    store_dagq_versions_free(v, n);
    api_json(out, 200, o);
}

static void h_version(ApiReq *r, ApiResp *out)
{
    long long number;
    if (path_int(out, "version_number", r->params[1], &number) < 0) return;
    const char *dag_id = r->params[0];
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        return;
    }
    DagqVersion v;
    int found = number >= 1 && number <= INT_MAX && text_ok(dag_id)
                    ? store_dagq_version_get(s, dag_id, (int)number, &v)
                    : 0;
    if (found < 0) {
        api_store_error(out, s);
        return;
    }
    if (!found) {
        api_error(out, 404, "The DagVersion with dag_id: `%s` and version_number: `%lld` was not found", dag_id,
                  number);
        return;
    }
    api_json(out, 200, version_json(&v));
    version_clear(&v);
}

/* ---- the table ------------------------------------------------------------------------------------ */

const ApiRoute api_routes_dags[] = {
    {"GET", "/api/v2/dags", API_ROLE_VIEWER, h_dags_list},
    {"PATCH", "/api/v2/dags", API_ROLE_USER, h_dags_patch},
    {"GET", "/api/v2/dags/{dag_id}", API_ROLE_VIEWER, h_dag_get},
    {"PATCH", "/api/v2/dags/{dag_id}", API_ROLE_USER, h_dag_patch},
    {"DELETE", "/api/v2/dags/{dag_id}", API_ROLE_OP, h_dag_delete},
    {"GET", "/api/v2/dags/{dag_id}/details", API_ROLE_VIEWER, h_dag_details},
    {"GET", "/api/v2/dags/{dag_id}/tasks", API_ROLE_VIEWER, h_tasks},
    {"GET", "/api/v2/dags/{dag_id}/tasks/{task_id}", API_ROLE_VIEWER, h_task},
    {"GET", "/api/v2/dags/{dag_id}/dagVersions", API_ROLE_VIEWER, h_versions},
    {"GET", "/api/v2/dags/{dag_id}/dagVersions/{version_number}", API_ROLE_VIEWER, h_version},
    {"GET", "/api/v2/dagSources/{dag_id}", API_ROLE_VIEWER, h_source},
    {"GET", "/api/v2/dagStats", API_ROLE_VIEWER, h_stats},
    {"GET", "/api/v2/dagTags", API_ROLE_VIEWER, h_tags},
    {"GET", "/api/v2/dagWarnings", API_ROLE_VIEWER, h_warnings},
    {"GET", "/api/v2/importErrors", API_ROLE_VIEWER, h_import_errors},
    {"GET", "/api/v2/importErrors/{import_error_id}", API_ROLE_VIEWER, h_import_error},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
