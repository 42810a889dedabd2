/* cmd_store — `gust db|variables|connections|pools` (see cmd_store.h).
 *
 * The commands are thin: parse the line, open the store, call one store/kv.h function,
 * print. What they add is care at the edges: a connection's password is never printed
 * (nor are secret-looking keys of its extra, by Airflow's list of sensitive names), the
 * schema is checked before anything is read or written, and every change leaves an
 * event-log row saying who made it. */
#include "cli/cmd_store.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/run_int.h"
#include "core/secret.h"
#include "core/util.h"
#include "store/kv.h"
#include "store/store.h"
#include "store/xcom.h"

#define MASK "***"

/* ---- arguments -------------------------------------------------------------------------- */

enum {
    O_DESCRIPTION,
    O_CONN_URI,
    O_CONN_TYPE,
    O_CONN_HOST,
    O_CONN_LOGIN,
    O_CONN_PASSWORD,
    O_CONN_PORT,
    O_CONN_SCHEMA,
    O_CONN_EXTRA,
    O_CONN_DESCRIPTION,
    O_YES, /* a flag: no value */
    O_COUNT
};
static const char *const OPT_NAMES[O_COUNT] = {
    "description", "conn-uri",    "conn-type",  "conn-host",        "conn-login", "conn-password",
    "conn-port",   "conn-schema", "conn-extra", "conn-description", "yes",
};
#define OPT(o) (1u << (o))
#define CONN_FIELD_OPTS                                                                                      \
    (OPT(O_CONN_TYPE) | OPT(O_CONN_HOST) | OPT(O_CONN_LOGIN) | OPT(O_CONN_PASSWORD) | OPT(O_CONN_PORT) |     \
     OPT(O_CONN_SCHEMA))

#define MAX_POS 8

typedef struct Args {
    const char *cmd;          /* "variables set", for messages */
    const char *pos[MAX_POS]; /* positional arguments after the verb */
    int npos;
    int json;                 /* --output json */
    int help;                 /* --help / -h */
    const char *opt[O_COUNT]; /* option values; "" for a flag that was given; NULL when absent */
} Args;

/* A leading '-' followed by a digit is a negative number (pool slots -1), not an option. */
static int is_option(const char *a)
{
    return a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9');
}

/* Parse argv[from..argc) (argv[from - 1] is the verb). 0, or 2 after printing a usage error. */
static int parse_args(const char *cmd, int argc, char **argv, int from, unsigned allowed, Args *a)
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    int only_pos = 0;
    for (int i = from; i < argc; i++) {
        const char *arg = argv[i];
        if (only_pos || !is_option(arg)) {
            if (a->npos == MAX_POS) {
                fprintf(stderr, "gust %s: too many arguments\n", cmd);
                return 2;
            }
            a->pos[a->npos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            a->help = 1;
            continue;
        }
        int o = cli_output_json(argc, argv, &i);
        if (o < 0) {
            fprintf(stderr, "gust %s: --output takes json or text\n", cmd);
            return 2;
        }
        if (o) {
            a->json = o == 1;
            continue;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int found = -1;
        for (int k = 0; k < O_COUNT && arg[1] == '-'; k++)
            if (strlen(OPT_NAMES[k]) == len && strncmp(OPT_NAMES[k], name, len) == 0) found = k;
        if (found < 0 || !(allowed & OPT(found))) {
            fprintf(stderr, "gust %s: unknown option '%s'\n", cmd, arg);
            return 2;
        }
        if (found == O_YES) {
            a->opt[found] = "";
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            fprintf(stderr, "gust %s: --%s needs a value\n", cmd, OPT_NAMES[found]);
            return 2;
        }
        a->opt[found] = v;
    }
    return 0;
}

/* Exactly n positional arguments (or between lo and hi), else a usage error. */
static int want_pos(const Args *a, int lo, int hi, const char *usage)
{
    if (a->npos >= lo && a->npos <= hi) return 0;
    fprintf(stderr, "gust %s: %s\nusage: gust %s %s\n", a->cmd,
            a->npos < lo ? "missing arguments" : "too many arguments", a->cmd, usage);
    return 2;
}

/* ---- opening the store -------------------------------------------------------------------- */

/* mkdir -p, mode for the folders it creates. 0 or -1 (errno). */
static int make_dirs(const char *path, mode_t mode)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *q = p + 1; *q && rc == 0; q++) {
        if (*q != '/') continue;
        *q = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST) rc = -1;
        *q = '/';
    }
    if (rc == 0 && mkdir(p, mode) != 0 && errno != EEXIST) rc = -1;
    free(p);
    return rc;
}

/* The file of a sqlite:// URL, or NULL for another engine or an in-memory database.
 * "sqlite:///abs/path" and "sqlite:////abs/path" (what "sqlite:///$home/..." expands to)
 * both name /abs/path. Caller frees. */
static char *sqlite_path(const char *url)
{
    if (strncmp(url, "sqlite://", 9) != 0) return NULL;
    const char *p = url + 9;
    while (p[0] == '/' && p[1] == '/') p++;
    size_t n = strcspn(p, "?");
    if (!n || strncmp(p, ":memory:", 8) == 0) return NULL;
    return xstrndup(p, n);
}

char *cli_store_url(GustConfig *cfg, const char *cmd)
{
    const char *home = config_get(cfg, "core.home");
    if (home && *home && make_dirs(home, 0700) != 0) {
        fprintf(stderr, "gust %s: cannot create core.home %s: %s\n", cmd, home, strerror(errno));
        return NULL;
    }
    const char *url = config_get(cfg, "database.url");
    if (!url || !*url) {
        fprintf(stderr, "gust %s: database.url is empty\n", cmd);
        return NULL;
    }
    char *file = sqlite_path(url);
    if (!file) return xstrdup(url);
    char *slash = strrchr(file, '/');
    if (slash && slash != file) {
        *slash = '\0';
        if (make_dirs(file, 0700) != 0) {
            fprintf(stderr, "gust %s: cannot create %s: %s\n", cmd, file, strerror(errno));
            free(file);
            return NULL;
        }
        *slash = '/';
    }
    /* one canonical spelling for the driver: sqlite:// + the path */
    const char *query = strchr(url + 9, '?');
    char *norm = xasprintf("sqlite://%s%s", file, query ? query : "");
    free(file);
    return norm;
}

Store *cli_open_store(GustConfig *cfg, const char *cmd, int check)
{
    char *url = cli_store_url(cfg, cmd);
    if (!url) return NULL;
    char err[512];
    Store *s = store_open(url, err, sizeof err);
    free(url);
    if (!s) {
        fprintf(stderr, "gust %s: %s\n", cmd, err);
        return NULL;
    }
    if (check) {
        char msg[512];
        if (store_check(s, msg, sizeof msg) != 0) {
            fprintf(stderr, "gust %s: %s\n", cmd, msg);
            store_free(s);
            return NULL;
        }
    }
    return s;
}

/* The key that encrypts connection secrets: core.secret_key, else the key file in
 * core.home (created 0600 on first use). NULL after printing why. */
SecretKey *cli_open_key(GustConfig *cfg, const char *cmd)
{
    char err[512];
    const char *text = config_get(cfg, "core.secret_key");
    if (text && *text) {
        SecretKey *k = secret_key_parse(text, err, sizeof err);
        if (!k) fprintf(stderr, "gust %s: core.secret_key: %s\n", cmd, err);
        return k;
    }
    const char *home = config_get(cfg, "core.home");
    char *path = xasprintf("%s/secret.key", home && *home ? home : ".");
    SecretKey *k = secret_key_load_or_create(path, err, sizeof err);
    if (!k) fprintf(stderr, "gust %s: %s\n", cmd, err);
    free(path);
    return k;
}

/* Record a change in the event log: event "cli_<what>", owner "cli:$USER" (cli_audit). A
 * failure here does not undo the change; it is reported and the command still succeeds. */
static void audit(Store *s, const char *cmd, const char *what, cJSON *extra)
{
    char *event = xasprintf("cli_%s", what);
    cli_audit(s, cmd, event, NULL, extra);
    free(event);
}

static void print_json(cJSON *o)
{
    char *text = cJSON_Print(o);
    puts(text);
    free(text);
    cJSON_Delete(o);
}

static cJSON *json_str_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

/* A text table: cells are copied; printed with columns padded to their widest cell. */
typedef struct Table {
    char **cells;
    size_t n, ncols;
} Table;

static void table_row(Table *t, const char *const *cells)
{
    t->cells = xrealloc(t->cells, (t->n + t->ncols) * sizeof *t->cells);
    for (size_t i = 0; i < t->ncols; i++) t->cells[t->n++] = xstrdup(cells[i] ? cells[i] : "");
}

static void table_print(Table *t)
{
    size_t w[16] = {0};
    for (size_t i = 0; i < t->n; i++) {
        size_t len = strlen(t->cells[i]);
        if (len > w[i % t->ncols]) w[i % t->ncols] = len;
    }
    for (size_t i = 0; i < t->n; i++) {
        size_t c = i % t->ncols;
        if (c + 1 == t->ncols) printf("%s\n", t->cells[i]);
        else printf("%-*s  ", (int)w[c], t->cells[i]);
        free(t->cells[i]);
    }
    free(t->cells);
    t->cells = NULL;
    t->n = 0;
}

/* ---- gust db ------------------------------------------------------------------------------ */

static const char db_usage[] = "usage: gust db migrate [--output json]   apply the missing schema migrations\n"
                               "       gust db check [--output json]     0 iff the schema is this gust's\n"
                               "       gust db reset --yes               drop every gust table and migrate again\n";

int cmd_db(GustConfig *cfg, int argc, char **argv)
{
    const char *verb = argc > 1 ? argv[1] : NULL;
    if (!verb || strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 || strcmp(verb, "help") == 0) {
        fputs(db_usage, verb ? stdout : stderr);
        return verb ? 0 : 2;
    }
    Args a;
    int rc;
    if (strcmp(verb, "migrate") == 0) {
        if ((rc = parse_args("db migrate", argc, argv, 2, 0, &a)) != 0) return rc;
        if (a.help) return fputs(db_usage, stdout), 0;
        if ((rc = want_pos(&a, 0, 0, "[--output json]")) != 0) return rc;
        Store *s = cli_open_store(cfg, a.cmd, 0);
        if (!s) return 1;
        int applied = 0;
        if (store_migrate(s, &applied) != 0) {
            fprintf(stderr, "gust db migrate: %s\n", store_last_error(s));
            store_free(s);
            return 1;
        }
        int version = store_schema_version(s);
        if (a.json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "applied", applied);
            cJSON_AddNumberToObject(o, "version", version);
            print_json(o);
        } else {
            printf("applied %d migration%s; the database schema is at version %d\n", applied, applied == 1 ? "" : "s",
                   version);
        }
        cJSON *ex = cJSON_CreateObject();
        cJSON_AddNumberToObject(ex, "applied", applied);
        cJSON_AddNumberToObject(ex, "version", version);
        audit(s, a.cmd, "db_migrate", ex);
        store_free(s);
        return 0;
    }
    if (strcmp(verb, "check") == 0) {
        if ((rc = parse_args("db check", argc, argv, 2, 0, &a)) != 0) return rc;
        if (a.help) return fputs(db_usage, stdout), 0;
        if ((rc = want_pos(&a, 0, 0, "[--output json]")) != 0) return rc;
        Store *s = cli_open_store(cfg, a.cmd, 0);
        if (!s) return 1;
        char msg[512];
        int ok = store_check(s, msg, sizeof msg) == 0;
        int version = store_schema_version(s);
        if (a.json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddBoolToObject(o, "ok", ok);
            cJSON_AddNumberToObject(o, "version", version);
            cJSON_AddNumberToObject(o, "target", store_schema_target());
            cJSON_AddStringToObject(o, "message", msg);
            print_json(o);
        } else if (ok) {
            printf("%s\n", msg);
        } else {
            fprintf(stderr, "gust db check: %s\n", msg);
        }
        store_free(s);
        return ok ? 0 : 1;
    }
    if (strcmp(verb, "reset") == 0) {
        if ((rc = parse_args("db reset", argc, argv, 2, OPT(O_YES), &a)) != 0) return rc;
        if (a.help) return fputs(db_usage, stdout), 0;
        if ((rc = want_pos(&a, 0, 0, "--yes")) != 0) return rc;
        if (!a.opt[O_YES]) {
            fprintf(stderr, "gust db reset: this deletes every gust table and all its data; run it again with --yes\n");
            return 2;
        }
        Store *s = cli_open_store(cfg, a.cmd, 0);
        if (!s) return 1;
        if (store_reset(s) != 0) {
            fprintf(stderr, "gust db reset: %s\n", store_last_error(s));
            store_free(s);
            return 1;
        }
        int version = store_schema_version(s);
        if (a.json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddBoolToObject(o, "reset", 1);
            cJSON_AddNumberToObject(o, "version", version);
            print_json(o);
        } else {
            printf("dropped every gust table; the database schema is at version %d\n", version);
        }
        audit(s, a.cmd, "db_reset", NULL);
        store_free(s);
        return 0;
    }
    fputs(db_usage, stderr);
    fprintf(stderr, "gust db: unknown subcommand '%s'\n", verb);
    return 2;
}

/* ---- gust variables ------------------------------------------------------------------------- */

static const char var_usage[] =
    "usage: gust variables set KEY VALUE [--description D]   create or replace a variable\n"
    "       gust variables get KEY [--output json]           print its value\n"
    "       gust variables list [--output json]              every variable's key\n"
    "       gust variables delete KEY                        delete it\n";

static cJSON *var_json(const StoreVariable *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", v->key);
    cJSON_AddStringToObject(o, "value", v->val);
    cJSON_AddItemToObject(o, "description", json_str_or_null(v->description));
    return o;
}

static int var_run(Store *s, const char *verb, const Args *a)
{
    if (strcmp(verb, "set") == 0) {
        int created = 0;
        if (store_var_set(s, a->pos[0], a->pos[1], a->opt[O_DESCRIPTION], &created) != 0) return -1;
        if (a->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "key", a->pos[0]);
            cJSON_AddBoolToObject(o, "created", created);
            print_json(o);
        } else {
            printf("Variable %s %s\n", a->pos[0], created ? "created" : "updated");
        }
        cJSON *ex = cJSON_CreateObject();
        cJSON_AddStringToObject(ex, "key", a->pos[0]);
        audit(s, a->cmd, "variables_set", ex);
        return 0;
    }
    if (strcmp(verb, "get") == 0) {
        StoreVariable *v = store_var_get(s, a->pos[0], NULL);
        if (!v) return -1;
        if (a->json) print_json(var_json(v));
        else printf("%s\n", v->val);
        store_var_free(v);
        return 0;
    }
    if (strcmp(verb, "list") == 0) {
        StoreVariableList l;
        if (store_var_list(s, 0, 0, &l) != 0) return -1;
        if (a->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON *arr = cJSON_AddArrayToObject(o, "variables");
            for (size_t i = 0; i < l.n; i++) cJSON_AddItemToArray(arr, var_json(&l.items[i]));
            print_json(o);
        } else {
            for (size_t i = 0; i < l.n; i++) printf("%s\n", l.items[i].key);
        }
        store_var_list_free(&l);
        return 0;
    }
    /* delete */
    int n = store_var_delete(s, a->pos[0]);
    if (n < 0) return -1;
    if (n == 0) {
        store_set_error(s, "no variable '%.200s'", a->pos[0]);
        return -1;
    }
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "key", a->pos[0]);
        cJSON_AddBoolToObject(o, "deleted", 1);
        print_json(o);
    } else {
        printf("Variable %s deleted\n", a->pos[0]);
    }
    cJSON *ex = cJSON_CreateObject();
    cJSON_AddStringToObject(ex, "key", a->pos[0]);
    audit(s, a->cmd, "variables_delete", ex);
    return 0;
}

int cmd_variables(GustConfig *cfg, int argc, char **argv)
{
    const char *verb = argc > 1 ? argv[1] : NULL;
    if (!verb || strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 || strcmp(verb, "help") == 0) {
        fputs(var_usage, verb ? stdout : stderr);
        return verb ? 0 : 2;
    }
    static const struct {
        const char *verb, *usage;
        int lo, hi;
        unsigned opts;
    } verbs[] = {
        {"set", "KEY VALUE [--description D]", 2, 2, OPT(O_DESCRIPTION)},
        {"get", "KEY [--output json]", 1, 1, 0},
        {"list", "[--output json]", 0, 0, 0},
        {"delete", "KEY", 1, 1, 0},
    };
    for (size_t i = 0; i < GUST_ARRAY_LEN(verbs); i++) {
        if (strcmp(verb, verbs[i].verb) != 0) continue;
        char cmd[32];
        snprintf(cmd, sizeof cmd, "variables %s", verb);
        Args a;
        int rc = parse_args(cmd, argc, argv, 2, verbs[i].opts, &a);
        if (rc) return rc;
        if (a.help) return fputs(var_usage, stdout), 0;
        if ((rc = want_pos(&a, verbs[i].lo, verbs[i].hi, verbs[i].usage)) != 0) return rc;
        Store *s = cli_open_store(cfg, cmd, 1);
        if (!s) return 1;
        rc = var_run(s, verb, &a);
        if (rc != 0) fprintf(stderr, "gust %s: %s\n", cmd, store_last_error(s));
        store_free(s);
        return rc ? 1 : 0;
    }
    fputs(var_usage, stderr);
    fprintf(stderr, "gust variables: unknown subcommand '%s'\n", verb);
    return 2;
}

/* ---- gust connections ------------------------------------------------------------------------- */

static const char conn_usage[] =
    "usage: gust connections add CONN_ID --conn-uri URI [--conn-extra JSON] [--conn-description D]\n"
    "       gust connections add CONN_ID --conn-type TYPE [--conn-host H] [--conn-login L] [--conn-password P]\n"
    "                            [--conn-port N] [--conn-schema S] [--conn-extra JSON] [--conn-description D]\n"
    "       gust connections get CONN_ID [--output json]   its fields (the password shown as ***)\n"
    "       gust connections list [--output json]          every connection\n"
    "       gust connections delete CONN_ID\n";

/* Airflow's names of secrets (secrets_masker's DEFAULT_SENSITIVE_FIELDS): an extra key
 * containing one of them is shown masked. */
static int sensitive_key(const char *k)
{
    static const char *const words[] = {"access_token", "api_key", "apikey",   "authorization", "passphrase",
                                        "passwd",       "password", "private_key", "secret",     "token",
                                        "keyfile_dict", "service_account"};
    char *low = xstrdup(k);
    for (char *p = low; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    int hit = 0;
    for (size_t i = 0; i < GUST_ARRAY_LEN(words) && !hit; i++) hit = strstr(low, words[i]) != NULL;
    free(low);
    return hit;
}

/* Replace the value of every sensitive key, at any depth, with "***". */
static void mask_json(cJSON *j)
{
    for (cJSON *c = j ? j->child : NULL, *next; c; c = next) {
        next = c->next;
        if (c->string && sensitive_key(c->string) && !cJSON_IsNull(c)) {
            cJSON *m = cJSON_CreateString(MASK);
            m->string = xstrdup(c->string); /* cJSON frees it with free(), its default hook */
            cJSON_ReplaceItemViaPointer(j, c, m);
        } else {
            mask_json(c);
        }
    }
}

/* extra as it may be shown: sensitive keys masked; unparseable text masked whole. Caller frees. */
static char *masked_extra(const char *extra)
{
    if (!extra) return NULL;
    cJSON *j = cJSON_Parse(extra);
    if (!j) return xstrdup(MASK);
    mask_json(j);
    char *out = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return out;
}

static cJSON *conn_json(const StoreConnection *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "conn_id", c->conn_id);
    cJSON_AddStringToObject(o, "conn_type", c->conn_type);
    cJSON_AddItemToObject(o, "description", json_str_or_null(c->description));
    cJSON_AddItemToObject(o, "host", json_str_or_null(c->host));
    cJSON_AddItemToObject(o, "schema", json_str_or_null(c->schema));
    cJSON_AddItemToObject(o, "login", json_str_or_null(c->login));
    cJSON_AddItemToObject(o, "password", json_str_or_null(c->password || c->error ? MASK : NULL));
    if (c->port) cJSON_AddNumberToObject(o, "port", c->port);
    else cJSON_AddNullToObject(o, "port");
    char *extra = c->error ? NULL : masked_extra(c->extra);
    cJSON_AddItemToObject(o, "extra", json_str_or_null(extra));
    free(extra);
    if (c->error) cJSON_AddStringToObject(o, "error", c->error);
    return o;
}

static void conn_print(const StoreConnection *c)
{
    char port[16] = "";
    if (c->port) snprintf(port, sizeof port, "%d", c->port);
    char *extra = masked_extra(c->extra);
    const char *rows[][2] = {
        {"conn_id", c->conn_id},   {"conn_type", c->conn_type}, {"description", c->description},
        {"host", c->host},         {"schema", c->schema},       {"login", c->login},
        {"password", c->password ? MASK : ""}, {"port", port},  {"extra", extra},
    };
    Table t = {NULL, 0, 2};
    for (size_t i = 0; i < GUST_ARRAY_LEN(rows); i++) table_row(&t, rows[i]);
    table_print(&t);
    free(extra);
}

/* Build the connection `add` describes. 0, 1 (failure, printed) or 2 (usage, printed). */
static int conn_from_args(const Args *a, StoreConnection *c)
{
    memset(c, 0, sizeof *c);
    const char *uri = a->opt[O_CONN_URI];
    int fields = 0;
    for (int o = O_CONN_TYPE; o <= O_CONN_SCHEMA; o++) fields |= a->opt[o] != NULL;
    if (uri && fields) {
        fprintf(stderr, "gust %s: give either --conn-uri or --conn-type and its fields, not both\n", a->cmd);
        return 2;
    }
    if (!uri && !a->opt[O_CONN_TYPE]) {
        fprintf(stderr, "gust %s: give --conn-uri URI or --conn-type TYPE\n", a->cmd);
        return 2;
    }
    if (uri) {
        char err[300];
        if (store_conn_parse_uri(uri, c, err, sizeof err) != 0) {
            fprintf(stderr, "gust %s: %s\n", a->cmd, err);
            return 1;
        }
    } else {
        c->conn_type = xstrdup(a->opt[O_CONN_TYPE]);
        c->host = xstrdup(a->opt[O_CONN_HOST]);
        c->login = xstrdup(a->opt[O_CONN_LOGIN]);
        c->password = xstrdup(a->opt[O_CONN_PASSWORD]);
        c->schema = xstrdup(a->opt[O_CONN_SCHEMA]);
        if (a->opt[O_CONN_PORT]) {
            char *end;
            errno = 0;
            long port = strtol(a->opt[O_CONN_PORT], &end, 10);
            if (errno || end == a->opt[O_CONN_PORT] || *end || port < 1 || port > 65535) {
                fprintf(stderr, "gust %s: --conn-port must be a number 1-65535, not '%s'\n", a->cmd,
                        a->opt[O_CONN_PORT]);
                store_conn_clear(c);
                return 2;
            }
            c->port = (int)port;
        }
    }
    c->conn_id = xstrdup(a->pos[0]);
    if (a->opt[O_CONN_EXTRA]) {
        free(c->extra);
        c->extra = xstrdup(a->opt[O_CONN_EXTRA]);
    }
    c->description = xstrdup(a->opt[O_CONN_DESCRIPTION]);
    return 0;
}

static int conn_run(GustConfig *cfg, Store *s, const char *verb, const Args *a)
{
    if (strcmp(verb, "delete") == 0) {
        int n = store_conn_delete(s, a->pos[0]);
        if (n < 0) return -1;
        if (n == 0) {
            store_set_error(s, "no connection '%.200s'", a->pos[0]);
            return -1;
        }
        if (a->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "conn_id", a->pos[0]);
            cJSON_AddBoolToObject(o, "deleted", 1);
            print_json(o);
        } else {
            printf("Connection %s deleted\n", a->pos[0]);
        }
        cJSON *ex = cJSON_CreateObject();
        cJSON_AddStringToObject(ex, "conn_id", a->pos[0]);
        audit(s, a->cmd, "connections_delete", ex);
        return 0;
    }
    SecretKey *key = cli_open_key(cfg, a->cmd);
    if (!key) return 1;
    int rc = 0;
    if (strcmp(verb, "add") == 0) {
        StoreConnection c;
        rc = conn_from_args(a, &c);
        if (rc == 0 && store_conn_add(s, key, &c) != 0) rc = -1;
        if (rc == 0) {
            if (a->json) {
                cJSON *o = conn_json(&c);
                print_json(o);
            } else {
                printf("Connection %s added (%s)\n", c.conn_id, c.conn_type);
            }
            cJSON *ex = cJSON_CreateObject();
            cJSON_AddStringToObject(ex, "conn_id", c.conn_id);
            cJSON_AddStringToObject(ex, "conn_type", c.conn_type);
            audit(s, a->cmd, "connections_add", ex);
        }
        store_conn_clear(&c);
    } else if (strcmp(verb, "get") == 0) {
        StoreConnection *c = store_conn_get(s, key, a->pos[0], NULL);
        if (!c) rc = -1;
        else if (a->json) print_json(conn_json(c));
        else conn_print(c);
        store_conn_free(c);
    } else { /* list */
        StoreConnectionList l;
        if (store_conn_list(s, key, 0, 0, &l) != 0) {
            rc = -1;
        } else if (a->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON *arr = cJSON_AddArrayToObject(o, "connections");
            for (size_t i = 0; i < l.n; i++) cJSON_AddItemToArray(arr, conn_json(&l.items[i]));
            print_json(o);
        } else {
            Table t = {NULL, 0, 4};
            table_row(&t, (const char *const[]){"conn_id", "conn_type", "host", "port"});
            for (size_t i = 0; i < l.n; i++) {
                char port[16] = "";
                if (l.items[i].port) snprintf(port, sizeof port, "%d", l.items[i].port);
                table_row(&t, (const char *const[]){l.items[i].conn_id, l.items[i].conn_type, l.items[i].host, port});
            }
            table_print(&t);
            for (size_t i = 0; i < l.n; i++)
                if (l.items[i].error) fprintf(stderr, "gust %s: warning: %s\n", a->cmd, l.items[i].error);
        }
        store_conn_list_free(&l);
    }
    secret_key_free(key);
    return rc;
}

int cmd_connections(GustConfig *cfg, int argc, char **argv)
{
    const char *verb = argc > 1 ? argv[1] : NULL;
    if (!verb || strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 || strcmp(verb, "help") == 0) {
        fputs(conn_usage, verb ? stdout : stderr);
        return verb ? 0 : 2;
    }
    static const struct {
        const char *verb, *usage;
        int lo, hi;
        unsigned opts;
    } verbs[] = {
        {"add", "CONN_ID (--conn-uri URI | --conn-type TYPE ...)", 1, 1,
         OPT(O_CONN_URI) | CONN_FIELD_OPTS | OPT(O_CONN_EXTRA) | OPT(O_CONN_DESCRIPTION)},
        {"get", "CONN_ID [--output json]", 1, 1, 0},
        {"list", "[--output json]", 0, 0, 0},
        {"delete", "CONN_ID", 1, 1, 0},
    };
    for (size_t i = 0; i < GUST_ARRAY_LEN(verbs); i++) {
        if (strcmp(verb, verbs[i].verb) != 0) continue;
        char cmd[32];
        snprintf(cmd, sizeof cmd, "connections %s", verb);
        Args a;
        int rc = parse_args(cmd, argc, argv, 2, verbs[i].opts, &a);
        if (rc) return rc;
        if (a.help) return fputs(conn_usage, stdout), 0;
        if ((rc = want_pos(&a, verbs[i].lo, verbs[i].hi, verbs[i].usage)) != 0) return rc;
        if (strcmp(verb, "add") == 0) { /* usage errors before touching the store */
            StoreConnection c;
            rc = conn_from_args(&a, &c);
            store_conn_clear(&c);
            if (rc) return rc;
        }
        Store *s = cli_open_store(cfg, cmd, 1);
        if (!s) return 1;
        rc = conn_run(cfg, s, verb, &a);
        if (rc < 0) fprintf(stderr, "gust %s: %s\n", cmd, store_last_error(s));
        store_free(s);
        return rc ? 1 : 0;
    }
    fputs(conn_usage, stderr);
    fprintf(stderr, "gust connections: unknown subcommand '%s'\n", verb);
    return 2;
}

/* ---- gust pools ----------------------------------------------------------------------------------- */

static const char pool_usage[] =
    "usage: gust pools set NAME SLOTS [DESCRIPTION]   create or update a pool (SLOTS >= 0, or -1 for unlimited)\n"
    "       gust pools get NAME [--output json]        its slots and what occupies them\n"
    "       gust pools list [--output json]            every pool\n"
    "       gust pools delete NAME                     delete it (not default_pool)\n";

static cJSON *pool_json(const StorePool *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", p->name);
    cJSON_AddNumberToObject(o, "slots", p->slots);
    cJSON_AddItemToObject(o, "description", json_str_or_null(p->description));
    cJSON_AddBoolToObject(o, "include_deferred", p->include_deferred);
    int occupied = p->running + p->queued + (p->include_deferred ? p->deferred : 0);
    cJSON_AddNumberToObject(o, "occupied_slots", occupied);
    cJSON_AddNumberToObject(o, "running_slots", p->running);
    cJSON_AddNumberToObject(o, "queued_slots", p->queued);
    cJSON_AddNumberToObject(o, "deferred_slots", p->deferred);
    cJSON_AddNumberToObject(o, "open_slots", p->open == STORE_POOL_UNLIMITED ? -1 : p->open);
    return o;
}

static void pool_table(const StorePool *pools, size_t n)
{
    Table t = {NULL, 0, 6};
    table_row(&t, (const char *const[]){"pool", "slots", "running", "queued", "open", "description"});
    for (size_t i = 0; i < n; i++) {
        const StorePool *p = &pools[i];
        char slots[16], running[16], queued[16], open[16];
        snprintf(slots, sizeof slots, "%d", p->slots);
        snprintf(running, sizeof running, "%d", p->running);
        snprintf(queued, sizeof queued, "%d", p->queued);
        if (p->open == STORE_POOL_UNLIMITED) snprintf(open, sizeof open, "unlimited");
        else snprintf(open, sizeof open, "%d", p->open);
        table_row(&t, (const char *const[]){p->name, slots, running, queued, open, p->description});
    }
    table_print(&t);
}

/* SLOTS: an integer >= -1. */
static int parse_slots(const char *text, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < -1 || v > INT_MAX) return -1;
    *out = (int)v;
    return 0;
}

static int pool_run(Store *s, const char *verb, const Args *a)
{
    if (strcmp(verb, "set") == 0) {
        int slots = 0, created = 0;
        if (parse_slots(a->pos[1], &slots) != 0) {
            store_set_error(s, "SLOTS must be a number >= 0, or -1 for unlimited, not '%.40s'", a->pos[1]);
            return -1;
        }
        const char *desc = a->npos > 2 ? a->pos[2] : a->opt[O_DESCRIPTION];
        if (store_pool_set(s, a->pos[0], slots, desc, &created) != 0) return -1;
        if (a->json) {
            StorePool *p = store_pool_get(s, a->pos[0], NULL);
            if (!p) return -1;
            print_json(pool_json(p));
            store_pool_free(p);
        } else {
            if (slots < 0) printf("Pool %s %s with unlimited slots\n", a->pos[0], created ? "created" : "updated");
            else printf("Pool %s %s with %d slot%s\n", a->pos[0], created ? "created" : "updated", slots,
                        slots == 1 ? "" : "s");
        }
        cJSON *ex = cJSON_CreateObject();
        cJSON_AddStringToObject(ex, "pool", a->pos[0]);
        cJSON_AddNumberToObject(ex, "slots", slots);
        audit(s, a->cmd, "pools_set", ex);
        return 0;
    }
    if (strcmp(verb, "get") == 0) {
        StorePool *p = store_pool_get(s, a->pos[0], NULL);
        if (!p) return -1;
        if (a->json) print_json(pool_json(p));
        else pool_table(p, 1);
        store_pool_free(p);
        return 0;
    }
    if (strcmp(verb, "list") == 0) {
        StorePoolList l;
        if (store_pool_list(s, &l) != 0) return -1;
        if (a->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON *arr = cJSON_AddArrayToObject(o, "pools");
            for (size_t i = 0; i < l.n; i++) cJSON_AddItemToArray(arr, pool_json(&l.items[i]));
            print_json(o);
        } else {
            pool_table(l.items, l.n);
        }
        store_pool_list_free(&l);
        return 0;
    }
    /* delete */
    int n = store_pool_delete(s, a->pos[0]);
    if (n < 0) return -1;
    if (n == 0) {
        store_set_error(s, "no pool '%.200s'", a->pos[0]);
        return -1;
    }
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", a->pos[0]);
        cJSON_AddBoolToObject(o, "deleted", 1);
        print_json(o);
    } else {
        printf("Pool %s deleted\n", a->pos[0]);
    }
    cJSON *ex = cJSON_CreateObject();
    cJSON_AddStringToObject(ex, "pool", a->pos[0]);
    audit(s, a->cmd, "pools_delete", ex);
    return 0;
}

int cmd_pools(GustConfig *cfg, int argc, char **argv)
{
    const char *verb = argc > 1 ? argv[1] : NULL;
    if (!verb || strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0 || strcmp(verb, "help") == 0) {
        fputs(pool_usage, verb ? stdout : stderr);
        return verb ? 0 : 2;
    }
    static const struct {
        const char *verb, *usage;
        int lo, hi;
        unsigned opts;
    } verbs[] = {
        {"set", "NAME SLOTS [DESCRIPTION]", 2, 3, OPT(O_DESCRIPTION)},
        {"get", "NAME [--output json]", 1, 1, 0},
        {"list", "[--output json]", 0, 0, 0},
        {"delete", "NAME", 1, 1, 0},
    };
    for (size_t i = 0; i < GUST_ARRAY_LEN(verbs); i++) {
        if (strcmp(verb, verbs[i].verb) != 0) continue;
        char cmd[32];
        snprintf(cmd, sizeof cmd, "pools %s", verb);
        Args a;
        int rc = parse_args(cmd, argc, argv, 2, verbs[i].opts, &a);
        if (rc) return rc;
        if (a.help) return fputs(pool_usage, stdout), 0;
        if ((rc = want_pos(&a, verbs[i].lo, verbs[i].hi, verbs[i].usage)) != 0) return rc;
        int slots;
        if (strcmp(verb, "set") == 0 && parse_slots(a.pos[1], &slots) != 0) {
            fprintf(stderr, "gust %s: SLOTS must be a number >= 0, or -1 for unlimited, not '%s'\n", cmd, a.pos[1]);
            return 2;
        }
        Store *s = cli_open_store(cfg, cmd, 1);
        if (!s) return 1;
        rc = pool_run(s, verb, &a);
        if (rc != 0) fprintf(stderr, "gust %s: %s\n", cmd, store_last_error(s));
        store_free(s);
        return rc ? 1 : 0;
    }
    fputs(pool_usage, stderr);
    fprintf(stderr, "gust pools: unknown subcommand '%s'\n", verb);
    return 2;
}
