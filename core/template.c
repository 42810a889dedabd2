/* template — parsing and checking of Jinja templates (see template.h); rendering is in
 * template_render.c.
 *
 * The parser is a hand-written recursive descent over a lexer that reads the source on demand,
 * mirroring Jinja's own precedence (+ - below ~, below unary minus, below postfix lookups and
 * filters) so that templates mean what they mean in Airflow. It rejects at parse time
 * everything the renderer could not do — unknown names, filters, calls — so that errors surface
 * when the DAG file is loaded, not when the task runs. */
#include "core/template.h"

#include "core/template_ast.h"
#include "core/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The Airflow template context: the names a template may use at its root. */
static const struct {
    const char *name;
    const char *what;
} known_names[] = {
    {"data_interval_start", "start of the data interval"},
    {"data_interval_end", "end of the data interval"},
    {"logical_date", "the run's logical date (ISO 8601)"},
    {"ds", "logical date as YYYY-MM-DD"},
    {"ds_nodash", "logical date as YYYYMMDD"},
    {"ts", "logical date as 2018-01-01T00:00:00+00:00"},
    {"ts_nodash", "logical date as 20180101T000000"},
    {"ts_nodash_with_tz", "logical date as 20180101T000000+0000"},
    {"exception", "the error, in failure callbacks"},
    {"prev_data_interval_start_success", "data interval start of the last successful run, or None"},
    {"prev_data_interval_end_success", "data interval end of the last successful run, or None"},
    {"prev_start_date_success", "start date of the last successful run, or None"},
    {"prev_end_date_success", "end date of the last successful run, or None"},
    {"start_date", "start date of this task instance"},
    {"dag", "the DAG (dag_id, ...)"},
    {"task", "the task (task_id, ...)"},
    {"ti", "the task instance (try_number, task_id, map_index, xcom_pull(...))"},
    {"task_instance", "alias of ti"},
    {"task_instance_key_str", "dag_id__task_id__YYYYMMDD"},
    {"params", "the DAG's and task's params, overridden by the run's conf"},
    {"var", "Airflow variables: var.value.KEY, var.json.KEY"},
    {"conn", "connections: conn.ID.host, ..."},
    {"macros", "macros.ds_add, macros.ds_format"},
    {"run_id", "the DAG run's id"},
    {"dag_run", "the DAG run (run_id, conf, run_type, ...)"},
    {"test_mode", "True under `gust dags test`"},
    {"map_index_template", "the task's map_index_template"},
    {"expanded_ti_count", "number of mapped task instances, or None"},
    {"inlets", "the task's inlets"},
    {"outlets", "the task's outlets"},
    {"inlet_events", "asset events of the inlets"},
    {"outlet_events", "asset events of the outlets"},
    {"triggering_dataset_events", "dataset events that triggered the run (Airflow 2)"},
    {"triggering_asset_events", "asset events that triggered the run (Airflow 3)"},
    {"templates_dict", "the task's templates_dict"},
    /* Deprecated in Airflow 2, removed in 3; still accepted so that old DAG files load. */
    {"execution_date", "deprecated: logical_date"},
    {"next_execution_date", "deprecated: data_interval_end"},
    {"next_ds", "deprecated: data_interval_end as YYYY-MM-DD"},
    {"next_ds_nodash", "deprecated"},
    {"prev_execution_date", "deprecated"},
    {"prev_execution_date_success", "deprecated: prev_data_interval_start_success"},
    {"prev_ds", "deprecated"},
    {"prev_ds_nodash", "deprecated"},
    {"yesterday_ds", "deprecated"},
    {"yesterday_ds_nodash", "deprecated"},
    {"tomorrow_ds", "deprecated"},
    {"tomorrow_ds_nodash", "deprecated"},
};

/* A function or filter signature: parameter names in positional order. */
typedef struct FnSpec {
    const char *name;
    int op;              /* TplFilter or TplFunc */
    int npos;            /* how many may be given positionally */
    int nreq;            /* how many leading parameters are required */
    const char *params[6];
} FnSpec;

static const FnSpec filter_specs[] = {
    {"default", TPL_F_DEFAULT, 2, 0, {"default_value", "boolean"}},
    {"d", TPL_F_DEFAULT, 2, 0, {"default_value", "boolean"}},
    {"upper", TPL_F_UPPER, 0, 0, {NULL}},
    {"lower", TPL_F_LOWER, 0, 0, {NULL}},
    {"capitalize", TPL_F_CAPITALIZE, 0, 0, {NULL}},
    {"trim", TPL_F_TRIM, 0, 0, {NULL}},
    {"replace", TPL_F_REPLACE, 3, 2, {"old", "new", "count"}},
    {"tojson", TPL_F_TOJSON, 0, 0, {NULL}},
    {"int", TPL_F_INT, 2, 0, {"default", "base"}},
    {"float", TPL_F_FLOAT, 1, 0, {"default"}},
    {"string", TPL_F_STRING, 0, 0, {NULL}},
    {"length", TPL_F_LENGTH, 0, 0, {NULL}},
    {"join", TPL_F_JOIN, 1, 0, {"d"}},
    {"first", TPL_F_FIRST, 0, 0, {NULL}},
    {"last", TPL_F_LAST, 0, 0, {NULL}},
    {"ds", TPL_F_DS, 0, 0, {NULL}},
    {"ds_nodash", TPL_F_DS_NODASH, 0, 0, {NULL}},
};

static const FnSpec xcom_spec = {"xcom_pull", TPL_FN_XCOM_PULL, 4, 0,
                                 {"task_ids", "dag_id", "key", "include_prior_dates", "map_indexes", "default"}};
static const FnSpec ds_add_spec = {"ds_add", TPL_FN_DS_ADD, 2, 2, {"ds", "days"}};
static const FnSpec ds_format_spec = {"ds_format", TPL_FN_DS_FORMAT, 3, 3, {"ds", "input_format", "output_format"}};
static const FnSpec var_get_spec = {"get", TPL_FN_VAR_GET, 2, 1, {"item", "default_var"}};
static const FnSpec dict_get_spec = {"get", TPL_FN_DICT_GET, 2, 1, {"key", "default"}};

static const char *const airflow_macros[] = {"ds_add", "ds_format", "datetime", "timedelta", "dateutil", "time",
                                             "uuid", "random", "datetime_diff_for_humans", "json", "yaml"};

#define CALLABLE_MSG \
    "only ti.xcom_pull, macros.ds_add and macros.ds_format can be called (plus .get(key, default) on dicts " \
    "such as params and dag_run.conf, and var.value.get / var.json.get)"

/* ---- nodes ---- */

static void node_free(TplNode *n)
{
    if (!n) return;
    node_free(n->a);
    node_free(n->b);
    for (size_t i = 0; i < n->nargs; i++) node_free(n->args[i]);
    free(n->args);
    free(n->name);
    cJSON_Delete(n->lit);
    free(n);
}

static TplNode *node_new(TplKind kind, size_t col)
{
    TplNode *n = xcalloc(1, sizeof *n);
    n->kind = kind;
    n->col = col;
    n->height = 1;
    return n;
}

/* Compute the height of a finished node; too tall trees are an error (the renderer recurses). */
static TplNode *finish(TplParser *p, TplNode *n)
{
    int h = 0;
    if (n->a && n->a->height > h) h = n->a->height;
    if (n->b && n->b->height > h) h = n->b->height;
    for (size_t i = 0; i < n->nargs; i++)
        if (n->args[i] && n->args[i]->height > h) h = n->args[i]->height;
    n->height = h + 1;
    if (n->height > TEMPLATE_MAX_DEPTH) {
        tpl_perr(p, n->col, "expression is nested too deeply (limit %d)", TEMPLATE_MAX_DEPTH);
        node_free(n);
        return NULL;
    }
    return n;
}

static TplNode *lit_node(cJSON *v, size_t col)
{
    TplNode *n = node_new(TPL_LIT, col);
    n->lit = v;
    return n;
}

static int is_root(const TplNode *n, const char *name)
{
    return n && n->kind == TPL_NAME && strcmp(n->name, name) == 0;
}

void tpl_node_path(const TplNode *n, StrBuf *out)
{
    if (!n) return;
    switch (n->kind) {
    case TPL_NAME: sb_append(out, n->name); break;
    case TPL_ATTR:
        tpl_node_path(n->a, out);
        sb_printf(out, ".%s", n->name);
        break;
    case TPL_ITEM:
    case TPL_VAR:
    case TPL_CONN:
        if (n->kind == TPL_ITEM)
            tpl_node_path(n->a, out);
        else if (n->kind == TPL_VAR)
            sb_append(out, n->op ? "var.json" : "var.value");
        else
            sb_append(out, "conn");
        if (n->b->kind == TPL_LIT && cJSON_IsString(n->b->lit))
            sb_printf(out, "['%s']", n->b->lit->valuestring);
        else if (n->b->kind == TPL_LIT && cJSON_IsNumber(n->b->lit))
            sb_printf(out, "[%.0f]", n->b->lit->valuedouble);
        else
            sb_append(out, "[...]");
        break;
    case TPL_CALL: {
        static const char *const fn_names[] = {"xcom_pull", "ds_add", "ds_format", "get", "get"};
        if (n->op == TPL_FN_DICT_GET)
            tpl_node_path(n->a, out);
        else
            sb_append(out, n->name);
        sb_printf(out, ".%s(...)", fn_names[n->op]);
        break;
    }
    case TPL_FILTER:
        tpl_node_path(n->a, out);
        sb_printf(out, " | %s", n->name);
        break;
    default: sb_append(out, "expression"); break;
    }
}

/* ---- expressions ---- */

static TplNode *parse_expr(TplParser *p);
static TplNode *parse_unary(TplParser *p, int with_filter);

/* Arguments of a call or filter after its '(' up to and including ')', bound to spec's parameters
 * like Python would: positionals first, then keywords, each at most once. */
static TplNode **parse_args(TplParser *p, const FnSpec *spec, const char *shown, size_t *nslots)
{
    size_t n = 0;
    while (n < GUST_ARRAY_LEN(spec->params) && spec->params[n]) n++;
    TplNode **slots = xcalloc(n ? n : 1, sizeof *slots);
    *nslots = n;
    int npos = 0, seen_kw = 0;
    while (!p->failed && !tpl_is_op(p, ')')) {
        size_t at = p->tok.start;
        int slot = -1;
        if (p->tok.type == TK_NAME) {
            size_t i = p->pos;
            while (i < p->len && tpl_is_space(p->src[i])) i++;
            if (i < p->len && p->src[i] == '=' && (i + 1 >= p->len || p->src[i + 1] != '=')) {
                for (size_t k = 0; k < n; k++)
                    if (strcmp(spec->params[k], p->tok.str) == 0) slot = (int)k;
                if (slot < 0) {
                    tpl_perr(p, at, "%s got an unexpected keyword argument '%s'", shown, p->tok.str);
                    break;
                }
                if (slots[slot]) {
                    tpl_perr(p, at, "%s got multiple values for argument '%s'", shown, p->tok.str);
                    break;
                }
                seen_kw = 1;
                tpl_advance(p);
                tpl_advance(p);
            }
        }
        if (slot < 0) {
            if (seen_kw) {
                tpl_perr(p, at, "positional argument follows keyword argument in %s", shown);
                break;
            }
            if (npos >= spec->npos) {
                tpl_perr(p, at, "%s takes at most %d positional argument%s", shown, spec->npos,
                         spec->npos == 1 ? "" : "s");
                break;
            }
            slot = npos++;
        }
        TplNode *v = parse_expr(p);
        if (!v) break;
        slots[slot] = v;
        if (tpl_is_op(p, ',')) {
            tpl_advance(p);
        } else if (!tpl_is_op(p, ')')) {
            tpl_expected(p, "',' or ')'");
            break;
        }
    }
    for (int k = 0; !p->failed && k < spec->nreq; k++)
        if (!slots[k]) tpl_perr(p, p->tok.start, "%s is missing its argument '%s'", shown, spec->params[k]);
    if (!p->failed) tpl_advance(p); /* ')' */
    if (p->failed) {
        for (size_t k = 0; k < n; k++) node_free(slots[k]);
        free(slots);
        *nslots = 0;
        return NULL;
    }
    return slots;
}

/* name(...) where the current token is '(' : a call node for one of the known functions. */
static TplNode *parse_call(TplParser *p, const FnSpec *spec, const char *root, size_t col)
{
    char shown[64];
    snprintf(shown, sizeof shown, "%s.%s()", root, spec->name);
    tpl_advance(p); /* '(' */
    TplNode *n = node_new(TPL_CALL, col);
    n->op = spec->op;
    n->name = xstrdup(root);
    n->args = parse_args(p, spec, shown, &n->nargs);
    if (!n->args) {
        node_free(n);
        return NULL;
    }
    if (spec->op == TPL_FN_XCOM_PULL) {
        static const char *const unsupported[][2] = {
            {"dag_id", "XComs come from this DAG run; pass the key as key=..."},
            {"include_prior_dates", "XComs come from this DAG run"},
            {"map_indexes", "pull the whole list and index it"},
        };
        static const int slot_of[] = {TPL_XCOM_DAG_ID, TPL_XCOM_PRIOR, TPL_XCOM_MAP_INDEXES};
        for (size_t k = 0; k < GUST_ARRAY_LEN(slot_of); k++)
            if (n->args[slot_of[k]]) {
                tpl_perr(p, n->args[slot_of[k]]->col, "%s: %s is not supported (%s)", shown, unsupported[k][0],
                     unsupported[k][1]);
                node_free(n);
                return NULL;
            }
        if (!n->args[TPL_XCOM_TASK_IDS]) {
            tpl_perr(p, col, "%s needs task_ids, e.g. %s.xcom_pull(task_ids='extract')", shown, root);
            node_free(n);
            return NULL;
        }
    }
    return finish(p, n);
}

/* A key after var.value / var.json / conn: .name or [expr]. NULL (no error) when absent. */
static TplNode *parse_key(TplParser *p)
{
    if (tpl_is_op(p, '.')) {
        tpl_advance(p);
        if (p->tok.type != TK_NAME) {
            tpl_expected(p, "a name after '.'");
            return NULL;
        }
        TplNode *k = lit_node(cJSON_CreateString(p->tok.str), p->tok.start);
        tpl_advance(p);
        return k;
    }
    if (tpl_is_op(p, '[')) {
        tpl_advance(p);
        p->depth++;
        TplNode *k = parse_expr(p);
        p->depth--;
        if (k && tpl_expect_op(p, ']') < 0) {
            node_free(k);
            return NULL;
        }
        return k;
    }
    return NULL;
}

/* var.value.KEY, var.json['KEY'], var.value.get('KEY', default) */
static TplNode *parse_var(TplParser *p, size_t col)
{
    TplNode *mode = parse_key(p);
    if (!mode) {
        if (!p->failed) tpl_perr(p, col, "var must be used as var.value.KEY or var.json.KEY");
        return NULL;
    }
    int json = -1;
    if (mode->kind == TPL_LIT && cJSON_IsString(mode->lit)) {
        if (strcmp(mode->lit->valuestring, "value") == 0) json = 0;
        if (strcmp(mode->lit->valuestring, "json") == 0) json = 1;
    }
    node_free(mode);
    if (json < 0) {
        tpl_perr(p, col, "var must be used as var.value.KEY or var.json.KEY");
        return NULL;
    }
    if (tpl_is_op(p, '.') && tpl_peek_ident(p, "get", 1)) {
        tpl_advance(p);
        tpl_advance(p);
        TplNode *n = parse_call(p, &var_get_spec, json ? "var.json" : "var.value", col);
        if (n) n->flag = json;
        return n;
    }
    TplNode *key = parse_key(p);
    if (!key) {
        if (!p->failed) tpl_perr(p, col, "var.%s needs a key: var.%s.KEY or var.%s['KEY']", json ? "json" : "value",
                             json ? "json" : "value", json ? "json" : "value");
        return NULL;
    }
    TplNode *n = node_new(TPL_VAR, col);
    n->op = json;
    n->b = key;
    return finish(p, n);
}

static TplNode *parse_conn(TplParser *p, size_t col)
{
    TplNode *key = parse_key(p);
    if (!key) {
        if (!p->failed) tpl_perr(p, col, "conn needs a connection id: conn.ID.host or conn['ID'].host");
        return NULL;
    }
    TplNode *n = node_new(TPL_CONN, col);
    n->b = key;
    return finish(p, n);
}

static TplNode *parse_macros(TplParser *p, size_t col)
{
    if (!tpl_is_op(p, '.')) {
        tpl_perr(p, col, "macros can only be used as macros.ds_add(...) or macros.ds_format(...)");
        return NULL;
    }
    tpl_advance(p);
    if (p->tok.type != TK_NAME) {
        tpl_expected(p, "a macro name after 'macros.'");
        return NULL;
    }
    const FnSpec *spec = NULL;
    if (strcmp(p->tok.str, "ds_add") == 0) spec = &ds_add_spec;
    if (strcmp(p->tok.str, "ds_format") == 0) spec = &ds_format_spec;
    if (!spec) {
        int known = 0;
        for (size_t i = 0; i < GUST_ARRAY_LEN(airflow_macros); i++)
            if (strcmp(airflow_macros[i], p->tok.str) == 0) known = 1;
        const char *near = util_closest(p->tok.str, airflow_macros, 2);
        const char *name = p->tok.str;
        size_t at = p->tok.start;
        if (known)
            tpl_perr(p, at, "macros.%s is not supported (only macros.ds_add and macros.ds_format)", name);
        else if (near)
            tpl_perr(p, at, "unknown macro 'macros.%s' (did you mean 'macros.%s'?)", name, near);
        else
            tpl_perr(p, at, "unknown macro 'macros.%s' (only macros.ds_add and macros.ds_format)", name);
        return NULL;
    }
    tpl_advance(p);
    if (!tpl_is_op(p, '(')) {
        tpl_perr(p, col, "macros.%s must be called, e.g. macros.%s", spec->name,
             spec == &ds_add_spec ? "ds_add(ds, 1)" : "ds_format(ds, '%Y-%m-%d', '%d/%m/%Y')");
        return NULL;
    }
    return parse_call(p, spec, "macros", col);
}

static int known_name(const TplParser *p, const char *name)
{
    for (size_t i = 0; i < GUST_ARRAY_LEN(known_names); i++)
        if (strcmp(known_names[i].name, name) == 0) return 1;
    for (size_t i = 0; i < p->nextra; i++)
        if (p->extra[i] && strcmp(p->extra[i], name) == 0) return 1;
    return 0;
}

static void unknown_name(TplParser *p, const char *name, size_t col)
{
    size_t n = GUST_ARRAY_LEN(known_names) + p->nextra;
    const char **cands = xcalloc(n, sizeof *cands);
    for (size_t i = 0; i < GUST_ARRAY_LEN(known_names); i++) cands[i] = known_names[i].name;
    for (size_t i = 0; i < p->nextra; i++) cands[GUST_ARRAY_LEN(known_names) + i] = p->extra[i];
    const char *near = util_closest(name, (const char *const *)cands, n);
    size_t i = p->pos; /* just after the name: is it called? */
    while (i < p->len && tpl_is_space(p->src[i])) i++;
    if (i < p->len && p->src[i] == '(')
        tpl_perr(p, col, "unknown function '%s' in template (%s)", name, CALLABLE_MSG);
    else if (near)
        tpl_perr(p, col, "unknown name '%s' in template (did you mean '%s'?)", name, near);
    else
        tpl_perr(p, col, "unknown name '%s' in template", name);
    free(cands);
}

static TplNode *parse_list(TplParser *p, size_t col)
{
    tpl_advance(p); /* '[' */
    TplNode *n = node_new(TPL_LIST, col);
    size_t cap = 0;
    while (!tpl_is_op(p, ']')) {
        TplNode *v = parse_expr(p);
        if (!v) {
            node_free(n);
            return NULL;
        }
        if (n->nargs == cap) {
            cap = cap ? cap * 2 : 4;
            n->args = xrealloc(n->args, cap * sizeof *n->args);
        }
        n->args[n->nargs++] = v;
        if (tpl_is_op(p, ',')) {
            tpl_advance(p);
        } else if (!tpl_is_op(p, ']')) {
            tpl_expected(p, "',' or ']'");
            node_free(n);
            return NULL;
        }
    }
    tpl_advance(p);
    return finish(p, n);
}

static TplNode *parse_primary(TplParser *p)
{
    TplTok *t = &p->tok;
    size_t col = t->start;
    switch (t->type) {
    case TK_NUM: {
        TplNode *n = lit_node(cJSON_CreateNumber(t->num), col);
        tpl_advance(p);
        return n;
    }
    case TK_STR: {
        TplNode *n = lit_node(cJSON_CreateString(t->str), col);
        tpl_advance(p);
        return n;
    }
    case TK_NAME: {
        const char *s = t->str;
        cJSON *lit = NULL;
        if (!strcmp(s, "true") || !strcmp(s, "True")) lit = cJSON_CreateTrue();
        if (!strcmp(s, "false") || !strcmp(s, "False")) lit = cJSON_CreateFalse();
        if (!strcmp(s, "none") || !strcmp(s, "None")) lit = cJSON_CreateNull();
        if (lit) {
            tpl_advance(p);
            return lit_node(lit, col);
        }
        int special = !strcmp(s, "var") || !strcmp(s, "conn") || !strcmp(s, "macros") || !strcmp(s, "ti") ||
                      !strcmp(s, "task_instance");
        if (!special && !known_name(p, s)) {
            unknown_name(p, s, col);
            return NULL;
        }
        char *name = xstrdup(s);
        TplNode *n = NULL;
        tpl_advance(p);
        if (!strcmp(name, "var")) {
            n = parse_var(p, col);
        } else if (!strcmp(name, "conn")) {
            n = parse_conn(p, col);
        } else if (!strcmp(name, "macros")) {
            n = parse_macros(p, col);
        } else if ((!strcmp(name, "ti") || !strcmp(name, "task_instance")) && tpl_is_op(p, '.') &&
                   tpl_peek_ident(p, "xcom_pull", 0)) {
            tpl_advance(p);
            tpl_advance(p);
            if (tpl_is_op(p, '('))
                n = parse_call(p, &xcom_spec, name, col);
            else
                tpl_perr(p, col, "%s.xcom_pull must be called, e.g. %s.xcom_pull(task_ids='extract')", name, name);
        } else {
            n = node_new(TPL_NAME, col);
            n->name = name;
            name = NULL;
        }
        free(name);
        return n;
    }
    case TK_OP:
        if (t->op == '(') {
            tpl_advance(p);
            TplNode *n = parse_expr(p);
            if (n && tpl_expect_op(p, ')') < 0) {
                node_free(n);
                return NULL;
            }
            return n;
        }
        if (t->op == '[') return parse_list(p, col);
        tpl_expected(p, "an expression");
        return NULL;
    case TK_END:
    case TK_EOF:
        tpl_expected(p, "an expression");
        return NULL;
    case TK_ERR: return NULL;
    }
    return NULL;
}

/* .name, .0, [expr] lookups after a primary. Calls other than the known ones end up here. */
static TplNode *parse_postfix(TplParser *p, TplNode *n)
{
    while (n && !p->failed) {
        size_t col = p->tok.start;
        if (tpl_is_op(p, '.')) {
            tpl_advance(p);
            TplNode *m;
            if (p->tok.type == TK_NAME) {
                m = node_new(TPL_ATTR, n->col);
                m->name = xstrdup(p->tok.str);
            } else if (p->tok.type == TK_NUM && p->tok.num < 1e15 && p->tok.num == (double)(long)p->tok.num) {
                m = node_new(TPL_ITEM, n->col);
                m->b = lit_node(cJSON_CreateNumber(p->tok.num), p->tok.start);
            } else {
                tpl_expected(p, "a name after '.'");
                node_free(n);
                return NULL;
            }
            tpl_advance(p);
            m->a = n;
            n = finish(p, m);
        } else if (tpl_is_op(p, '[')) {
            tpl_advance(p);
            TplNode *k = parse_expr(p);
            if (!k || tpl_expect_op(p, ']') < 0) {
                node_free(k);
                node_free(n);
                return NULL;
            }
            TplNode *m = node_new(TPL_ITEM, n->col);
            m->a = n;
            m->b = k;
            n = finish(p, m);
        } else if (tpl_is_op(p, '(') && n->kind == TPL_ATTR && strcmp(n->name, "get") == 0) {
            TplNode *obj = n->a; /* dag_run.conf.get('k', 'd'): dict.get on whatever obj is */
            size_t at = n->col;
            n->a = NULL;
            node_free(n);
            n = parse_call(p, &dict_get_spec, "dict", at);
            if (!n) {
                node_free(obj);
                return NULL;
            }
            n->a = obj;
            n = finish(p, n);
        } else if (tpl_is_op(p, '(')) {
            StrBuf path = {0};
            tpl_node_path(n, &path);
            tpl_perr(p, col, "'%s' cannot be called: %s", sb_str(&path), CALLABLE_MSG);
            sb_free(&path);
            node_free(n);
            return NULL;
        } else {
            break;
        }
    }
    return n;
}

static const FnSpec *find_filter(const char *name)
{
    for (size_t i = 0; i < GUST_ARRAY_LEN(filter_specs); i++)
        if (strcmp(filter_specs[i].name, name) == 0) return &filter_specs[i];
    return NULL;
}

static TplNode *parse_filters(TplParser *p, TplNode *n)
{
    while (n && tpl_is_op(p, '|')) {
        tpl_advance(p);
        if (p->tok.type != TK_NAME) {
            tpl_expected(p, "a filter name after '|'");
            node_free(n);
            return NULL;
        }
        const FnSpec *spec = find_filter(p->tok.str);
        if (!spec) {
            const char *names[GUST_ARRAY_LEN(filter_specs)];
            for (size_t i = 0; i < GUST_ARRAY_LEN(filter_specs); i++) names[i] = filter_specs[i].name;
            const char *near = util_closest(p->tok.str, names, GUST_ARRAY_LEN(names));
            if (near)
                tpl_perr(p, p->tok.start, "unknown filter '%s' (did you mean '%s'?)", p->tok.str, near);
            else
                tpl_perr(p, p->tok.start,
                     "unknown filter '%s' (known: default, upper, lower, capitalize, trim, replace, tojson, int, "
                     "float, string, length, join, first, last, ds, ds_nodash)",
                     p->tok.str);
            node_free(n);
            return NULL;
        }
        TplNode *f = node_new(TPL_FILTER, n->col);
        f->op = spec->op;
        f->name = xstrdup(spec->name);
        f->a = n;
        size_t at = p->tok.start;
        tpl_advance(p);
        char shown[48];
        snprintf(shown, sizeof shown, "filter '%s'", spec->name);
        if (tpl_is_op(p, '(')) {
            tpl_advance(p);
            f->args = parse_args(p, spec, shown, &f->nargs);
            if (!f->args) {
                node_free(f);
                return NULL;
            }
        } else if (spec->nreq) {
            tpl_perr(p, at, "filter '%s' needs arguments, e.g. %s('old', 'new')", spec->name, spec->name);
            node_free(f);
            return NULL;
        } else {
            size_t k = 0;
            while (k < GUST_ARRAY_LEN(spec->params) && spec->params[k]) k++;
            f->args = xcalloc(k ? k : 1, sizeof *f->args);
            f->nargs = k;
        }
        n = finish(p, f);
    }
    return n;
}

static TplNode *parse_unary(TplParser *p, int with_filter)
{
    if (++p->depth > TEMPLATE_MAX_DEPTH) {
        tpl_perr(p, p->tok.start, "expression is nested too deeply (limit %d)", TEMPLATE_MAX_DEPTH);
        p->depth--;
        return NULL;
    }
    TplNode *n;
    if (tpl_is_op(p, '-') || tpl_is_op(p, '+')) {
        size_t col = p->tok.start;
        int neg = p->tok.op == '-';
        tpl_advance(p);
        TplNode *inner = parse_unary(p, 0);
        if (inner && inner->kind == TPL_LIT && cJSON_IsNumber(inner->lit)) {
            if (neg) cJSON_SetNumberValue(inner->lit, -inner->lit->valuedouble);
            inner->col = col;
            n = inner;
        } else if (inner) {
            n = node_new(neg ? TPL_NEG : TPL_POS, col);
            n->a = inner;
            n = finish(p, n);
        } else {
            n = NULL;
        }
    } else {
        n = parse_primary(p);
    }
    n = parse_postfix(p, n);
    if (with_filter) n = parse_filters(p, n);
    p->depth--;
    return n;
}

static TplNode *parse_concat(TplParser *p)
{
    TplNode *first = parse_unary(p, 1);
    if (!first || !tpl_is_op(p, '~')) return first;
    TplNode *n = node_new(TPL_CONCAT, first->col);
    size_t cap = 4;
    n->args = xcalloc(cap, sizeof *n->args);
    n->args[n->nargs++] = first;
    while (tpl_is_op(p, '~')) {
        tpl_advance(p);
        TplNode *v = parse_unary(p, 1);
        if (!v) {
            node_free(n);
            return NULL;
        }
        if (n->nargs == cap) {
            cap *= 2;
            n->args = xrealloc(n->args, cap * sizeof *n->args);
        }
        n->args[n->nargs++] = v;
    }
    return finish(p, n);
}

static TplNode *parse_expr(TplParser *p)
{
    if (++p->depth > TEMPLATE_MAX_DEPTH) {
        tpl_perr(p, p->tok.start, "expression is nested too deeply (limit %d)", TEMPLATE_MAX_DEPTH);
        p->depth--;
        return NULL;
    }
    TplNode *n = parse_concat(p);
    while (n && (tpl_is_op(p, '+') || tpl_is_op(p, '-'))) {
        TplNode *m = node_new(p->tok.op == '+' ? TPL_ADD : TPL_SUB, n->col);
        tpl_advance(p);
        m->a = n;
        m->b = parse_concat(p);
        if (m->b) {
            n = finish(p, m);
        } else {
            node_free(m);
            n = NULL;
        }
    }
    p->depth--;
    return n;
}

/* ---- the template ---- */

static void add_part(Template *t, size_t *cap, char *text, TplNode *expr)
{
    if (t->nparts == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        t->parts = xrealloc(t->parts, *cap * sizeof *t->parts);
    }
    t->parts[t->nparts].text = text;
    t->parts[t->nparts].expr = expr;
    t->nparts++;
}

/* Append src[from, to) to text, first skipping leading whitespace if a -}} asked for it. */
static void add_text(StrBuf *text, const char *src, size_t from, size_t to, int *lstrip)
{
    if (*lstrip)
        while (from < to && tpl_is_space(src[from])) from++;
    if (from < to) *lstrip = 0;
    sb_appendn(text, src + from, to - from);
}

static void flush_text(Template *t, size_t *cap, StrBuf *text)
{
    if (text->len) add_part(t, cap, sb_take(text), NULL);
}

/* Jinja's source normalisation: every newline sequence becomes "\n" and one trailing newline
 * is dropped (keep_trailing_newline=False). */
static char *normalise(const char *text, size_t *len)
{
    StrBuf b = {0};
    sb_append(&b, "");
    for (const char *s = text; *s; s++) {
        if (*s == '\r') {
            sb_appendc(&b, '\n');
            if (s[1] == '\n') s++;
        } else {
            sb_appendc(&b, *s);
        }
    }
    if (b.len && b.s[b.len - 1] == '\n') b.s[--b.len] = '\0';
    *len = b.len;
    return sb_take(&b);
}

Template *template_parse_ex(const char *text, const char *const *extra_names, size_t n_extra, char *err,
                            size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!text) text = "";
    size_t raw = strlen(text);
    if (raw > TEMPLATE_MAX_INPUT) {
        if (err && errlen)
            snprintf(err, errlen, "template error: template is too long (%zu bytes, limit %u)", raw,
                     TEMPLATE_MAX_INPUT);
        return NULL;
    }
    TplParser p = {0};
    p.err = err;
    p.errlen = errlen;
    p.extra = extra_names;
    p.nextra = extra_names ? n_extra : 0;
    char *src = normalise(text, &p.len);
    p.src = src;

    Template *t = xcalloc(1, sizeof *t);
    size_t cap = 0;
    StrBuf textbuf = {0};
    int lstrip = 0;
    size_t i = 0;
    while (i < p.len && !p.failed) {
        const char *open = NULL;
        for (size_t j = i; j + 1 < p.len; j++)
            if (src[j] == '{' && (src[j + 1] == '{' || src[j + 1] == '%' || src[j + 1] == '#')) {
                open = src + j;
                break;
            }
        if (!open) {
            add_text(&textbuf, src, i, p.len, &lstrip);
            break;
        }
        size_t j = (size_t)(open - src);
        add_text(&textbuf, src, i, j, &lstrip);
        lstrip = 0;
        int strip_left = j + 2 < p.len && src[j + 2] == '-';
        if (open[1] == '%') {
            tpl_perr(&p, j, "statement blocks {%% %%} are not supported");
            break;
        }
        if (strip_left)
            while (textbuf.len && tpl_is_space(textbuf.s[textbuf.len - 1])) textbuf.s[--textbuf.len] = '\0';
        if (open[1] == '#') {
            size_t c = j + 2 + (size_t)strip_left;
            while (c + 1 < p.len && !(src[c] == '#' && src[c + 1] == '}')) c++;
            if (c + 1 >= p.len) {
                tpl_perr(&p, j, "unclosed comment '{#' (expected '#}')");
                break;
            }
            lstrip = c > j + 2 + (size_t)strip_left && src[c - 1] == '-';
            i = c + 2;
            continue;
        }
        flush_text(t, &cap, &textbuf);
        p.open = j;
        p.pos = j + 2 + (size_t)strip_left;
        tpl_advance(&p);
        TplNode *n = NULL;
        if (p.tok.type == TK_END)
            tpl_perr(&p, j, "empty expression '{{ }}'");
        else
            n = parse_expr(&p);
        if (n && p.tok.type != TK_END) {
            if (p.tok.type == TK_EOF) {
                tpl_expected(&p, "'}}'");
            } else if (!p.failed) {
                char got[64];
                tpl_describe_tok(&p, got, sizeof got);
                tpl_perr(&p, p.tok.start, "expected '}}', got %s", got);
            }
        }
        if (p.failed) {
            node_free(n);
            break;
        }
        add_part(t, &cap, NULL, n);
        lstrip = p.tok.strip;
        i = p.pos;
    }
    free(p.tok.str);
    if (p.failed) {
        sb_free(&textbuf);
        template_free(t);
        free(src);
        return NULL;
    }
    flush_text(t, &cap, &textbuf);
    sb_free(&textbuf);
    free(src);
    return t;
}

Template *template_parse(const char *text, char *err, size_t errlen)
{
    return template_parse_ex(text, NULL, 0, err, errlen);
}

void template_free(Template *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nparts; i++) {
        free(t->parts[i].text);
        node_free(t->parts[i].expr);
    }
    free(t->parts);
    free(t);
}

int template_is_static(const Template *t)
{
    if (!t) return 1;
    for (size_t i = 0; i < t->nparts; i++)
        if (t->parts[i].expr) return 0;
    return 1;
}

int template_check(const char *text, char *err, size_t errlen)
{
    Template *t = template_parse(text, err, errlen);
    if (!t) return -1;
    template_free(t);
    return 0;
}

/* ---- references ---- */

typedef void (*RefFn)(void *ud, const char *kind, const char *value);

static const char *lit_str(const TplNode *n)
{
    return n && n->kind == TPL_LIT && cJSON_IsString(n->lit) ? n->lit->valuestring : NULL;
}

static void visit_node(const TplNode *n, RefFn fn, void *ud)
{
    if (!n) return;
    switch (n->kind) {
    case TPL_NAME: fn(ud, "name", n->name); break;
    case TPL_VAR: fn(ud, "name", "var"); break;
    case TPL_CONN: fn(ud, "name", "conn"); break;
    case TPL_CALL:
        if (n->op != TPL_FN_DICT_GET) fn(ud, "name", n->op == TPL_FN_VAR_GET ? "var" : n->name);
        break;
    default: break;
    }
    visit_node(n->a, fn, ud);
    switch (n->kind) {
    case TPL_ATTR:
        if (is_root(n->a, "params")) fn(ud, "param", n->name);
        break;
    case TPL_ITEM:
        if (is_root(n->a, "params") && lit_str(n->b)) fn(ud, "param", lit_str(n->b));
        break;
    case TPL_VAR:
        if (lit_str(n->b)) fn(ud, "var", lit_str(n->b));
        break;
    case TPL_CONN:
        if (lit_str(n->b)) fn(ud, "conn", lit_str(n->b));
        break;
    case TPL_CALL:
        if (n->op == TPL_FN_VAR_GET && lit_str(n->args[0])) fn(ud, "var", lit_str(n->args[0]));
        if (n->op == TPL_FN_DICT_GET && is_root(n->a, "params") && lit_str(n->args[0]))
            fn(ud, "param", lit_str(n->args[0]));
        if (n->op == TPL_FN_XCOM_PULL) {
            const TplNode *ids = n->args[TPL_XCOM_TASK_IDS];
            if (lit_str(ids)) fn(ud, "xcom_task", lit_str(ids));
            if (ids && ids->kind == TPL_LIST)
                for (size_t i = 0; i < ids->nargs; i++)
                    if (lit_str(ids->args[i])) fn(ud, "xcom_task", lit_str(ids->args[i]));
        }
        break;
    default: break;
    }
    visit_node(n->b, fn, ud);
    for (size_t i = 0; i < n->nargs; i++) visit_node(n->args[i], fn, ud);
}

void template_visit_refs(const Template *t, void (*fn)(void *ud, const char *kind, const char *value), void *ud)
{
    if (!t || !fn) return;
    for (size_t i = 0; i < t->nparts; i++) visit_node(t->parts[i].expr, fn, ud);
}
