/* template — the Jinja subset that operator fields use ("{{ ds }}", "{{ params.x | default('a') }}",
 * "{{ ti.xcom_pull(task_ids='t') }}"), as in Airflow.
 *
 * A string is parsed once, when the DAG file is validated, so that a typo in a name, a filter or a
 * call is an import error with a position instead of a failed task at 3 a.m. Rendering happens on
 * the worker against a TemplateContext, a struct of lookup callbacks, so that variables,
 * connections and XComs are fetched from the store only when a template actually uses them.
 *
 * Supported: {{ expression }}, {# comment #}, whitespace control ({{- -}}, {#- -#}). Statement
 * blocks ({% if %}, {% for %}, ...) are not: they are a parse error.
 *
 * Expressions: string literals ('..' or ".." with Python escapes), numbers, true/false/none (any
 * case Jinja accepts: True, none, ...), list literals [a, b], parentheses, dotted and subscript
 * lookups (params.x, params['x'], dag_run.conf.k, x.0), `~` concatenation, `+`/`-` (numbers;
 * `+` also joins strings and lists), unary minus, filters with arguments (`x | replace('a', 'b')`),
 * and these calls only: ti.xcom_pull / task_instance.xcom_pull, macros.ds_add,
 * macros.ds_format, var.value.get / var.json.get, and Python's dict.get on any dict value
 * (dag_run.conf.get('k', 'default'), params.get('x')). Root names must be Airflow context variables
 * (see the table in template.c) or names the caller adds with template_parse_ex.
 *
 * Filters: default (d), upper, lower, capitalize, trim, replace, tojson, int, float, string,
 * length, join, first, last, ds, ds_nodash.
 *
 * Rendering follows Jinja with Airflow's settings (StrictUndefined, no trailing newline kept):
 *   - an undefined value is an error ("undefined variable 'params.x'") unless `default` catches it;
 *   - strings render raw; numbers as Python prints them (1, 2.5, 1e+16) — but cJSON keeps no
 *     int/float distinction, so an integral float renders as an int ("1", not "1.0");
 *     true/false → True/False; null → None;
 *   - objects and arrays render as JSON ({"a": 1, "b": [true, null]}, Python's separators), not
 *     as Python's repr; `tojson` gives Jinja's exact output (sorted keys, ASCII, HTML-safe);
 *   - like Jinja, "\r\n" and "\r" become "\n" and one trailing newline of the source is dropped,
 *     so render even static strings if the exact Airflow text matters.
 *
 * Limits: templates longer than TEMPLATE_MAX_INPUT bytes, expressions nested deeper than
 * TEMPLATE_MAX_DEPTH, and values or output larger than TEMPLATE_MAX_OUTPUT are errors, so no
 * input can exhaust the stack or the heap. */
#ifndef GUST_TEMPLATE_H
#define GUST_TEMPLATE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#define TEMPLATE_MAX_INPUT (1u << 20)   /* bytes of template source */
#define TEMPLATE_MAX_DEPTH 64           /* nesting of an expression tree */
#define TEMPLATE_MAX_OUTPUT (16u << 20) /* bytes of any value and of the rendered text */

typedef struct Template Template; /* parsed string: text chunks and expression trees */

/* Parse. On error returns NULL and writes one line into err, e.g.
 *   "template error at column 12: expected '}}'"
 * Columns are 1-based byte offsets in the string; when the string has several lines and the
 * error is not on the first, the message reads "template error at line 3, column 5: ...".
 * Unknown root names are errors here ("unknown name 'dss' in template (did you mean 'ds'?)"). */
Template *template_parse(const char *text, char *err, size_t errlen);

/* template_parse that also accepts the root names in extra_names (e.g. a DAG's
 * user_defined_macros that are plain values); the renderer asks ctx->lookup for them. */
Template *template_parse_ex(const char *text, const char *const *extra_names, size_t n_extra, char *err,
                            size_t errlen);

void template_free(Template *t); /* accepts NULL */

/* 1 if there are no expressions (the string is text and comments only). */
int template_is_static(const Template *t);

/* Call fn for every reference the template makes, in source order, repeats included:
 *   "name"      every root name used: "ds", "params", "ti", "task_instance", "var", "conn", "macros"...
 *   "xcom_task" each literal task id given to xcom_pull (task_ids='t', 't', or ['a', 'b'])
 *   "var"       each literal variable key (var.value.k, var.json['k'], var.value.get('k'))
 *   "conn"      each literal connection id (conn.k.host, conn['k'])
 *   "param"     each literal first-level params key (params.k, params['k'], params.get('k'))
 * Keys computed at run time (task_ids=params.t) are not reported. value is valid during the call. */
void template_visit_refs(const Template *t, void (*fn)(void *ud, const char *kind, const char *value), void *ud);

/* What a template can see while rendering. Every callback returns a NEW cJSON value that the
 * renderer takes ownership of (and frees with cJSON_Delete), or NULL for "does not exist".
 * Any callback may be NULL (= nothing exists). Each distinct question is asked at most once per
 * template_render call, so callbacks may hit the store. */
typedef struct TemplateContext {
    void *ud; /* passed back to every callback */
    /* Root names: "ds" (string), "params", "dag", "dag_run", "ti" (an object with fields such as
     * try_number, task_id) ... NULL = undefined. "task_instance" is asked for as "ti". */
    cJSON *(*lookup)(void *ud, const char *name);
    /* The stored value of variable key, normally a string: var.value.k renders it as is,
     * var.json.k parses it as JSON (a non-string answer is used as already parsed). NULL = no
     * such variable, which is an error ("var 'k' not found") unless var.value.get has a default. */
    cJSON *(*var_get)(void *ud, const char *key);
    /* Connection conn_id as an object: conn_id, conn_type, host, port, login, password, schema,
     * extra (object)... NULL = error "conn 'x' not found". */
    cJSON *(*conn_get)(void *ud, const char *conn_id);
    /* XCom of this run's task task_id under key (the template defaults key to "return_value").
     * NULL = no such XCom: xcom_pull then gives None (or its default=), as in Airflow. */
    cJSON *(*xcom_pull)(void *ud, const char *task_id, const char *key);
} TemplateContext;

/* Render to a heap string (caller frees), or NULL with a message in err, e.g.
 * "undefined variable 'params.x'", "var 'y' not found", "macros.ds_add: time data 'x' does not
 * match format '%Y-%m-%d'". ctx may be NULL. */
char *template_render(const Template *t, const TemplateContext *ctx, char *err, size_t errlen);

/* Parse and render in one call (caller frees the result). */
char *template_render_text(const char *text, const TemplateContext *ctx, char *err, size_t errlen);

/* Parse a string and throw the result away, for the DAG validator. 0 or -1 with err. */
int template_check(const char *text, char *err, size_t errlen);

#endif
