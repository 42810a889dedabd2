/* dagload_int — what the pieces of the DAG loader share; not for use outside core/dag*.c.
 *
 *   dagbag.c   files, folders, defaults cascade, splitting a file into DAG configs
 *   dagbuild.c one DAG config → Dag: DAG fields, schedule, task groups, dependencies
 *   dagtask.c  one task config → DagTask: operator, fields, types, templates
 *   dagvalue.c typed values (durations, dates, assets) and the "needs Python" scan */
#ifndef GUST_DAGLOAD_INT_H
#define GUST_DAGLOAD_INT_H

#include <cjson/cJSON.h>

#include "core/dag.h"
#include "core/dagbag.h"
#include "core/diag.h"
#include "core/doc.h"

/* Everything the builders need to report a problem and resolve relative things. */
typedef struct LoadCtx {
    const char *file;        /* for messages */
    const char *dag_id;      /* the DAG being built */
    const char *root;        /* $CONFIG_ROOT_DIR; never NULL */
    const GustTz *tz;        /* the DAG's timezone, for naive datetimes */
    int64_t now_us;          /* for relative start dates */
    DiagList *diags;
    int no_file_refs;        /* DagLoadOptions.no_file_refs */
} LoadCtx;

#define LOAD_ERR(ctx, node, ...) \
    diag_add((ctx)->diags, 0, (ctx)->file, (node) ? (node)->line : 0, (ctx)->dag_id, __VA_ARGS__)
#define LOAD_WARN(ctx, node, ...) \
    diag_add((ctx)->diags, 1, (ctx)->file, (node) ? (node)->line : 0, (ctx)->dag_id, __VA_ARGS__)

/* dagbuild.c: build a DAG from its merged config (the defaults already folded in).
 * Returns NULL when it has errors (they are in ctx->diags). */
Dag *dagload_build(const LoadCtx *ctx, int line, const DocNode *cfg, const char *default_tz);

/* dagtask.c: build one task. `eff` is the task's config with group and DAG default_args
 * folded in; `own` is the task's config as written (its keys are checked strictly, the
 * inherited ones only kept when the operator has them). NULL on error. */
DagTask *dagload_task(const LoadCtx *ctx, const char *name, const DocNode *own, const DocNode *eff,
                      const DocNode *dag_params);

/* dagvalue.c */
int dagload_duration(const LoadCtx *ctx, const char *field, const DocNode *v, int64_t *out_us);
int dagload_datetime(const LoadCtx *ctx, const char *field, const DocNode *v, int64_t *out_us);
int dagload_bool(const LoadCtx *ctx, const char *field, const DocNode *v, int *out);
int dagload_int(const LoadCtx *ctx, const char *field, const DocNode *v, long long min, long long max, int *out);
/* A string field (scalars of any type are taken as text). NULL + error for lists/maps. */
const char *dagload_string(const LoadCtx *ctx, const char *field, const DocNode *v);
/* A string or a list of strings → heap vector (caller frees each and the vector). */
int dagload_strings(const LoadCtx *ctx, const char *field, const DocNode *v, char ***out, size_t *n);
/* Dataset references (schedule lists, outlets): strings, {__type__: Asset, uri}, or
 * {file, datasets} → a condition: a URI string or {"all"|"any": [...]}. NULL on error. */
cJSON *dagload_assets(const LoadCtx *ctx, const char *field, const DocNode *v);
/* Flatten a condition into its URIs (for outlets/inlets). */
void dagload_asset_uris(const cJSON *cond, char ***out, size_t *n);
/* Report every part of cfg that needs Python (callables, callbacks, decorators, Python
 * objects). Returns how many it found. */
int dagload_python_scan(const LoadCtx *ctx, const DocNode *cfg);
/* Any document value as JSON (YAML scalars typed as PyYAML would). Caller owns it. */
cJSON *dagload_to_json(const DocNode *v);
/* Check {{ }} templates in a string, or in every string inside a list/mapping. */
int dagload_templates(const LoadCtx *ctx, const char *field, const DocNode *v);
/* Airflow's key rule for dag and task ids: letters, digits, _ . - ; at most 250. */
int dagload_valid_id(const char *id);

#endif
