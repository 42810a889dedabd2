/* routes_timark — marking task instances' states on the REST API, as Airflow's
 * PATCH .../taskInstances/{task_id}[/{map_index}] does (PatchTaskInstanceBody): a new state
 * (success, failed, skipped) and/or a note, for the instance alone or with its upstream /
 * downstream tasks and its earlier (past) / later (future) runs, and the same as a dry run
 * that only says which instances would change.
 *
 * Every change goes through the store's guarded transitions (store_tiq_mark), so a worker
 * finishing a try and a person marking it cannot both win: whichever comes second is
 * refused, and the API says so (409) rather than pretending. As Airflow's
 * set_task_instance_state, marking ends by clearing the failed instances downstream, so a
 * run whose failed task is marked success goes on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/ti_common.h"
#include "api/ti_json.h"
#include "core/dag.h"
#include "core/util.h"
#include "store/ti.h"
#include "store/tiquery.h"

/* Instances of the selected tasks in the selected runs: the task itself (and its upstream /
 * downstream tasks in the run's DAG version) in this run, or also in earlier (past) /
 * later (future) runs by logical date. */
typedef struct Selection {
    const char **task_ids;
    size_t n;
    char *sel;      /* per DAG task: 1 chosen, 2 reached (may be NULL when the DAG is unknown) */
    const Dag *dag; /* the run's version, or NULL */
} Selection;

static void selection_free(Selection *sel)
{
    free(sel->task_ids);
    free(sel->sel);
    memset(sel, 0, sizeof *sel);
}

static void select_tasks(Store *s, const TiqRow *row, int up, int down, Selection *out)
{
    memset(out, 0, sizeof *out);
    out->dag = tij_dag(s, row->ti.dag_version_id);
    long idx = tic_task_index(out->dag, row->ti.task_id);
    if (idx < 0) {
        out->task_ids = xcalloc(1, sizeof *out->task_ids);
        out->task_ids[out->n++] = row->ti.task_id;
        return;
    }
    const Dag *d = out->dag;
    out->sel = xcalloc(d->n_tasks + 1, 1);
    out->sel[idx] = 1;
    tic_dag_reach(d, out->sel, up, down);
    out->task_ids = xcalloc(d->n_tasks + 1, sizeof *out->task_ids);
    for (size_t i = 0; i < d->n_tasks; i++)
        if (out->sel[i]) out->task_ids[out->n++] = d->tasks[i]->task_id;
}

typedef struct PatchReq {
    int want_state, want_note;
    TiState new_state;
    const char *note;
    int up, down, past, future;
} PatchReq;

static int mask_has(const char *const *mask, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(mask[i], name) == 0) return 1;
    return 0;
}

/* The PATCH body (PatchTaskInstanceBody) and update_mask. 0, or -1 after answering. */
static int patch_parse(ApiReq *r, ApiResp *out, const cJSON *doc, PatchReq *p)
{
    static const char *const allowed[] = {"new_state", "note", "include_upstream", "include_downstream",
                                          "include_future", "include_past", NULL};
    memset(p, 0, sizeof *p);
    if (api_body_only(out, doc, allowed) != 0) return -1;
    const char *mask[16];
    int nm = api_query_all(r, "update_mask", mask, 16);
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(doc, "new_state");
    const cJSON *note = cJSON_GetObjectItemCaseSensitive(doc, "note");
    p->want_state = nm ? mask_has(mask, nm, "new_state") : ns != NULL;
    p->want_note = nm ? mask_has(mask, nm, "note") : note != NULL;
    if (ns && !cJSON_IsNull(ns)) {
        const char *v = cJSON_IsString(ns) ? ns->valuestring : "";
        if (!cJSON_IsString(ns) || (strcmp(v, "success") != 0 && strcmp(v, "failed") != 0 && strcmp(v, "skipped") != 0)) {
            api_error_422(out, "body", "new_state", "'%.100s' is not one of ['success', 'failed', 'skipped']", v);
            return -1;
        }
        p->new_state = (TiState)ti_state_parse(v);
    } else {
        p->want_state = 0; /* null: no change of state */
    }
    if (note && !cJSON_IsNull(note)) {
        if (!cJSON_IsString(note) || !tic_text_ok(note->valuestring)) {
            api_error_422(out, "body", "note", "Input should be a valid string");
            return -1;
        }
        if (strlen(note->valuestring) > 1000) {
            api_error_422(out, "body", "note", "String should have at most 1000 characters");
            return -1;
        }
        p->note = note->valuestring;
    }
    if (tic_b_bool(out, doc, "include_upstream", 0, &p->up) ||
        tic_b_bool(out, doc, "include_downstream", 0, &p->down) ||
        tic_b_bool(out, doc, "include_future", 0, &p->future) || tic_b_bool(out, doc, "include_past", 0, &p->past))
        return -1;
    return 0;
}

/* The instances a state change would touch: selected tasks' instances whose state differs
 * and may move to the new state. 0, or -1 after answering 503. */
static int patch_targets(ApiResp *out, Store *s, const TiqRow *row, const PatchReq *p, Selection *sel,
                         TiqRow **rows, size_t *n)
{
    select_tasks(s, row, p->up, p->down, sel);
    TiqFilter f;
    tiq_filter_init(&f);
    f.dag_id = row->ti.dag_id;
    f.task_ids = sel->task_ids;
    f.n_task_ids = sel->n;
    if ((p->past || p->future) && row->logical_date >= 0) {
        if (!p->past) f.logical_date.gte = row->logical_date;
        if (!p->future) f.logical_date.lte = row->logical_date;
    } else {
        f.run_id = row->ti.run_id;
    }
    f.order_sql = TIQ_COL_RUN_AFTER ", ti.run_id, ti.task_id, ti.map_index";
    TiqRow *all;
    size_t na;
    if (store_tiq_list(s, &f, &all, &na, NULL) != 0) {
        api_store_error(out, s);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < na; i++) {
        int keep = all[i].ti.state != p->new_state && ti_transition_allowed(all[i].ti.state, p->new_state);
        /* the instance itself keeps only its own map index; relatives keep all of theirs */
        if (strcmp(all[i].ti.task_id, row->ti.task_id) == 0 && all[i].ti.map_index != row->ti.map_index &&
            strcmp(all[i].ti.run_id, row->ti.run_id) == 0)
            keep = 0;
        if (keep)
            all[k++] = all[i];
        else
            tic_row_clear(&all[i]);
    }
    *rows = all;
    *n = k;
    return 0;
}

/* Airflow's set_task_instance_state ends by clearing the failed / upstream_failed
 * instances downstream of the marked task in the runs it touched (so that marking a failed
 * task success lets the rest of the run go on), their runs going back to queued. */
static void resume_downstream(Store *s, const TiqRow *row, const Selection *sel, const TiqRow *marked,
                              const TiqChange *ch, size_t nm)
{
    if (!sel->dag || !sel->sel || !nm) return;
    const Dag *d = sel->dag;
    char *down = xcalloc(d->n_tasks + 1, 1);
    long idx = tic_task_index(d, row->ti.task_id);
    if (idx < 0) {
        free(down);
        return;
    }
    down[idx] = 1;
    tic_dag_reach(d, down, 0, 1);
    const char **tids = xcalloc(d->n_tasks + 1, sizeof *tids);
    size_t nt = 0;
    for (size_t i = 0; i < d->n_tasks; i++)
        if (down[i] == 2) tids[nt++] = d->tasks[i]->task_id;
    const char **runs = xcalloc(nm + 1, sizeof *runs);
    size_t nr = 0;
    for (size_t i = 0; i < nm; i++) {
        if (!ch[i].changed) continue;
        size_t j = 0;
        while (j < nr && strcmp(runs[j], marked[i].ti.run_id) != 0) j++;
        if (j == nr) runs[nr++] = marked[i].ti.run_id;
    }
    static const char *const failed[] = {"failed", "upstream_failed"};
    TiqFilter f;
    tiq_filter_init(&f);
    f.dag_id = row->ti.dag_id;
    f.run_ids = runs;
    f.n_run_ids = nr;
    f.task_ids = tids;
    f.n_task_ids = nt;
    f.states = failed;
    f.n_states = 2;
    f.order_sql = "ti.run_id, ti.task_id";
    TiqRow *rows = NULL;
    size_t n = 0;
    if (nt && nr && store_tiq_list(s, &f, &rows, &n, NULL) == 0) {
        /* the instances just marked stay as they were marked (Airflow's exclude_task_ids) */
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            int mine = 0;
            for (size_t m = 0; m < nm && !mine; m++) mine = ch[m].changed && strcmp(ch[m].id, rows[i].ti.id) == 0;
            if (mine)
                tic_row_clear(&rows[i]);
            else
                rows[k++] = rows[i];
        }
        n = k;
        for (size_t i = 0; i < n;) {
            size_t j = i;
            while (j < n && strcmp(rows[j].ti.run_id, rows[i].ti.run_id) == 0) j++;
            TiqChange *cl = xcalloc(j - i, sizeof *cl);
            for (size_t q = i; q < j; q++) {
                TiqChange *c = &cl[q - i];
                memcpy(c->id, rows[q].ti.id, sizeof c->id);
                c->from = rows[q].ti.state;
                c->try_number = rows[q].ti.try_number;
                const DagTask *t = dag_find_task(d, rows[q].ti.task_id);
                c->retries = t ? t->retries : -1;
            }
            store_tiq_clear_run(s, row->ti.dag_id, rows[i].ti.run_id, cl, j - i, 1, NULL, NULL);
            free(cl);
            i = j;
        }
    }
    tiq_rows_free(rows, n);
    free(runs);
    free(tids);
    free(down);
}

static void patch_common(ApiReq *r, ApiResp *out, int map_pi, int dry_run)
{
    if (!tic_params_ok(r, out)) return;
    Store *s = tic_store(r, out);
    if (!s) return;
    cJSON *doc = NULL;
    TiqRow row;
    memset(&row, 0, sizeof row);
    Selection sel;
    memset(&sel, 0, sizeof sel);
    TiqRow *targets = NULL;
    size_t nt = 0;
    PatchReq p;
    if (api_body_object(r, out, &doc) != 0) return;
    if (patch_parse(r, out, doc, &p) != 0) goto done;
    if (tic_need_dag(out, s, r->params[0]) <= 0) goto done;
    if (!tic_load_ti(r, out, s, map_pi, &row)) goto done;
    if (!p.want_state) {
        /* only the note: the answer is the instance itself */
        if (!dry_run && p.want_note) {
            if (store_tiq_set_note(s, row.ti.id, p.note) < 0) {
                api_store_error(out, s);
                goto done;
            }
            free(row.note);
            row.note = xstrdup(p.note);
            api_audit(r, "api.patch_task_instance", row.ti.dag_id, row.ti.run_id, row.ti.task_id,
                      "{\"fields\":[\"note\"]}");
        }
        tij_answer(out, s, &row, 1, 1);
        goto done;
    }
    if (patch_targets(out, s, &row, &p, &sel, &targets, &nt) != 0) goto done;
    if (dry_run) {
        tij_answer(out, s, targets, nt, (int64_t)nt);
        goto done;
    }
    if (!nt) {
        if (row.ti.state == p.new_state)
            api_error(out, 409, "Task id %s is already in %s state", row.ti.task_id, ti_state_name(p.new_state));
        else
            api_error(out, 409, "Task id %s is %s; it cannot be marked %s", row.ti.task_id,
                      row.ti.state == TI_NONE ? "without a state" : ti_state_name(row.ti.state),
                      ti_state_name(p.new_state));
        goto done;
    }
    TiqChange *ch = xcalloc(nt, sizeof *ch);
    for (size_t i = 0; i < nt; i++) {
        memcpy(ch[i].id, targets[i].ti.id, sizeof ch[i].id);
        ch[i].from = targets[i].ti.state;
        ch[i].try_number = targets[i].ti.try_number;
    }
    int moved = 0;
    if (store_tiq_mark(s, ch, nt, p.new_state, &moved) != 0) {
        free(ch);
        api_store_error(out, s);
        goto done;
    }
    /* the instance named in the path must have moved: a worker (or another call) that
     * changed it between our read and our write wins, and the caller is told */
    int self_refused = 0;
    for (size_t i = 0; i < nt; i++)
        if (strcmp(ch[i].id, row.ti.id) == 0 && !ch[i].changed) self_refused = 1;
    const char **ids = xcalloc(nt + 1, sizeof *ids);
    size_t nids = 0;
    for (size_t i = 0; i < nt; i++)
        if (ch[i].changed) ids[nids++] = ch[i].id;
    if (p.want_note && store_tiq_set_note(s, row.ti.id, p.note) < 0) {
        free(ids);
        free(ch);
        api_store_error(out, s);
        goto done;
    }
    if (moved) resume_downstream(s, &row, &sel, targets, ch, nt);
    char extra[256];
    snprintf(extra, sizeof extra, "{\"new_state\":\"%s\",\"changed\":%d%s}", ti_state_name(p.new_state), moved,
             p.want_note ? ",\"note\":true" : "");
    if (moved || p.want_note) api_audit(r, "api.patch_task_instance", row.ti.dag_id, row.ti.run_id, row.ti.task_id, extra);
    if (self_refused) {
        TiqRow now;
        int found = store_tiq_get(s, row.ti.dag_id, row.ti.run_id, row.ti.task_id, row.ti.map_index, &now);
        api_error(out, 409, "Task id %s changed while it was being marked %s: it is now %s on try %d",
                  row.ti.task_id, ti_state_name(p.new_state),
                  found == 1 ? (now.ti.state == TI_NONE ? "without a state" : ti_state_name(now.ti.state)) : "gone",
                  found == 1 ? now.ti.try_number : 0);
        if (found == 1) tic_row_clear(&now);
        free(ids);
        free(ch);
        goto done;
    }
    TiqFilter f;
    tiq_filter_init(&f);
    f.ids = ids;
    f.n_ids = nids;
    f.order_sql = TIQ_COL_RUN_AFTER ", ti.run_id, ti.task_id, ti.map_index";
    TiqRow *after = NULL;
    size_t na = 0;
    if (nids && store_tiq_list(s, &f, &after, &na, NULL) != 0)
        api_store_error(out, s);
    else
        tij_answer(out, s, after, na, (int64_t)na);
    tiq_rows_free(after, na);
    free(ids);
    free(ch);
done:
    tiq_rows_free(targets, nt);
    selection_free(&sel);
    tic_row_clear(&row);
    cJSON_Delete(doc);
}

static void h_patch(ApiReq *r, ApiResp *out) { patch_common(r, out, -2, 0); }
static void h_patch_mapped(ApiReq *r, ApiResp *out) { patch_common(r, out, 3, 0); }
static void h_patch_dry(ApiReq *r, ApiResp *out) { patch_common(r, out, -2, 1); }
static void h_patch_dry_mapped(ApiReq *r, ApiResp *out) { patch_common(r, out, 3, 1); }

/* ---- the table --------------------------------------------------------------------------------- */

const ApiRoute api_routes_timark[] = {
    {"PATCH", TIC_BASE "/{task_id}", API_ROLE_USER, h_patch},
    {"PATCH", TIC_BASE "/{task_id}/dry_run", API_ROLE_USER, h_patch_dry},
    {"PATCH", TIC_BASE "/{task_id}/{map_index}", API_ROLE_USER, h_patch_mapped},
    {"PATCH", TIC_BASE "/{task_id}/{map_index}/dry_run", API_ROLE_USER, h_patch_dry_mapped},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
