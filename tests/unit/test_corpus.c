/* The dag-factory compatibility corpus (tests/corpus/dag-factory, from astronomer/dag-factory's
 * dev/dags; see its NOTICE.md): file by file, which DAGs must load and which must be rejected
 * and why. Each file is loaded on its own, with the corpus folder as the root of the
 * defaults.yml cascade, as a dags folder would be. */
#include "core/dagbag.h"
#include "unit.h"

#define CORPUS "tests/corpus/dag-factory"

typedef struct Expect {
    const char *file;    /* relative to the corpus */
    const char *dag_id;  /* NULL: a problem with the file as a whole */
    const char *reason;  /* NULL: must load; otherwise a fragment of the first error for it */
} Expect;

static const Expect EXPECTED[] = {
    /* plain bash/empty DAGs, task groups in both spellings, defaults.yml */
    {"example_dag_factory.yml", "basic_example_dag", NULL},
    {"example_dag_factory_default_config_dict.yml", "daily_etl", NULL},
    {"example_dag_factory_tasks_taskgroups_as_dict_format.yml", "basic_example_dag_dict_format", NULL},
    {"airflow2/example_dag_factory_default_args.yml", "etl", NULL},
    {"airflow3/example_dag_factory_default_args.yml", "etl", NULL},
    {"airflow2/example_dag_factory_default_config.yml", "machine_learning", NULL},
    {"airflow2/example_dag_factory_default_config.yml", "data_science", NULL},
    {"airflow2/example_dag_factory_default_config.yml", "artificial_intelligence", NULL},
    {"airflow3/example_dag_factory_default_config.yml", "machine_learning", NULL},
    {"airflow3/example_dag_factory_default_config.yml", "data_science", NULL},
    {"airflow3/example_dag_factory_default_config.yml", "artificial_intelligence", NULL},
    {"airflow2/example_task_group.yml", "example_task_group", NULL},
    {"airflow3/example_task_group.yml", "task_group", NULL},
    {"airflow2/example_jinja2_template_dag.yml", "example_jinja2_template_dag", NULL},
    {"airflow3/example_jinja2_template_dag.yml", "example_jinja2_template_dag", NULL},
    /* HTTP operator (both class names) */
    {"example_http_operator_task.yml", "http_operator", NULL},
    {"example_simple_http_operator_task.yml", "http_operator_example_dag", NULL},
    /* CronTriggerTimetable, as `timetable:` and as `schedule:` */
    {"example_timetable_schedule.yml", "timetable_schedule", NULL},
    {"airflow3/example_timetable_schedule.yml", "timetable_schedule", NULL},
    /* sensors: one loads; one needs a Python callable; one has a bad task id and duration */
    {"external_task_sensor.yml", "example_external_task_sensor_dag_factory_consumer", NULL},
    {"external_task_sensor.yml", "example_external_task_sensor_dag_factory_consumer2", "'execution_date_fn' is Python code"},
    {"external_task_sensor.yml", "example_external_task_sensor_dag_factory_consumer3", "invalid task_id 'wait_for_producer_task:'"},
    /* datasets and assets */
    {"asset_triggered_dags.yml", "consumer_dag", NULL},
    {"asset_triggered_dags.yml", "producer_dag", "'python_callable' is Python code"},
    {"datasets/example_dag_datasets.yml", "example_simple_dataset_producer_dag", NULL},
    {"datasets/example_dag_datasets.yml", "example_simple_dataset_consumer_dag", NULL},
    {"datasets/example_dag_datasets.yml", "example_custom_config_dataset_producer_dag", NULL},
    {"datasets/example_dag_datasets.yml", "example_custom_config_dataset_consumer_dag", NULL},
    {"datasets/example_dag_datasets.yml", "example_custom_config_condition_dataset_consumer_dag", NULL},
    {"datasets/example_dag_datasets.yml", "example_without_custom_config_condition_dataset_consumer_dag", NULL},
    {"datasets/example_dag_datasets.yml", "example_simple_dataset_alias_dag", "'__type__: airflow.datasets.DatasetAlias' is a Python object"},
    {"datasets/example_dag_datasets_outlet_inlet.yml", "producer_dag", NULL},
    {"datasets/example_dag_datasets_outlet_inlet.yml", "consumer_dag", NULL},
    {"datasets/example_dataset_condition_string.yml", "consumer_dag", NULL},
    {"datasets/example_dataset_or_timetable_schedule.yml", "consumer_time_schedule_dag", NULL},
    {"datasets/example_dataset_yaml_syntax.yml", "consumer_dag", NULL},
    /* Python: callables, decorators (TaskFlow), callbacks, custom operators and objects, macros */
    {"example_callbacks.yml", "callbacks", "is a Python callback"},
    {"example_map_index_template.yml", "example_map_index_template", "is Python code"},
    {"example_multiple_outputs_taskflow.yml", "example_multiple_outputs_taskflow", "is Python code"},
    {"example_object_storage.yml", "object_storage_ops", "is Python code"},
    {"kpo.yml", "kubernetes_pod_dag", "is a Python object"},
    {"airflow2/example_custom_py_object_dag.yml", "custom_example_dag", "is a Python object"},
    {"airflow3/example_custom_py_object_dag.yml", "custom_python_object", "is a Python object"},
    {"airflow2/example_customize_operator.yml", "example_breadfast", "is a Python class, which gust does not run"},
    {"airflow3/example_customize_operator.yml", "customized_operator", "is a Python class, which gust does not run"},
    {"airflow2/example_dynamic_task_mapping.yml", "test_expand", "is Python code"},
    {"airflow3/example_dynamic_task_mapping.yml", "dynamic_task_map", "is Python code"},
    {"airflow2/example_params.yml", "example_params", "is Python code"},
    {"airflow3/example_params.yml", "example_params", "is Python code"},
    {"airflow2/example_taskflow.yml", "example_taskflow", "is Python code"},
    {"airflow3/example_taskflow.yml", "taskflow", "is Python code"},
    {"airflow2/example_user_defined_macros.yml", "example_user_defined_macros", "'user_defined_macros' is Python code"},
    {"airflow3/example_user_defined_macros.yml", "example_user_defined_macros", "'user_defined_macros' is Python code"},
    {"airflow3/example_dag_factory_multiple_config.yml", "example_multiple1", "is a Python callback"},
    {"airflow3/example_dag_factory_multiple_config.yml", "example_multiple2", "is a Python callback"},
    {"airflow3/example_dag_factory_multiple_config.yml", "example_multiple3", "is a Python callback"},
    {"airflow3/example_dag_factory_multiple_config.yml", "example_multiple4", "which gust does not run"},
    {"airflow2/example_dag_factory_multiple_config.yml", "example_dag", "is a Python callback"},
    {"airflow2/example_dag_factory_multiple_config.yml", "example_dag2", "is a Python callback"},
    {"airflow2/example_dag_factory_multiple_config.yml", "example_dag3", "is a Python callback"},
    {"airflow2/example_dag_factory_multiple_config.yml", "example_dag4", "which gust does not run"},
    {"comparison/example_hackernews_dagfactory.yml", "example_hackernews_dagfactory", "is Python code"},
    {"comparison/example_pypi_stats_dagfactory.yml", "example_pypi_stats_dagfactory", "is Python code"},
    /* not YAML */
    {"invalid.yaml", NULL, "YAML syntax error"},
};

static DagBag load_file(const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", CORPUS, rel);
    DagBag b;
    dagbag_init(&b);
    DagLoadOptions opt = {.root = CORPUS, .default_timezone = "UTC"};
    dagbag_load_path(&b, path, &opt);
    return b;
}

static const Diag *first_error_for(const DagBag *b, const char *dag_id)
{
    for (size_t i = 0; i < b->diags.len; i++) {
        const Diag *d = &b->diags.items[i];
        if (d->warning) continue;
        if (dag_id ? (d->dag_id && strcmp(d->dag_id, dag_id) == 0) : d->dag_id == NULL) return d;
    }
    return NULL;
}

static void test_every_corpus_dag_loads_or_is_rejected_as_listed(void)
{
    for (size_t i = 0; i < sizeof EXPECTED / sizeof EXPECTED[0]; i++) {
        const Expect *e = &EXPECTED[i];
        DagBag b = load_file(e->file);
        const Diag *err = first_error_for(&b, e->dag_id);
        Dag *d = e->dag_id ? dagbag_find(&b, e->dag_id) : NULL;
        int ok;
        if (!e->reason) {
            ok = d != NULL && err == NULL;
            if (!ok)
                fprintf(stderr, "\n  %s: %s should load; error: %s:%d: %s", e->file, e->dag_id, err ? err->file : "",
                        err ? err->line : 0, err ? err->message : "(DAG missing, no error)");
        } else {
            ok = d == NULL && err != NULL && strstr(err->message, e->reason) != NULL && err->line > 0;
            if (!ok)
                fprintf(stderr, "\n  %s: %s should be rejected with \"%s\" and a line; got: %s (line %d)", e->file,
                        e->dag_id ? e->dag_id : "(file)", e->reason, err ? err->message : "no error",
                        err ? err->line : 0);
        }
        CU_ASSERT(ok);
        dagbag_free(&b);
    }
}

/* Every file in the corpus is covered by the table above (or holds no DAG at all). */
static void test_whole_corpus_has_no_unlisted_dags_or_errors(void)
{
    DagBag b;
    dagbag_init(&b);
    DagLoadOptions opt = {.root = CORPUS, .default_timezone = "UTC"};
    dagbag_load_path(&b, CORPUS, &opt);
    for (size_t i = 0; i < b.diags.len; i++) {
        const Diag *d = &b.diags.items[i];
        if (d->warning) continue;
        int listed = 0;
        for (size_t k = 0; k < sizeof EXPECTED / sizeof EXPECTED[0]; k++) {
            const Expect *e = &EXPECTED[k];
            size_t n = strlen(d->file), m = strlen(e->file);
            int same_file = n >= m && strcmp(d->file + n - m, e->file) == 0;
            int same_dag = e->dag_id ? (d->dag_id && strcmp(d->dag_id, e->dag_id) == 0) : d->dag_id == NULL;
            /* across the whole folder a dag_id seen in an earlier file is a duplicate: allowed */
            if (same_file && (same_dag || strstr(d->message, "is already defined in"))) listed = 1;
        }
        if (!listed) fprintf(stderr, "\n  unlisted error: %s:%d: %s: %s", d->file, d->line, d->dag_id ? d->dag_id : "-", d->message);
        CU_ASSERT(listed);
    }
    dagbag_free(&b);
}

/* A dataset definitions file and defaults.yml hold no DAGs and are not errors. */
static void test_dataset_definitions_file_is_not_a_dag_file(void)
{
    DagBag b = load_file("datasets/example_config_datasets.yml");
    CU_ASSERT_EQUAL(b.n_dags, 0);
    CU_ASSERT_EQUAL(b.diags.len, 0);
    dagbag_free(&b);
}

/* dag-factory writes `catchup: false,` in default_args; Airflow ignores DAG settings there,
 * and so do we, with a warning that says so. */
static void test_dag_settings_in_default_args_are_warned_about(void)
{
    DagBag b = load_file("example_http_operator_task.yml");
    int warned = 0;
    for (size_t i = 0; i < b.diags.len; i++)
        if (b.diags.items[i].warning && strstr(b.diags.items[i].message, "'catchup' is a DAG setting")) warned = 1;
    CU_ASSERT(warned);
    dagbag_free(&b);
}

static const UnitTest tests[] = {
    UNIT(test_every_corpus_dag_loads_or_is_rejected_as_listed),
    UNIT(test_whole_corpus_has_no_unlisted_dags_or_errors),
    UNIT(test_dataset_definitions_file_is_not_a_dag_file),
    UNIT(test_dag_settings_in_default_args_are_warned_about),
    {0},
};

UNIT_MAIN("corpus", tests)
