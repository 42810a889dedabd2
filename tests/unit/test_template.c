/* Tests for core/template: parsing, errors, references and rendering of the Jinja subset. */
#include "core/template.h"
#include "core/util.h"
#include "tests/unit/unit.h"

/* ---- a small context ---- */

typedef struct TestCtx {
    int lookups, var_gets, conn_gets, xcom_pulls; /* how often each callback ran */
} TestCtx;

static cJSON *ctx_lookup(void *ud, const char *name)
{
    TestCtx *c = ud;
    c->lookups++;
    static const struct {
        const char *name, *json;
    } values[] = {
        {"ds", "\"2024-01-31\""},
        {"ds_nodash", "\"20240131\""},
        {"run_id", "\"scheduled__2024-01-31T00:00:00+00:00\""},
        {"logical_date", "\"2024-01-31T00:00:00+00:00\""},
        {"dag", "{\"dag_id\": \"etl\"}"},
        {"ti", "{\"try_number\": 2, \"task_id\": \"load\", \"map_index\": -1}"},
        {"dag_run", "{\"conf\": {\"region\": \"eu\"}, \"run_type\": \"scheduled\"}"},
        {"params", "{\"x\": \"hello\", \"n\": 5, \"ratio\": 2.5, \"empty\": \"\", \"flag\": true, \"nothing\": null,"
                   " \"nested\": {\"list\": [1, 2, 3], \"b\": 1, \"a\": \"<&>\"}, \"my-key\": \"dash\"}"},
        {"test_mode", "false"},
        {"region", "\"eu-west-1\""},
    };
    for (size_t i = 0; i < GUST_ARRAY_LEN(values); i++)
        if (strcmp(values[i].name, name) == 0) return cJSON_Parse(values[i].json);
    return NULL;
}

static cJSON *ctx_var(void *ud, const char *key)
{
    TestCtx *c = ud;
    c->var_gets++;
    if (!strcmp(key, "greeting")) return cJSON_CreateString("hi");
    if (!strcmp(key, "cfg")) return cJSON_CreateString("{\"a\": {\"b\": 42}, \"list\": [\"x\", \"y\"]}");
    if (!strcmp(key, "bad_json")) return cJSON_CreateString("{oops");
    if (!strcmp(key, "my-var")) return cJSON_CreateString("dashed");
    return NULL;
}

static cJSON *ctx_conn(void *ud, const char *conn_id)
{
    TestCtx *c = ud;
    c->conn_gets++;
    if (strcmp(conn_id, "pg")) return NULL;
    return cJSON_Parse("{\"conn_id\": \"pg\", \"host\": \"db.local\", \"port\": 5432, \"login\": \"etl\","
                       " \"schema\": \"dw\", \"extra\": {\"sslmode\": \"require\"}}");
}

static cJSON *ctx_xcom(void *ud, const char *task_id, const char *key)
{
    TestCtx *c = ud;
    c->xcom_pulls++;
    if (!strcmp(task_id, "extract") && !strcmp(key, "return_value")) return cJSON_Parse("{\"rows\": 10}");
    if (!strcmp(task_id, "extract") && !strcmp(key, "count")) return cJSON_CreateNumber(7);
    if (!strcmp(task_id, "fetch") && !strcmp(key, "return_value")) return cJSON_CreateString("news");
    return NULL;
}

static TestCtx counts;
static const TemplateContext test_ctx = {&counts, ctx_lookup, ctx_var, ctx_conn, ctx_xcom};

/* Render text with the test context; returns a static copy ("<error: ...>" on failure). */
static const char *render(const char *text)
{
    static char out[4096];
    char err[256];
    char *s = template_render_text(text, &test_ctx, err, sizeof err);
    if (!s) {
        snprintf(out, sizeof out, "<error: %s>", err);
        return out;
    }
    util_strlcpy(out, s, sizeof out);
    free(s);
    return out;
}

/* The parse error for text, or "" when it parses. */
static const char *parse_error(const char *text)
{
    static char err[256];
    Template *t = template_parse(text, err, sizeof err);
    if (t) {
        template_free(t);
        return "";
    }
    return err;
}

/* ---- parsing ---- */

static void test_plain_text_is_static_and_renders_unchanged(void)
{
    char err[128];
    Template *t = template_parse("echo hello { not a tag } }}", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_TRUE(template_is_static(t));
    char *s = template_render(t, NULL, err, sizeof err);
    ASSERT_STR_EQ(s, "echo hello { not a tag } }}");
    free(s);
    template_free(t);
    template_free(NULL);
}

static void test_comments_are_dropped_and_static(void)
{
    char err[128];
    Template *t = template_parse("a{# a comment with {{ braces }} #}b", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_TRUE(template_is_static(t));
    template_free(t);
    ASSERT_STR_EQ(render("a{# c #}b"), "ab");
}

static void test_expressions_make_a_template_dynamic(void)
{
    char err[128];
    Template *t = template_parse("run {{ ds }}", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_FALSE(template_is_static(t));
    template_free(t);
}

static void test_every_supported_construct_parses(void)
{
    static const char *const good[] = {
        "{{ 'single' }}{{ \"double\" }}{{ 'esc\\'aped\\n' }}",
        "{{ 42 }} {{ -7 }} {{ 2.5 }} {{ 1e3 }} {{ 1_000 }}",
        "{{ true }} {{ false }} {{ none }} {{ True }} {{ False }} {{ None }}",
        "{{ ds }} {{ ds_nodash }} {{ ts }} {{ logical_date }} {{ data_interval_start }} {{ run_id }}",
        "{{ dag.dag_id }} {{ params.x }} {{ params['x'] }} {{ ti.try_number }} {{ dag_run.conf.region }}",
        "{{ var.value.x }} {{ var.json.x.y }} {{ var.value['my-var'] }}",
        "{{ conn.pg.host }} {{ conn['my-conn'].port }}",
        "{{ ti.xcom_pull(task_ids='t') }} {{ ti.xcom_pull('t', key='k') }}",
        "{{ task_instance.xcom_pull(task_ids=['a', 'b']) }}",
        "{{ macros.ds_add(ds, 5) }} {{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }}",
        "{{ params.x | default('a') }} {{ params.x | upper | lower }} {{ params.y | d }}",
        "{{ params.x | replace('a', 'b') | tojson }} {{ params.n | int }} {{ params.n | int(0) + 1 }}",
        "{{ 'a' ~ ds ~ 1 }} {{ 1 + 2 - 3 }} {{ (1 + 2) }} {{ [1, 'two', ds] }} {{ params.nested.list.0 }}",
        "{{ var.value.get('k') }} {{ var.json.get('k', 'd') }} {{ logical_date | ds_nodash }}",
        "{{- ds -}} {#- c -#} {{ ds }}",
        "{{ ds }}{{ ds }}",
        "",
    };
    for (size_t i = 0; i < GUST_ARRAY_LEN(good); i++) {
        const char *e = parse_error(good[i]);
        if (*e) fprintf(stderr, "\n  %s -> %s\n", good[i], e);
        CU_ASSERT_STRING_EQUAL(e, "");
    }
}

static void test_whitespace_control_trims_around_tags(void)
{
    ASSERT_STR_EQ(render("a  \n {{- ds -}} \n  b"), "a2024-01-31b");
    ASSERT_STR_EQ(render("a \n{#- c -#}\n b"), "ab");
    ASSERT_STR_EQ(render("a {{ ds }} b"), "a 2024-01-31 b");
}

static void test_trailing_newline_is_dropped_like_jinja(void)
{
    ASSERT_STR_EQ(render("echo {{ ds }}\n"), "echo 2024-01-31");
    ASSERT_STR_EQ(render("line1\r\nline2\n\n"), "line1\nline2\n");
}

static void test_extra_names_are_accepted_by_parse_ex(void)
{
    char err[128];
    const char *extra[] = {"region"};
    CU_ASSERT_PTR_NULL(template_parse("{{ region }}", err, sizeof err));
    Template *t = template_parse_ex("{{ region }}", extra, 1, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    char *s = template_render(t, &test_ctx, err, sizeof err);
    ASSERT_STR_EQ(s, "eu-west-1");
    free(s);
    template_free(t);
}

/* ---- parse errors ---- */

static void test_unclosed_expression_points_at_its_braces(void)
{
    ASSERT_STR_EQ(parse_error("echo {{ ds"),
                  "template error at column 6: unclosed '{{' (expected '}}' before the end of the template)");
    ASSERT_CONTAINS(parse_error("{{ ds }"), "unexpected character '}'");
}

static void test_unknown_name_suggests_the_closest_known_one(void)
{
    ASSERT_STR_EQ(parse_error("x {{ dss }}"),
                  "template error at column 6: unknown name 'dss' in template (did you mean 'ds'?)");
    ASSERT_STR_EQ(parse_error("{{ parms.x }}"),
                  "template error at column 4: unknown name 'parms' in template (did you mean 'params'?)");
    ASSERT_STR_EQ(parse_error("{{ zzzzzzzz }}"), "template error at column 4: unknown name 'zzzzzzzz' in template");
}

static void test_unknown_filter_names_the_closest_filter(void)
{
    ASSERT_STR_EQ(parse_error("{{ ds | uper }}"),
                  "template error at column 9: unknown filter 'uper' (did you mean 'upper'?)");
    ASSERT_CONTAINS(parse_error("{{ ds | frobnicate }}"), "unknown filter 'frobnicate' (known: default, upper");
    ASSERT_CONTAINS(parse_error("{{ ds | replace }}"), "filter 'replace' needs arguments");
    ASSERT_CONTAINS(parse_error("{{ ds | replace('a') }}"), "filter 'replace' is missing its argument 'new'");
    ASSERT_CONTAINS(parse_error("{{ ds | int(base=2, bogus=1) }}"), "unexpected keyword argument 'bogus'");
}

static void test_calling_anything_but_the_known_functions_is_rejected(void)
{
    const char *msg = "only ti.xcom_pull, macros.ds_add and macros.ds_format can be called";
    ASSERT_CONTAINS(parse_error("{{ params.x.upper() }}"), msg);
    ASSERT_CONTAINS(parse_error("{{ params.x.upper() }}"), "'params.x.upper' cannot be called");
    ASSERT_CONTAINS(parse_error("{{ add_days(ds, 1) }}"), "unknown function 'add_days'");
    ASSERT_CONTAINS(parse_error("{{ add_days(ds, 1) }}"), msg);
    ASSERT_CONTAINS(parse_error("{{ macros.datetime.now() }}"), "macros.datetime is not supported");
    ASSERT_CONTAINS(parse_error("{{ macros.ds_ad(ds, 1) }}"), "did you mean 'macros.ds_add'?");
    ASSERT_CONTAINS(parse_error("{{ macros.ds_add }}"), "macros.ds_add must be called");
    ASSERT_CONTAINS(parse_error("{{ macros }}"), "macros can only be used as macros.ds_add(...)");
    ASSERT_CONTAINS(parse_error("{{ ti.xcom_pull }}"), "ti.xcom_pull must be called");
}

static void test_call_arguments_are_checked(void)
{
    ASSERT_CONTAINS(parse_error("{{ ti.xcom_pull() }}"), "needs task_ids");
    ASSERT_CONTAINS(parse_error("{{ ti.xcom_pull('t', 'k') }}"), "dag_id is not supported");
    ASSERT_CONTAINS(parse_error("{{ ti.xcom_pull(task_ids='t', map_indexes=1) }}"), "map_indexes is not supported");
    ASSERT_CONTAINS(parse_error("{{ ti.xcom_pull(key='k', 't') }}"), "positional argument follows keyword argument");
    ASSERT_CONTAINS(parse_error("{{ ti.xcom_pull(task_ids='a', task_ids='b') }}"), "multiple values for argument");
    ASSERT_CONTAINS(parse_error("{{ macros.ds_add(ds) }}"), "macros.ds_add() is missing its argument 'days'");
    ASSERT_CONTAINS(parse_error("{{ macros.ds_format(ds, '%Y') }}"), "missing its argument 'output_format'");
    ASSERT_CONTAINS(parse_error("{{ macros.ds_add(ds, 1, 2) }}"), "takes at most 2 positional arguments");
}

static void test_statement_blocks_are_not_supported(void)
{
    ASSERT_STR_EQ(parse_error("a {% if x %}b{% endif %}"),
                  "template error at column 3: statement blocks {% %} are not supported");
    ASSERT_CONTAINS(parse_error("{%- for x in y -%}"), "statement blocks {% %} are not supported");
}

static void test_unterminated_string_is_an_error(void)
{
    ASSERT_STR_EQ(parse_error("{{ 'abc }}"), "template error at column 4: unterminated string");
    ASSERT_CONTAINS(parse_error("{{ \"abc\\\" }}"), "unterminated string");
    ASSERT_CONTAINS(parse_error("{{ 'a\\x4' }}"), "truncated \\x escape");
    ASSERT_CONTAINS(parse_error("{{ 'a\\x00' }}"), "NUL characters");
}

static void test_trailing_garbage_inside_an_expression_is_an_error(void)
{
    ASSERT_STR_EQ(parse_error("{{ ds ds }}"), "template error at column 7: expected '}}', got 'ds'");
    ASSERT_CONTAINS(parse_error("{{ ds if x else y }}"), "expected '}}', got 'if'");
    ASSERT_CONTAINS(parse_error("{{ ds $ }}"), "unexpected character '$'");
    ASSERT_CONTAINS(parse_error("{{ }}"), "empty expression");
    ASSERT_CONTAINS(parse_error("{{ params. }}"), "expected a name after '.'");
    ASSERT_CONTAINS(parse_error("{{ ds | }}"), "expected a filter name after '|'");
    ASSERT_CONTAINS(parse_error("{# never closed"), "unclosed comment");
}

static void test_errors_in_later_lines_give_line_and_column(void)
{
    ASSERT_STR_EQ(parse_error("set -e\necho {{ dss }}\n"),
                  "template error at line 2, column 9: unknown name 'dss' in template (did you mean 'ds'?)");
}

static void test_var_and_conn_need_a_key(void)
{
    ASSERT_CONTAINS(parse_error("{{ var }}"), "var must be used as var.value.KEY or var.json.KEY");
    ASSERT_CONTAINS(parse_error("{{ var.values.x }}"), "var must be used as var.value.KEY or var.json.KEY");
    ASSERT_CONTAINS(parse_error("{{ var.value }}"), "var.value needs a key");
    ASSERT_CONTAINS(parse_error("{{ conn }}"), "conn needs a connection id");
}

static void test_deep_nesting_and_huge_input_are_rejected_without_crashing(void)
{
    size_t n = 100000;
    char *s = xmalloc(n * 2 + 16);
    memcpy(s, "{{ ", 3);
    memset(s + 3, '(', n);
    strcpy(s + 3 + n, "1 }}");
    ASSERT_CONTAINS(parse_error(s), "nested too deeply");
    StrBuf chain = {0};
    sb_append(&chain, "{{ ds");
    for (int i = 0; i < 100; i++) sb_append(&chain, " | upper");
    sb_append(&chain, " }}");
    ASSERT_CONTAINS(parse_error(sb_str(&chain)), "nested too deeply");
    sb_free(&chain);
    free(s);

    char *big = xmalloc(TEMPLATE_MAX_INPUT + 2);
    memset(big, 'a', TEMPLATE_MAX_INPUT + 1);
    big[TEMPLATE_MAX_INPUT + 1] = '\0';
    ASSERT_CONTAINS(parse_error(big), "template is too long");
    free(big);
}

static void test_template_check_reports_errors(void)
{
    char err[128];
    CU_ASSERT_EQUAL(template_check("{{ ds }}", err, sizeof err), 0);
    CU_ASSERT_EQUAL(template_check("{{ ds", err, sizeof err), -1);
    ASSERT_CONTAINS(err, "unclosed '{{'");
}

/* ---- references ---- */

static void collect_ref(void *ud, const char *kind, const char *value)
{
    sb_printf(ud, "%s=%s;", kind, value);
}

static const char *refs(const char *text)
{
    static char out[1024];
    Template *t = template_parse(text, out, sizeof out);
    if (!t) return out;
    StrBuf b = {0};
    template_visit_refs(t, collect_ref, &b);
    util_strlcpy(out, sb_str(&b), sizeof out);
    sb_free(&b);
    template_free(t);
    return out;
}

static void test_visit_refs_finds_xcom_task_ids_from_both_call_forms(void)
{
    ASSERT_STR_EQ(refs("{{ ti.xcom_pull(task_ids='extract') }} {{ task_instance.xcom_pull('fetch', key='k') }}"),
                  "name=ti;xcom_task=extract;name=task_instance;xcom_task=fetch;");
    ASSERT_STR_EQ(refs("{{ ti.xcom_pull(task_ids=['a', 'b']) }}"), "name=ti;xcom_task=a;xcom_task=b;");
    ASSERT_STR_EQ(refs("{{ ti.xcom_pull(task_ids=params.t) }}"), "name=ti;name=params;param=t;");
}

static void test_visit_refs_reports_names_vars_conns_and_params(void)
{
    ASSERT_STR_EQ(refs("{{ ds }} {{ params.x | default(params['y']) }}"),
                  "name=ds;name=params;param=x;name=params;param=y;");
    ASSERT_STR_EQ(refs("{{ var.value.a }}{{ var.json['b'].c }}{{ var.value.get('d') }}"),
                  "name=var;var=a;name=var;var=b;name=var;var=d;");
    ASSERT_STR_EQ(refs("{{ conn.pg.host }}{{ macros.ds_add(ds, 1) }}"), "name=conn;conn=pg;name=macros;name=ds;");
}

/* ---- rendering ---- */

static void test_renders_context_variables_and_lookups(void)
{
    ASSERT_STR_EQ(render("{{ ds }} {{ dag.dag_id }} try {{ ti.try_number }}"), "2024-01-31 etl try 2");
    ASSERT_STR_EQ(render("{{ task_instance.task_id }} {{ dag_run.conf.region }} {{ dag_run.conf['region'] }}"),
                  "load eu eu");
    ASSERT_STR_EQ(render("{{ params.x }} {{ params['my-key'] }} {{ params.nested.list[1] }}"), "hello dash 2");
    ASSERT_STR_EQ(render("{{ params.nested.list.0 }}"), "1");
    ASSERT_STR_EQ(render("{{ params.nested.list[-1] }}"), "3");
}

static void test_values_print_like_python(void)
{
    ASSERT_STR_EQ(render("{{ params.flag }} {{ params.nothing }} {{ test_mode }}"), "True None False");
    ASSERT_STR_EQ(render("{{ params.n }} {{ params.ratio }} {{ 0.1 }} {{ 1e16 }} {{ 0.00001 }} {{ -7 }}"),
                  "5 2.5 0.1 1e+16 1e-05 -7");
    ASSERT_STR_EQ(render("{{ params.nested }}"), "{\"list\": [1, 2, 3], \"b\": 1, \"a\": \"<&>\"}");
    ASSERT_STR_EQ(render("{{ [1, 'two', none] }}"), "[1, \"two\", null]");
}

static void test_undefined_variable_is_an_error(void)
{
    ASSERT_STR_EQ(render("{{ params.missing }}"), "<error: undefined variable 'params.missing'>");
    ASSERT_STR_EQ(render("{{ params.missing.deeper }}"), "<error: undefined variable 'params.missing'>");
    ASSERT_STR_EQ(render("{{ params['nope'] | upper }}"), "<error: undefined variable 'params['nope']'>");
    ASSERT_STR_EQ(render("{{ ts }}"), "<error: undefined variable 'ts'>");
}

static void test_default_filter_applies_to_undefined_param(void)
{
    ASSERT_STR_EQ(render("{{ params.missing | default('fallback') }}"), "fallback");
    ASSERT_STR_EQ(render("{{ params.missing | d }}|"), "|");
    ASSERT_STR_EQ(render("{{ params.x | default('fallback') }}"), "hello");
    ASSERT_STR_EQ(render("{{ params.empty | default('fallback') }}|"), "|");
}

static void test_default_with_boolean_true_applies_to_falsy_values(void)
{
    ASSERT_STR_EQ(render("{{ params.empty | default('fallback', true) }}"), "fallback");
    ASSERT_STR_EQ(render("{{ params.nothing | default('fallback', boolean=true) }}"), "fallback");
    ASSERT_STR_EQ(render("{{ params.x | default('fallback', true) }}"), "hello");
}

static void test_string_filters_chain(void)
{
    ASSERT_STR_EQ(render("{{ params.x | upper }} {{ 'MiXed' | lower }} {{ 'hello world' | capitalize }}"),
                  "HELLO mixed Hello world");
    ASSERT_STR_EQ(render("{{ ds | replace('-', '/') }} {{ 'aaa' | replace('a', 'b', 2) }}"), "2024/01/31 bba");
    ASSERT_STR_EQ(render("{{ 'ab' | replace('', '-') }}"), "-a-b-");
    ASSERT_STR_EQ(render("{{ params.x | replace('l', 'L') | upper | lower }}"), "hello");
    ASSERT_STR_EQ(render("[{{ '  pad  ' | trim }}] {{ 5 | string ~ '!' }}"), "[pad] 5!");
    ASSERT_STR_EQ(render("{{ params.nested.list | join(',') }} {{ 'abc' | join('.') }} {{ params.x | length }}"),
                  "1,2,3 a.b.c 5");
    ASSERT_STR_EQ(render("{{ params.nested.list | first }}{{ params.nested.list | last }}{{ 'xyz' | last }}"), "13z");
    ASSERT_STR_EQ(render("{{ logical_date | ds }} {{ logical_date | ds_nodash }}"), "2024-01-31 20240131");
}

static void test_int_and_float_filters_convert_like_jinja(void)
{
    ASSERT_STR_EQ(render("{{ '42' | int + 1 }} {{ ' 7 ' | int }} {{ '3.9' | int }} {{ 'x' | int }} {{ 'x' | int(9) }}"),
                  "43 7 3 0 9");
    ASSERT_STR_EQ(render("{{ params.ratio | int }} {{ 'ff' | int(base=16) }} {{ '1_000' | int }} {{ none | int }}"),
                  "2 255 1000 0");
    ASSERT_STR_EQ(render("{{ '2.5' | float }} {{ 'nope' | float }} {{ 'inf' | float }}"), "2.5 0 inf");
    ASSERT_STR_EQ(render("{{ 'inf' | int }}"), "<error: filter 'int': cannot convert float infinity to integer>");
}

static void test_tojson_matches_jinja_output(void)
{
    ASSERT_STR_EQ(render("{{ params.nested | tojson }}"),
                  "{\"a\": \"\\u003c\\u0026\\u003e\", \"b\": 1, \"list\": [1, 2, 3]}");
    ASSERT_STR_EQ(render("{{ \"it's\" | tojson }} {{ none | tojson }} {{ 'é' | tojson }}"),
                  "\"it\\u0027s\" null \"\\u00e9\"");
    ASSERT_STR_EQ(render("{{ params.missing | tojson }}"), "<error: undefined variable 'params.missing'>");
}

static void test_string_literal_escapes_are_decoded(void)
{
    ASSERT_STR_EQ(render("{{ 'a\\tb\\\\c\\'d\\x41\\u00e9\\101' }}"), "a\tb\\c'dAéA");
    ASSERT_STR_EQ(render("{{ 'keep \\q' }}"), "keep \\q");
    ASSERT_STR_EQ(render("{{ '}}' }}"), "}}");
}

static void test_var_value_and_var_json(void)
{
    ASSERT_STR_EQ(render("{{ var.value.greeting }} {{ var.value['my-var'] }}"), "hi dashed");
    ASSERT_STR_EQ(render("{{ var.json.cfg.a.b }} {{ var.json.cfg.list[1] }} {{ var.json['cfg'].a }}"),
                  "42 y {\"b\": 42}");
    ASSERT_STR_EQ(render("{{ var.value.nope }}"), "<error: var 'nope' not found>");
    ASSERT_STR_EQ(render("{{ var.json.bad_json.x }}"), "<error: var 'bad_json' is not valid JSON>");
    ASSERT_STR_EQ(render("{{ var.value.get('nope', 'dflt') }} {{ var.value.get('greeting') }}"), "dflt hi");
    ASSERT_STR_EQ(render("{{ var.json.get('cfg').a.b }} {{ var.json.get('nope', 3) }}"), "42 3");
    ASSERT_STR_EQ(render("{{ var.value.get('nope') }}"), "<error: var 'nope' not found>");
}

static void test_conn_fields_render(void)
{
    ASSERT_STR_EQ(render("{{ conn.pg.host }}:{{ conn.pg.port }} {{ conn['pg'].extra.sslmode }}"),
                  "db.local:5432 require");
    ASSERT_STR_EQ(render("{{ conn.nope.host }}"), "<error: conn 'nope' not found>");
    ASSERT_STR_EQ(render("{{ conn.pg.password }}"), "<error: undefined variable 'conn['pg'].password'>");
}

static void test_xcom_pull_renders_values_keys_and_defaults(void)
{
    ASSERT_STR_EQ(render("{{ ti.xcom_pull(task_ids='extract') }}"), "{\"rows\": 10}");
    ASSERT_STR_EQ(render("{{ ti.xcom_pull('extract').rows }} {{ ti.xcom_pull('extract', key='count') }}"), "10 7");
    ASSERT_STR_EQ(render("{{ task_instance.xcom_pull(task_ids='fetch') }}"), "news");
    ASSERT_STR_EQ(render("{{ ti.xcom_pull(task_ids='missing') }}"), "None");
    ASSERT_STR_EQ(render("{{ ti.xcom_pull(task_ids='missing', default='d') }}"), "d");
    ASSERT_STR_EQ(render("{{ ti.xcom_pull(task_ids=['fetch', 'missing', 'extract']) }}"),
                  "[\"news\", {\"rows\": 10}]");
    ASSERT_STR_EQ(render("{{ ti.xcom_pull(task_ids=5) }}"),
                  "<error: xcom_pull task_ids must be a string or a list of strings, not int>");
}

static void test_ds_add_crosses_month_year_and_leap_day_boundaries(void)
{
    ASSERT_STR_EQ(render("{{ macros.ds_add('2024-01-31', 1) }}"), "2024-02-01");
    ASSERT_STR_EQ(render("{{ macros.ds_add('2023-12-31', 1) }}"), "2024-01-01");
    ASSERT_STR_EQ(render("{{ macros.ds_add('2024-02-28', 1) }}"), "2024-02-29");
    ASSERT_STR_EQ(render("{{ macros.ds_add('2023-02-28', 1) }}"), "2023-03-01");
    ASSERT_STR_EQ(render("{{ macros.ds_add('2024-03-01', -1) }}"), "2024-02-29");
    ASSERT_STR_EQ(render("{{ macros.ds_add('1900-02-28', 1) }} {{ macros.ds_add('2000-02-28', 1) }}"),
                  "1900-03-01 2000-02-29");
    ASSERT_STR_EQ(render("{{ macros.ds_add(ds, 5) }} {{ macros.ds_add(ds, -365) }} {{ macros.ds_add(ds, 0) }}"),
                  "2024-02-05 2023-01-31 2024-01-31");
    ASSERT_STR_EQ(render("{{ macros.ds_add('2024-1-5', 1) }} {{ macros.ds_add(days=1, ds='2024-01-01') }}"),
                  "2024-01-06 2024-01-02");
}

static void test_ds_add_rejects_bad_dates(void)
{
    ASSERT_STR_EQ(render("{{ macros.ds_add('2024-02-30', 1) }}"),
                  "<error: macros.ds_add: day is out of range for month in '2024-02-30'>");
    ASSERT_STR_EQ(render("{{ macros.ds_add('31/01/2024', 1) }}"),
                  "<error: macros.ds_add: time data '31/01/2024' does not match format '%Y-%m-%d'>");
    ASSERT_STR_EQ(render("{{ macros.ds_add('9999-12-31', 1) }}"), "<error: macros.ds_add: date value out of range>");
    ASSERT_STR_EQ(render("{{ macros.ds_add(ds, 'x') }}"), "<error: macros.ds_add: days must be a number, not str>");
}

static void test_ds_format_converts_between_formats(void)
{
    ASSERT_STR_EQ(render("{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }}"), "31/01/2024");
    ASSERT_STR_EQ(render("{{ macros.ds_format('20240131', '%Y%m%d', '%Y-%m-%d') }}"), "2024-01-31");
    ASSERT_STR_EQ(render("{{ macros.ds_format(ds, '%Y-%m-%d', '%A %j %b') }}"), "Wednesday 031 Jan");
    ASSERT_STR_EQ(render("{{ macros.ds_format(ds, '%Y-%m-%d', '') }}|"), "|");
    ASSERT_STR_EQ(render("{{ macros.ds_format(ds, '%d/%m/%Y', '%Y') }}"),
                  "<error: macros.ds_format: time data '2024-01-31' does not match format '%d/%m/%Y'>");
}

static void test_concat_and_arithmetic(void)
{
    ASSERT_STR_EQ(render("{{ 'run-' ~ ds ~ '-' ~ ti.try_number }}"), "run-2024-01-31-2");
    ASSERT_STR_EQ(render("{{ params.n + 1 }} {{ params.n - 10 }} {{ -params.n }} {{ 'a' + 'b' }} {{ [1] + [2] }}"),
                  "6 -5 -5 ab [1, 2]");
    ASSERT_STR_EQ(render("{{ (ti.try_number - 1) | string }}"), "1");
    ASSERT_STR_EQ(render("{{ 'a' + 1 }}"), "<error: unsupported operand type(s) for +: 'str' and 'int'>");
    ASSERT_STR_EQ(render("{{ 'a' ~ params.missing }}"), "<error: undefined variable 'params.missing'>");
}

static void test_dict_get_reads_conf_and_params_with_defaults(void)
{
    ASSERT_STR_EQ(render("{{ dag_run.conf.get('region') }} {{ dag_run.conf.get('zone', 'z1') }}"), "eu z1");
    ASSERT_STR_EQ(render("{{ params.get('x') }} {{ params.get('missing') }} {{ params.nested.get('list')[0] }}"),
                  "hello None 1");
    ASSERT_STR_EQ(render("{{ ds.get('x') }}"), "<error: 'str' object has no attribute 'get'>");
    ASSERT_STR_EQ(refs("{{ params.get('k', 1) }}"), "name=params;param=k;");
    ASSERT_CONTAINS(parse_error("{{ params.get() }}"), "dict.get() is missing its argument 'key'");
}

static void test_context_is_asked_once_per_question(void)
{
    memset(&counts, 0, sizeof counts);
    render("{{ params.x }}{{ params.n }}{{ var.value.greeting }}{{ var.value.greeting }}"
           "{{ ti.xcom_pull('extract') }}{{ ti.xcom_pull(task_ids='extract').rows }}"
           "{{ conn.pg.host }}{{ conn.pg.port }}");
    CU_ASSERT_EQUAL(counts.lookups, 1);
    CU_ASSERT_EQUAL(counts.var_gets, 1);
    CU_ASSERT_EQUAL(counts.xcom_pulls, 1);
    CU_ASSERT_EQUAL(counts.conn_gets, 1);
}

static void test_render_without_context_treats_everything_as_undefined(void)
{
    char err[128];
    char *s = template_render_text("{{ ds | default('none') }} {{ ti.xcom_pull('a') }}", NULL, err, sizeof err);
    ASSERT_STR_EQ(s, "none None");
    free(s);
    CU_ASSERT_PTR_NULL(template_render_text("{{ var.value.x }}", NULL, err, sizeof err));
    ASSERT_STR_EQ(err, "var 'x' not found");
}

static void test_runaway_output_is_an_error_not_a_crash(void)
{
    StrBuf b = {0};
    sb_append(&b, "{{ 'aaaaaaaaaaaaaaaa'");
    for (int i = 0; i < 10; i++) sb_append(&b, " | replace('a', 'aaaaaaaaaa')");
    sb_append(&b, " }}");
    ASSERT_CONTAINS(render(sb_str(&b)), "too large");
    sb_free(&b);
}

static const UnitTest tests[] = {
    UNIT(test_plain_text_is_static_and_renders_unchanged),
    UNIT(test_comments_are_dropped_and_static),
    UNIT(test_expressions_make_a_template_dynamic),
    UNIT(test_every_supported_construct_parses),
    UNIT(test_whitespace_control_trims_around_tags),
    UNIT(test_trailing_newline_is_dropped_like_jinja),
    UNIT(test_extra_names_are_accepted_by_parse_ex),
    UNIT(test_unclosed_expression_points_at_its_braces),
    UNIT(test_unknown_name_suggests_the_closest_known_one),
    UNIT(test_unknown_filter_names_the_closest_filter),
    UNIT(test_calling_anything_but_the_known_functions_is_rejected),
    UNIT(test_call_arguments_are_checked),
    UNIT(test_statement_blocks_are_not_supported),
    UNIT(test_unterminated_string_is_an_error),
    UNIT(test_trailing_garbage_inside_an_expression_is_an_error),
    UNIT(test_errors_in_later_lines_give_line_and_column),
    UNIT(test_var_and_conn_need_a_key),
    UNIT(test_deep_nesting_and_huge_input_are_rejected_without_crashing),
    UNIT(test_template_check_reports_errors),
    UNIT(test_visit_refs_finds_xcom_task_ids_from_both_call_forms),
    UNIT(test_visit_refs_reports_names_vars_conns_and_params),
    UNIT(test_renders_context_variables_and_lookups),
    UNIT(test_values_print_like_python),
    UNIT(test_undefined_variable_is_an_error),
    UNIT(test_default_filter_applies_to_undefined_param),
    UNIT(test_default_with_boolean_true_applies_to_falsy_values),
    UNIT(test_string_filters_chain),
    UNIT(test_int_and_float_filters_convert_like_jinja),
    UNIT(test_tojson_matches_jinja_output),
    UNIT(test_string_literal_escapes_are_decoded),
    UNIT(test_var_value_and_var_json),
    UNIT(test_conn_fields_render),
    UNIT(test_xcom_pull_renders_values_keys_and_defaults),
    UNIT(test_ds_add_crosses_month_year_and_leap_day_boundaries),
    UNIT(test_ds_add_rejects_bad_dates),
    UNIT(test_ds_format_converts_between_formats),
    UNIT(test_concat_and_arithmetic),
    UNIT(test_dict_get_reads_conf_and_params_with_defaults),
    UNIT(test_context_is_asked_once_per_question),
    UNIT(test_render_without_context_treats_everything_as_undefined),
    UNIT(test_runaway_output_is_an_error_not_a_crash),
    {0},
};

UNIT_MAIN("template", tests)
