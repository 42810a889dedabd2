/* context — what a running try can see: Airflow's template context (ds, ts, params,
 * dag_run, ti, var, conn, xcom_pull, ...) answered from the run, the task and the store.
 *
 * Variables, connections and XComs are read only when a template asks for them. Values
 * that must not reach a log — connection passwords, variables whose names look secret —
 * are registered for masking (core/secret.h) as soon as they are read. */
#ifndef GUST_WORKER_CONTEXT_H
#define GUST_WORKER_CONTEXT_H

#include <cjson/cJSON.h>

#include "core/dag.h"
#include "core/secret.h"
#include "core/template.h"
#include "store/dagcache.h"
#include "store/runs.h"
#include "store/store.h"
#include "store/ti.h"

typedef struct TryContext {
    Store *store;              /* the worker thread's connection */
    const SecretKey *key;      /* decrypts connections; NULL: connections unavailable */
    const Dag *dag;            /* the version's fields; may hold only the task that runs */
    const DagTask *task;
    const DagRun *run;
    const TaskInstance *ti;
    cJSON *params;             /* DAG params < task params < the run's conf (owned) */
    DagCache *cache;           /* NULL, or where the version's other tasks are looked up (by */
    const char *version_id;    /* name, for xcom_pull) when dag holds only this one */
} TryContext;

/* Fill params from the DAG, the task and the run's conf. Call try_context_clear after. */
void try_context_init(TryContext *c);
void try_context_clear(TryContext *c);
/* The TemplateContext that reads from c (c must outlive its use). */
void try_context_template(TryContext *c, TemplateContext *out);
/* Render every string inside v (recursively), in place. 0, or -1 with err. */
int try_context_render(TryContext *c, cJSON *v, char *err, size_t errlen);
/* The environment of the try: GUST_CTX_* and AIRFLOW_CTX_* plus the task's rendered env.
 * Returns a NULL-terminated vector of "NAME=value" (caller frees each and the vector). */
char **try_context_env(TryContext *c, const cJSON *rendered_env);
/* "2024-01-01" etc. for the run's logical date (or its run_after when it has none). */
int64_t try_context_logical(const TryContext *c);

#endif
