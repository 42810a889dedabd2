/* runtry — one try of one task instance, from claim to final state (see worker.h), and the
 * operators: bash, branch_bash, short_circuit_bash, empty, the sensors (file, time delta,
 * external task, http) in poke and reschedule mode, http and trigger_dagrun. */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/duration.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "scheduler/rules.h"
#include "scheduler/scheduler.h"
#include "store/dags.h"
#include "store/kv.h"
#include "store/xcom.h"
#include "store/assets.h"
#include "store/tryops.h"
#include "worker/context.h"
#include "worker/executor.h"
#include "worker/http.h"
#include "worker/worker.h"
#include "cluster/cluster.h"

typedef enum TryEnd { END_SUCCESS, END_SKIPPED, END_FAILED, END_FAILED_NO_RETRY, END_RESCHEDULE } TryEnd;

typedef struct Try {
    Store *store;
    DagCache *cache;
    const WorkerOptions *opt;
    volatile int *cancel;
    TaskInstance ti;
    DagRun run;
    Dag *dag;             /* the version's fields and this one task (dagcache_task), owned */
    const DagTask *task;
    TryContext ctx;
    cJSON *args;          /* rendered operator fields */
    char *log_path;
    StrBuf logbuf;        /* lines not yet in the store */
    int64_t last_flush;
    int64_t next_attempt; /* for END_RESCHEDULE */
    char why[1024];       /* how it ended, one line */
} Try;

/* ---- the try's log: a file, and chunks in the store the API can tail ----------------- */

static void log_flush(Try *t)
{
    if (!t->logbuf.len) return;
    if (store_log_append(t->store, t->ti.id, t->ti.try_number, t->logbuf.s, t->logbuf.len, NULL) != 0)
        log_warn("worker", "ti=%s: cannot store log chunk: %s", t->ti.id, store_last_error(t->store));
    t->logbuf.len = 0;
    t->logbuf.s[0] = '\0';
    t->last_flush = util_now_us();
}

static void log_line(void *ud, const char *line, size_t len)
{
    Try *t = ud;
    char ts[48];
    time_format_iso(util_now_us(), 1, ts, sizeof ts);
    sb_printf(&t->logbuf, "[%s] ", ts);
    sb_appendn(&t->logbuf, line, len);
    sb_appendc(&t->logbuf, '\n');
    if (t->logbuf.len > 4096 || util_now_us() - t->last_flush > 250000) log_flush(t);
}

/* While the task runs: lines it printed more than 250 ms ago reach the store even when it
 * prints nothing after them, so a client tailing the log sees each line within ~0.5 s. */
static void log_idle(void *ud)
{
    Try *t = ud;
    if (t->logbuf.len && util_now_us() - t->last_flush > 250000) log_flush(t);
}

/* A line of gust's own (not the task's output) into the file and the store. */
static void trylog(Try *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trylog(Try *t, const char *fmt, ...)
{
    StrBuf b = {0};
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    char *masked = secret_mask(sb_str(&b));
    sb_free(&b);
    char ts[48];
    time_format_iso(util_now_us(), 1, ts, sizeof ts);
    FILE *f = t->log_path ? fopen(t->log_path, "a") : NULL;
    if (f) {
        fprintf(f, "[%s] gust: %s\n", ts, masked);
        fclose(f);
    }
    char *line = xasprintf("gust: %s", masked);
    log_line(t, line, strlen(line));
    free(line);
    free(masked);
}

static int mkdirs(const char *path)
{
    /* the parent nearly always exists (or the folder itself does): one call, not one per
     * component of the path (a dozen mkdir calls per try, most of them EEXIST) */
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
    if (errno != ENOENT) return -1;
    char buf[4096];
    util_strlcpy(buf, path, sizeof buf);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(buf, 0755);
        *p = '/';
    }
    return mkdir(buf, 0755) == 0 || access(buf, F_OK) == 0 ? 0 : -1;
}

/* $home/logs/dag_id=…/run_id=…/task_id=…/attempt=N.log, as Airflow lays them out. */
static char *log_path_for(const Try *t)
{
    char *dir = xasprintf("%s/logs/dag_id=%s/run_id=%s/task_id=%s", t->opt->home, t->ti.dag_id, t->ti.run_id,
                          t->ti.task_id);
    for (char *p = dir + strlen(t->opt->home); *p; p++)
        if (*p == ' ' || *p == ':') *p = '_'; /* run ids carry colons; keep paths shell-friendly */
    mkdirs(dir);
    char *p = xasprintf("%s/attempt=%d.log", dir, t->ti.try_number);
    free(dir);
    return p;
}

/* ---- helpers for operators ---------------------------------------------------------- */

static const char *arg_str(const Try *t, const char *k, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(t->args, k);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

static int arg_bool(const Try *t, const char *k, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(t->args, k);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

/* An operator field of type duration (delta, execution_delta, poke_interval), as the DAG file
 * wrote it: a number of seconds or a string such as "2s" or "1h30m" (the loader checked it
 * with the same parser). Fix: these used to be read as plain numbers, so a string counted as 0:
 * `delta: 2s` made time_delta_sensor succeed at once. */
static int64_t arg_duration_us(const Try *t, const char *k, int64_t dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(t->args, k);
    if (cJSON_IsNumber(v)) return (int64_t)(v->valuedouble * 1e6);
    int64_t us;
    char err[256];
    if (cJSON_IsString(v) && duration_parse(v->valuestring, &us, err, sizeof err) == 0) return us;
    return dflt;
}

static void push_xcom(Try *t, const char *key, const char *json)
{
    if (store_xcom_push(t->store, t->ti.dag_id, t->ti.run_id, t->ti.task_id, t->ti.map_index, key, json) != 0)
        trylog(t, "cannot push XCom '%s': %s", key, store_last_error(t->store));
}

static void push_string_xcom(Try *t, const char *key, const char *s)
{
    cJSON *v = cJSON_CreateString(s);
    char *json = cJSON_PrintUnformatted(v);
    push_xcom(t, key, json);
    free(json);
    cJSON_Delete(v);
}

typedef struct SkipSet {
    Try *t;
    const char **ids;  /* task ids to skip */
    size_t n;
    char *done;        /* done[i]: ids[i] was skipped by this transaction */
} SkipSet;

static int skip_tx(Store *s, void *ud)
{
    SkipSet *k = ud;
    for (size_t i = 0; i < k->n; i++) {
        k->done[i] = 0; /* the transaction may run again */
        TaskInstance ti;
        int found = store_ti_get_by_key(s, k->t->ti.dag_id, k->t->ti.run_id, k->ids[i], -1, &ti);
        if (found < 0) return -1;
        if (found == 0) continue;
        int rc = store_ti_set_state(s, ti.id, -1, TI_SKIPPED, -1);
        ti_clear(&ti);
        if (rc < 0) return -1;
        k->done[i] = rc == 1;
    }
    return 0;
}

/* Skip the direct downstream of this task that are not in `keep` (branching), or every task
 * downstream of it (short circuit), when they have not started.
 * Fix: the tasks are skipped in one transaction, as Airflow's SkipMixin does in one UPDATE.
 * One at a time, the scheduler could see the first skipped before the next one was, and
 * start that one by its trigger rule (an all_done task after a short circuit ran). */
static void skip_downstream(Try *t, char **keep, size_t n_keep, int transitive)
{
    /* the try holds only its own task: the shape of the whole version comes from the cache */
    char err[256];
    DagGraph *d = dagcache_graph(t->cache, t->store, t->run.dag_version_id, err, sizeof err);
    if (!d) {
        trylog(t, "cannot skip downstream tasks: %s", err);
        return;
    }
    const char **todo = xcalloc(d->n + 1, sizeof *todo);
    size_t n_todo = 0;
    todo[n_todo++] = t->task->task_id;
    const char **skip = xcalloc(d->n + 1, sizeof *skip);
    size_t n_skip = 0;
    for (size_t k = 0; k < n_todo; k++) {
        for (size_t i = 0; i < d->n; i++) {
            const DagGraphTask *x = &d->tasks[i];
            int is_down = 0;
            for (size_t u = 0; u < x->n_upstream; u++) is_down |= strcmp(x->upstream[u], todo[k]) == 0;
            if (!is_down) continue;
            int kept = 0;
            for (size_t j = 0; j < n_keep; j++) kept |= strcmp(keep[j], x->task_id) == 0 || strcmp(keep[j], x->name) == 0;
            if (kept) continue;
            int seen = 0;
            for (size_t j = 0; j < n_skip; j++) seen |= strcmp(skip[j], x->task_id) == 0;
            if (!seen && n_skip < d->n) skip[n_skip++] = x->task_id;
            seen = 0;
            for (size_t j = 0; j < n_todo; j++) seen |= strcmp(todo[j], x->task_id) == 0;
            if (transitive && !seen && n_todo < d->n) todo[n_todo++] = x->task_id;
        }
    }
    SkipSet set = {t, skip, n_skip, xcalloc(n_skip + 1, 1)};
    if (n_skip && store_tx(t->store, skip_tx, &set) != 0)
        trylog(t, "cannot skip downstream tasks: %s", store_last_error(t->store));
    else
        for (size_t i = 0; i < n_skip; i++)
            if (set.done[i]) trylog(t, "skipped %s", skip[i]);
    free(set.done);
    free(skip);
    free(todo);
    free(d);
}

/* ---- bash and its variants ------------------------------------------------------------ */

static TryEnd run_bash(Try *t)
{
    const char *cmd = arg_str(t, "bash_command", NULL);
    if (!cmd) {
        snprintf(t->why, sizeof t->why, "no bash_command");
        return END_FAILED;
    }
    const cJSON *env = t->task->env ? cJSON_GetObjectItemCaseSensitive(t->args, "__env") : NULL;
    char **envv = try_context_env(&t->ctx, env);
    int skip[16];
    size_t n_skip = 0;
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(t->args, "skip_on_exit_code");
    if (cJSON_IsNumber(sc)) skip[n_skip++] = sc->valueint;
    else if (cJSON_IsArray(sc)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, sc) if (cJSON_IsNumber(it) && n_skip < 16) skip[n_skip++] = it->valueint;
    } else if (strcmp(t->task->op->name, "bash") == 0) skip[n_skip++] = EXEC_SKIP_EXIT_CODE;
    char *work = xasprintf("%s/work", t->opt->home);
    char *xcom = xasprintf("%s/work/xcom-%s-%d.json", t->opt->home, t->ti.id, t->ti.try_number);
    mkdirs(work);
    ExecRequest req = {
        .command = cmd, .env = (const char *const *)envv, .append_env = arg_bool(t, "append_env", 0),
        .cwd = arg_str(t, "cwd", NULL), .work_root = work, .log_path = t->log_path,
        .timeout_us = t->task->execution_timeout_us, .rlimit_cpu_s = t->opt->rlimit_cpu_s,
        .rlimit_as_mb = t->opt->rlimit_as_mb, .rlimit_nofile = t->opt->rlimit_nofile, .skip_exit_codes = skip,
        .n_skip = n_skip, .on_line = log_line, .on_idle = log_idle, .ud = t, .cancel = t->cancel, .xcom_path = xcom,
    };
    /* with append_env off Airflow gives the command only env: keep PATH et al. (the executor does) */
    if (!t->task->env) req.append_env = 1;
    ExecResult res;
    int rc = exec_run(&req, &res);
    for (char **e = envv; *e; e++) free(*e);
    free(envv);
    free(work);
    unlink(xcom);
    free(xcom);
    snprintf(t->why, sizeof t->why, "%s", res.message);
    TryEnd end = END_FAILED;
    const char *op = t->task->op->name;
    if (rc != 0) {
        end = END_FAILED;
    } else if (res.outcome == EXEC_SUCCESS) {
        end = END_SUCCESS;
    } else if (res.outcome == EXEC_SKIPPED) {
        end = END_SKIPPED;
    } else if (res.outcome == EXEC_FAILED && res.exit_code > 0 && strcmp(op, "short_circuit_bash") == 0) {
        trylog(t, "condition is false (exit code %d): skipping downstream", res.exit_code);
        skip_downstream(t, NULL, 0, arg_bool(t, "ignore_downstream_trigger_rules", 1));
        end = END_SUCCESS;
    }
    if (end == END_SUCCESS && strcmp(op, "branch_bash") == 0) {
        /* the last line names the task ids to follow, separated by spaces or commas */
        char **keep = NULL;
        size_t n_keep = 0;
        char *line = xstrdup(res.last_line ? res.last_line : "");
        for (char *tok = strtok(line, " ,\t[]'\""); tok; tok = strtok(NULL, " ,\t[]'\"")) {
            keep = xrealloc(keep, (n_keep + 1) * sizeof *keep);
            keep[n_keep++] = xstrdup(tok);
        }
        trylog(t, "following: %s", res.last_line ? res.last_line : "(nothing)");
        skip_downstream(t, keep, n_keep, 0);
        for (size_t i = 0; i < n_keep; i++) free(keep[i]);
        free(keep);
        free(line);
    }
    if (end == END_SUCCESS && t->task->do_xcom_push && res.last_line) push_string_xcom(t, "return_value", res.last_line);
    if (res.xcom_json) {
        cJSON *o = cJSON_Parse(res.xcom_json);
        const cJSON *it;
        cJSON_ArrayForEach(it, o)
        {
            char *v = cJSON_PrintUnformatted(it);
            push_xcom(t, it->string, v);
            free(v);
        }
        cJSON_Delete(o);
    } else if (res.xcom_error[0]) {
        trylog(t, "XCom file ignored: %s", res.xcom_error);
    }
    if (res.outcome == EXEC_TIMEOUT) trylog(t, "execution_timeout: %s", res.message);
    exec_result_free(&res);
    return end;
}

/* ---- http -------------------------------------------------------------------------- */

static int http_call(Try *t, const char *dflt_method, HttpResponse *resp)
{
    const char *conn_id = arg_str(t, "http_conn_id", "http_default");
    int missing = 0;
    StoreConnection *c = t->opt->key ? store_conn_get(t->store, t->opt->key, conn_id, &missing) : NULL;
    if (!c) {
        snprintf(t->why, sizeof t->why, "connection '%s': %s", conn_id,
                 missing ? "not found (add it with gust connections add)" : store_last_error(t->store));
        return -1;
    }
    if (c->password) secret_mask_register(c->password);
    HttpConn hc = {c->conn_type, c->schema, c->host, c->port, c->login, c->password, c->extra};
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(t->args, "data");
    char *data_text = NULL;
    int is_json = 0;
    if (cJSON_IsString(data)) data_text = xstrdup(data->valuestring);
    else if (data && !cJSON_IsNull(data)) {
        data_text = cJSON_PrintUnformatted(data);
        is_json = 1;
    }
    const char **headers = NULL;
    size_t nh = 0;
    const cJSON *h, *hs = cJSON_GetObjectItemCaseSensitive(t->args, "headers");
    cJSON_ArrayForEach(h, hs)
    {
        if (!cJSON_IsString(h)) continue;
        headers = xrealloc(headers, (nh + 2) * sizeof *headers);
        headers[nh++] = xasprintf("%s: %s", h->string, h->valuestring);
        headers[nh] = NULL;
    }
    char *params = NULL, *extra = NULL;
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(t->args, "request_params");
    if (rp) params = cJSON_PrintUnformatted(rp);
    const cJSON *eo = cJSON_GetObjectItemCaseSensitive(t->args, "extra_options");
    if (eo) extra = cJSON_PrintUnformatted(eo);
    HttpRequest req = {&hc, arg_str(t, "method", dflt_method), arg_str(t, "endpoint", ""), data_text, is_json,
                       (const char *const *)headers, params, extra, 0, 0, 0};
    trylog(t, "%s %s (connection %s)", req.method, req.endpoint, conn_id);
    int rc = http_request(&req, resp);
    if (rc != 0) snprintf(t->why, sizeof t->why, "%s", resp->error);
    for (size_t i = 0; i < nh; i++) free((void *)headers[i]);
    free(headers);
    free(data_text);
    free(params);
    free(extra);
    store_conn_free(c);
    return rc;
}

static TryEnd run_http(Try *t)
{
    HttpResponse resp;
    if (http_call(t, "POST", &resp) != 0) return END_FAILED;
    trylog(t, "HTTP %ld, %zu bytes", resp.status, resp.body_total);
    if (arg_bool(t, "log_response", 0)) trylog(t, "response: %s", resp.body);
    TryEnd end = END_SUCCESS;
    if (resp.status < 200 || resp.status > 299) {
        snprintf(t->why, sizeof t->why, "HTTP %ld", resp.status);
        end = END_FAILED;
    } else {
        snprintf(t->why, sizeof t->why, "HTTP %ld", resp.status);
        if (t->task->do_xcom_push) push_string_xcom(t, "return_value", resp.body);
    }
    http_response_free(&resp);
    return end;
}

/* ---- sensors -------------------------------------------------------------------------- */

/* 1 done, 0 not yet, -1 failed for good (message in why). */
static int poke(Try *t)
{
    const char *op = t->task->op->name;
    if (strcmp(op, "file_sensor") == 0) {
        const char *path = arg_str(t, "filepath", "");
        glob_t g;
        int found = glob(path, 0, NULL, &g) == 0 && g.gl_pathc > 0;
        globfree(&g);
        trylog(t, "poking for file %s: %s", path, found ? "found" : "not yet");
        return found;
    }
    if (strcmp(op, "time_delta_sensor") == 0) {
        int64_t delta = arg_duration_us(t, "delta", 0);
        int64_t end = t->run.data_interval_end >= 0 ? t->run.data_interval_end : try_context_logical(&t->ctx);
        return util_now_us() >= end + delta;
    }
    if (strcmp(op, "external_task_sensor") == 0) {
        const char *ext_dag = arg_str(t, "external_dag_id", "");
        const char *ext_task = arg_str(t, "external_task_id", NULL);
        int64_t when = try_context_logical(&t->ctx) - arg_duration_us(t, "execution_delta", 0);
        DagRun *runs;
        size_t n;
        if (store_run_list(t->store, ext_dag, 0, &runs, &n) != 0) return 0;
        int result = 0;
        for (size_t i = 0; i < n; i++) {
            if (runs[i].logical_date != when) continue;
            const char *state = run_state_name(runs[i].state);
            if (ext_task) {
                TaskInstance x;
                if (store_ti_get_by_key(t->store, ext_dag, runs[i].run_id, ext_task, -1, &x) == 1) {
                    state = ti_state_name(x.state);
                    result = x.state == TI_SUCCESS ? 1 : (x.state == TI_FAILED || x.state == TI_UPSTREAM_FAILED) ? -1 : 0;
                    ti_clear(&x);
                }
            } else {
                result = runs[i].state == RUN_SUCCESS ? 1 : runs[i].state == RUN_FAILED ? -1 : 0;
            }
            trylog(t, "%s.%s at that logical date is %s", ext_dag, ext_task ? ext_task : "(run)", state);
        }
        run_list_free(runs, n);
        if (result < 0) snprintf(t->why, sizeof t->why, "%s.%s failed", ext_dag, ext_task ? ext_task : "(run)");
        return result;
    }
    if (strcmp(op, "http_sensor") == 0) {
        HttpResponse resp;
        if (http_call(t, "GET", &resp) != 0) {
            trylog(t, "not yet: %s", t->why);
            return 0;
        }
        int done = resp.status >= 200 && resp.status <= 299;
        trylog(t, "HTTP %ld: %s", resp.status, done ? "done" : "not yet");
        http_response_free(&resp);
        return done;
    }
    snprintf(t->why, sizeof t->why, "operator %s is not a sensor", op);
    return -1;
}

static TryEnd run_sensor(Try *t)
{
    int64_t started = t->ti.start_date > 0 ? t->ti.start_date : util_now_us();
    /* reschedule mode frees the slot between pokes: its clock starts at the first poke of the try */
    if (t->task->mode == SENSOR_RESCHEDULE && t->ti.first_poke_at > 0) started = t->ti.first_poke_at;
    for (int n = 0;; n++) {
        int r = poke(t);
        if (r > 0) {
            snprintf(t->why, sizeof t->why, "sensor condition met");
            return END_SUCCESS;
        }
        if (r < 0) return END_FAILED;
        int64_t now = util_now_us();
        if (now - started >= t->task->timeout_us) {
            snprintf(t->why, sizeof t->why, "sensor timed out after %llds%s",
                     (long long)((now - started) / 1000000), t->task->soft_fail ? " (soft_fail: skipped)" : "");
            return t->task->soft_fail ? END_SKIPPED : END_FAILED_NO_RETRY;
        }
        int64_t wait = rules_sensor_next_poke_us(t->task->poke_interval_us, t->task->exponential_backoff,
                                                 t->task->max_wait_us, n + 1, t->task->mode == SENSOR_RESCHEDULE,
                                                 t->task->timeout_us, now - started, t->ti.id);
        if (t->task->mode == SENSOR_RESCHEDULE) {
            t->next_attempt = now + wait;
            snprintf(t->why, sizeof t->why, "not yet: rescheduled");
            return END_RESCHEDULE;
        }
        for (int64_t slept = 0; slept < wait && !(t->cancel && *t->cancel); slept += 100000) usleep(100000);
        if (t->cancel && *t->cancel) {
            snprintf(t->why, sizeof t->why, "cancelled");
            return END_FAILED;
        }
    }
}

/* ---- trigger_dagrun ------------------------------------------------------------------ */

static TryEnd run_trigger(Try *t)
{
    const char *target = arg_str(t, "trigger_dag_id", "");
    StoreDag sd;
    if (store_dag_get(t->store, target, &sd) != 1 || !sd.latest_version_id) {
        snprintf(t->why, sizeof t->why, "no DAG '%s' to trigger", target);
        return END_FAILED;
    }
    /* parsed for this try and freed after: a worker keeps no whole DAG (see dagcache.h) */
    char err[256] = "";
    char *text = store_dag_version_data(t->store, sd.latest_version_id);
    Dag *d = text ? dag_from_json(text, err, sizeof err) : NULL;
    if (!text) snprintf(err, sizeof err, "its version cannot be read: %s", store_last_error(t->store));
    free(text);
    const cJSON *conf = cJSON_GetObjectItemCaseSensitive(t->args, "conf");
    char *conf_text = conf ? cJSON_PrintUnformatted(conf) : NULL;
    char rid[160];
    const char *want = arg_str(t, "trigger_run_id", NULL);
    if (!want) {
        snprintf(rid, sizeof rid, "manual__%s__%s", t->ti.run_id, t->ti.task_id);
        want = rid;
    }
    char made[160];
    int rc = d ? sched_create_run(t->store, d, sd.latest_version_id, "manual", want, -1, -1, -1, conf_text,
                                  "trigger_dagrun", made, sizeof made)
               : -1;
    free(conf_text);
    store_dag_clear(&sd);
    int parsed = d != NULL;
    dag_free(d);
    if (rc < 0) {
        snprintf(t->why, sizeof t->why, "cannot trigger %s: %s", target, parsed ? store_last_error(t->store) : err);
        return END_FAILED;
    }
    trylog(t, "triggered %s run %s%s", target, made, rc == 0 ? " (it already existed)" : "");
    push_string_xcom(t, "trigger_run_id", made);
    if (!arg_bool(t, "wait_for_completion", 0)) {
        snprintf(t->why, sizeof t->why, "triggered %s", made);
        return END_SUCCESS;
    }
    int64_t interval = arg_duration_us(t, "poke_interval", 60LL * 1000000);
    for (;;) {
        DagRun r;
        if (store_run_get(t->store, target, made, &r) == 1) {
            RunState st = r.state;
            run_clear(&r);
            if (st == RUN_SUCCESS || st == RUN_FAILED) {
                snprintf(t->why, sizeof t->why, "%s run %s ended %s", target, made, run_state_name(st));
                return st == RUN_SUCCESS ? END_SUCCESS : END_FAILED;
            }
        }
        for (int64_t slept = 0; slept < interval && !(t->cancel && *t->cancel); slept += 100000) usleep(100000);
        if (t->cancel && *t->cancel) {
            snprintf(t->why, sizeof t->why, "cancelled while waiting for %s", made);
            return END_FAILED;
        }
    }
}

/* ---- one try ------------------------------------------------------------------------- */

static TryEnd execute(Try *t)
{
    const char *op = t->task->op->name;
    if (strcmp(op, "empty") == 0) {
        snprintf(t->why, sizeof t->why, "empty");
        return END_SUCCESS;
    }
    if (strcmp(op, "bash") == 0 || strcmp(op, "branch_bash") == 0 || strcmp(op, "short_circuit_bash") == 0)
        return run_bash(t);
    if (strcmp(op, "http") == 0) return run_http(t);
    if (strcmp(op, "trigger_dagrun") == 0) return run_trigger(t);
    if (t->task->op->is_sensor) return run_sensor(t);
    snprintf(t->why, sizeof t->why, "operator %s has no runtime in this gust", op);
    return END_FAILED;
}

int worker_run_try(Store *store, DagCache *cache, const WorkerOptions *opt, const char *ti_id, int try_number,
                   volatile int *cancel)
{
    TryClaim claim;
    int won = store_try_claim(store, ti_id, try_number, opt->hostname, opt->worker_id, (int)getpid(), NULL, NULL,
                              &claim);
    if (won <= 0) return won;
    TryControl ctl = {cancel, NULL, NULL};
    return worker_run_claimed(store, cache, opt, &claim, &ctl);
}

int worker_run_claimed(Store *store, DagCache *cache, const WorkerOptions *opt, TryClaim *claim,
                       const TryControl *ctl)
{
    volatile int *cancel = ctl ? ctl->cancel : NULL;
    Try t;
    memset(&t, 0, sizeof t);
    t.store = store;
    t.cache = cache;
    t.opt = opt;
    t.cancel = cancel;
    /* the claim read the instance and its run in its transaction: they are the try's now */
    t.ti = claim->ti;
    t.run = claim->run;
    memset(claim, 0, sizeof *claim);
    const char *ti_id = t.ti.id;
    t.log_path = log_path_for(&t);
    t.last_flush = util_now_us();
    char err[512];
    TryEnd end = END_FAILED;
    t.dag = dagcache_task(cache, store, t.run.dag_version_id, t.ti.task_id, err, sizeof err);
    t.task = t.dag ? t.dag->tasks[0] : NULL;
    log_info("worker", "dag=%s run=%s task=%s try=%d: running", t.ti.dag_id, t.ti.run_id, t.ti.task_id,
             t.ti.try_number);
    if (!t.task) {
        snprintf(t.why, sizeof t.why, "%s", err);
        trylog(&t, "%s", t.why);
        end = END_FAILED_NO_RETRY;
    } else {
        t.ctx = (TryContext){store, opt->key, t.dag, t.task, &t.run, &t.ti, NULL, cache, t.run.dag_version_id};
        try_context_init(&t.ctx);
        trylog(&t, "try %d of %d: %s (%s) on %s", t.ti.try_number, t.task->retries + 1, t.task->task_id,
               t.task->op->name, opt->hostname);
        /* the claim cleared the XComs of the last try in its transaction */
        t.args = cJSON_Duplicate(t.task->args, 1);
        if (t.task->env) cJSON_AddItemToObject(t.args, "__env", cJSON_Duplicate(t.task->env, 1));
        if (try_context_render(&t.ctx, t.args, err, sizeof err) != 0) {
            snprintf(t.why, sizeof t.why, "template error: %s", err);
            trylog(&t, "%s", t.why);
            end = END_FAILED;
        } else {
            end = execute(&t);
        }
    }
    TiState to = TI_FAILED;
    int64_t at = -1;
    switch (end) {
    case END_SUCCESS: to = TI_SUCCESS; break;
    case END_SKIPPED: to = TI_SKIPPED; break;
    case END_RESCHEDULE: to = TI_UP_FOR_RESCHEDULE; at = t.next_attempt; break;
    case END_FAILED_NO_RETRY: to = TI_FAILED; break;
    case END_FAILED:
        if (t.task && rules_should_retry(t.ti.try_number, t.ti.max_tries)) {
            to = TI_UP_FOR_RETRY;
            char key[512];
            /* Airflow hashes str(self.logical_date): "None" for a run without one (Airflow 3),
             * not the run_after that try_context_logical falls back to for templates */
            rules_jitter_key(key, sizeof key, t.ti.dag_id, t.ti.task_id,
                             t.run.logical_date >= 0 ? t.run.logical_date : RULES_NO_DATE);
            at = util_now_us() + rules_retry_delay_us(t.task->retry_delay_us, t.task->retry_exponential_backoff,
                                                      t.task->max_retry_delay_us, t.ti.try_number, key);
        }
        break;
    }
    if (to == TI_SUCCESS && t.task && t.task->n_outlets) {
        /* the datasets this task updates: DAGs scheduled on them may now run */
        if (store_asset_emit(store, (const char *const *)t.task->outlets, t.task->n_outlets, t.ti.dag_id,
                             t.ti.task_id, t.ti.run_id) != 0)
            trylog(&t, "cannot record dataset events: %s", store_last_error(store));
        else
            trylog(&t, "updated %zu dataset(s)", t.task->n_outlets);
    }
    char when[48] = "";
    if (at > 0) time_format_iso(at, 0, when, sizeof when);
    /* the last line, and whatever the log holds that is not in the store yet, go into the
     * finish's transaction: one round trip less per try, and no window in which the try has
     * ended but its log has not */
    t.last_flush = util_now_us();
    trylog(&t, "%s: %s%s%s", ti_state_name(to), t.why, at > 0 ? "; next attempt at " : "", when);
    /* from here the heartbeat leaves this try alone: a refusal now is our own finish */
    if (ctl && ctl->finishing) ctl->finishing(ctl->ud);
    int rc = store_try_finish(store, ti_id, t.ti.try_number, to, at, t.logbuf.s, t.logbuf.len);
    /* Fix: a store that stays unreachable past store_tx's retries (30 s) used to lose the
     * try's outcome: the try stayed 'running' while its live worker no longer listed it, and
     * only a zombie sweep could end it, as failed. Keep trying while the worker runs (the
     * slot still lists the try, so it is no zombie); at shutdown (cancel) give up and leave
     * it to the zombie sweep, as a dead worker's. Other errors would fail again: not retried.
     * store_ti_finish is conditional, so a retry after a commit whose reply was lost is
     * refused, not applied twice (the log's last chunk may then be stored twice). */
    for (int64_t pause = 1000000; rc < 0 && cancel && !*cancel &&
                                  (store_error_kind(store->conn) == STORE_ERR_CONNECTION ||
                                   store_error_kind(store->conn) == STORE_ERR_BUSY);
         pause = pause < 8000000 ? pause * 2 : pause) {
        log_error("worker", "ti=%s try=%d: cannot record %s: %s (trying again)", ti_id, t.ti.try_number,
                  ti_state_name(to), store_last_error(store));
        for (int64_t slept = 0; slept < pause && !(cancel && *cancel); slept += 100000) usleep(100000);
        rc = store_try_finish(store, ti_id, t.ti.try_number, to, at, t.logbuf.s, t.logbuf.len);
    }
    if (rc == 0) log_warn("worker", "ti=%s: %s (the try was taken away)", ti_id, store_last_error(store));
    log_info("worker", "dag=%s run=%s task=%s try=%d: %s (%s)", t.ti.dag_id, t.ti.run_id, t.ti.task_id,
             t.ti.try_number, ti_state_name(to), t.why);
    cJSON_Delete(t.args);
    if (t.task) try_context_clear(&t.ctx);
    dag_free(t.dag);
    sb_free(&t.logbuf);
    free(t.log_path);
    run_clear(&t.run);
    ti_clear(&t.ti);
    return rc < 0 ? -1 : 1;
}

/* ---- global rate limits ----------------------------------------------------------------
 * A task's rate_limit is either a rate ("10/m": a limit of its own, shared by all its
 * instances on every worker) or the name of a limit set with `gust ratelimits set`. Over the
 * limit, the try is handed back to the scheduler with next_attempt_at; it consumes no try
 * and holds no slot. Redis unreachable: the task waits (fail closed) and others run.
 * 1 go ahead, 0 deferred, -1 error (the deferral was not recorded). */
static int rate_gate(Store *store, ClusterConn *cluster, const char *dag_id, const char *task_id,
                     const char *rate_limit, const char *ti_id, int try_number)
{
    double per_s = 0;
    int burst = 1;
    char key[600], err[256], *named = NULL;
    if (cluster_rate_parse(rate_limit, &per_s, &burst, err, sizeof err) == 0) {
        snprintf(key, sizeof key, "task:%s.%s", dag_id, task_id);
    } else if (cluster && cluster_ratelimit_get(cluster, rate_limit, &named) == 1 &&
               cluster_rate_parse(named, &per_s, &burst, err, sizeof err) == 0) {
        snprintf(key, sizeof key, "%s", rate_limit);
    } else {
        per_s = 0;
    }
    free(named);
    int64_t retry_after = 1000000;
    int r = per_s > 0 && cluster ? cluster_rate_acquire(cluster, key, per_s, burst, &retry_after) : -1;
    if (per_s <= 0 && !(cluster && cluster_error(cluster)[0])) {
        log_warn("worker", "dag=%s task=%s: rate_limit '%s' is neither a rate nor a known limit: ignored", dag_id,
                 task_id, rate_limit);
        r = 1;
    }
    if (r == 1) return 1;
    if (r < 0) {
        log_warn("worker", "dag=%s task=%s: rate limit unavailable (%s): waiting", dag_id, task_id,
                 cluster ? cluster_error(cluster) : "no cluster");
        retry_after = 1000000;
    }
    int moved = store_ti_defer(store, ti_id, try_number, util_now_us() + retry_after);
    if (moved == 1)
        log_debug("worker", "dag=%s task=%s try=%d: over its rate limit, back in %lld ms", dag_id, task_id,
                  try_number, (long long)(retry_after / 1000));
    /* Fix: a deferral the store did not record is an error (-1: the pool requeues the
     * message); acking it would leave the try queued until scheduler.queued_timeout */
    return moved < 0 ? -1 : 0;
}

/* Inside the claim's transaction: does the task need the rate gate first? It answers from the
 * cache only (a claim must not wait on Redis while it holds the row). */
typedef struct GateCheck {
    DagCache *cache;
    int why;           /* 0 go on, 1 the version's index is not cached yet, 2 rate-limited */
    char version[33];
    char rate[256];
} GateCheck;

static int gate_check(void *ud, const TaskInstance *ti, const DagRun *run)
{
    GateCheck *g = ud;
    g->why = 0;
    if (!run->dag_version_id) return 0; /* the try will fail for want of it */
    int k = dagcache_peek_rate_limit(g->cache, run->dag_version_id, ti->task_id, g->rate, sizeof g->rate);
    if (k == 0) {
        util_strlcpy(g->version, run->dag_version_id, sizeof g->version);
        g->why = 1;
        return 1;
    }
    if (k < 0 || !g->rate[0]) return 0; /* not in the version: the try says so */
    g->why = 2;
    return 1;
}

int worker_claim(Store *store, DagCache *cache, ClusterConn *cluster, const WorkerOptions *opt, const char *ti_id,
                 int try_number, TryClaim *claim)
{
    GateCheck g;
    memset(&g, 0, sizeof g);
    g.cache = cache;
    TryClaimCheck check = gate_check;
    for (int round = 1;; round++) {
        if (round > 3) check = NULL; /* the index keeps being dropped: claim without the gate */
        int rc = store_try_claim(store, ti_id, try_number, opt->hostname, opt->worker_id, (int)getpid(), check, &g,
                                 claim);
        if (rc != 2) return rc;
        /* undone before it committed: find out what the gate needs, then claim again */
        char dag_id[256], task_id[256];
        util_strlcpy(dag_id, claim->ti.dag_id ? claim->ti.dag_id : "", sizeof dag_id);
        util_strlcpy(task_id, claim->ti.task_id ? claim->ti.task_id : "", sizeof task_id);
        try_claim_clear(claim);
        if (g.why == 1) {
            char err[512];
            int64_t t0 = util_now_us();
            if (dagcache_load_index(cache, store, g.version, err, sizeof err) != 0) {
                /* the try will fail with this reason once claimed; no gate to apply */
                log_warn("worker", "ti=%s: %s", ti_id, err);
                check = NULL;
            } else {
                log_info("worker", "dag=%s: DAG version %s read into the task cache in %lld ms", dag_id, g.version,
                         (long long)((util_now_us() - t0) / 1000));
            }
            continue;
        }
        int gate = rate_gate(store, cluster, dag_id, task_id, g.rate, ti_id, try_number);
        if (gate <= 0) return gate < 0 ? -1 : 2;
        check = NULL; /* within the limit: claim it for real */
    }
}
