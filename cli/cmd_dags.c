/* cmd_dags — `gust dags validate|list|show|next-runs`: the DAG file language from the
 * command line. Output formats are the contract in DESIGN.md: text for people, and
 * --output json for scripts. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/dagbag.h"
#include "core/timeutil.h"
#include "core/util.h"

int cli_output_json(int argc, char **argv, int *i)
{
    const char *v = NULL;
    if (strcmp(argv[*i], "--output") == 0 || strcmp(argv[*i], "-o") == 0) {
        if (*i + 1 >= argc) return -1;
        v = argv[++*i];
    } else if (strncmp(argv[*i], "--output=", 9) == 0) {
        v = argv[*i] + 9;
    } else {
        return 0;
    }
    if (strcmp(v, "json") == 0) return 1;
    if (strcmp(v, "text") == 0 || strcmp(v, "table") == 0 || strcmp(v, "plain") == 0) return 2;
    return -1;
}

static void print_json(cJSON *o)
{
    char *s = cJSON_Print(o);
    puts(s);
    free(s);
    cJSON_Delete(o);
}

static void load_options(const GustConfig *cfg, DagLoadOptions *opt, const char *root)
{
    memset(opt, 0, sizeof *opt);
    opt->root = root;
    opt->default_timezone = config_get(cfg, "core.default_timezone");
}

static cJSON *diag_json(const Diag *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", d->file);
    cJSON_AddNumberToObject(o, "line", d->line);
    if (d->dag_id)
        cJSON_AddStringToObject(o, "dag_id", d->dag_id);
    else
        cJSON_AddNullToObject(o, "dag_id");
    cJSON_AddStringToObject(o, "message", d->message);
    return o;
}

static void print_diags(const DagBag *bag, int warnings_too)
{
    for (size_t i = 0; i < bag->diags.len; i++) {
        const Diag *d = &bag->diags.items[i];
        if (d->warning && !warnings_too) continue;
        fprintf(d->warning ? stderr : stdout, "%s:%d: %s: %s%s\n", d->file, d->line, d->dag_id ? d->dag_id : "-",
                d->warning ? "warning: " : "", d->message);
    }
}

static int dags_validate(GustConfig *cfg, int argc, char **argv)
{
    int json = 0;
    const char **paths = xcalloc((size_t)argc + 1, sizeof *paths);
    size_t n = 0;
    for (int i = 1; i < argc; i++) {
        int o = cli_output_json(argc, argv, &i);
        if (o < 0) {
            fprintf(stderr, "gust dags validate: --output takes json or text\n");
            free(paths);
            return 2;
        }
        if (o) {
            json = o == 1;
            continue;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: gust dags validate [--output json] [PATH...]\n"
                   "Checks DAG files (or every .yml/.yaml/.json under a folder; default: core.dags_folder).\n"
                   "Prints FILE:LINE: DAG_ID: message for each problem (DAG_ID is - for a problem with the\n"
                   "file as a whole). Exits 0 only when there is none.\n");
            free(paths);
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "gust dags validate: unknown option '%s'\n", argv[i]);
            free(paths);
            return 2;
        }
        paths[n++] = argv[i];
    }
    if (n == 0) paths[n++] = config_get(cfg, "core.dags_folder");
    DagBag bag;
    dagbag_init(&bag);
    DagLoadOptions opt;
    load_options(cfg, &opt, NULL);
    for (size_t i = 0; i < n; i++) dagbag_load_path(&bag, paths[i], &opt);
    size_t errors = diag_count_errors(&bag.diags);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *dags = cJSON_AddArrayToObject(o, "dags");
        for (size_t i = 0; i < bag.n_dags; i++) {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "dag_id", bag.dags[i]->dag_id);
            cJSON_AddStringToObject(d, "file", bag.dags[i]->file);
            cJSON *tasks = cJSON_AddArrayToObject(d, "tasks");
            for (size_t t = 0; t < bag.dags[i]->n_tasks; t++)
                cJSON_AddItemToArray(tasks, cJSON_CreateString(bag.dags[i]->tasks[t]->task_id));
            cJSON_AddItemToArray(dags, d);
        }
        cJSON *errs = cJSON_AddArrayToObject(o, "errors");
        cJSON *warns = cJSON_AddArrayToObject(o, "warnings");
        for (size_t i = 0; i < bag.diags.len; i++)
            cJSON_AddItemToArray(bag.diags.items[i].warning ? warns : errs, diag_json(&bag.diags.items[i]));
        print_json(o);
    } else {
        print_diags(&bag, 1);
        fprintf(stderr, "%zu DAG%s valid in %zu file%s, %zu error%s\n", bag.n_dags, bag.n_dags == 1 ? "" : "s",
                bag.n_files, bag.n_files == 1 ? "" : "s", errors, errors == 1 ? "" : "s");
    }
    dagbag_free(&bag);
    free(paths);
    return errors ? 1 : 0;
}

static const char *schedule_display(const Dag *d)
{
    return d->schedule_text ? d->schedule_text : "None";
}

static int dags_list(GustConfig *cfg, int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        int o = cli_output_json(argc, argv, &i);
        if (o < 0 || (!o && strcmp(argv[i], "--help") && strcmp(argv[i], "-h"))) {
            fprintf(stderr, "usage: gust dags list [--output json]\n");
            return 2;
        }
        if (!o) {
            printf("usage: gust dags list [--output json]\nLists the valid DAGs in core.dags_folder.\n");
            return 0;
        }
        json = o == 1;
    }
    const char *folder = config_get(cfg, "core.dags_folder");
    DagBag bag;
    dagbag_init(&bag);
    DagLoadOptions opt;
    load_options(cfg, &opt, NULL);
    dagbag_load_path(&bag, folder, &opt);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *dags = cJSON_AddArrayToObject(o, "dags");
        for (size_t i = 0; i < bag.n_dags; i++) {
            const Dag *d = bag.dags[i];
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "dag_id", d->dag_id);
            cJSON_AddStringToObject(j, "file", d->file);
            cJSON_AddStringToObject(j, "schedule", schedule_display(d));
            cJSON_AddStringToObject(j, "owner", d->owner);
            cJSON *tags = cJSON_AddArrayToObject(j, "tags");
            for (size_t t = 0; t < d->n_tags; t++) cJSON_AddItemToArray(tags, cJSON_CreateString(d->tags[t]));
            cJSON_AddNumberToObject(j, "tasks", (double)d->n_tasks);
            cJSON_AddItemToArray(dags, j);
        }
        cJSON_AddNumberToObject(o, "import_errors", (double)diag_count_errors(&bag.diags));
        print_json(o);
    } else {
        printf("%-40s %-16s %-6s %s\n", "dag_id", "schedule", "tasks", "file");
        for (size_t i = 0; i < bag.n_dags; i++) {
            const Dag *d = bag.dags[i];
            printf("%-40s %-16s %-6zu %s\n", d->dag_id, schedule_display(d), d->n_tasks, d->file);
        }
        size_t errors = diag_count_errors(&bag.diags);
        if (errors)
            fprintf(stderr, "%zu import error%s: run gust dags validate %s\n", errors, errors == 1 ? "" : "s", folder);
    }
    dagbag_free(&bag);
    return 0;
}

/* Load the dags folder and find one DAG; prints why when it cannot. */
static Dag *find_dag(GustConfig *cfg, DagBag *bag, const char *dag_id)
{
    const char *folder = config_get(cfg, "core.dags_folder");
    DagLoadOptions opt;
    load_options(cfg, &opt, NULL);
    dagbag_init(bag);
    dagbag_load_path(bag, folder, &opt);
    Dag *d = dagbag_find(bag, dag_id);
    if (d) return d;
    int had_errors = 0;
    for (size_t i = 0; i < bag->diags.len; i++) {
        const Diag *x = &bag->diags.items[i];
        if (!x->warning && x->dag_id && strcmp(x->dag_id, dag_id) == 0) {
            fprintf(stderr, "%s:%d: %s: %s\n", x->file, x->line, x->dag_id, x->message);
            had_errors = 1;
        }
    }
    if (had_errors)
        fprintf(stderr, "gust: DAG '%s' has errors (above)\n", dag_id);
    else
        fprintf(stderr, "gust: no DAG '%s' in %s\n", dag_id, folder);
    return NULL;
}

static void dot_quote(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') putchar('\\');
        putchar(*s);
    }
    putchar('"');
}

static void show_dot(const Dag *d)
{
    printf("digraph ");
    dot_quote(d->dag_id);
    printf(" {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n");
    for (size_t g = 0; g < d->n_groups; g++) {
        printf("  subgraph ");
        char *name = xasprintf("cluster_%s", d->groups[g]->group_id);
        dot_quote(name);
        free(name);
        printf(" {\n    label=");
        dot_quote(d->groups[g]->group_id);
        printf(";\n");
        for (size_t i = 0; i < d->n_tasks; i++) {
            if (d->tasks[i]->group_id && strcmp(d->tasks[i]->group_id, d->groups[g]->group_id) == 0) {
                printf("    ");
                dot_quote(d->tasks[i]->task_id);
                printf(";\n");
            }
        }
        printf("  }\n");
    }
    for (size_t i = 0; i < d->n_tasks; i++) {
        const DagTask *t = d->tasks[i];
        printf("  ");
        dot_quote(t->task_id);
        printf(" [label=");
        char *label = xasprintf("%s\n(%s)", t->task_id, t->op->name);
        dot_quote(label);
        free(label);
        printf("];\n");
        for (size_t u = 0; u < t->n_upstream; u++) {
            printf("  ");
            dot_quote(t->upstream[u]);
            printf(" -> ");
            dot_quote(t->task_id);
            printf(";\n");
        }
    }
    printf("}\n");
}

static void show_text(const Dag *d)
{
    char start[48] = "-", end[48] = "-";
    if (d->start_date_us >= 0) time_format_iso(d->start_date_us, 0, start, sizeof start);
    if (d->end_date_us >= 0) time_format_iso(d->end_date_us, 0, end, sizeof end);
    printf("dag_id:      %s\nfile:        %s:%d\n", d->dag_id, d->file, d->line);
    if (d->description) printf("description: %s\n", d->description);
    printf("schedule:    %s (%s)\nstart_date:  %s\nend_date:    %s\ncatchup:     %s\n", schedule_display(d),
           d->timezone, start, end, d->catchup ? "true" : "false");
    if (d->n_tags) {
        printf("tags:       ");
        for (size_t i = 0; i < d->n_tags; i++) printf(" %s", d->tags[i]);
        printf("\n");
    }
    printf("tasks (%zu, upstream first):\n", d->n_tasks);
    size_t *order = xmalloc((d->n_tasks + 1) * sizeof *order);
    char *cycle = NULL;
    if (dag_topo_order(d, order, &cycle) != 0) { /* cannot happen for a loaded DAG */
        for (size_t i = 0; i < d->n_tasks; i++) order[i] = i;
    }
    free(cycle);
    for (size_t k = 0; k < d->n_tasks; k++) {
        const DagTask *t = d->tasks[order[k]];
        printf("  %-32s %-22s", t->task_id, t->op->name);
        if (t->n_upstream) {
            printf(" after");
            for (size_t u = 0; u < t->n_upstream; u++) printf("%s %s", u ? "," : "", t->upstream[u]);
        }
        if (t->trigger_rule != TR_ALL_SUCCESS) printf(" [%s]", trigger_rule_name(t->trigger_rule));
        printf("\n");
    }
    free(order);
}

static int dags_show(GustConfig *cfg, int argc, char **argv)
{
    const char *dag_id = NULL, *format = "text";
    int json = 0;
    for (int i = 1; i < argc; i++) {
        int o = cli_output_json(argc, argv, &i);
        if (o < 0) goto usage;
        if (o) {
            json = o == 1;
        } else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
            format = argv[++i];
        } else if (strncmp(argv[i], "--format=", 9) == 0) {
            format = argv[i] + 9;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: gust dags show DAG_ID [--format text|dot] [--output json]\n");
            return 0;
        } else if (argv[i][0] != '-' && !dag_id) {
            dag_id = argv[i];
        } else {
            goto usage;
        }
    }
    if (!dag_id || (strcmp(format, "text") && strcmp(format, "dot"))) goto usage;
    DagBag bag;
    Dag *d = find_dag(cfg, &bag, dag_id);
    if (!d) {
        dagbag_free(&bag);
        return 1;
    }
    if (json)
        print_json(dag_to_json(d));
    else if (strcmp(format, "dot") == 0)
        show_dot(d);
    else
        show_text(d);
    dagbag_free(&bag);
    return 0;
usage:
    fprintf(stderr, "usage: gust dags show DAG_ID [--format text|dot] [--output json]\n");
    return 2;
}

static int dags_next_runs(GustConfig *cfg, int argc, char **argv)
{
    const char *dag_id = NULL;
    long n = 5;
    int64_t after = util_now_us();
    int json = 0;
    char err[256];
    for (int i = 1; i < argc; i++) {
        int o = cli_output_json(argc, argv, &i);
        if (o < 0) goto usage;
        if (o) {
            json = o == 1;
        } else if ((strcmp(argv[i], "-n") == 0 || strcmp(argv[i], "--num") == 0) && i + 1 < argc) {
            char *end;
            errno = 0;
            n = strtol(argv[++i], &end, 10);
            if (errno || *end || n < 1 || n > 10000) {
                fprintf(stderr, "gust dags next-runs: -n takes a number from 1 to 10000\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--after") == 0 && i + 1 < argc) {
            if (time_parse_iso(argv[++i], NULL, &after, err, sizeof err) != 0) {
                fprintf(stderr, "gust dags next-runs: --after: %s\n", err);
                return 2;
            }
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: gust dags next-runs DAG_ID [-n N] [--after ISO8601] [--output json]\n"
                   "The next N (default 5) times a run of the DAG will be triggered after the given\n"
                   "time (default now), one per line, ISO 8601 UTC.\n");
            return 0;
        } else if (argv[i][0] != '-' && !dag_id) {
            dag_id = argv[i];
        } else {
            goto usage;
        }
    }
    if (!dag_id) goto usage;
    DagBag bag;
    Dag *d = find_dag(cfg, &bag, dag_id);
    if (!d) {
        dagbag_free(&bag);
        return 1;
    }
    ScheduleCtx sc = {&d->schedule, d->tz, d->start_date_us, d->end_date_us, d->catchup};
    int64_t *runs = xmalloc((size_t)n * sizeof *runs);
    int got = schedule_next_runs(&sc, after, runs, (int)n);
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    for (int i = 0; i < got; i++) {
        char buf[48];
        time_format_iso(runs[i], 0, buf, sizeof buf);
        if (json)
            cJSON_AddItemToArray(arr, cJSON_CreateString(buf));
        else
            puts(buf);
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dag_id", d->dag_id);
        cJSON_AddItemToObject(o, "next_runs", arr);
        print_json(o);
    } else if (got == 0) {
        fprintf(stderr, "%s: no further runs (schedule %s)\n", d->dag_id, schedule_display(d));
    }
    free(runs);
    dagbag_free(&bag);
    return 0;
usage:
    fprintf(stderr, "usage: gust dags next-runs DAG_ID [-n N] [--after ISO8601] [--output json]\n");
    return 2;
}

int cmd_dags(GustConfig *cfg, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL;
    if (sub && strcmp(sub, "validate") == 0) return dags_validate(cfg, argc - 1, argv + 1);
    if (sub && strcmp(sub, "list") == 0) return dags_list(cfg, argc - 1, argv + 1);
    if (sub && strcmp(sub, "show") == 0) return dags_show(cfg, argc - 1, argv + 1);
    if (sub && strcmp(sub, "next-runs") == 0) return dags_next_runs(cfg, argc - 1, argv + 1);
    if (sub) {
        int rc = cmd_dags_run(cfg, argc, argv);
        if (rc >= 0) return rc;
    }
    FILE *out = sub && (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) ? stdout : stderr;
    fprintf(out, "usage: gust dags validate|list|show|next-runs|test|trigger|pause|unpause|list-runs ...\n"
                 "  validate [--output json] [PATH...]\n"
                 "  list [--output json]\n"
                 "  show DAG_ID [--format dot] [--output json]\n"
                 "  next-runs DAG_ID [-n N] [--after ISO8601] [--output json]\n"
                 "  test DAG_ID [LOGICAL_DATE] [--output json]\n"
                 "  trigger DAG_ID [--conf JSON] [--logical-date ISO8601] [--wait] [--output json]\n"
                 "  pause DAG_ID | unpause DAG_ID\n"
                 "  list-runs DAG_ID [--output json]\n");
    if (sub && out == stderr) fprintf(stderr, "gust dags: unknown subcommand '%s'\n", sub);
    return out == stdout ? 0 : 2;
}
