/* fuzz_template — libFuzzer target for core/template: any bytes are parsed; whatever parses is
 * walked with template_visit_refs and rendered against a context that answers every question
 * with fixed values (and some with "not found"), so the renderer's paths are reached too.
 * Nothing may crash, leak or trip a sanitizer, whatever the input. */
#include "core/template.h"
#include "core/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static cJSON *fz_lookup(void *ud, const char *name)
{
    (void)ud;
    if (!strcmp(name, "ds")) return cJSON_CreateString("2024-02-29");
    if (!strcmp(name, "logical_date")) return cJSON_CreateString("2024-02-29T00:00:00+00:00");
    if (!strcmp(name, "test_mode")) return cJSON_CreateFalse();
    if (!strcmp(name, "expanded_ti_count")) return NULL;
    return cJSON_Parse("{\"x\": \"hello\", \"n\": 5, \"f\": 2.5, \"e\": \"\", \"t\": true, \"z\": null,"
                       " \"l\": [1, \"two\", [3], {\"k\": \"v\"}], \"o\": {\"a\": \"<&>'\", \"b\": -1e300},"
                       " \"u\": \"h\\u00e9llo \\ud83d\\ude00\", \"try_number\": 1, \"dag_id\": \"d\"}");
}

static cJSON *fz_var(void *ud, const char *key)
{
    (void)ud;
    if (key[0] == 'j') return cJSON_CreateString("{\"a\": [1, 2, {\"b\": \"c\"}], \"s\": \"x\"}");
    if (key[0] == 'n') return NULL;
    return cJSON_CreateString(key);
}

static cJSON *fz_conn(void *ud, const char *conn_id)
{
    (void)ud;
    if (conn_id[0] == 'n') return NULL;
    return cJSON_Parse("{\"host\": \"h\", \"port\": 5432, \"extra\": {\"k\": [true]}}");
}

static cJSON *fz_xcom(void *ud, const char *task_id, const char *key)
{
    (void)ud;
    if (strlen(task_id) % 3 == 0) return NULL;
    if (strlen(key) % 2) return cJSON_Parse("[1, {\"a\": \"b\"}, null]");
    return cJSON_CreateString(task_id);
}

static void fz_ref(void *ud, const char *kind, const char *value)
{
    size_t *n = ud;
    *n += strlen(kind) + strlen(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xmalloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char err[256];
    const char *extra[] = {"custom"};
    Template *t = template_parse_ex(text, extra, 1, err, sizeof err);
    if (t) {
        size_t n = 0;
        template_visit_refs(t, fz_ref, &n);
        (void)template_is_static(t);
        TemplateContext ctx = {NULL, fz_lookup, fz_var, fz_conn, fz_xcom};
        free(template_render(t, &ctx, err, sizeof err));
        free(template_render(t, NULL, err, sizeof err));
        template_free(t);
    } else if (!err[0]) {
        abort(); /* a failed parse must always say why */
    }
    free(text);
    return 0;
}
