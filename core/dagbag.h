/* dagbag — loading DAG files: a file, a folder, or a text, into Dags plus the problems
 * found, each with file and line.
 *
 * A file holds a mapping of dag_id → DAG in the dag-factory dialect, an optional
 * `default:` block, and inherits from every `defaults.yml` between its folder and the
 * root (nearer wins, the file's own `default:` wins over all of them, the DAG's own
 * fields win over everything). One bad DAG never hides the good DAGs beside it: each is
 * built on its own, and a DAG with any error is left out of the bag while the others
 * stay in. Same name as Airflow's DagBag, same job. */
#ifndef GUST_DAGBAG_H
#define GUST_DAGBAG_H

#include <stddef.h>
#include <stdint.h>

#include "core/dag.h"
#include "core/diag.h"

typedef struct DagLoadOptions {
    const char *root;             /* where the defaults.yml cascade stops and what $CONFIG_ROOT_DIR
                                     means; NULL: the folder of each file */
    const char *default_timezone; /* for DAGs that set none; NULL: "UTC" */
    int64_t now_us;               /* "now" for relative start dates ("2 days"); 0: the clock */
    int no_file_refs;             /* 1: a reference to another file (schedule: {datasets: ..., file:
                                     PATH}) is an error instead of being read — for text from the
                                     network (the API's validate endpoint), which must not make the
                                     server open its own files */
} DagLoadOptions;

typedef struct DagBag {
    Dag **dags;        /* valid DAGs, in file order; owned */
    size_t n_dags;
    DiagList diags;    /* every problem found, errors and warnings */
    size_t n_files;    /* DAG files read */
} DagBag;

void dagbag_init(DagBag *b);
void dagbag_free(DagBag *b);

/* Load one file, or every .yml/.yaml/.json under a folder (sorted, recursively, skipping
 * defaults.yml and hidden entries). A dag_id already loaded from another file is an error
 * on the later file, as in Airflow. Returns the number of DAGs added. */
int dagbag_load_path(DagBag *b, const char *path, const DagLoadOptions *opt);

/* Load a document given as text (the API's validate endpoint, the fuzzer). `name` is used
 * in messages and picks the syntax (.json or YAML); no defaults.yml is read. */
int dagbag_load_text(DagBag *b, const char *name, const char *text, size_t len, const DagLoadOptions *opt);

Dag *dagbag_find(const DagBag *b, const char *dag_id);

#endif
