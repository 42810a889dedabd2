/* operator — the operator table (see operator.h). Adding an operator is adding an entry
 * here and its runtime in worker/operators/. */
#include "core/operator.h"

#include <string.h>

#include "core/util.h"

#define END {NULL, FT_ANY, 0, NULL}

/* Fields every task has, whatever its operator (Airflow's BaseOperator arguments). */
static const OpField BASE_FIELDS[] = {
    {"task_id", FT_STRING, FIELD_REQUIRED, "the task's name, unique in its DAG"},
    {"operator", FT_STRING, 0, "which operator runs the task (short name or Airflow class path)"},
    {"dependencies", FT_STRINGS, 0, "task ids or task group names that must finish first"},
    {"task_group_name", FT_STRING, 0, "the task group the task belongs to"},
    {"trigger_rule", FT_STRING, 0, "when the task runs, given its upstream states (default all_success)"},
    {"retries", FT_INT, 0, "how many times a failed try is retried"},
    {"retry_delay", FT_DURATION, 0, "wait between tries (default 5m)"},
    {"retry_exponential_backoff", FT_BOOL, 0, "double the delay after each failed try"},
    {"max_retry_delay", FT_DURATION, 0, "upper bound on the delay between tries"},
    {"execution_timeout", FT_DURATION, 0, "a try running longer than this fails"},
    {"queue", FT_STRING, 0, "broker queue the task is sent to (default 'default')"},
    {"pool", FT_STRING, 0, "slot pool the task takes slots from (default 'default_pool')"},
    {"pool_slots", FT_INT, 0, "slots the task takes from its pool (default 1)"},
    {"priority_weight", FT_INT, 0, "higher runs first when slots are scarce (default 1)"},
    {"weight_rule", FT_STRING, 0, "downstream, upstream or absolute: how priority_weight adds up"},
    {"rate_limit", FT_STRING, 0, "global rate limit, e.g. \"10/m\", or the name of a configured limit"},
    {"env", FT_MAP, FIELD_TEMPLATED, "environment variables for the task's process"},
    {"inlets", FT_LIST, 0, "datasets (URIs) the task reads"},
    {"outlets", FT_LIST, 0, "datasets (URIs) the task updates; DAGs scheduled on them run"},
    {"params", FT_MAP, 0, "task-level params, merged over the DAG's"},
    {"owner", FT_STRING, 0, "who owns the task (shown in the UI)"},
    {"depends_on_past", FT_BOOL, 0, "run only if this task succeeded in the previous run"},
    {"wait_for_downstream", FT_BOOL, 0, "with depends_on_past: also wait for its downstream in the previous run"},
    {"start_date", FT_DATETIME, 0, "the task does not run for logical dates before this"},
    {"end_date", FT_DATETIME, 0, "the task does not run for logical dates after this"},
    {"doc_md", FT_STRING, 0, "documentation shown in the UI (Markdown)"},
    {"doc", FT_STRING, 0, "documentation shown in the UI"},
    {"do_xcom_push", FT_BOOL, 0, "push the operator's result as an XCom (default true)"},
    {"max_active_tis_per_dag", FT_INT, 0, "at most this many instances of the task run at once"},
    {"email", FT_STRINGS, FIELD_IGNORED, "accepted for compatibility; notifications are not sent yet"},
    {"email_on_failure", FT_BOOL, FIELD_IGNORED, "accepted for compatibility"},
    {"email_on_retry", FT_BOOL, FIELD_IGNORED, "accepted for compatibility"},
    {"executor_config", FT_MAP, FIELD_IGNORED, "accepted for compatibility; has no effect"},
    {"sla", FT_DURATION, FIELD_IGNORED, "accepted for compatibility (removed in Airflow 3)"},
    {"task_display_name", FT_STRING, 0, "name shown in the UI instead of the task id"},
    {"ui_color", FT_STRING, FIELD_IGNORED, "accepted for compatibility"},
    {"ui_fgcolor", FT_STRING, FIELD_IGNORED, "accepted for compatibility"},
    END,
};

static const OpField SENSOR_FIELDS[] = {
    {"mode", FT_STRING, 0, "poke (hold the slot between checks) or reschedule (free it)"},
    {"poke_interval", FT_DURATION, 0, "time between checks (default 60s)"},
    {"timeout", FT_DURATION, 0, "give up after this long (default 7 days)"},
    {"soft_fail", FT_BOOL, 0, "on timeout mark the task skipped instead of failed"},
    {"exponential_backoff", FT_BOOL, 0, "grow the interval between checks"},
    {"max_wait", FT_DURATION, 0, "upper bound on the interval with exponential_backoff"},
    END,
};

static const OpField BASH_FIELDS[] = {
    {"bash_command", FT_STRING, FIELD_REQUIRED | FIELD_TEMPLATED, "the command, run by bash -c"},
    {"append_env", FT_BOOL, 0, "add env to the inherited environment instead of replacing it"},
    {"cwd", FT_STRING, FIELD_TEMPLATED, "working folder (default: a fresh one per try)"},
    {"output_encoding", FT_STRING, 0, "encoding of the command's output (utf-8)"},
    {"skip_on_exit_code", FT_INT_OR_LIST, 0, "exit codes that mark the task skipped (default 99)"},
    END,
};

static const OpField HTTP_FIELDS[] = {
    {"http_conn_id", FT_STRING, 0, "connection holding the base URL and credentials (default http_default)"},
    {"endpoint", FT_STRING, FIELD_TEMPLATED, "path appended to the connection's URL"},
    {"method", FT_STRING, 0, "GET, POST, PUT, PATCH, DELETE or HEAD (default POST)"},
    {"data", FT_ANY, FIELD_TEMPLATED, "request body: a string, or a mapping sent as JSON or form data"},
    {"headers", FT_MAP, FIELD_TEMPLATED, "request headers"},
    {"extra_options", FT_MAP, 0, "timeout, verify, ... as in Airflow's HttpHook"},
    {"log_response", FT_BOOL, 0, "write the response body to the task log"},
    {"response_check", FT_PYTHON, 0, "a Python callable"},
    {"response_filter", FT_PYTHON, 0, "a Python callable"},
    {"auth_type", FT_PYTHON, 0, "a Python class"},
    {"tcp_keep_alive", FT_BOOL, FIELD_IGNORED, "accepted for compatibility"},
    END,
};

static const OpField HTTP_SENSOR_FIELDS[] = {
    {"http_conn_id", FT_STRING, 0, "connection holding the base URL (default http_default)"},
    {"endpoint", FT_STRING, FIELD_REQUIRED | FIELD_TEMPLATED, "path to poll"},
    {"method", FT_STRING, 0, "GET (default) or another method"},
    {"request_params", FT_MAP, FIELD_TEMPLATED, "query parameters"},
    {"headers", FT_MAP, FIELD_TEMPLATED, "request headers"},
    {"extra_options", FT_MAP, 0, "timeout, verify, ..."},
    {"response_check", FT_PYTHON, 0, "a Python callable"},
    {"response_error_codes_allowlist", FT_LIST, 0, "status codes that mean 'not yet' rather than failure"},
    END,
};

static const OpField FILE_SENSOR_FIELDS[] = {
    {"filepath", FT_STRING, FIELD_REQUIRED | FIELD_TEMPLATED, "path or glob to wait for"},
    {"fs_conn_id", FT_STRING, 0, "connection whose path is the base folder"},
    {"recursive", FT_BOOL, 0, "** in the glob matches folders recursively"},
    END,
};

static const OpField EXTERNAL_TASK_SENSOR_FIELDS[] = {
    {"external_dag_id", FT_STRING, FIELD_REQUIRED | FIELD_TEMPLATED, "the DAG to wait for"},
    {"external_task_id", FT_STRING, FIELD_TEMPLATED, "the task to wait for (omit to wait for the whole run)"},
    {"external_task_ids", FT_STRINGS, 0, "several tasks to wait for"},
    {"external_task_group_id", FT_STRING, 0, "a task group to wait for"},
    {"allowed_states", FT_STRINGS, 0, "states that count as done (default success)"},
    {"failed_states", FT_STRINGS, 0, "states that fail the sensor at once"},
    {"skipped_states", FT_STRINGS, 0, "states that skip the sensor"},
    {"execution_delta", FT_DURATION, 0, "look at the run this much earlier than ours"},
    {"execution_date_fn", FT_PYTHON, 0, "a Python callable"},
    {"check_existence", FT_BOOL, 0, "fail at once if the DAG or task does not exist"},
    END,
};

static const OpField TIME_DELTA_SENSOR_FIELDS[] = {
    {"delta", FT_DURATION, FIELD_REQUIRED, "wait until the data interval end plus this"},
    END,
};

static const OpField TRIGGER_DAGRUN_FIELDS[] = {
    {"trigger_dag_id", FT_STRING, FIELD_REQUIRED | FIELD_TEMPLATED, "the DAG to trigger"},
    {"trigger_run_id", FT_STRING, FIELD_TEMPLATED, "run id of the new run"},
    {"conf", FT_MAP, FIELD_TEMPLATED, "conf of the new run"},
    {"logical_date", FT_STRING, FIELD_TEMPLATED, "logical date of the new run"},
    {"execution_date", FT_STRING, FIELD_TEMPLATED, "old name of logical_date"},
    {"reset_dag_run", FT_BOOL, 0, "clear the run if it already exists"},
    {"wait_for_completion", FT_BOOL, 0, "wait until the triggered run finishes"},
    {"poke_interval", FT_DURATION, 0, "how often to check, with wait_for_completion"},
    {"allowed_states", FT_STRINGS, 0, "final states that count as success"},
    {"failed_states", FT_STRINGS, 0, "final states that fail this task"},
    END,
};

static const OpField BRANCH_BASH_FIELDS[] = {
    {"bash_command", FT_STRING, FIELD_REQUIRED | FIELD_TEMPLATED,
     "prints the task ids to follow (space or newline separated) on its last line"},
    {"append_env", FT_BOOL, 0, "add env to the inherited environment"},
    {"cwd", FT_STRING, FIELD_TEMPLATED, "working folder"},
    END,
};

static const OpField SHORT_CIRCUIT_BASH_FIELDS[] = {
    {"bash_command", FT_STRING, FIELD_REQUIRED | FIELD_TEMPLATED, "exit 0 continues; any other code skips downstream"},
    {"ignore_downstream_trigger_rules", FT_BOOL, 0, "skip all downstream (true, default) or only direct ones"},
    {"append_env", FT_BOOL, 0, "add env to the inherited environment"},
    {"cwd", FT_STRING, FIELD_TEMPLATED, "working folder"},
    END,
};

static const OpField NO_FIELDS[] = {END};

static const char *const BASH_ALIASES[] = {
    "airflow.operators.bash.BashOperator", "airflow.operators.bash_operator.BashOperator",
    "airflow.providers.standard.operators.bash.BashOperator", "BashOperator", NULL};
static const char *const EMPTY_ALIASES[] = {
    "airflow.operators.empty.EmptyOperator", "airflow.operators.dummy.DummyOperator",
    "airflow.operators.dummy_operator.DummyOperator", "airflow.providers.standard.operators.empty.EmptyOperator",
    "EmptyOperator", "DummyOperator", NULL};
static const char *const HTTP_ALIASES[] = {
    "airflow.providers.http.operators.http.HttpOperator",
    "airflow.providers.http.operators.http.SimpleHttpOperator", "airflow.operators.http_operator.SimpleHttpOperator",
    "HttpOperator", "SimpleHttpOperator", NULL};
static const char *const HTTP_SENSOR_ALIASES[] = {
    "airflow.providers.http.sensors.http.HttpSensor", "airflow.sensors.http_sensor.HttpSensor", "HttpSensor", NULL};
static const char *const FILE_SENSOR_ALIASES[] = {
    "airflow.sensors.filesystem.FileSensor", "airflow.providers.standard.sensors.filesystem.FileSensor",
    "airflow.contrib.sensors.file_sensor.FileSensor", "FileSensor", NULL};
static const char *const EXTERNAL_TASK_SENSOR_ALIASES[] = {
    "airflow.sensors.external_task.ExternalTaskSensor", "airflow.sensors.external_task_sensor.ExternalTaskSensor",
    "airflow.providers.standard.sensors.external_task.ExternalTaskSensor", "ExternalTaskSensor", NULL};
static const char *const TIME_DELTA_SENSOR_ALIASES[] = {
    "airflow.sensors.time_delta.TimeDeltaSensor", "airflow.providers.standard.sensors.time_delta.TimeDeltaSensor",
    "TimeDeltaSensor", NULL};
static const char *const TRIGGER_DAGRUN_ALIASES[] = {
    "airflow.operators.trigger_dagrun.TriggerDagRunOperator",
    "airflow.providers.standard.operators.trigger_dagrun.TriggerDagRunOperator", "TriggerDagRunOperator", NULL};
static const char *const NO_ALIASES[] = {NULL};

static const OperatorDef OPERATORS[] = {
    {"bash", BASH_ALIASES, BASH_FIELDS, 0, "runs a bash command; exit 0 is success, 99 is skipped"},
    {"empty", EMPTY_ALIASES, NO_FIELDS, 0, "does nothing; joins and forks the graph"},
    {"http", HTTP_ALIASES, HTTP_FIELDS, 0, "sends an HTTP request; 2xx is success"},
    {"http_sensor", HTTP_SENSOR_ALIASES, HTTP_SENSOR_FIELDS, 1, "polls a URL until it answers 2xx"},
    {"file_sensor", FILE_SENSOR_ALIASES, FILE_SENSOR_FIELDS, 1, "waits until a file or glob exists"},
    {"external_task_sensor", EXTERNAL_TASK_SENSOR_ALIASES, EXTERNAL_TASK_SENSOR_FIELDS, 1,
     "waits for a task (or a run) of another DAG to reach a state"},
    {"time_delta_sensor", TIME_DELTA_SENSOR_ALIASES, TIME_DELTA_SENSOR_FIELDS, 1,
     "waits until the data interval end plus a delta"},
    {"branch_bash", NO_ALIASES, BRANCH_BASH_FIELDS, 0,
     "runs a bash command whose output names the downstream tasks to follow; the rest are skipped"},
    {"trigger_dagrun", TRIGGER_DAGRUN_ALIASES, TRIGGER_DAGRUN_FIELDS, 0, "triggers a run of another DAG"},
    {"short_circuit_bash", NO_ALIASES, SHORT_CIRCUIT_BASH_FIELDS, 0,
     "runs a bash command; a non-zero exit skips everything downstream"},
};

static const char *const PYTHON_OPERATORS[] = {
    "PythonOperator", "BranchPythonOperator", "ShortCircuitOperator", "PythonVirtualenvOperator",
    "ExternalPythonOperator", "BranchExternalPythonOperator", "BranchPythonVirtualenvOperator",
    "PythonSensor", "DecoratedOperator", "_PythonDecoratedOperator",
};

const OperatorDef *operator_all(size_t *n)
{
    *n = GUST_ARRAY_LEN(OPERATORS);
    return OPERATORS;
}

const OperatorDef *operator_find(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < GUST_ARRAY_LEN(OPERATORS); i++) {
        if (strcmp(OPERATORS[i].name, name) == 0) return &OPERATORS[i];
        for (const char *const *a = OPERATORS[i].aliases; *a; a++)
            if (strcmp(*a, name) == 0) return &OPERATORS[i];
    }
    return NULL;
}

int operator_is_known_python(const char *name)
{
    const char *last = strrchr(name, '.');
    last = last ? last + 1 : name;
    for (size_t i = 0; i < GUST_ARRAY_LEN(PYTHON_OPERATORS); i++)
        if (strcmp(last, PYTHON_OPERATORS[i]) == 0) return 1;
    return strstr(name, ".decorators.") != NULL || strstr(name, ".python.") != NULL;
}

const char *operator_suggest(const char *name)
{
    const char *cands[128];
    size_t n = 0;
    for (size_t i = 0; i < GUST_ARRAY_LEN(OPERATORS) && n < GUST_ARRAY_LEN(cands); i++) {
        cands[n++] = OPERATORS[i].name;
        for (const char *const *a = OPERATORS[i].aliases; *a && n < GUST_ARRAY_LEN(cands); a++) cands[n++] = *a;
    }
    return util_closest(name, cands, n);
}

static const OpField *find_in(const OpField *fields, const char *name)
{
    for (const OpField *f = fields; f->name; f++)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}

const OpField *operator_field(const OperatorDef *op, const char *field)
{
    const OpField *f = find_in(BASE_FIELDS, field);
    if (!f && op) f = find_in(op->fields, field);
    if (!f && op && op->is_sensor) f = find_in(SENSOR_FIELDS, field);
    return f;
}

const OpField *operator_base_fields(void)
{
    return BASE_FIELDS;
}

const OpField *operator_sensor_fields(void)
{
    return SENSOR_FIELDS;
}

const OpField *operator_any_field(const char *field)
{
    const OpField *f = find_in(BASE_FIELDS, field);
    if (!f) f = find_in(SENSOR_FIELDS, field);
    for (size_t i = 0; !f && i < GUST_ARRAY_LEN(OPERATORS); i++) f = find_in(OPERATORS[i].fields, field);
    return f;
}
