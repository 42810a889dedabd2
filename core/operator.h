/* operator — the table of operators a DAG file may name, and the fields each accepts.
 *
 * Every operator is known by a short name (`bash`) and by the Airflow class paths users
 * already write (`airflow.operators.bash.BashOperator`, ...). Declaring each operator's
 * fields and their types is what lets the loader say "unknown field 'bash_comand' (did you
 * mean 'bash_command'?)" instead of failing at run time. The runtime side of each operator
 * lives in worker/operators/; this table is the part the DAG processor needs. */
#ifndef GUST_OPERATOR_H
#define GUST_OPERATOR_H

#include <stddef.h>

typedef enum FieldType {
    FT_STRING,      /* a scalar, kept as text */
    FT_INT,         /* an integer */
    FT_NUMBER,      /* an integer or a decimal */
    FT_BOOL,        /* true/false */
    FT_DURATION,    /* seconds, "5m", "1h30m", {__type__: datetime.timedelta, ...} */
    FT_DATETIME,    /* an ISO date or datetime */
    FT_MAP,         /* a mapping (any values) */
    FT_LIST,        /* a list (any values) */
    FT_STRINGS,     /* a string or a list of strings */
    FT_INT_OR_LIST, /* an integer or a list of integers */
    FT_ANY,         /* any value */
    FT_PYTHON,      /* exists in Airflow but is Python code: an error that says so */
} FieldType;

enum {
    FIELD_REQUIRED = 1 << 0,  /* the task is invalid without it */
    FIELD_TEMPLATED = 1 << 1, /* {{ }} templates in it are parsed and later rendered */
    FIELD_IGNORED = 1 << 2,   /* accepted for compatibility, has no effect in gust */
};

typedef struct OpField {
    const char *name;  /* as written in DAG files */
    FieldType type;    /* what values it takes */
    unsigned flags;    /* FIELD_* */
    const char *doc;   /* one line, for docs and errors */
} OpField;

typedef struct OperatorDef {
    const char *name;             /* short name, the canonical one stored in the model */
    const char *const *aliases;   /* Airflow class paths, NULL-terminated */
    const OpField *fields;        /* operator-specific fields, {NULL}-terminated */
    int is_sensor;                /* accepts mode/poke_interval/timeout/soft_fail */
    const char *doc;              /* one line */
} OperatorDef;

/* By short name or alias, exact match; NULL if unknown. */
const OperatorDef *operator_find(const char *name);
/* All operators, for docs and suggestions. */
const OperatorDef *operator_all(size_t *n);
/* 1 if name is an Airflow class path that is Python code gust cannot run (PythonOperator,
 * BranchPythonOperator, @task decorators, ...). Unknown dotted paths are also Python
 * classes, but this answers only for the well-known ones, to word the error better. */
int operator_is_known_python(const char *name);
/* The closest short name or alias to a misspelt one, or NULL. */
const char *operator_suggest(const char *name);

/* Field lookup across the operator's own fields, the sensor fields (for sensors) and the
 * base fields every task has. NULL if the task may not have this field. */
const OpField *operator_field(const OperatorDef *op, const char *field);
/* Fields every task accepts (retries, pool, ...), and fields every sensor accepts. */
const OpField *operator_base_fields(void);
const OpField *operator_sensor_fields(void);
/* Is this a field of any operator at all (for checking default_args)? */
const OpField *operator_any_field(const char *field);

#endif
