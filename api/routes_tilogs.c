/* routes_tilogs — a task instance's tries and its log on the REST API, as Airflow's REST
 * API v2 answers them: .../tries (TaskInstanceHistoryResponse, the recorded tries and the
 * current one while it is not recorded yet), .../tries/{task_try_number}, and
 * .../logs/{try_number} as JSON (TaskInstancesLogResponse), NDJSON or plain text.
 *
 * A log is followed with continuation tokens: base64url({"end_of_log", "log_pos"}) plus an
 * HMAC-SHA256 of that payload bound to the task instance and try, under the API's token
 * key, so a client cannot forge one or reuse one on another log (400 "Bad Signature"). A
 * running try's log is answered in whole lines only, so a follower never sees half a line
 * and then the rest of it: every line once, in order. */
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/ti_common.h"
#include "api/ti_json.h"
#include "core/dag.h"
#include "core/secret.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "store/tiquery.h"
#include "store/xcom.h"

#define LOG_CHUNK (1024 * 1024)         /* bytes of log per answer */
#define LOG_FULL_MAX (64 * 1024 * 1024) /* full_content stops here */

/* ---- tries ------------------------------------------------------------------------------------ */

/* TaskInstanceHistoryResponse of one try of w (d: w's DAG version, may be NULL). */
static cJSON *try_json(const TiqTry *t, const TiqRow *w, const Dag *d)
{
    cJSON *o = cJSON_CreateObject();
    char buf[128];
    cJSON_AddStringToObject(o, "task_id", t->task_id);
    cJSON_AddStringToObject(o, "dag_id", t->dag_id);
    cJSON_AddStringToObject(o, "dag_run_id", t->run_id);
    cJSON_AddNumberToObject(o, "map_index", t->map_index);
    api_add_time(o, "start_date", t->start_date);
    api_add_time(o, "end_date", t->end_date);
    tij_add_duration(o, t->duration);
    tij_add_state(o, t->state);
    cJSON_AddNumberToObject(o, "try_number", t->try_number);
    cJSON_AddNumberToObject(o, "max_tries", t->max_tries);
    cJSON_AddStringToObject(o, "task_display_name", tij_task_display(d, t->task_id));
    cJSON_AddStringToObject(o, "dag_display_name", tij_dag_display(d, t->dag_id));
    api_add_str(o, "hostname", t->hostname);
    cJSON_AddNullToObject(o, "unixname");
    cJSON_AddStringToObject(o, "pool", t->pool ? t->pool : "default_pool");
    cJSON_AddNumberToObject(o, "pool_slots", t->pool_slots);
    api_add_str(o, "queue", t->queue);
    cJSON_AddNumberToObject(o, "priority_weight", t->priority_weight);
    const char *cls = tij_op_class(t->operator_name, buf, sizeof buf);
    api_add_str(o, "operator", cls);
    api_add_str(o, "operator_name", cls);
    api_add_time(o, "queued_when", t->queued_at);
    cJSON_AddNullToObject(o, "scheduled_when");
    tij_add_int_or_null(o, "pid", t->pid);
    cJSON_AddNullToObject(o, "executor");
    cJSON_AddStringToObject(o, "executor_config", "{}");
    cJSON_AddItemToObject(o, "dag_version",
                          tij_version(w->ti.dag_version_id, w->version_number, w->version_created_at, t->dag_id, d));
    return o;
}

/* The current try of a task instance as a history entry (it is not recorded until it ends). */
static void current_try(const TiqRow *w, TiqTry *t)
{
    const TaskInstance *ti = &w->ti;
    memset(t, 0, sizeof *t);
    memcpy(t->ti_id, ti->id, sizeof t->ti_id);
    t->try_number = ti->try_number;
    t->dag_id = ti->dag_id;
    t->run_id = ti->run_id;
    t->task_id = ti->task_id;
    t->map_index = ti->map_index;
    t->state = ti->state;
    t->max_tries = ti->max_tries;
    t->start_date = ti->start_date;
    t->end_date = ti->end_date;
    t->duration = ti->duration;
    t->queued_at = ti->queued_at;
    t->hostname = ti->hostname;
    t->pid = ti->pid;
    t->queue = ti->queue;
    t->pool = ti->pool;
    t->pool_slots = ti->pool_slots;
    t->priority_weight = ti->priority_weight;
    t->operator_name = ti->operator_name;
}

/* The recorded tries plus the current one when it is not recorded yet. */
static int all_tries(Store *s, const TiqRow *w, TiqTry **hist, size_t *nh, int *with_current)
{
    if (store_tiq_history(s, w->ti.id, hist, nh) != 0) return -1;
    *with_current = w->ti.try_number > 0 && w->ti.state != TI_NONE;
    for (size_t i = 0; i < *nh; i++)
        if ((*hist)[i].try_number == w->ti.try_number) *with_current = 0;
    return 0;
}

static void tries_common(ApiReq *r, ApiResp *out, int map_pi, int try_pi)
{
    if (!tic_params_ok(r, out)) return;
    long long want = -1;
    if (try_pi >= 0 && tic_path_int(out, "task_try_number", r->params[try_pi], 0, INT_MAX, &want) != 0) return;
    Store *s = tic_store(r, out);
    if (!s) return;
    TiqRow w;
    if (!tic_load_ti(r, out, s, map_pi, &w)) return;
    TiqTry *hist = NULL, cur;
    size_t nh = 0;
    int with_cur = 0;
    if (all_tries(s, &w, &hist, &nh, &with_cur) != 0) {
        api_store_error(out, s);
        tic_row_clear(&w);
        return;
    }
    current_try(&w, &cur);
    const Dag *d = tij_dag(s, w.ti.dag_version_id);
    if (try_pi >= 0) {
        const TiqTry *hit = NULL;
        for (size_t i = 0; i < nh; i++)
            if (hist[i].try_number == want) hit = &hist[i];
        if (!hit && with_cur && cur.try_number == want) hit = &cur;
        if (hit)
            api_json(out, 200, try_json(hit, &w, d));
        else
            api_error(out, 404,
                      "The Task Instance History with dag_id: `%s`, run_id: `%s`, task_id: `%s`, map_index: `%d` and "
                      "try_number: `%lld` was not found",
                      w.ti.dag_id, w.ti.run_id, w.ti.task_id, w.ti.map_index, want);
    } else {
        cJSON *doc = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(doc, "task_instances");
        for (size_t i = 0; i < nh; i++) cJSON_AddItemToArray(arr, try_json(&hist[i], &w, d));
        if (with_cur) cJSON_AddItemToArray(arr, try_json(&cur, &w, d));
        cJSON_AddNumberToObject(doc, "total_entries", (double)(nh + (with_cur ? 1 : 0)));
        api_json(out, 200, doc);
    }
    tiq_tries_free(hist, nh);
    tic_row_clear(&w);
}

static void h_tries(ApiReq *r, ApiResp *out) { tries_common(r, out, -2, -1); }
static void h_tries_mapped(ApiReq *r, ApiResp *out) { tries_common(r, out, 3, -1); }
static void h_try(ApiReq *r, ApiResp *out) { tries_common(r, out, -2, 3); }
static void h_try_mapped(ApiReq *r, ApiResp *out) { tries_common(r, out, 3, 4); }

/* ---- logs ------------------------------------------------------------------------------------- */

/* The signature binds the payload to this log: a token of another instance or try fails. */
static void log_sig(ApiReq *r, const char *ti_id, int try_number, const char *payload, unsigned char mac[32])
{
    char *msg = xasprintf("gust-log|%s|%d|%s", ti_id, try_number, payload);
    if (secret_hmac_sha256(r->ctx->token_key, sizeof r->ctx->token_key, msg, strlen(msg), mac) != 0)
        memset(mac, 0, 32);
    free(msg);
}

static char *log_token(ApiReq *r, const char *ti_id, int try_number, int64_t pos, int end_of_log)
{
    char payload[96];
    snprintf(payload, sizeof payload, "{\"end_of_log\":%s,\"log_pos\":%lld}", end_of_log ? "true" : "false",
             (long long)pos);
    unsigned char mac[32];
    log_sig(r, ti_id, try_number, payload, mac);
    char *p64 = secret_b64url_encode(payload, strlen(payload));
    char *m64 = secret_b64url_encode(mac, sizeof mac);
    char *tok = xasprintf("%s.%s", p64, m64);
    free(p64);
    free(m64);
    return tok;
}

/* 0 and *pos, or -1 when the token was not made by this API for this log. */
static int log_token_read(ApiReq *r, const char *ti_id, int try_number, const char *tok, int64_t *pos)
{
    const char *dot = strchr(tok, '.');
    if (!dot || dot == tok) return -1;
    size_t plen = 0, mlen = 0;
    unsigned char *payload = secret_b64url_decode(tok, (size_t)(dot - tok), &plen);
    unsigned char *mac = secret_b64url_decode(dot + 1, strlen(dot + 1), &mlen);
    int rc = -1;
    if (payload && mac && mlen == 32 && strlen((char *)payload) == plen) {
        unsigned char want[32];
        log_sig(r, ti_id, try_number, (const char *)payload, want);
        if (CRYPTO_memcmp(want, mac, 32) == 0) {
            cJSON *j = cJSON_Parse((const char *)payload);
            const cJSON *p = j ? cJSON_GetObjectItemCaseSensitive(j, "log_pos") : NULL;
            if (cJSON_IsNumber(p) && p->valuedouble >= 0 && p->valuedouble < 9e15) {
                *pos = (int64_t)p->valuedouble;
                rc = 0;
            }
            cJSON_Delete(j);
        }
    }
    free(payload);
    free(mac);
    return rc;
}

/* One log line as Airflow's StructuredLogMessage: the worker writes "[<ISO time>] text". */
static cJSON *log_line_json(const char *line, size_t len)
{
    cJSON *o = cJSON_CreateObject();
    if (len > 2 && line[0] == '[') {
        const char *close = memchr(line, ']', len < 64 ? len : 64);
        if (close && (size_t)(close - line) + 1 < len && close[1] == ' ') {
            char ts[64];
            size_t tl = (size_t)(close - line - 1);
            memcpy(ts, line + 1, tl);
            ts[tl] = 0;
            int64_t us;
            char err[128];
            if (time_parse_iso(ts, NULL, &us, err, sizeof err) == 0) {
                api_add_time(o, "timestamp", us);
                char *ev = xstrndup(close + 2, len - (size_t)(close + 2 - line));
                cJSON_AddStringToObject(o, "event", ev);
                free(ev);
                return o;
            }
        }
    }
    char *ev = xstrndup(line, len);
    cJSON_AddStringToObject(o, "event", ev);
    free(ev);
    return o;
}

static void log_add_header(ApiResp *out, const char *token)
{
    char *h = xasprintf("X-Continuation-Token: %s\r\n", token);
    if (out->extra_headers) {
        char *both = xasprintf("%s%s", out->extra_headers, h);
        free(out->extra_headers);
        free(h);
        h = both;
    }
    out->extra_headers = h;
}

/* GET .../taskInstances/{task_id}/logs/{try_number}?token=&full_content=&map_index= */
static void h_log(ApiReq *r, ApiResp *out)
{
    if (!tic_params_ok(r, out)) return;
    long long try_number;
    if (tic_path_int(out, "try_number", r->params[3], 0, INT_MAX, &try_number) != 0) return;
    int full = api_query_bool(r, out, "full_content");
    if (full < 0) return;
    full = full == 1;
    Store *s = tic_store(r, out);
    if (!s) return;
    TiqRow w;
    if (!tic_load_ti(r, out, s, -2, &w)) return;
    const TaskInstance *ti = &w.ti;
    /* which try is still being written: the current one while queued/running/restarting; a
     * reschedule-mode sensor between pokes keeps its try open at try_number + 1 */
    int live = -1;
    if (ti->state == TI_QUEUED || ti->state == TI_RUNNING || ti->state == TI_RESTARTING)
        live = ti->try_number;
    else if (ti->state == TI_UP_FOR_RESCHEDULE)
        live = ti->try_number + 1;
    if (try_number > ti->try_number && try_number != live) {
        api_error(out, 404, "TaskInstance not found: %s in run %s of %s has no try %lld (its try is %d)",
                  ti->task_id, ti->run_id, ti->dag_id, try_number, ti->try_number);
        tic_row_clear(&w);
        return;
    }
    int finished = try_number != live;
    int64_t pos = 0;
    const char *tok = api_query(r, "token");
    if (tok && !full && log_token_read(r, ti->id, (int)try_number, tok, &pos) != 0) {
        api_error(out, 400, "Bad Signature. Please use only the tokens provided by the API.");
        tic_row_clear(&w);
        return;
    }
    /* read: one chunk, or (full_content) everything there is, up to LOG_FULL_MAX */
    StrBuf text = {0};
    int64_t next = pos;
    int more = 0; /* stopped before the end */
    for (;;) {
        StoreLogRead lr;
        if (store_log_read(s, ti->id, (int)try_number, next, LOG_CHUNK, &lr) != 0) {
            api_store_error(out, s);
            sb_free(&text);
            tic_row_clear(&w);
            return;
        }
        sb_appendn(&text, lr.data, lr.len);
        int64_t got = lr.next_offset - next;
        next = lr.next_offset;
        more = lr.len + 4 >= LOG_CHUNK; /* a full chunk: there may be more */
        store_log_read_free(&lr);
        if (!full || !more || got <= 0 || text.len >= LOG_FULL_MAX) break;
    }
    /* a running try is answered in whole lines: the rest waits for its newline */
    size_t keep = text.len;
    if (!finished && keep) {
        const char *nl = memrchr(sb_str(&text), '\n', keep);
        if (nl)
            keep = (size_t)(nl - sb_str(&text)) + 1;
        else if (!more)
            keep = 0; /* a partial line shorter than a chunk: wait for the rest */
    }
    next -= (int64_t)(text.len - keep);
    int end_of_log = finished && !more;
    char *token = log_token(r, ti->id, (int)try_number, next, end_of_log);
    const char *accept = api_header(r, "Accept");
    const char *body = sb_str(&text);
    if (accept && strstr(accept, "text/plain") && !strstr(accept, "application/json")) {
        free(out->body);
        out->body = xstrndup(body, keep);
        out->body_len = keep;
        out->status = 200;
        out->content_type = "text/plain; charset=utf-8";
        log_add_header(out, token);
    } else if (accept && strstr(accept, "application/x-ndjson")) {
        StrBuf nd = {0};
        for (size_t i = 0; i < keep;) {
            const char *e = memchr(body + i, '\n', keep - i);
            size_t len = e ? (size_t)(e - body - i) : keep - i;
            cJSON *line = log_line_json(body + i, len);
            char *t = cJSON_PrintUnformatted(line);
            sb_append(&nd, t);
            sb_appendc(&nd, '\n');
            free(t);
            cJSON_Delete(line);
            i += len + 1;
        }
        free(out->body);
        out->body_len = nd.len;
        out->body = sb_take(&nd);
        out->status = 200;
        out->content_type = "application/x-ndjson";
        log_add_header(out, token);
    } else {
        cJSON *doc = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(doc, "content");
        for (size_t i = 0; i < keep;) {
            const char *e = memchr(body + i, '\n', keep - i);
            size_t len = e ? (size_t)(e - body - i) : keep - i;
            cJSON_AddItemToArray(arr, log_line_json(body + i, len));
            i += len + 1;
        }
        cJSON_AddStringToObject(doc, "continuation_token", token);
        api_json(out, 200, doc);
        log_add_header(out, token);
    }
    free(token);
    sb_free(&text);
    tic_row_clear(&w);
}

/* ---- the table --------------------------------------------------------------------------------- */

const ApiRoute api_routes_tilogs[] = {
    {"GET", TIC_BASE "/{task_id}/logs/{try_number}", API_ROLE_VIEWER, h_log},
    {"GET", TIC_BASE "/{task_id}/tries", API_ROLE_VIEWER, h_tries},
    {"GET", TIC_BASE "/{task_id}/tries/{task_try_number}", API_ROLE_VIEWER, h_try},
    {"GET", TIC_BASE "/{task_id}/{map_index}/tries", API_ROLE_VIEWER, h_tries_mapped},
    {"GET", TIC_BASE "/{task_id}/{map_index}/tries/{task_try_number}", API_ROLE_VIEWER, h_try_mapped},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
