/* Settings: the table, the four sources and their precedence, every error message,
 * redaction in `config show`, the `gust config` command and the generated docs. */
#include "cli/cmd_config.h"
#include "core/config.h"
#include "unit.h"

#include <cjson/cJSON.h>
#include <unistd.h>

#define DOCS_PATH "docs/configuration.md"

/* ---- helpers --------------------------------------------------------------------- */

/* setenv/unsetenv with the old value kept, so every test leaves environ as it found it. */
typedef struct SavedEnv {
    const char *name;
    char *old; /* heap copy, NULL if it was unset */
} SavedEnv;

static SavedEnv env_set(const char *name, const char *value)
{
    const char *old = getenv(name);
    SavedEnv s = {name, old ? xstrdup(old) : NULL};
    if (value) setenv(name, value, 1);
    else unsetenv(name);
    return s;
}

static void env_restore(SavedEnv *s)
{
    if (s->old) setenv(s->name, s->old, 1);
    else unsetenv(s->name);
    free(s->old);
    s->old = NULL;
}

/* A temporary file holding text; caller unlinks and frees the returned path. */
static char *write_temp(const char *text)
{
    char *path = xstrdup("/tmp/gust-config-test-XXXXXX");
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

/* A mutable argv built from literals (-Wwrite-strings makes literals const). config_load
 * reorders argv, so the strings are freed through `owned`, not argv. */
typedef struct Args {
    int argc;     /* entries in argv, not counting the NULL */
    char **argv;  /* what the code under test sees and may compact */
    char **owned; /* the same strings, in their original order, for args_free */
} Args;

static Args args_of(const char *const *list)
{
    Args a = {0};
    while (list[a.argc]) a.argc++;
    a.argv = xcalloc((size_t)a.argc + 1, sizeof *a.argv);
    a.owned = xcalloc((size_t)a.argc + 1, sizeof *a.owned);
    for (int i = 0; i < a.argc; i++) a.argv[i] = a.owned[i] = xstrdup(list[i]);
    return a;
}
#define ARGS(...) args_of((const char *const[]){__VA_ARGS__, NULL})

static void args_free(Args *a)
{
    for (int i = 0; a->owned && a->owned[i]; i++) free(a->owned[i]);
    free(a->owned);
    free(a->argv);
}

/* config_set that must succeed. */
static void must_set(GustConfig *c, const char *key, const char *value)
{
    char err[256] = "";
    int rc = config_set(c, key, value, "test", err, sizeof err);
    if (rc != 0) fprintf(stderr, "\n  config_set(%s, %s): %s\n", key, value, err);
    CU_ASSERT_EQUAL(rc, 0);
}

/* config_set that must fail with exactly `want`. */
static void set_fails(const char *key, const char *value, const char *want)
{
    GustConfig *c = config_new();
    char err[256] = "";
    CU_ASSERT_EQUAL(config_set(c, key, value, "test", err, sizeof err), -1);
    ASSERT_STR_EQ(err, want);
    config_free(c);
}

static int env_fails(const char *const *envp, char *err, size_t errlen)
{
    GustConfig *c = config_new();
    int rc = config_load_env(c, envp, err, errlen);
    config_free(c);
    return rc;
}

static int ini_fails(const char *text, char *err, size_t errlen)
{
    GustConfig *c = config_new();
    int rc = config_load_ini(c, text, "gust.cfg", err, errlen);
    config_free(c);
    return rc;
}

/* Run `gust config ARGS...` into memory; returns the exit code. *out and *errs: caller frees. */
static int run_cmd(GustConfig *c, Args a, char **out, char **errs)
{
    size_t ol, el;
    FILE *o = open_memstream(out, &ol);
    FILE *e = open_memstream(errs, &el);
    int rc = cmd_config_run(c, a.argc, a.argv, o, e);
    args_free(&a);
    fclose(o);
    fclose(e);
    return rc;
}

/* ---- the table ------------------------------------------------------------------- */

static void test_every_row_is_well_formed_and_its_default_valid(void)
{
    size_t n;
    const ConfigSpec *t = config_specs(&n);
    CU_ASSERT(n >= 24);
    GustConfig *c = config_new(); /* aborts on an invalid default */
    for (size_t i = 0; i < n; i++) {
        const char *dot = strchr(t[i].key, '.');
        CU_ASSERT(dot && dot != t[i].key && dot[1] && !strchr(dot + 1, '.'));
        for (const char *p = t[i].key; *p; p++) CU_ASSERT(!(*p >= 'A' && *p <= 'Z'));
        CU_ASSERT(t[i].doc && *t[i].doc);
        CU_ASSERT((t[i].type == CONFIG_ENUM) == (t[i].allowed != NULL));
        for (size_t j = 0; j < i; j++) CU_ASSERT(strcmp(t[i].key, t[j].key) != 0);
        CU_ASSERT_PTR_NOT_NULL(config_get(c, t[i].key));
        ASSERT_STR_EQ(config_source(c, t[i].key), "default");
        CU_ASSERT_PTR_EQUAL(config_spec(t[i].key), &t[i]);
    }
    CU_ASSERT_PTR_NULL(config_get(c, "core.nope"));
    CU_ASSERT_PTR_NULL(config_spec("core.nope"));
    config_free(c);
    config_free(NULL);
}

static void test_defaults_expand_home_from_HOME(void)
{
    SavedEnv home = env_set("HOME", "/home/ada");
    GustConfig *c = config_new();
    ASSERT_STR_EQ(config_get(c, "core.home"), "/home/ada/.gust");
    ASSERT_STR_EQ(config_get(c, "core.dags_folder"), "/home/ada/.gust/dags");
    ASSERT_STR_EQ(config_get(c, "database.url"), "sqlite:////home/ada/.gust/gust.db");
    ASSERT_STR_EQ(config_get(c, "broker.url"), "local://");
    ASSERT_STR_EQ(config_get(c, "redis.url"), "");
    ASSERT_STR_EQ(config_get(c, "api.host"), "127.0.0.1");
    ASSERT_STR_EQ(config_get(c, "core.default_timezone"), "UTC");
    ASSERT_STR_EQ(config_get(c, "broker.queue_type"), "classic");
    ASSERT_STR_EQ(config_get(c, "logging.level"), "info");
    ASSERT_STR_EQ(config_get(c, "logging.format"), "text");
    CU_ASSERT_EQUAL(config_get_int(c, "api.port"), 8080);
    CU_ASSERT_EQUAL(config_get_int(c, "core.parallelism"), 32);
    CU_ASSERT_EQUAL(config_get_int(c, "core.max_active_tasks_per_dag"), 16);
    CU_ASSERT_EQUAL(config_get_int(c, "core.max_active_runs_per_dag"), 16);
    CU_ASSERT_EQUAL(config_get_int(c, "core.default_task_retries"), 0);
    CU_ASSERT_EQUAL(config_get_int(c, "api.workers"), 8);
    CU_ASSERT_EQUAL(config_get_int(c, "worker.concurrency"), 16);
    CU_ASSERT_EQUAL(config_get_bool(c, "core.dags_are_paused_at_creation"), 1);
    CU_ASSERT_EQUAL(config_get_duration_us(c, "scheduler.heartbeat"), 5000000);
    CU_ASSERT_EQUAL(config_get_duration_us(c, "scheduler.dag_dir_list_interval"), 30000000);
    CU_ASSERT_EQUAL(config_get_duration_us(c, "scheduler.queued_timeout"), 600000000);
    CU_ASSERT_EQUAL(config_get_duration_us(c, "worker.shutdown_grace"), 60000000);
    config_free(c);
    env_restore(&home);
}

static void test_changing_home_moves_every_home_relative_value(void)
{
    GustConfig *c = config_new();
    must_set(c, "core.home", "/srv/gust");
    ASSERT_STR_EQ(config_get(c, "core.dags_folder"), "/srv/gust/dags");
    ASSERT_STR_EQ(config_get(c, "database.url"), "sqlite:////srv/gust/gust.db");
    must_set(c, "core.dags_folder", "${home}/flows");
    ASSERT_STR_EQ(config_get(c, "core.dags_folder"), "/srv/gust/flows");
    must_set(c, "core.home", "/data");
    ASSERT_STR_EQ(config_get(c, "core.dags_folder"), "/data/flows");
    /* "$homes" is not "$home"; secrets are never expanded */
    must_set(c, "core.dags_folder", "/x/$homes");
    ASSERT_STR_EQ(config_get(c, "core.dags_folder"), "/x/$homes");
    must_set(c, "api.secret_key", "a$home");
    ASSERT_STR_EQ(config_get(c, "api.secret_key"), "a$home");
    config_free(c);
}

static void test_values_are_stored_in_canonical_form(void)
{
    GustConfig *c = config_new();
    must_set(c, "core.dags_are_paused_at_creation", "No");
    ASSERT_STR_EQ(config_get(c, "core.dags_are_paused_at_creation"), "false");
    CU_ASSERT_EQUAL(config_get_bool(c, "core.dags_are_paused_at_creation"), 0);
    must_set(c, "core.dags_are_paused_at_creation", "ON");
    CU_ASSERT_EQUAL(config_get_bool(c, "core.dags_are_paused_at_creation"), 1);
    must_set(c, "logging.level", "WARNING");
    ASSERT_STR_EQ(config_get(c, "logging.level"), "warning");
    must_set(c, "api.port", " 0443 ");
    ASSERT_STR_EQ(config_get(c, "api.port"), "443");
    must_set(c, "scheduler.heartbeat", "1m 30s");
    ASSERT_STR_EQ(config_get(c, "scheduler.heartbeat"), "1m 30s");
    CU_ASSERT_EQUAL(config_get_duration_us(c, "scheduler.heartbeat"), 90000000);
    ASSERT_STR_EQ(config_source(c, "scheduler.heartbeat"), "test");
    CU_ASSERT_EQUAL(config_source_kind(c, "scheduler.heartbeat"), CONFIG_SRC_OTHER);
    config_free(c);
}

static void test_durations_accept_units_words_and_bare_seconds(void)
{
    static const struct {
        const char *in;
        int64_t us;
    } ok[] = {
        {"30", 30000000LL},      {"30s", 30000000LL},     {"5m", 300000000LL},
        {"1h30m", 5400000000LL}, {"1h 30m", 5400000000LL}, {"2 days", 172800000000LL},
        {"1w", 604800000000LL},  {" 10 minutes ", 600000000LL}, {"1H", 3600000000LL},
    };
    GustConfig *c = config_new();
    for (size_t i = 0; i < GUST_ARRAY_LEN(ok); i++) {
        must_set(c, "scheduler.queued_timeout", ok[i].in);
        CU_ASSERT_EQUAL(config_get_duration_us(c, "scheduler.queued_timeout"), ok[i].us);
        ASSERT_STR_EQ(config_get(c, "scheduler.queued_timeout"), ok[i].in); /* shown as written */
    }
    must_set(c, "scheduler.heartbeat", "250ms");
    CU_ASSERT_EQUAL(config_get_duration_us(c, "scheduler.heartbeat"), 250000);
    must_set(c, "worker.shutdown_grace", "0");
    CU_ASSERT_EQUAL(config_get_duration_us(c, "worker.shutdown_grace"), 0);
    static const char *const bad[] = {"", "s", "5x", "1h30", "-5s"};
    for (size_t i = 0; i < GUST_ARRAY_LEN(bad); i++) {
        char err[256] = "";
        CU_ASSERT_EQUAL(config_set(c, "scheduler.queued_timeout", bad[i], "test", err, sizeof err), -1);
        ASSERT_CONTAINS(err, "scheduler.queued_timeout (from test): ");
    }
    CU_ASSERT_EQUAL(config_get_duration_us(c, "scheduler.queued_timeout"), 3600000000LL);
    config_free(c);
}

/* ---- sources and precedence ------------------------------------------------------- */

static void test_file_then_env_then_flag_each_override_the_one_below(void)
{
    char *path = write_temp("# gust settings\n"
                            "[api]\n"
                            "port = 1111\n"
                            "; a comment\n"
                            "[worker]\n"
                            "concurrency = 3\n"
                            "[logging]\n"
                            "level = debug\n");
    SavedEnv e1 = env_set("GUST__API__PORT", "2222");
    SavedEnv e2 = env_set("GUST__LOGGING__LEVEL", "warning");
    Args a = ARGS("gust", "--config", path, "--api.port=3333");
    char err[256] = "";
    GustConfig *c = config_new();
    int rc = config_load(c, &a.argc, a.argv, err, sizeof err);
    ASSERT_STR_EQ(err, "");
    CU_ASSERT_EQUAL(rc, 0);

    char *file_src = xasprintf("file %s:6", path);
    CU_ASSERT_EQUAL(config_get_int(c, "worker.concurrency"), 3);
    ASSERT_STR_EQ(config_source(c, "worker.concurrency"), file_src);
    CU_ASSERT_EQUAL(config_source_kind(c, "worker.concurrency"), CONFIG_SRC_FILE);
    ASSERT_STR_EQ(config_get(c, "logging.level"), "warning");
    ASSERT_STR_EQ(config_source(c, "logging.level"), "env GUST__LOGGING__LEVEL");
    CU_ASSERT_EQUAL(config_get_int(c, "api.port"), 3333);
    ASSERT_STR_EQ(config_source(c, "api.port"), "flag --api.port");
    CU_ASSERT_EQUAL(config_source_kind(c, "api.port"), CONFIG_SRC_FLAG);
    ASSERT_STR_EQ(config_source(c, "api.host"), "default");
    CU_ASSERT_EQUAL(a.argc, 1);
    CU_ASSERT_PTR_NULL(a.argv[1]);
    config_free(c);
    args_free(&a);

    /* Without the flag, env beats the file; without env, the file beats the default. */
    env_restore(&e2);
    char *flag = xasprintf("--config=%s", path);
    a = ARGS("gust", flag);
    free(flag);
    c = config_new();
    CU_ASSERT_EQUAL(config_load(c, &a.argc, a.argv, err, sizeof err), 0);
    CU_ASSERT_EQUAL(config_get_int(c, "api.port"), 2222);
    ASSERT_STR_EQ(config_source(c, "api.port"), "env GUST__API__PORT");
    ASSERT_STR_EQ(config_get(c, "logging.level"), "debug");
    config_free(c);
    args_free(&a);

    env_restore(&e1);
    unlink(path);
    free(path);
    free(file_src);
}

static void test_gust_home_sets_home_below_gust_core_home(void)
{
    char err[256] = "";
    const char *only_home[] = {"PATH=/bin", "GUST_HOME=/opt/gust", NULL};
    GustConfig *c = config_new();
    CU_ASSERT_EQUAL(config_load_env(c, only_home, err, sizeof err), 0);
    ASSERT_STR_EQ(config_get(c, "core.home"), "/opt/gust");
    ASSERT_STR_EQ(config_source(c, "core.home"), "env GUST_HOME");
    ASSERT_STR_EQ(config_get(c, "core.dags_folder"), "/opt/gust/dags");
    config_free(c);

    /* GUST__CORE__HOME wins whichever comes first in the environment. */
    const char *both[] = {"GUST__CORE__HOME=/b", "GUST_HOME=/a", NULL};
    c = config_new();
    CU_ASSERT_EQUAL(config_load_env(c, both, err, sizeof err), 0);
    ASSERT_STR_EQ(config_get(c, "core.home"), "/b");
    ASSERT_STR_EQ(config_source(c, "core.home"), "env GUST__CORE__HOME");
    config_free(c);

    /* Through config_load and the real environment, above the file. */
    char *path = write_temp("[core]\nhome = /from/file\n");
    SavedEnv gh = env_set("GUST_HOME", "/from/env");
    SavedEnv gch = env_set("GUST__CORE__HOME", NULL);
    Args a = ARGS("gust", "--config", path);
    c = config_new();
    CU_ASSERT_EQUAL(config_load(c, &a.argc, a.argv, err, sizeof err), 0);
    ASSERT_STR_EQ(config_get(c, "core.home"), "/from/env");
    config_free(c);
    args_free(&a);
    env_restore(&gch);
    env_restore(&gh);
    unlink(path);
    free(path);
}

static void test_config_load_removes_its_arguments_and_keeps_the_rest_in_order(void)
{
    char *path = write_temp("[core]\nparallelism = 7\n");
    Args a = ARGS("gust", "dags", "--core.parallelism=5", "list", "--output", "json", "--config", path,
                  "--api.port", "9000", "--dags-folder", "x", "--API.Port=9001",
                  "--core.dags-are-paused-at-creation", "false", "--", "--api.port=1");
    char err[256] = "";
    GustConfig *c = config_new();
    CU_ASSERT_EQUAL(config_load(c, &a.argc, a.argv, err, sizeof err), 0);
    const char *want[] = {"gust", "dags", "list", "--output", "json", "--dags-folder", "x", "--",
                          "--api.port=1"};
    CU_ASSERT_EQUAL(a.argc, (int)GUST_ARRAY_LEN(want));
    for (size_t i = 0; i < GUST_ARRAY_LEN(want) && i < (size_t)a.argc; i++) ASSERT_STR_EQ(a.argv[i], want[i]);
    CU_ASSERT_PTR_NULL(a.argv[a.argc]);
    CU_ASSERT_EQUAL(config_get_int(c, "core.parallelism"), 5); /* flag beats file */
    CU_ASSERT_EQUAL(config_get_int(c, "api.port"), 9001);      /* later flag wins */
    ASSERT_STR_EQ(config_source(c, "api.port"), "flag --API.Port");
    CU_ASSERT_EQUAL(config_get_bool(c, "core.dags_are_paused_at_creation"), 0);
    ASSERT_STR_EQ(config_source(c, "core.dags_are_paused_at_creation"),
                  "flag --core.dags-are-paused-at-creation");
    config_free(c);
    args_free(&a);

    /* Nothing to take: argv untouched. */
    a = ARGS("gust", "dags", "list");
    c = config_new();
    CU_ASSERT_EQUAL(config_load(c, &a.argc, a.argv, err, sizeof err), 0);
    CU_ASSERT_EQUAL(a.argc, 3);
    ASSERT_STR_EQ(a.argv[2], "list");
    CU_ASSERT_PTR_NULL(a.argv[3]);
    config_free(c);
    args_free(&a);
    unlink(path);
    free(path);
}

static void test_ini_accepts_comments_blank_lines_quotes_and_spaces(void)
{
    GustConfig *c = config_new();
    char err[256] = "";
    int rc = config_load_ini(c,
                             "\xEF\xBB\xBF# top\r\n"
                             "\n"
                             "  [ core ]  \r\n"
                             "\tdefault_timezone   =   Europe/Paris  \n"
                             "DAGS_FOLDER=\"/a b/dags\"\n"
                             "[redis]\n"
                             "url = ''\n"
                             "[database]\n"
                             "url = postgresql://u:p#w@db/gust ; not a comment\n",
                             "x.cfg", err, sizeof err);
    ASSERT_STR_EQ(err, "");
    CU_ASSERT_EQUAL(rc, 0);
    ASSERT_STR_EQ(config_get(c, "core.default_timezone"), "Europe/Paris");
    ASSERT_STR_EQ(config_get(c, "core.dags_folder"), "/a b/dags");
    ASSERT_STR_EQ(config_source(c, "core.dags_folder"), "file x.cfg:5");
    ASSERT_STR_EQ(config_get(c, "redis.url"), "");
    ASSERT_STR_EQ(config_get(c, "database.url"), "postgresql://u:p#w@db/gust ; not a comment");
    config_free(c);
}

/* ---- errors ---------------------------------------------------------------------- */

static void test_unknown_flag_names_it_and_suggests_the_closest_key(void)
{
    Args a = ARGS("gust", "--core.dag_folder=x", "dags");
    char err[256] = "";
    GustConfig *c = config_new();
    CU_ASSERT_EQUAL(config_load(c, &a.argc, a.argv, err, sizeof err), -1);
    ASSERT_STR_EQ(err, "unknown setting 'core.dag_folder' (from --core.dag_folder; did you mean "
                       "'core.dags_folder'?)");
    CU_ASSERT_EQUAL(a.argc, 2); /* argv is compacted even on error */
    ASSERT_STR_EQ(a.argv[1], "dags");
    config_free(c);
    args_free(&a);
}

static void test_unknown_env_variable_names_it_and_suggests_the_closest_key(void)
{
    char err[256] = "";
    const char *typo[] = {"GUST__CORE__DAG_FOLDER=/x", NULL};
    CU_ASSERT_EQUAL(env_fails(typo, err, sizeof err), -1);
    ASSERT_STR_EQ(err, "unknown setting 'core.dag_folder' (from GUST__CORE__DAG_FOLDER; did you mean "
                       "'core.dags_folder'?)");

    const char *nothing_close[] = {"GUST__ZZZ__QQQQQQQQ=1", NULL};
    CU_ASSERT_EQUAL(env_fails(nothing_close, err, sizeof err), -1);
    ASSERT_STR_EQ(err, "unknown setting 'zzz.qqqqqqqq' (from GUST__ZZZ__QQQQQQQQ)");

    const char *malformed[] = {"GUST__PARALLELISM=4", NULL};
    CU_ASSERT_EQUAL(env_fails(malformed, err, sizeof err), -1);
    ASSERT_STR_EQ(err, "malformed environment variable GUST__PARALLELISM (expected GUST__SECTION__KEY)");

    /* Other GUST_ names are not ours to judge. */
    const char *unrelated[] = {"GUST_BIN=/bin/gust", "GUSTO=1", NULL};
    CU_ASSERT_EQUAL(env_fails(unrelated, err, sizeof err), 0);
}

static void test_unknown_file_key_names_file_and_line(void)
{
    char err[256] = "";
    CU_ASSERT_EQUAL(ini_fails("[core]\n\ndag_folder = /x\n", err, sizeof err), -1);
    ASSERT_STR_EQ(err, "unknown setting 'core.dag_folder' (from gust.cfg:3; did you mean "
                       "'core.dags_folder'?)");
    /* right name, wrong section */
    CU_ASSERT_EQUAL(ini_fails("[core]\nport = 1\n", err, sizeof err), -1);
    ASSERT_STR_EQ(err, "unknown setting 'core.port' (from gust.cfg:2; did you mean 'api.port'?)");
}

static void test_out_of_range_and_malformed_values_name_key_value_and_source(void)
{
    char err[256] = "";
    const char *port[] = {"GUST__API__PORT=70000", NULL};
    CU_ASSERT_EQUAL(env_fails(port, err, sizeof err), -1);
    ASSERT_STR_EQ(err, "api.port = 70000 (from GUST__API__PORT) is out of range 0-65535");

    set_fails("core.parallelism", "0", "core.parallelism = 0 (from test) is out of range 1-4096");
    set_fails("core.parallelism", "99999999999999999999",
              "core.parallelism = 99999999999999999999 (from test) is out of range 1-4096");
    set_fails("api.port", "80x", "api.port = 80x (from test) is not an integer");
    set_fails("api.port", "", "api.port = '' (from test) is not an integer");
    set_fails("core.dags_are_paused_at_creation", "maybe",
              "core.dags_are_paused_at_creation = maybe (from test) is not a boolean "
              "(true/false, yes/no, on/off, 1/0)");
    set_fails("logging.level", "verbose",
              "logging.level = verbose (from test) is not one of debug, info, warning, error");
    set_fails("broker.queue_type", "stream",
              "broker.queue_type = stream (from test) is not one of classic, quorum");
    set_fails("scheduler.heartbeat", "5 parsecs",
              "scheduler.heartbeat (from test): invalid duration '5 parsecs': unknown unit 'parsecs' "
              "(use s, m, h, d or w)");
    set_fails("scheduler.heartbeat", "10ms",
              "scheduler.heartbeat = 10ms (from test) is out of range 100ms-10m");
    set_fails("core.dags_folder", "", "core.dags_folder = '' (from test) must not be empty");
    set_fails("database.url", "postgres:/u:pw@db",
              "database.url = postgres:/u:pw@db (from test) is not a URL (expected scheme://...)");
    set_fails("api.nope", "1", "unknown setting 'api.nope' (from test)");

    /* A rejected value leaves the old one in place. */
    GustConfig *c = config_new();
    must_set(c, "api.port", "9000");
    CU_ASSERT_EQUAL(config_set(c, "api.port", "-1", "test", err, sizeof err), -1);
    CU_ASSERT_EQUAL(config_get_int(c, "api.port"), 9000);
    config_free(c);
}

static void test_value_errors_from_a_file_name_file_and_line(void)
{
    char err[256] = "";
    CU_ASSERT_EQUAL(ini_fails("[api]\nhost = 0.0.0.0\nport = 70000\n", err, sizeof err), -1);
    ASSERT_STR_EQ(err, "api.port = 70000 (from gust.cfg:3) is out of range 0-65535");
}

static void test_flag_errors_name_the_flag(void)
{
    char err[256] = "";
    GustConfig *c = config_new();
    Args a = ARGS("gust", "--worker.concurrency", "lots");
    CU_ASSERT_EQUAL(config_load(c, &a.argc, a.argv, err, sizeof err), -1);
    ASSERT_STR_EQ(err, "worker.concurrency = lots (from --worker.concurrency) is not an integer");
    args_free(&a);

    a = ARGS("gust", "dags", "--api.port");
    CU_ASSERT_EQUAL(config_load(c, &a.argc, a.argv, err, sizeof err), -1);
    ASSERT_STR_EQ(err, "flag --api.port needs a value");
    CU_ASSERT_EQUAL(a.argc, 2);
    args_free(&a);

    a = ARGS("gust", "--config");
    CU_ASSERT_EQUAL(config_load(c, &a.argc, a.argv, err, sizeof err), -1);
    ASSERT_STR_EQ(err, "--config needs a FILE");
    args_free(&a);
    config_free(c);
}

static void test_ini_syntax_errors_name_file_and_line(void)
{
    char err[256] = "";
    CU_ASSERT_EQUAL(ini_fails("[core]\nparallelism = 4\njust words\n", err, sizeof err), -1);
    ASSERT_STR_EQ(err, "gust.cfg:3: expected 'key = value' or '[section]', got 'just words'");
    CU_ASSERT_EQUAL(ini_fails("# c\n[core\n", err, sizeof err), -1);
    ASSERT_STR_EQ(err, "gust.cfg:2: unterminated section header '[core'");
    CU_ASSERT_EQUAL(ini_fails("[]\n", err, sizeof err), -1);
    ASSERT_STR_EQ(err, "gust.cfg:1: bad section name '[]'");
    CU_ASSERT_EQUAL(ini_fails("parallelism = 4\n", err, sizeof err), -1);
    ASSERT_STR_EQ(err, "gust.cfg:1: 'parallelism' is outside any [section]");
    CU_ASSERT_EQUAL(ini_fails("[core]\n = 4\n", err, sizeof err), -1);
    ASSERT_STR_EQ(err, "gust.cfg:2: bad key '' (expected 'key = value')");
}

static void test_missing_config_file_is_an_error_naming_it(void)
{
    Args a = ARGS("gust", "--config=/nonexistent/gust.cfg");
    char err[256] = "";
    GustConfig *c = config_new();
    CU_ASSERT_EQUAL(config_load(c, &a.argc, a.argv, err, sizeof err), -1);
    ASSERT_STR_EQ(err, "cannot open /nonexistent/gust.cfg: No such file or directory");
    CU_ASSERT_EQUAL(a.argc, 1);
    config_free(c);
    args_free(&a);
}

/* ---- display --------------------------------------------------------------------- */

static void test_urls_show_everything_but_the_password(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"postgresql://gust:s3cret@db:5432/gust", "postgresql://gust:********@db:5432/gust"},
        {"amqp://guest:g@st@rabbit:5672/%2f", "amqp://guest:********@rabbit:5672/%2f"},
        {"redis://:pw@redis:6379/0", "redis://:********@redis:6379/0"},
        {"amqp://guest@rabbit/", "amqp://guest@rabbit/"},
        {"postgresql://db/gust?user=u&password=pw&sslmode=require",
         "postgresql://db/gust?user=u&password=********&sslmode=require"},
        {"sqlite:////home/a/gust.db", "sqlite:////home/a/gust.db"},
        {"local://", "local://"},
        {"", ""},
    };
    for (size_t i = 0; i < GUST_ARRAY_LEN(cases); i++) {
        StrBuf b = {0};
        config_redact_url(&b, cases[i].in);
        ASSERT_STR_EQ(sb_str(&b), cases[i].out);
        sb_free(&b);
    }
}

static void test_show_redacts_secrets_and_url_passwords(void)
{
    GustConfig *c = config_new();
    must_set(c, "database.url", "postgresql://gust:hunter2@db:5432/gust");
    must_set(c, "broker.url", "amqp://gust:rabbitpw@mq:5672/");
    must_set(c, "api.secret_key", "topsecret");
    must_set(c, "core.home", "/srv/gust");
    StrBuf b = {0};
    cmd_config_render_show(c, 0, &b);
    const char *s = sb_str(&b);
    ASSERT_CONTAINS(s, "database.url = postgresql://gust:********@db:5432/gust  (test)\n");
    ASSERT_CONTAINS(s, "broker.url = amqp://gust:********@mq:5672/  (test)\n");
    ASSERT_CONTAINS(s, "api.secret_key = ********  (test)\n");
    ASSERT_CONTAINS(s, "core.secret_key =   (default)\n");
    ASSERT_CONTAINS(s, "core.dags_folder = /srv/gust/dags  (default)\n");
    ASSERT_CONTAINS(s, "api.port = 8080  (default)\n");
    CU_ASSERT_PTR_NULL(strstr(s, "hunter2"));
    CU_ASSERT_PTR_NULL(strstr(s, "rabbitpw"));
    CU_ASSERT_PTR_NULL(strstr(s, "topsecret"));
    size_t n, lines = 0;
    config_specs(&n);
    for (const char *p = s; *p; p++) lines += *p == '\n';
    CU_ASSERT_EQUAL(lines, n);
    sb_free(&b);

    cmd_config_render_show(c, 1, &b);
    CU_ASSERT_PTR_NULL(strstr(sb_str(&b), "hunter2"));
    CU_ASSERT_PTR_NULL(strstr(sb_str(&b), "topsecret"));
    cJSON *root = cJSON_Parse(sb_str(&b));
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    cJSON *arr = cJSON_GetObjectItem(root, "settings");
    CU_ASSERT_EQUAL((size_t)cJSON_GetArraySize(arr), n);
    int seen = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        const char *key = cJSON_GetStringValue(cJSON_GetObjectItem(it, "key"));
        CU_ASSERT_PTR_NOT_NULL(cJSON_GetStringValue(cJSON_GetObjectItem(it, "doc")));
        CU_ASSERT(cJSON_IsBool(cJSON_GetObjectItem(it, "reloadable")));
        if (key && strcmp(key, "database.url") == 0) {
            seen = 1;
            ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(it, "value")),
                          "postgresql://gust:********@db:5432/gust");
            ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(it, "source")), "test");
            ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(it, "type")), "url");
            CU_ASSERT(cJSON_IsFalse(cJSON_GetObjectItem(it, "reloadable")));
        }
    }
    CU_ASSERT(seen);
    cJSON_Delete(root);
    sb_free(&b);
    config_free(c);
}

/* ---- the command ----------------------------------------------------------------- */

static void test_config_command_get_show_list_keys_and_usage(void)
{
    GustConfig *c = config_new();
    must_set(c, "database.url", "postgresql://gust:hunter2@db/gust");
    char *out, *errs;

    CU_ASSERT_EQUAL(run_cmd(c, ARGS("config", "get", "database.url"), &out, &errs), 0);
    ASSERT_STR_EQ(out, "postgresql://gust:hunter2@db/gust\n"); /* asked for by name: in clear */
    free(out);
    free(errs);

    CU_ASSERT_EQUAL(run_cmd(c, ARGS("config", "get", "api.port", "--output", "json"), &out, &errs), 0);
    cJSON *o = cJSON_Parse(out);
    CU_ASSERT_PTR_NOT_NULL(o);
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(o, "value")), "8080");
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(o, "source")), "default");
    cJSON_Delete(o);
    free(out);
    free(errs);

    CU_ASSERT_EQUAL(run_cmd(c, ARGS("config", "get", "core.dag_folder"), &out, &errs), 1);
    ASSERT_STR_EQ(errs, "gust config get: unknown setting 'core.dag_folder' (did you mean "
                        "'core.dags_folder'?)\n");
    ASSERT_STR_EQ(out, "");
    free(out);
    free(errs);

    CU_ASSERT_EQUAL(run_cmd(c, ARGS("config", "show", "--output=json"), &out, &errs), 0);
    ASSERT_CONTAINS(out, "\"settings\"");
    CU_ASSERT_PTR_NULL(strstr(out, "hunter2"));
    free(out);
    free(errs);

    CU_ASSERT_EQUAL(run_cmd(c, ARGS("config", "list-keys"), &out, &errs), 0);
    ASSERT_CONTAINS(out, "core.home\ncore.dags_folder\n");
    free(out);
    free(errs);

    CU_ASSERT_EQUAL(run_cmd(c, ARGS("config", "list-keys", "-o", "json"), &out, &errs), 0);
    o = cJSON_Parse(out);
    size_t n;
    config_specs(&n);
    CU_ASSERT_EQUAL((size_t)cJSON_GetArraySize(cJSON_GetObjectItem(o, "keys")), n);
    cJSON_Delete(o);
    free(out);
    free(errs);

    CU_ASSERT_EQUAL(run_cmd(c, ARGS("config", "--help"), &out, &errs), 0);
    ASSERT_CONTAINS(out, "usage: gust config show");
    free(out);
    free(errs);

    CU_ASSERT_EQUAL(run_cmd(c, ARGS("config"), &out, &errs), 2);
    ASSERT_CONTAINS(errs, "usage: gust config");
    free(out);
    free(errs);

    CU_ASSERT_EQUAL(run_cmd(c, ARGS("config", "frob"), &out, &errs), 2);
    ASSERT_CONTAINS(errs, "unknown command 'frob'");
    free(out);
    free(errs);

    CU_ASSERT_EQUAL(run_cmd(c, ARGS("config", "show", "--output", "yaml"), &out, &errs), 2);
    ASSERT_CONTAINS(errs, "--output must be text or json");
    free(out);
    free(errs);

    CU_ASSERT_EQUAL(run_cmd(c, ARGS("config", "get"), &out, &errs), 2);
    ASSERT_CONTAINS(errs, "needs one KEY");
    free(out);
    free(errs);
    config_free(c);
}

/* ---- docs ------------------------------------------------------------------------ */

/* pgbouncer's `make check`: a setting missing from the docs fails the build. The docs
 * are generated; GUST_UPDATE_DOCS=1 rewrites them from the table. */
static void test_docs_mention_every_key_and_match_the_table(void)
{
    StrBuf want = {0};
    cmd_config_render_docs(&want);
    const char *update = getenv("GUST_UPDATE_DOCS");
    if (update && strcmp(update, "1") == 0) {
        FILE *f = fopen(DOCS_PATH, "w");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fputs(sb_str(&want), f);
        fclose(f);
    }
    char err[256] = "";
    char *docs = util_read_file(DOCS_PATH, NULL, err, sizeof err);
    if (!docs) {
        fprintf(stderr, "\n  %s\n", err);
        CU_FAIL("docs/configuration.md is missing");
        sb_free(&want);
        return;
    }
    size_t n;
    const ConfigSpec *t = config_specs(&n);
    for (size_t i = 0; i < n; i++) {
        char *needle = xasprintf("`%s`", t[i].key);
        ASSERT_CONTAINS(docs, needle);
        free(needle);
    }
    int same = strcmp(docs, sb_str(&want)) == 0;
    if (!same)
        fprintf(stderr, "\n  %s is out of date; regenerate: GUST_UPDATE_DOCS=1 ./bin/tests/test_config\n",
                DOCS_PATH);
    CU_ASSERT(same);
    free(docs);
    sb_free(&want);
}

static const UnitTest tests[] = {
    UNIT(test_every_row_is_well_formed_and_its_default_valid),
    UNIT(test_defaults_expand_home_from_HOME),
    UNIT(test_changing_home_moves_every_home_relative_value),
    UNIT(test_values_are_stored_in_canonical_form),
    UNIT(test_durations_accept_units_words_and_bare_seconds),
    UNIT(test_file_then_env_then_flag_each_override_the_one_below),
    UNIT(test_gust_home_sets_home_below_gust_core_home),
    UNIT(test_config_load_removes_its_arguments_and_keeps_the_rest_in_order),
    UNIT(test_ini_accepts_comments_blank_lines_quotes_and_spaces),
    UNIT(test_unknown_flag_names_it_and_suggests_the_closest_key),
    UNIT(test_unknown_env_variable_names_it_and_suggests_the_closest_key),
    UNIT(test_unknown_file_key_names_file_and_line),
    UNIT(test_out_of_range_and_malformed_values_name_key_value_and_source),
    UNIT(test_value_errors_from_a_file_name_file_and_line),
    UNIT(test_flag_errors_name_the_flag),
    UNIT(test_ini_syntax_errors_name_file_and_line),
    UNIT(test_missing_config_file_is_an_error_naming_it),
    UNIT(test_urls_show_everything_but_the_password),
    UNIT(test_show_redacts_secrets_and_url_passwords),
    UNIT(test_config_command_get_show_list_keys_and_usage),
    UNIT(test_docs_mention_every_key_and_match_the_table),
    {0},
};

UNIT_MAIN("config", tests)
