/* routes_validate — POST /api/v2/gust/dags/validate: a DAG document checked by the same loader
 * as `gust dags validate`, in memory, without saving anything — for CI and for an assistant
 * that writes DAGs. Text from the network never makes the server open its own files
 * (DagLoadOptions.no_file_refs). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "core/config.h"
#include "core/dagbag.h"
#include "core/diag.h"
#include "core/util.h"
#include "store/kv.h"

/* ---- the handler ------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

static cJSON *diag_json(const Diag *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", d->file ? d->file : "");
    cJSON_AddNumberToObject(o, "line", d->line);
    api_add_str(o, "dag_id", d->dag_id);
    cJSON_AddStringToObject(o, "message", d->message ? d->message : "");
    return o;
}

/* The body is a DAG file's text (YAML, or JSON with a JSON content type), or the JSON object
 * {"filename": "x.yml", "content": "..."}. It is parsed in memory by the loader `gust dags
 * validate` uses, and nothing is stored. */
static void h_validate(ApiReq *r, ApiResp *out)
{
    const char *ctype = api_header(r, "Content-Type");
    int json = ctype && strncasecmp(ctype, "application/json", 16) == 0;
    const char *text = r->body;
    size_t len = r->body_len;
    char *name = NULL;
    cJSON *wrapper = NULL;
    if (json) {
        cJSON *doc = cJSON_ParseWithLength(r->body, r->body_len);
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(doc, "content");
        const cJSON *fname = cJSON_GetObjectItemCaseSensitive(doc, "filename");
        int only = cJSON_IsObject(doc) && content;
        for (const cJSON *it = doc ? doc->child : NULL; it && only; it = it->next)
            only = strcmp(it->string, "content") == 0 || strcmp(it->string, "filename") == 0;
        if (only) {
            if (!cJSON_IsString(content)) {
                cJSON_Delete(doc);
                api_error_422(out, "body", "content", "Input should be a valid string");
                return;
            }
            if (fname && !cJSON_IsNull(fname) && !cJSON_IsString(fname)) {
                cJSON_Delete(doc);
                api_error_422(out, "body", "filename", "Input should be a valid string");
                return;
            }
            wrapper = doc;
            text = content->valuestring;
            len = strlen(text);
            const char *fn = cJSON_IsString(fname) && *fname->valuestring ? fname->valuestring : "dag.yml";
            /* only the base name: the text is never looked up on disk */
            const char *slash = strrchr(fn, '/');
            name = xstrdup(slash && slash[1] ? slash + 1 : fn);
        } else {
            cJSON_Delete(doc);
            name = xstrdup("dag.json");
        }
    } else {
        name = xstrdup("dag.yml");
    }
    if (!len) {
        free(name);
        cJSON_Delete(wrapper);
        api_error_422(out, "body", NULL, "Field required: the request needs a DAG file's text");
        return;
    }
    if (!store_text_valid(text, len)) {
        api_error_422(out, "body", wrapper ? "content" : NULL, "A DAG file must be UTF-8 text without NUL bytes");
        free(name);
        cJSON_Delete(wrapper);
        return;
    }
    if (!ends_with(name, ".yml") && !ends_with(name, ".yaml") && !ends_with(name, ".json")) {
        char *n2 = xasprintf("%s.yml", name);
        free(name);
        name = n2;
    }
    DagBag bag;
    dagbag_init(&bag);
    DagLoadOptions opt;
    memset(&opt, 0, sizeof opt);
    opt.default_timezone = config_get(r->ctx->cfg, "core.default_timezone");
    opt.no_file_refs = 1; /* text from the network must not make the server open its files */
    dagbag_load_text(&bag, name, text, len, &opt);
    size_t errors = diag_count_errors(&bag.diags);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "valid", errors == 0);
    cJSON *dags = cJSON_AddArrayToObject(o, "dags");
    for (size_t i = 0; i < bag.n_dags; i++) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "dag_id", bag.dags[i]->dag_id);
        cJSON_AddNumberToObject(d, "tasks", (double)bag.dags[i]->n_tasks);
        cJSON_AddItemToArray(dags, d);
    }
    cJSON *errs = cJSON_AddArrayToObject(o, "errors");
    cJSON *warns = cJSON_AddArrayToObject(o, "warnings");
    for (size_t i = 0; i < bag.diags.len; i++)
        cJSON_AddItemToArray(bag.diags.items[i].warning ? warns : errs, diag_json(&bag.diags.items[i]));
    dagbag_free(&bag);
    free(name);
    cJSON_Delete(wrapper);
    api_json(out, 200, o);
}

const ApiRoute api_routes_validate[] = {
    {"POST", "/api/v2/gust/dags/validate", API_ROLE_VIEWER, h_validate},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
