/* schema — gust's tables (see schema.h and docs/store.md). Names follow Airflow's where
 * Airflow has the concept, so the REST API maps onto them one to one. Times are BIGINT
 * microseconds UTC; booleans are INTEGER 0/1; JSON documents are TEXT; ids are 32-hex TEXT
 * (store_new_id) unless an auto-numbered id is what the API exposes. A task instance's
 * state is NULL for Airflow's "none". */
#include "store/schema.h"

#include <stddef.h>

static const char *const V1[] = {
    "CREATE TABLE dag ("
    " dag_id TEXT PRIMARY KEY,"
    " is_paused INTEGER NOT NULL DEFAULT 1,"
    " is_active INTEGER NOT NULL DEFAULT 1,"
    " fileloc TEXT NOT NULL DEFAULT '',"
    " owners TEXT NOT NULL DEFAULT '',"
    " tags TEXT NOT NULL DEFAULT '[]',"
    " description TEXT,"
    " timetable_summary TEXT,"
    " timezone TEXT NOT NULL DEFAULT 'UTC',"
    " max_active_runs INTEGER NOT NULL DEFAULT -1,"
    " max_active_tasks INTEGER NOT NULL DEFAULT -1,"
    " has_import_errors INTEGER NOT NULL DEFAULT 0,"
    " last_parsed_time BIGINT,"
    " latest_version_id TEXT,"
    " next_dagrun BIGINT,"
    " next_dagrun_data_interval_start BIGINT,"
    " next_dagrun_data_interval_end BIGINT,"
    " next_dagrun_create_after BIGINT)",
    "CREATE TABLE dag_version ("
    " id TEXT PRIMARY KEY,"
    " dag_id TEXT NOT NULL REFERENCES dag(dag_id) ON DELETE CASCADE,"
    " version_number INTEGER NOT NULL,"
    " hash TEXT NOT NULL,"
    " data TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " UNIQUE (dag_id, version_number))",
    "CREATE TABLE dag_run ("
    " id TEXT PRIMARY KEY,"
    " dag_id TEXT NOT NULL REFERENCES dag(dag_id) ON DELETE CASCADE,"
    " run_id TEXT NOT NULL,"
    " run_type TEXT NOT NULL,"
    " logical_date BIGINT,"
    " data_interval_start BIGINT,"
    " data_interval_end BIGINT,"
    " run_after BIGINT NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'queued',"
    " conf TEXT NOT NULL DEFAULT '{}',"
    " note TEXT,"
    " queued_at BIGINT,"
    " start_date BIGINT,"
    " end_date BIGINT,"
    " last_scheduling_decision BIGINT,"
    " triggered_by TEXT,"
    " clear_number INTEGER NOT NULL DEFAULT 0,"
    " dag_version_id TEXT REFERENCES dag_version(id),"
    " UNIQUE (dag_id, run_id),"
    " UNIQUE (dag_id, logical_date))",
    "CREATE INDEX dag_run_state ON dag_run (state, dag_id)",
    "CREATE TABLE task_instance ("
    " id TEXT PRIMARY KEY,"
    " dag_id TEXT NOT NULL,"
    " run_id TEXT NOT NULL,"
    " task_id TEXT NOT NULL,"
    " map_index INTEGER NOT NULL DEFAULT -1,"
    " state TEXT,"
    " try_number INTEGER NOT NULL DEFAULT 0,"
    " max_tries INTEGER NOT NULL DEFAULT 0,"
    " start_date BIGINT,"
    " end_date BIGINT,"
    " duration BIGINT,"
    " queued_at BIGINT,"
    " scheduled_at BIGINT,"
    " next_attempt_at BIGINT,"
    " hostname TEXT,"
    " worker_id TEXT,"
    " pid INTEGER,"
    " queue TEXT NOT NULL DEFAULT 'default',"
    " pool TEXT NOT NULL DEFAULT 'default_pool',"
    " pool_slots INTEGER NOT NULL DEFAULT 1,"
    " priority_weight INTEGER NOT NULL DEFAULT 1,"
    " operator TEXT,"
    " last_heartbeat_at BIGINT,"
    " rendered_fields TEXT,"
    " note TEXT,"
    " dag_version_id TEXT,"
    " UNIQUE (dag_id, run_id, task_id, map_index),"
    " FOREIGN KEY (dag_id, run_id) REFERENCES dag_run(dag_id, run_id) ON DELETE CASCADE)",
    /* the scheduler's hot paths: what is due, what is queued/running, a run's instances */
    "CREATE INDEX ti_state_due ON task_instance (state, next_attempt_at)",
    "CREATE INDEX ti_pool_state ON task_instance (pool, state)",
    "CREATE TABLE task_instance_history ("
    " ti_id TEXT NOT NULL,"
    " try_number INTEGER NOT NULL,"
    " dag_id TEXT NOT NULL,"
    " run_id TEXT NOT NULL,"
    " task_id TEXT NOT NULL,"
    " map_index INTEGER NOT NULL DEFAULT -1,"
    " state TEXT,"
    " max_tries INTEGER,"
    " start_date BIGINT,"
    " end_date BIGINT,"
    " duration BIGINT,"
    " queued_at BIGINT,"
    " hostname TEXT,"
    " worker_id TEXT,"
    " pid INTEGER,"
    " queue TEXT,"
    " pool TEXT,"
    " pool_slots INTEGER,"
    " priority_weight INTEGER,"
    " operator TEXT,"
    " PRIMARY KEY (ti_id, try_number))",
    "CREATE INDEX tih_run ON task_instance_history (dag_id, run_id, task_id)",
    "CREATE TABLE xcom ("
    " dag_id TEXT NOT NULL,"
    " run_id TEXT NOT NULL,"
    " task_id TEXT NOT NULL,"
    " map_index INTEGER NOT NULL DEFAULT -1,"
    " key TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " timestamp BIGINT NOT NULL,"
    " PRIMARY KEY (dag_id, run_id, task_id, map_index, key))",
    "CREATE TABLE variable ("
    " key TEXT PRIMARY KEY,"
    " val TEXT NOT NULL,"
    " description TEXT,"
    " is_encrypted INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE connection ("
    " conn_id TEXT PRIMARY KEY,"
    " conn_type TEXT NOT NULL,"
    " description TEXT,"
    " host TEXT,"
    " schema TEXT,"
    " login TEXT,"
    " password TEXT,"
    " port INTEGER,"
    " extra TEXT)",
    "CREATE TABLE slot_pool ("
    " pool TEXT PRIMARY KEY,"
    " slots INTEGER NOT NULL,"
    " description TEXT,"
    " include_deferred INTEGER NOT NULL DEFAULT 0)",
    "INSERT INTO slot_pool (pool, slots, description) VALUES ('default_pool', 128, 'Default pool')",
    "CREATE TABLE task_log ("
    " ti_id TEXT NOT NULL,"
    " try_number INTEGER NOT NULL,"
    " byte_offset BIGINT NOT NULL,"
    " ts BIGINT NOT NULL,"
    " data TEXT NOT NULL,"
    " PRIMARY KEY (ti_id, try_number, byte_offset))",
    "CREATE TABLE import_error ("
    " id {{ID}},"
    " filename TEXT NOT NULL UNIQUE,"
    " stacktrace TEXT NOT NULL,"
    " timestamp BIGINT NOT NULL)",
    "CREATE TABLE event_log ("
    " id {{ID}},"
    " dttm BIGINT NOT NULL,"
    " event TEXT NOT NULL,"
    " owner TEXT,"
    " dag_id TEXT,"
    " task_id TEXT,"
    " run_id TEXT,"
    " map_index INTEGER,"
    " try_number INTEGER,"
    " extra TEXT)",
    "CREATE INDEX event_log_dttm ON event_log (dttm)",
    "CREATE TABLE asset ("
    " id {{ID}},"
    " uri TEXT NOT NULL UNIQUE,"
    " name TEXT,"
    " grp TEXT NOT NULL DEFAULT 'asset',"
    " extra TEXT NOT NULL DEFAULT '{}',"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL)",
    "CREATE TABLE asset_event ("
    " id {{ID}},"
    " asset_id BIGINT NOT NULL REFERENCES asset(id) ON DELETE CASCADE,"
    " timestamp BIGINT NOT NULL,"
    " source_dag_id TEXT,"
    " source_task_id TEXT,"
    " source_run_id TEXT,"
    " source_map_index INTEGER,"
    " extra TEXT NOT NULL DEFAULT '{}')",
    "CREATE INDEX asset_event_asset ON asset_event (asset_id, timestamp)",
    /* which DAGs are scheduled on which assets, and the events each is still waiting on */
    "CREATE TABLE dag_schedule_asset_reference ("
    " asset_id BIGINT NOT NULL REFERENCES asset(id) ON DELETE CASCADE,"
    " dag_id TEXT NOT NULL REFERENCES dag(dag_id) ON DELETE CASCADE,"
    " PRIMARY KEY (asset_id, dag_id))",
    "CREATE TABLE asset_dag_run_queue ("
    " asset_id BIGINT NOT NULL REFERENCES asset(id) ON DELETE CASCADE,"
    " target_dag_id TEXT NOT NULL REFERENCES dag(dag_id) ON DELETE CASCADE,"
    " created_at BIGINT NOT NULL,"
    " PRIMARY KEY (asset_id, target_dag_id))",
    /* task instances queued but not yet confirmed by the broker (invariant 3) */
    "CREATE TABLE outbox ("
    " ti_id TEXT NOT NULL,"
    " try_number INTEGER NOT NULL,"
    " queue TEXT NOT NULL,"
    " priority INTEGER NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL,"
    " taken_until BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (ti_id, try_number))",
    "CREATE INDEX outbox_order ON outbox (created_at)",
    NULL,
};

/* A sensor in reschedule mode frees its slot between pokes and keeps its try (as Airflow
 * does); its timeout counts from the first poke, which therefore has to be remembered across
 * claims (Airflow keeps a task_reschedule table for this). */
static const char *const V2[] = {
    "ALTER TABLE task_instance ADD COLUMN first_poke_at BIGINT",
    NULL,
};

/* The REST API's users (passwords hashed by core/passwd.c, never stored in clear) and the
 * journal of run and task-instance state changes that /api/v2/gust/events streams: rows
 * are written in the same transaction as the change they record, so a follower that reads
 * the journal in id order sees every change once, in the order each row went through them
 * (ids may commit out of order across rows: the reader waits briefly for gaps). The
 * scheduler prunes rows older than api.events_retention, finding the cut-off by id (ts grows
 * with id), so ts needs no index: one index fewer on the hottest writes. */
static const char *const V3[] = {
    "CREATE TABLE api_user ("
    " id {{ID}},"
    " username TEXT NOT NULL UNIQUE,"
    " password_hash TEXT NOT NULL,"
    " role TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " changed_at BIGINT NOT NULL,"
    " last_login BIGINT)",
    "CREATE TABLE state_event ("
    " id {{ID}},"
    " ts BIGINT NOT NULL,"
    " kind TEXT NOT NULL,"
    " dag_id TEXT NOT NULL,"
    " run_id TEXT NOT NULL,"
    " task_id TEXT,"
    " map_index INTEGER,"
    " try_number INTEGER,"
    " state TEXT)",
    /* the API's lists: a DAG's runs by date (the DAG list's last run, the runs page) and the
     * audit log of one DAG */
    /* schedulers' heartbeats (Airflow's job table), for /api/v2/monitor/health */
    "CREATE TABLE job ("
    " id TEXT PRIMARY KEY,"
    " job_type TEXT NOT NULL,"
    " hostname TEXT,"
    " pid INTEGER,"
    " state TEXT NOT NULL,"
    " start_date BIGINT,"
    " end_date BIGINT,"
    " latest_heartbeat BIGINT NOT NULL)",
    "CREATE INDEX dag_run_dag_after ON dag_run (dag_id, run_after)",
    /* who triggered a manual run through the API (Airflow's triggering_user_name) */
    "ALTER TABLE dag_run ADD COLUMN triggering_user_name TEXT",
    "CREATE INDEX event_log_dag ON event_log (dag_id, dttm)",
    /* what the DAG list shows from the serialised DAG, copied onto the dag row at every sync
     * (store_dag_sync) so that a list reads no JSON */
    "ALTER TABLE dag ADD COLUMN display_name TEXT",
    "ALTER TABLE dag ADD COLUMN schedule_kind TEXT",
    "ALTER TABLE dag ADD COLUMN max_consecutive_failed_dag_runs INTEGER",
    "ALTER TABLE dag ADD COLUMN has_task_concurrency_limits INTEGER NOT NULL DEFAULT 0",
    NULL,
};
/* The scheduler's pass reads a run's instances by state (store/runpass.c): the ones that can
 * move, and whether any is unfinished, without visiting the run's other rows. */
static const char *const V4[] = {
    "CREATE INDEX ti_run_state ON task_instance (dag_id, run_id, state)",
    /* what the enqueue step lists, in its order: the top of the scheduled instances by
     * priority without sorting them all (store_ti_list_scheduled) */
    "CREATE INDEX ti_scheduled ON task_instance (priority_weight DESC, scheduled_at, id) WHERE state = 'scheduled'",
    NULL,
};
static const Migration MIGRATIONS[] = {
    {1, "initial schema: DAGs, versions, runs, task instances, XComs, variables, connections, pools, logs, "
        "import errors, event log, assets, outbox",
     V1},
    {2, "task_instance.first_poke_at: reschedule-mode sensors time out from their first poke", V2},
    {3, "api_user: REST API users; state_event: the journal of run and task-instance state changes; indexes for "
        "the API's lists",
     V3},
    {4, "indexes for the scheduler's pass: task_instance by (dag_id, run_id, state), and its scheduled "
        "instances by priority",
     V4},
};

const Migration *schema_migrations(int *n)
{
    *n = (int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]);
    return MIGRATIONS;
}
