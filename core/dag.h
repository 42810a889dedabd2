/* dag — the in-memory model of a loaded DAG: its schedule, its tasks with every field
 * resolved (defaults applied, durations in microseconds, dependencies as full task ids),
 * and its task groups.
 *
 * The model is what the rest of gust consumes: the DAG processor serialises it into a
 * dag_version (dag_to_json), workers read a task's definition back from that JSON, and
 * the CLI prints it. Nothing here knows about files; core/dagfile.c builds Dags from them. */
#ifndef GUST_DAG_H
#define GUST_DAG_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "core/operator.h"
#include "core/schedule.h"
#include "core/tz.h"

/* Airflow's twelve trigger rules, in Airflow's spelling. */
typedef enum TriggerRule {
    TR_ALL_SUCCESS,
    TR_ALL_FAILED,
    TR_ALL_DONE,
    TR_ALL_DONE_MIN_ONE_SUCCESS,
    TR_ONE_SUCCESS,
    TR_ONE_FAILED,
    TR_ONE_DONE,
    TR_NONE_FAILED,
    TR_NONE_SKIPPED,
    TR_NONE_FAILED_MIN_ONE_SUCCESS,
    TR_ALL_SKIPPED,
    TR_ALWAYS,
    TR__COUNT
} TriggerRule;

typedef enum WeightRule { WR_DOWNSTREAM, WR_UPSTREAM, WR_ABSOLUTE } WeightRule;
typedef enum SensorMode { SENSOR_POKE, SENSOR_RESCHEDULE } SensorMode;

const char *trigger_rule_name(TriggerRule r);
int trigger_rule_parse(const char *name); /* -1 if unknown; also accepts Airflow's old none_failed_or_skipped and dummy */
const char *const *trigger_rule_names(void); /* TR__COUNT names, for suggestions */
const char *weight_rule_name(WeightRule r);
int weight_rule_parse(const char *name);     /* -1 if unknown */

typedef struct DagTask {
    char *task_id;                 /* full id: enclosing group ids + "." + name, as Airflow prefixes them */
    char *name;                    /* as written in the file; unique in the DAG */
    char *group_id;                /* full id of the innermost task group, or NULL */
    const OperatorDef *op;         /* never NULL in a loaded DAG */
    int line;                      /* where the task is defined */
    char **upstream;               /* full task ids this task waits for, sorted, unique */
    size_t n_upstream;
    TriggerRule trigger_rule;
    int retries;                   /* retries after the first try */
    int64_t retry_delay_us;        /* default 5 minutes, as Airflow */
    int retry_exponential_backoff; /* 1: Airflow's exponential formula */
    int64_t max_retry_delay_us;    /* -1: unbounded */
    int64_t execution_timeout_us;  /* -1: none */
    char *queue;                   /* broker queue, "default" */
    char *pool;                    /* "default_pool" */
    int pool_slots;                /* >= 1 */
    int priority_weight;           /* as written; the effective weight follows weight_rule */
    WeightRule weight_rule;
    char *rate_limit;              /* "10/m" or a limit name; NULL: none */
    char *owner;                   /* "airflow" unless set, as Airflow */
    int depends_on_past;
    int wait_for_downstream;
    int64_t start_date_us;         /* -1: the DAG's */
    int64_t end_date_us;           /* -1: none */
    int do_xcom_push;
    int max_active_tis_per_dag;    /* 0: unlimited */
    /* sensors only */
    SensorMode mode;
    int64_t poke_interval_us;      /* default 60 s */
    int64_t timeout_us;            /* default 7 days */
    int soft_fail;
    int exponential_backoff;
    int64_t max_wait_us;           /* -1: none */
    cJSON *env;                    /* object of strings, or NULL */
    cJSON *params;                 /* object, or NULL */
    cJSON *args;                   /* the operator's own fields, as written (object, never NULL) */
    char **outlets;                /* dataset URIs */
    size_t n_outlets;
    char **inlets;
    size_t n_inlets;
    char *doc_md;
    char *display_name;
} DagTask;

typedef struct DagGroup {
    char *group_id;    /* full id ("outer.inner") */
    char *name;        /* as written */
    char *parent_id;   /* full id of the enclosing group, or NULL */
    char *tooltip;
    int prefix_group_id; /* 1: member task ids are prefixed with the group id (Airflow's default) */
    int line;
} DagGroup;

typedef struct Dag {
    char *dag_id;
    char *file;                 /* the file it came from */
    int line;                   /* where its key is */
    char *description;
    char *doc_md;
    char *display_name;
    char *owner;                /* owners of its tasks, comma-separated, for the UI */
    Schedule schedule;          /* SCHEDULE_NONE when not given */
    char *schedule_text;        /* as written, for display ("0 3 * * *", "@daily", "1h", ...) */
    cJSON *assets;              /* dataset condition for asset schedules: a URI string, or
                                   {"all": [...]} / {"any": [...]} nested; NULL otherwise */
    char *timezone;             /* IANA name */
    GustTz *tz;                 /* loaded zone, owned */
    int64_t start_date_us;      /* -1: none */
    int64_t end_date_us;        /* -1: none */
    int catchup;
    int max_active_runs;        /* -1: the setting core.max_active_runs_per_dag */
    int max_active_tasks;       /* -1: the setting core.max_active_tasks_per_dag */
    int64_t dagrun_timeout_us;  /* -1: none */
    int is_paused_upon_creation; /* -1: the setting core.dags_are_paused_at_creation */
    int max_consecutive_failed_dag_runs; /* 0: never auto-pause */
    char **tags;
    size_t n_tags;
    cJSON *params;              /* object, or NULL */
    DagTask **tasks;            /* in file order */
    size_t n_tasks;
    DagGroup **groups;
    size_t n_groups;
    size_t *by_id;              /* task indexes sorted by task_id (dag_index), or NULL */
} Dag;

Dag *dag_new(const char *dag_id, const char *file, int line);
void dag_free(Dag *d); /* accepts NULL */
DagTask *dag_task_new(void);
void dag_task_free(DagTask *t);
DagTask *dag_find_task(const Dag *d, const char *task_id); /* by full id; O(log n) once indexed */
/* Build the sorted index dag_find_task uses. Call once the tasks are all added (the loader
 * and dag_from_json do); adding a task afterwards drops the index. */
void dag_index(Dag *d);
DagTask *dag_find_task_by_name(const Dag *d, const char *name);
DagGroup *dag_find_group_by_name(const Dag *d, const char *name);
void dag_add_task(Dag *d, DagTask *t);   /* takes ownership */
void dag_add_group(Dag *d, DagGroup *g); /* takes ownership */
void dag_task_add_upstream(DagTask *t, const char *task_id); /* keeps the list sorted, unique */

/* Topological order of task indexes (upstream first). Returns 0 and fills order (n_tasks
 * entries, caller-allocated), or -1 if there is a cycle; then *cycle is a heap string like
 * "a -> b -> c -> a" (caller frees). */
int dag_topo_order(const Dag *d, size_t *order, char **cycle);

/* Serialised form, the dag_version document: stable key order, every resolved field.
 * Caller owns the returned cJSON. */
cJSON *dag_to_json(const Dag *d);
cJSON *dag_task_to_json(const DagTask *t);
/* The inverse: a Dag from its serialised form (a dag_version's data), so that workers and
 * the scheduler run the version a run started with, without a DAG folder. NULL + err if
 * the document is not one dag_to_json wrote. Caller frees with dag_free. */
Dag *dag_from_json(const char *text, char *err, size_t errlen);
/* One task object of that document (an element of its "tasks"), for building a Dag one task
 * at a time (store/dagcache.c). NULL + err if it is not one. Caller frees with
 * dag_task_free, or gives it to dag_add_task. */
DagTask *dag_task_from_json(const char *text, char *err, size_t errlen);

#endif
