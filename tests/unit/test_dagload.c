/* Loading DAG files: the dag-factory dialect, defaults, task groups, and every error a
 * person can get, each with its line. */
#include <cjson/cJSON.h>

#include "core/dagbag.h"
#include "core/util.h"
#include "unit.h"

/* Load YAML (or JSON when name ends in .json) from a string into a fresh bag. */
static DagBag load(const char *name, const char *text)
{
    DagBag b;
    dagbag_init(&b);
    DagLoadOptions opt = {.root = "tests/fixtures", .default_timezone = "UTC", .now_us = 1767225600000000LL};
    dagbag_load_text(&b, name, text, strlen(text), &opt);
    return b;
}

/* The first error's "LINE: DAG_ID: message", for compact assertions. */
static const Diag *first_error(const DagBag *b)
{
    for (size_t i = 0; i < b->diags.len; i++)
        if (!b->diags.items[i].warning) return &b->diags.items[i];
    return NULL;
}

static void dump(const DagBag *b)
{
    for (size_t i = 0; i < b->diags.len; i++)
        fprintf(stderr, "\n    %s:%d: %s: %s", b->diags.items[i].file, b->diags.items[i].line,
                b->diags.items[i].dag_id ? b->diags.items[i].dag_id : "-", b->diags.items[i].message);
}

#define EXPECT_ERROR(bag, want_line, want_text)                          \
    do {                                                                 \
        const Diag *d_ = first_error(&(bag));                            \
        CU_ASSERT_PTR_NOT_NULL_FATAL(d_);                                \
        if (d_->line != (want_line)) dump(&(bag));                       \
        CU_ASSERT_EQUAL(d_->line, want_line);                            \
        ASSERT_CONTAINS(d_->message, want_text);                         \
    } while (0)

static const char BASIC[] =
    "etl:\n"                                 /* 1 */
    "  schedule: '0 3 * * *'\n"              /* 2 */
    "  start_date: 2024-01-01\n"             /* 3 */
    "  tasks:\n"                             /* 4 */
    "    - task_id: extract\n"               /* 5 */
    "      operator: bash\n"                 /* 6 */
    "      bash_command: echo e\n"           /* 7 */
    "    - task_id: load\n"                  /* 8 */
    "      operator: airflow.operators.bash.BashOperator\n"
    "      bash_command: echo l\n"
    "      dependencies: [extract]\n";

static void test_loads_a_basic_dag_with_alias_and_dependency(void)
{
    DagBag b = load("basic.yml", BASIC);
    CU_ASSERT_EQUAL_FATAL(b.n_dags, 1);
    CU_ASSERT_EQUAL(diag_count_errors(&b.diags), 0);
    Dag *d = b.dags[0];
    ASSERT_STR_EQ(d->dag_id, "etl");
    CU_ASSERT_EQUAL(d->schedule.kind, SCHEDULE_CRON);
    CU_ASSERT_EQUAL(d->start_date_us, 1704067200000000LL); /* 2024-01-01T00:00:00Z */
    CU_ASSERT_EQUAL_FATAL(d->n_tasks, 2);
    DagTask *l = dag_find_task(d, "load");
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    ASSERT_STR_EQ(l->op->name, "bash");
    CU_ASSERT_EQUAL_FATAL(l->n_upstream, 1);
    ASSERT_STR_EQ(l->upstream[0], "extract");
    ASSERT_STR_EQ(cJSON_GetObjectItem(l->args, "bash_command")->valuestring, "echo l");
    CU_ASSERT_EQUAL(l->line, 8);
    dagbag_free(&b);
}

static void test_json_dag_loads_and_errors_carry_json_lines(void)
{
    const char *ok = "{\n"
                     "  \"j\": {\n"
                     "    \"tasks\": [\n"
                     "      {\"task_id\": \"a\", \"operator\": \"empty\"},\n"
                     "      {\"task_id\": \"b\", \"operator\": \"bash\", \"bash_command\": \"echo\",\n"
                     "       \"dependencies\": [\"a\"]}\n"
                     "    ]\n"
                     "  }\n"
                     "}\n";
    DagBag b = load("x.json", ok);
    CU_ASSERT_EQUAL(b.n_dags, 1);
    CU_ASSERT_EQUAL(dag_find_task(b.dags[0], "b")->line, 5);
    dagbag_free(&b);

    const char *bad = "{\n  \"j\": {\n    \"tasks\": [\n      {\"task_id\": \"a\", \"operator\": \"bsh\"}\n    ]\n  }\n}\n";
    b = load("x.json", bad);
    EXPECT_ERROR(b, 4, "unknown operator 'bsh' (did you mean 'bash'?)");
    dagbag_free(&b);
}

static void test_yaml_syntax_error_names_the_line(void)
{
    DagBag b = load("bad.yml", "a:\n  b: 1\n  c: [1, 2\nd: 3\n");
    const Diag *d = first_error(&b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_PTR_NULL(d->dag_id);
    CU_ASSERT(d->line >= 3);
    ASSERT_CONTAINS(d->message, "YAML syntax error");
    dagbag_free(&b);
}

static void test_json_syntax_error_names_the_line(void)
{
    DagBag b = load("bad.json", "{\n  \"a\": {\n    \"tasks\": [,]\n  }\n}\n");
    EXPECT_ERROR(b, 3, "JSON syntax error");
    dagbag_free(&b);
}

static void test_duplicate_yaml_key_is_an_error(void)
{
    DagBag b = load("dup.yml", "a:\n  description: x\n  description: y\n");
    EXPECT_ERROR(b, 3, "duplicate key 'description' (first at line 2)");
    dagbag_free(&b);
}

static void test_unknown_operator_class_is_reported_as_python(void)
{
    DagBag b = load("x.yml", "a:\n  tasks:\n    - task_id: t\n      operator: customized.operators.Bread\n");
    EXPECT_ERROR(b, 4, "is a Python class, which gust does not run");
    dagbag_free(&b);
}

static void test_python_operator_and_callable_need_python(void)
{
    DagBag b = load("x.yml", "a:\n  tasks:\n    - task_id: t\n"
                             "      operator: airflow.operators.python.PythonOperator\n");
    EXPECT_ERROR(b, 4, "operator 'airflow.operators.python.PythonOperator' needs Python, which gust does not run; "
                       "use bash or a plugin");
    dagbag_free(&b);
    /* with a callable, the callable is what is reported, alone: the rest would be noise */
    b = load("x.yml", "a:\n  tasks:\n    - task_id: t\n"
                      "      operator: airflow.operators.python.PythonOperator\n"
                      "      python_callable: mod.fn\n");
    EXPECT_ERROR(b, 5, "'python_callable' is Python code, which gust does not run");
    CU_ASSERT_EQUAL(diag_count_errors(&b.diags), 1);
    CU_ASSERT_EQUAL(b.n_dags, 0);
    dagbag_free(&b);
}

static void test_callbacks_decorators_and_python_objects_need_python(void)
{
    DagBag b = load("x.yml", "a:\n  on_failure_callback: m.f\n  tasks:\n    - task_id: t\n      operator: empty\n");
    EXPECT_ERROR(b, 2, "'on_failure_callback' is a Python callback");
    dagbag_free(&b);
    b = load("x.yml", "a:\n  tasks:\n    - task_id: t\n      decorator: airflow.decorators.task\n");
    EXPECT_ERROR(b, 4, "'decorator' is Python code");
    dagbag_free(&b);
    b = load("x.yml", "a:\n  tasks:\n    - task_id: t\n      operator: bash\n      bash_command: x\n"
                      "      executor_config:\n        __type__: kubernetes.client.models.V1Pod\n");
    EXPECT_ERROR(b, 7, "'__type__: kubernetes.client.models.V1Pod' is a Python object");
    dagbag_free(&b);
}

static void test_cycle_names_the_tasks_in_it(void)
{
    DagBag b = load("x.yml", "a:\n  tasks:\n"
                             "    - {task_id: x, operator: empty, dependencies: [z]}\n"
                             "    - {task_id: y, operator: empty, dependencies: [x]}\n"
                             "    - {task_id: z, operator: empty, dependencies: [y]}\n"
                             "    - {task_id: ok, operator: empty}\n");
    const Diag *d = first_error(&b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    ASSERT_CONTAINS(d->message, "dependency cycle:");
    ASSERT_CONTAINS(d->message, "x");
    ASSERT_CONTAINS(d->message, "y");
    ASSERT_CONTAINS(d->message, "z");
    CU_ASSERT(strstr(d->message, "ok") == NULL);
    CU_ASSERT_EQUAL(b.n_dags, 0);
    dagbag_free(&b);
}

static void test_self_dependency_is_a_cycle(void)
{
    DagBag b = load("x.yml", "a:\n  tasks:\n    - {task_id: x, operator: empty, dependencies: [x]}\n");
    EXPECT_ERROR(b, 3, "dependency cycle: x -> x");
    dagbag_free(&b);
}

static void test_unknown_dependency_is_named_with_a_suggestion(void)
{
    DagBag b = load("x.yml", "a:\n  tasks:\n    - {task_id: extract, operator: empty}\n"
                             "    - task_id: load\n      operator: empty\n      dependencies: [extrct]\n");
    EXPECT_ERROR(b, 6, "'load' depends on unknown task or group 'extrct' (did you mean 'extract'?)");
    dagbag_free(&b);
}

static void test_duplicate_task_ids_are_an_error(void)
{
    DagBag b = load("x.yml", "a:\n  tasks:\n    - {task_id: t, operator: empty}\n    - {task_id: t, operator: empty}\n");
    EXPECT_ERROR(b, 4, "duplicate task_id 't' (first at line 3)");
    dagbag_free(&b);
}

static void test_invalid_cron_says_which_field(void)
{
    DagBag b = load("x.yml", "a:\n  start_date: 2024-01-01\n  schedule: '0 25 * * *'\n  tasks:\n"
                             "    - {task_id: t, operator: empty}\n");
    EXPECT_ERROR(b, 3, "hour");
    dagbag_free(&b);
}

static void test_unknown_timezone_is_an_error(void)
{
    DagBag b = load("x.yml", "a:\n  timezone: Mars/Olympus\n  tasks:\n    - {task_id: t, operator: empty}\n");
    EXPECT_ERROR(b, 2, "Mars/Olympus");
    dagbag_free(&b);
}

static void test_unknown_trigger_rule_suggests_one(void)
{
    DagBag b = load("x.yml", "a:\n  tasks:\n    - task_id: t\n      operator: empty\n      trigger_rule: all_sucess\n");
    EXPECT_ERROR(b, 5, "unknown trigger rule 'all_sucess' (did you mean 'all_success'?)");
    dagbag_free(&b);
}

static void test_bad_duration_is_an_error(void)
{
    DagBag b = load("x.yml", "a:\n  tasks:\n    - task_id: t\n      operator: empty\n      retry_delay: 5 parsecs\n");
    EXPECT_ERROR(b, 5, "unknown unit 'parsecs'");
    dagbag_free(&b);
    b = load("x.yml", "a:\n  tasks:\n    - task_id: t\n      operator: external_task_sensor\n"
                      "      external_dag_id: x\n      execution_delta: 1 days,\n");
    EXPECT_ERROR(b, 6, "invalid duration '1 days,'");
    dagbag_free(&b);
}

static void test_unknown_field_suggests_the_closest(void)
{
    DagBag b = load("x.yml", "a:\n  tasks:\n    - task_id: t\n      operator: bash\n      bash_comand: echo\n");
    /* both the misspelling and the missing required field are reported */
    int saw_unknown = 0, saw_missing = 0;
    for (size_t i = 0; i < b.diags.len; i++) {
        const Diag *d = &b.diags.items[i];
        if (d->line == 5 && strstr(d->message, "unknown field 'bash_comand' for operator bash (did you mean 'bash_command'?)"))
            saw_unknown = 1;
        if (strstr(d->message, "needs 'bash_command'")) saw_missing = 1;
    }
    CU_ASSERT(saw_unknown);
    CU_ASSERT(saw_missing);
    dagbag_free(&b);
    b = load("x.yml", "a:\n  schedul: '@daily'\n  tasks: []\n");
    EXPECT_ERROR(b, 2, "unknown DAG field 'schedul' (did you mean 'schedule'?)");
    dagbag_free(&b);
}

static void test_a_bad_dag_does_not_hide_the_good_ones(void)
{
    DagBag b = load("x.yml", "good1:\n  tasks:\n    - {task_id: t, operator: empty}\n"
                             "bad:\n  tasks:\n    - {task_id: t, operator: nope}\n"
                             "good2:\n  tasks:\n    - {task_id: t, operator: empty}\n");
    CU_ASSERT_EQUAL(b.n_dags, 2);
    CU_ASSERT_PTR_NOT_NULL(dagbag_find(&b, "good1"));
    CU_ASSERT_PTR_NOT_NULL(dagbag_find(&b, "good2"));
    CU_ASSERT_PTR_NULL(dagbag_find(&b, "bad"));
    ASSERT_STR_EQ(first_error(&b)->dag_id, "bad");
    dagbag_free(&b);
}

static void test_string_that_looks_boolean_is_rejected_with_hint(void)
{
    DagBag b = load("x.yml", "a:\n  catchup: 'false'\n  tasks: []\n");
    EXPECT_ERROR(b, 2, "got the string \"false\" (remove the quotes)");
    dagbag_free(&b);
}

static void test_template_syntax_error_is_an_import_error(void)
{
    DagBag b = load("x.yml", "a:\n  tasks:\n    - task_id: t\n      operator: bash\n      bash_command: \"echo {{ ds \"\n");
    EXPECT_ERROR(b, 5, "task 't': bash_command:");
    dagbag_free(&b);
    b = load("x.yml", "a:\n  tasks:\n    - task_id: t\n      operator: bash\n      bash_command: \"echo {{ dss }}\"\n");
    EXPECT_ERROR(b, 5, "dss");
    dagbag_free(&b);
}

static void test_tasks_as_list_and_as_mapping_load_the_same(void)
{
    DagBag a = load("x.yml", "d:\n  tasks:\n    - {task_id: one, operator: empty}\n"
                             "    - {task_id: two, operator: empty, dependencies: [one]}\n");
    DagBag b = load("x.yml", "d:\n  tasks:\n    one: {operator: empty}\n    two: {operator: empty, dependencies: [one]}\n");
    CU_ASSERT_EQUAL_FATAL(a.n_dags, 1);
    CU_ASSERT_EQUAL_FATAL(b.n_dags, 1);
    cJSON *ja = dag_to_json(a.dags[0]), *jb = dag_to_json(b.dags[0]);
    /* same tasks, same edges (lines differ, so compare the task ids and upstreams) */
    for (size_t i = 0; i < 2; i++) {
        ASSERT_STR_EQ(a.dags[0]->tasks[i]->task_id, b.dags[0]->tasks[i]->task_id);
        CU_ASSERT_EQUAL(a.dags[0]->tasks[i]->n_upstream, b.dags[0]->tasks[i]->n_upstream);
    }
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    dagbag_free(&a);
    dagbag_free(&b);
}

static void test_task_groups_prefix_ids_and_expand_dependencies(void)
{
    DagBag b = load("x.yml", "d:\n"
                             "  task_groups:\n"
                             "    - group_name: g\n      dependencies: [start]\n"
                             "    - group_name: inner\n      parent_group_name: g\n"
                             "  tasks:\n"
                             "    - {task_id: start, operator: empty}\n"
                             "    - {task_id: a, operator: empty, task_group_name: g}\n"
                             "    - {task_id: b, operator: empty, task_group_name: g, dependencies: [a]}\n"
                             "    - {task_id: c, operator: empty, task_group_name: inner}\n"
                             "    - {task_id: end, operator: empty, dependencies: [g]}\n");
    if (b.n_dags != 1) dump(&b);
    CU_ASSERT_EQUAL_FATAL(b.n_dags, 1);
    Dag *d = b.dags[0];
    CU_ASSERT_PTR_NOT_NULL(dag_find_task(d, "g.a"));
    CU_ASSERT_PTR_NOT_NULL(dag_find_task(d, "g.inner.c"));
    /* the group depends on start: its roots (a and c) get start upstream, b does not */
    CU_ASSERT_EQUAL(dag_find_task(d, "g.a")->n_upstream, 1);
    CU_ASSERT_EQUAL(dag_find_task(d, "g.inner.c")->n_upstream, 1);
    DagTask *bt = dag_find_task(d, "g.b");
    CU_ASSERT_EQUAL_FATAL(bt->n_upstream, 1);
    ASSERT_STR_EQ(bt->upstream[0], "g.a");
    /* end depends on the group's leaves: b and c, not a */
    DagTask *end = dag_find_task(d, "end");
    CU_ASSERT_EQUAL_FATAL(end->n_upstream, 2);
    ASSERT_STR_EQ(end->upstream[0], "g.b");
    ASSERT_STR_EQ(end->upstream[1], "g.inner.c");
    dagbag_free(&b);
}

static void test_group_default_args_apply_to_members_only(void)
{
    DagBag b = load("x.yml", "d:\n  default_args: {retries: 1}\n"
                             "  task_groups:\n    - group_name: g\n      default_args: {retries: 5}\n"
                             "  tasks:\n    - {task_id: in, operator: empty, task_group_name: g}\n"
                             "    - {task_id: out, operator: empty}\n"
                             "    - {task_id: own, operator: empty, task_group_name: g, retries: 7}\n");
    CU_ASSERT_EQUAL_FATAL(b.n_dags, 1);
    CU_ASSERT_EQUAL(dag_find_task(b.dags[0], "g.in")->retries, 5);
    CU_ASSERT_EQUAL(dag_find_task(b.dags[0], "out")->retries, 1);
    CU_ASSERT_EQUAL(dag_find_task(b.dags[0], "g.own")->retries, 7);
    dagbag_free(&b);
}

static void test_default_block_tasks_merge_by_task_id(void)
{
    DagBag b = load("x.yml", "default:\n  tasks:\n"
                             "    - {task_id: extract, operator: bash, bash_command: echo e}\n"
                             "    - {task_id: load, operator: bash, dependencies: [extract]}\n"
                             "ml:\n  tasks:\n    - {task_id: load, bash_command: echo ml}\n");
    if (b.n_dags != 1) dump(&b);
    CU_ASSERT_EQUAL_FATAL(b.n_dags, 1);
    DagTask *l = dag_find_task(b.dags[0], "load");
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    ASSERT_STR_EQ(cJSON_GetObjectItem(l->args, "bash_command")->valuestring, "echo ml");
    CU_ASSERT_EQUAL(l->n_upstream, 1);
    CU_ASSERT_PTR_NOT_NULL(dag_find_task(b.dags[0], "extract"));
    dagbag_free(&b);
}

static void test_defaults_cascade_nearer_wins(void)
{
    DagBag b;
    dagbag_init(&b);
    DagLoadOptions opt = {.root = "tests/fixtures/cascade", .default_timezone = "UTC"};
    dagbag_load_path(&b, "tests/fixtures/cascade", &opt);
    if (diag_count_errors(&b.diags)) dump(&b);
    CU_ASSERT_EQUAL(diag_count_errors(&b.diags), 0);
    Dag *c = dagbag_find(&b, "from_cascade"), *o = dagbag_find(&b, "own_wins"), *p = dagbag_find(&b, "team_plain");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    /* file default (3) beats team/defaults.yml (2) beats the root's (1); owner from team/ */
    CU_ASSERT_EQUAL(c->tasks[0]->retries, 3);
    ASSERT_STR_EQ(c->tasks[0]->owner, "team_owner");
    ASSERT_STR_EQ(c->schedule_text, "@daily");             /* from the root defaults.yml */
    CU_ASSERT_EQUAL(c->start_date_us, 1704067200000000LL); /* root's start_date */
    /* the DAG's own values beat every default */
    CU_ASSERT_EQUAL(o->tasks[0]->retries, 4);
    ASSERT_STR_EQ(o->tasks[0]->owner, "me");
    ASSERT_STR_EQ(o->schedule_text, "0 5 * * *");
    CU_ASSERT_EQUAL(p->tasks[0]->retries, 2);
    dagbag_free(&b);
}

static void test_durations_in_every_spelling(void)
{
    DagBag b = load("x.yml", "d:\n  dagrun_timeout: 1h30m\n  tasks:\n"
                             "    - task_id: t\n      operator: empty\n      retry_delay: 90\n"
                             "      max_retry_delay: '2 days'\n"
                             "      execution_timeout: {__type__: datetime.timedelta, hours: 1, minutes: 2}\n");
    CU_ASSERT_EQUAL_FATAL(b.n_dags, 1);
    Dag *d = b.dags[0];
    CU_ASSERT_EQUAL(d->dagrun_timeout_us, 5400LL * 1000000);
    CU_ASSERT_EQUAL(d->tasks[0]->retry_delay_us, 90LL * 1000000);
    CU_ASSERT_EQUAL(d->tasks[0]->max_retry_delay_us, 2LL * 86400 * 1000000);
    CU_ASSERT_EQUAL(d->tasks[0]->execution_timeout_us, 3720LL * 1000000);
    dagbag_free(&b);
}

static void test_relative_start_date_counts_back_from_midnight(void)
{
    /* now = 2026-01-01T00:00:00Z in the options; "2 days" = 2025-12-30T00:00:00Z */
    DagBag b = load("x.yml", "d:\n  default_args: {start_date: 2 days}\n  tasks: [{task_id: t, operator: empty}]\n");
    CU_ASSERT_EQUAL_FATAL(b.n_dags, 1);
    CU_ASSERT_EQUAL(b.dags[0]->start_date_us, 1767052800000000LL);
    dagbag_free(&b);
}

static void test_naive_start_date_is_read_in_the_dag_timezone(void)
{
    DagBag b = load("x.yml", "d:\n  timezone: America/New_York\n  start_date: 2024-07-01T09:00:00\n"
                             "  tasks: [{task_id: t, operator: empty}]\n");
    CU_ASSERT_EQUAL_FATAL(b.n_dags, 1);
    CU_ASSERT_EQUAL(b.dags[0]->start_date_us, 1719838800000000LL); /* 13:00Z (EDT, UTC-4) */
    dagbag_free(&b);
}

static void test_dataset_schedules_list_and_condition(void)
{
    DagBag b = load("x.yml", "c1:\n  schedule: ['s3://a', 's3://b']\n  tasks: [{task_id: t, operator: empty}]\n"
                             "c2:\n  schedule:\n    datasets: '((s3://a & s3://b) | s3://c)'\n"
                             "  tasks: [{task_id: t, operator: empty}]\n");
    if (b.n_dags != 2) dump(&b);
    CU_ASSERT_EQUAL_FATAL(b.n_dags, 2);
    CU_ASSERT_EQUAL(b.dags[0]->schedule.kind, SCHEDULE_ASSETS);
    char *s1 = cJSON_PrintUnformatted(b.dags[0]->assets), *s2 = cJSON_PrintUnformatted(b.dags[1]->assets);
    ASSERT_STR_EQ(s1, "{\"all\":[\"s3://a\",\"s3://b\"]}");
    ASSERT_STR_EQ(s2, "{\"any\":[{\"all\":[\"s3://a\",\"s3://b\"]},\"s3://c\"]}");
    free(s1);
    free(s2);
    dagbag_free(&b);
}

static void test_concurrency_is_an_alias_of_max_active_tasks(void)
{
    DagBag b = load("x.yml", "d:\n  concurrency: 3\n  tasks: [{task_id: t, operator: empty}]\n");
    CU_ASSERT_EQUAL_FATAL(b.n_dags, 1);
    CU_ASSERT_EQUAL(b.dags[0]->max_active_tasks, 3);
    dagbag_free(&b);
}

static void test_scheduled_dag_without_start_date_is_an_error(void)
{
    DagBag b = load("x.yml", "d:\n  schedule: '@daily'\n  tasks: [{task_id: t, operator: empty}]\n");
    EXPECT_ERROR(b, 2, "needs a start_date");
    dagbag_free(&b);
}

static void test_interval_schedule_from_duration(void)
{
    DagBag b = load("x.yml", "d:\n  schedule: 2h\n  start_date: 2024-01-01\n  tasks: [{task_id: t, operator: empty}]\n");
    CU_ASSERT_EQUAL_FATAL(b.n_dags, 1);
    CU_ASSERT_EQUAL(b.dags[0]->schedule.kind, SCHEDULE_INTERVAL);
    CU_ASSERT_EQUAL(b.dags[0]->schedule.interval_us, 7200LL * 1000000);
    dagbag_free(&b);
}

static void test_yaml_anchors_and_merge_keys_expand(void)
{
    DagBag b = load("x.yml", "base: &b\n  operator: bash\n  retries: 2\n"
                             "d:\n  tasks:\n    - task_id: t\n      <<: *b\n      bash_command: echo\n");
    /* "base" is not a DAG mapping with tasks, but it is a mapping: it loads as a DAG with no
     * tasks only if its keys are DAG fields; operator is not, so it is an error for 'base' */
    Dag *d = dagbag_find(&b, "d");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(d->tasks[0]->retries, 2);
    ASSERT_STR_EQ(d->tasks[0]->op->name, "bash");
    dagbag_free(&b);
}

static void test_alias_bomb_is_an_error_not_a_crash(void)
{
    StrBuf s = {0};
    sb_append(&s, "a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (char c = 'b'; c <= 'j'; c++) sb_printf(&s, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c, c,
                                                c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
    DagBag b = load("bomb.yml", sb_str(&s));
    const Diag *d = first_error(&b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    ASSERT_CONTAINS(d->message, "too large");
    dagbag_free(&b);
    sb_free(&s);
}

static void test_yaml_booleans_are_pyyamls(void)
{
    DagBag b = load("x.yml", "d:\n  params: {a: n, b: Yes, c: tRUE, d: off}\n  tasks: [{task_id: t, operator: empty}]\n");
    CU_ASSERT_EQUAL_FATAL(b.n_dags, 1);
    char *p = cJSON_PrintUnformatted(b.dags[0]->params);
    ASSERT_STR_EQ(p, "{\"a\":\"n\",\"b\":true,\"c\":\"tRUE\",\"d\":false}");
    free(p);
    dagbag_free(&b);
}

static void test_merge_key_is_shallow_as_in_pyyaml(void)
{
    DagBag b = load("x.yml", "d:\n  tasks:\n    - task_id: t\n      operator: bash\n      bash_command: echo\n"
                             "      <<: {env: {A: '1', B: '2'}, retries: 3}\n      env: {A: '9'}\n");
    CU_ASSERT_EQUAL_FATAL(b.n_dags, 1);
    DagTask *t = b.dags[0]->tasks[0];
    CU_ASSERT_EQUAL(t->retries, 3);
    ASSERT_STR_EQ(cJSON_GetObjectItem(t->env, "A")->valuestring, "9");
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(t->env, "B"));
    dagbag_free(&b);
}

static void test_user_data_keys_are_not_mistaken_for_python(void)
{
    DagBag b = load("x.yml", "d:\n  params: {partial: 1, decorator: x}\n  tasks:\n    - task_id: t\n"
                             "      operator: http\n      data: {expand: true}\n");
    if (b.n_dags != 1) dump(&b);
    CU_ASSERT_EQUAL(b.n_dags, 1);
    dagbag_free(&b);
}

static void test_non_sensor_keeps_its_own_poke_interval(void)
{
    DagBag b = load("x.yml", "d:\n  tasks:\n    - task_id: t\n      operator: trigger_dagrun\n"
                             "      trigger_dag_id: other\n      wait_for_completion: true\n      poke_interval: 30\n");
    CU_ASSERT_EQUAL_FATAL(b.n_dags, 1);
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(b.dags[0]->tasks[0]->args, "poke_interval"));
    dagbag_free(&b);
}

static void test_cron_trigger_timetable_timezone_applies(void)
{
    DagBag b = load("x.yml", "d:\n  start_date: 2024-01-01\n  schedule:\n"
                             "    __type__: airflow.timetables.trigger.CronTriggerTimetable\n"
                             "    cron: '0 1 * * 3'\n    timezone: Europe/Amsterdam\n"
                             "  tasks: [{task_id: t, operator: empty}]\n");
    CU_ASSERT_EQUAL_FATAL(b.n_dags, 1);
    ASSERT_STR_EQ(b.dags[0]->timezone, "Europe/Amsterdam");
    CU_ASSERT_EQUAL(b.dags[0]->schedule.kind, SCHEDULE_CRON_TRIGGER);
    dagbag_free(&b);
}

/* A serialised DAG reads back into the same DAG: every example, field for field. */
static void test_serialised_dags_read_back_identically(void)
{
    DagBag b;
    dagbag_init(&b);
    DagLoadOptions opt = {.default_timezone = "UTC"};
    dagbag_load_path(&b, "dags", &opt);
    dagbag_load_path(&b, "tests/fixtures/cascade", &opt);
    CU_ASSERT(b.n_dags >= 6);
    for (size_t i = 0; i < b.n_dags; i++) {
        cJSON *j1 = dag_to_json(b.dags[i]);
        char *t1 = cJSON_PrintUnformatted(j1);
        char err[256];
        Dag *back = dag_from_json(t1, err, sizeof err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(back);
        cJSON *j2 = dag_to_json(back);
        char *t2 = cJSON_PrintUnformatted(j2);
        ASSERT_STR_EQ(t2, t1);
        free(t1);
        free(t2);
        cJSON_Delete(j1);
        cJSON_Delete(j2);
        dag_free(back);
    }
    dagbag_free(&b);
    char err[256];
    CU_ASSERT_PTR_NULL(dag_from_json("{\"nope\": 1}", err, sizeof err));
    ASSERT_CONTAINS(err, "not a serialised DAG");
}

static const UnitTest tests[] = {
    UNIT(test_serialised_dags_read_back_identically),
    UNIT(test_yaml_booleans_are_pyyamls),
    UNIT(test_merge_key_is_shallow_as_in_pyyaml),
    UNIT(test_user_data_keys_are_not_mistaken_for_python),
    UNIT(test_non_sensor_keeps_its_own_poke_interval),
    UNIT(test_cron_trigger_timetable_timezone_applies),
    UNIT(test_loads_a_basic_dag_with_alias_and_dependency),
    UNIT(test_json_dag_loads_and_errors_carry_json_lines),
    UNIT(test_yaml_syntax_error_names_the_line),
    UNIT(test_json_syntax_error_names_the_line),
    UNIT(test_duplicate_yaml_key_is_an_error),
    UNIT(test_unknown_operator_class_is_reported_as_python),
    UNIT(test_python_operator_and_callable_need_python),
    UNIT(test_callbacks_decorators_and_python_objects_need_python),
    UNIT(test_cycle_names_the_tasks_in_it),
    UNIT(test_self_dependency_is_a_cycle),
    UNIT(test_unknown_dependency_is_named_with_a_suggestion),
    UNIT(test_duplicate_task_ids_are_an_error),
    UNIT(test_invalid_cron_says_which_field),
    UNIT(test_unknown_timezone_is_an_error),
    UNIT(test_unknown_trigger_rule_suggests_one),
    UNIT(test_bad_duration_is_an_error),
    UNIT(test_unknown_field_suggests_the_closest),
    UNIT(test_a_bad_dag_does_not_hide_the_good_ones),
    UNIT(test_string_that_looks_boolean_is_rejected_with_hint),
    UNIT(test_template_syntax_error_is_an_import_error),
    UNIT(test_tasks_as_list_and_as_mapping_load_the_same),
    UNIT(test_task_groups_prefix_ids_and_expand_dependencies),
    UNIT(test_group_default_args_apply_to_members_only),
    UNIT(test_default_block_tasks_merge_by_task_id),
    UNIT(test_defaults_cascade_nearer_wins),
    UNIT(test_durations_in_every_spelling),
    UNIT(test_relative_start_date_counts_back_from_midnight),
    UNIT(test_naive_start_date_is_read_in_the_dag_timezone),
    UNIT(test_dataset_schedules_list_and_condition),
    UNIT(test_concurrency_is_an_alias_of_max_active_tasks),
    UNIT(test_scheduled_dag_without_start_date_is_an_error),
    UNIT(test_interval_schedule_from_duration),
    UNIT(test_yaml_anchors_and_merge_keys_expand),
    UNIT(test_alias_bomb_is_an_error_not_a_crash),
    {0},
};

UNIT_MAIN("dagload", tests)
