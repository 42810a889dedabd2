/* The executor, with real processes: exit codes and outcomes, output capture (order,
 * masking, splitting, the log file), the environment, the per-try folder, timeouts,
 * cancellation and the killing of whole process trees, rlimits, start failures, and
 * several runs at once from several threads. */
#include "core/secret.h"
#include "core/util.h"
#include "worker/executor.h"
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

typedef struct Lines {
    char **v;
    size_t n, cap;
    int bad_len;     /* a len that disagreed with strlen (checked by the test's thread:
                        CUnit's assertions are not thread-safe) */
} Lines;

static void collect_line(void *ud, const char *line, size_t len)
{
    Lines *l = ud;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    if (strlen(line) != len) l->bad_len = 1; /* must be NUL-terminated as well */
    l->v[l->n++] = xstrndup(line, len);
}

static void lines_free(Lines *l)
{
    CU_ASSERT_EQUAL(l->bad_len, 0);
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static ExecRequest base_request(const char *command)
{
    ExecRequest r;
    memset(&r, 0, sizeof r);
    r.command = command;
    r.work_root = "/tmp/gust-test-executor/work";
    r.timeout_us = 20 * INT64_C(1000000); /* a safety net: no test should get near it */
    r.rlimit_cpu_s = r.rlimit_as_mb = r.rlimit_nofile = -1;
    return r;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* A fresh folder under /tmp for one test; caller frees and removes it with tmp_done. */
static char *tmp_folder(void)
{
    mkdir("/tmp/gust-test-executor", 0755);
    char *dir = xstrdup("/tmp/gust-test-executor/t-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    return dir;
}

static void tmp_done(char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static char *slurp(const char *path)
{
    char err[256];
    size_t len;
    char *s = util_read_file(path, &len, err, sizeof err);
    if (!s) fprintf(stderr, "\n  %s\n", err);
    return s;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* No process of the task's group is left, not even a zombie. */
static void assert_group_gone(int pgid)
{
    CU_ASSERT(pgid > 0);
    errno = 0;
    int rc = kill(-pgid, 0);
    if (rc == 0 || errno != ESRCH) fprintf(stderr, "\n  process group %d still exists\n", pgid);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_EQUAL(errno, ESRCH);
}

static ExecOutcome run_simple(const char *cmd, ExecResult *res)
{
    ExecRequest r = base_request(cmd);
    static const int skip[] = {99};
    r.skip_exit_codes = skip;
    r.n_skip = 1;
    CU_ASSERT_EQUAL(exec_run(&r, res), 0);
    return res->outcome;
}

/* ---------------------------------------------------------------- outcomes */

static void test_exit_codes_map_to_success_failure_and_skip(void)
{
    ExecResult res;
    CU_ASSERT_EQUAL(run_simple("exit 0", &res), EXEC_SUCCESS);
    CU_ASSERT_EQUAL(res.exit_code, 0);
    CU_ASSERT_EQUAL(res.term_signal, 0);
    ASSERT_STR_EQ(res.message, "exit code 0");
    CU_ASSERT(res.pid > 0);
    CU_ASSERT(res.duration_us > 0);
    exec_result_free(&res);

    CU_ASSERT_EQUAL(run_simple("exit 3", &res), EXEC_FAILED);
    CU_ASSERT_EQUAL(res.exit_code, 3);
    ASSERT_STR_EQ(res.message, "exit code 3");
    exec_result_free(&res);

    CU_ASSERT_EQUAL(run_simple("echo skipping; exit 99", &res), EXEC_SKIPPED);
    CU_ASSERT_EQUAL(res.exit_code, 99);
    ASSERT_STR_EQ(res.message, "skipped (exit code 99)");
    exec_result_free(&res);

    /* Without a skip list, 99 is an ordinary failure. */
    ExecRequest r = base_request("exit 99");
    CU_ASSERT_EQUAL(exec_run(&r, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, EXEC_FAILED);
    exec_result_free(&res);
    exec_result_free(&res); /* twice is fine */
    exec_result_free(NULL);
    ASSERT_STR_EQ(exec_outcome_name(EXEC_CANCELLED), "cancelled");
}

static void test_killed_by_a_signal_is_a_failure(void)
{
    ExecResult res;
    CU_ASSERT_EQUAL(run_simple("kill -KILL $$", &res), EXEC_FAILED);
    CU_ASSERT_EQUAL(res.exit_code, -1);
    CU_ASSERT_EQUAL(res.term_signal, SIGKILL);
    ASSERT_STR_EQ(res.message, "killed by signal 9 (SIGKILL)");
    exec_result_free(&res);
}

static void test_stdin_is_dev_null(void)
{
    ExecResult res;
    CU_ASSERT_EQUAL(run_simple("if read -r x; then echo got; else echo eof; fi", &res),
                    EXEC_SUCCESS);
    ASSERT_STR_EQ(res.last_line, "eof");
    exec_result_free(&res);
}

/* ---------------------------------------------------------------- output */

static void test_stdout_and_stderr_lines_reach_log_and_callback_in_order(void)
{
    char *dir = tmp_folder();
    char *log = xasprintf("%s/logs/dag/run/task/1.log", dir); /* folders created */
    Lines got = {0};
    ExecRequest r = base_request("echo one; echo two >&2; echo three; echo four >&2; "
                                 "printf 'crlf\\r\\n'; printf partial");
    r.log_path = log;
    r.on_line = collect_line;
    r.ud = &got;
    ExecResult res;
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, EXEC_SUCCESS);
    const char *want[] = {"one", "two", "three", "four", "crlf", "partial"};
    CU_ASSERT_EQUAL_FATAL(got.n, GUST_ARRAY_LEN(want));
    for (size_t i = 0; i < got.n; i++) ASSERT_STR_EQ(got.v[i], want[i]);
    ASSERT_STR_EQ(res.last_line, "partial");

    char *text = slurp(log);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    regex_t re;
    CU_ASSERT_EQUAL_FATAL(regcomp(&re,
                                  "^\\[[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                                  "\\.[0-9]{6}Z\\] (.*)$",
                                  REG_EXTENDED),
                          0);
    size_t i = 0;
    for (char *save = NULL, *ln = strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        regmatch_t m[2];
        int ok = regexec(&re, ln, 2, m, 0) == 0;
        if (!ok) fprintf(stderr, "\n  bad log line: %s\n", ln);
        CU_ASSERT(ok);
        if (ok && i < GUST_ARRAY_LEN(want)) ASSERT_STR_EQ(ln + m[1].rm_so, want[i]);
        i++;
    }
    CU_ASSERT_EQUAL(i, GUST_ARRAY_LEN(want));
    regfree(&re);
    free(text);

    /* A second try appends to the same file. */
    exec_result_free(&res);
    r.command = "echo again";
    r.on_line = NULL;
    CU_ASSERT_EQUAL(exec_run(&r, &res), 0);
    text = slurp(log);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    ASSERT_CONTAINS(text, "] one\n");
    ASSERT_CONTAINS(text, "] again\n");
    free(text);

    exec_result_free(&res);
    lines_free(&got);
    free(log);
    tmp_done(dir);
}

static void test_last_line_is_the_last_non_empty_one(void)
{
    ExecResult res;
    CU_ASSERT_EQUAL(run_simple("echo first; echo 'result  '; echo; echo '   '", &res),
                    EXEC_SUCCESS);
    ASSERT_STR_EQ(res.last_line, "result");
    exec_result_free(&res);

    CU_ASSERT_EQUAL(run_simple("true", &res), EXEC_SUCCESS);
    CU_ASSERT_PTR_NULL(res.last_line);
    exec_result_free(&res);
}

static void test_registered_secret_is_masked_in_log_and_lines(void)
{
    char *dir = tmp_folder();
    char *log = xasprintf("%s/try.log", dir);
    secret_mask_register("hunter2-sesame");
    Lines got = {0};
    ExecRequest r = base_request("echo \"password=$PW\"; echo \"$PW\" >&2");
    const char *env[] = {"PW=hunter2-sesame", NULL};
    r.env = env;
    r.log_path = log;
    r.on_line = collect_line;
    r.ud = &got;
    ExecResult res;
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    CU_ASSERT_EQUAL_FATAL(got.n, 2);
    ASSERT_STR_EQ(got.v[0], "password=***");
    ASSERT_STR_EQ(got.v[1], "***");
    ASSERT_STR_EQ(res.last_line, "***");
    char *text = slurp(log);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NULL(strstr(text, "hunter2"));
    ASSERT_CONTAINS(text, "] password=***\n");
    free(text);
    secret_mask_clear();
    exec_result_free(&res);
    lines_free(&got);
    free(log);
    tmp_done(dir);
}

static void test_very_long_line_is_split(void)
{
    Lines got = {0};
    ExecRequest r = base_request("head -c 150000 /dev/zero | tr '\\0' x; echo; echo after");
    r.on_line = collect_line;
    r.ud = &got;
    ExecResult res;
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    CU_ASSERT_EQUAL_FATAL(got.n, 4);
    CU_ASSERT_EQUAL(strlen(got.v[0]), EXEC_LINE_MAX);
    CU_ASSERT_EQUAL(strlen(got.v[1]), EXEC_LINE_MAX);
    CU_ASSERT_EQUAL(strlen(got.v[2]), 150000 - 2 * EXEC_LINE_MAX);
    CU_ASSERT(strspn(got.v[2], "x") == strlen(got.v[2]));
    ASSERT_STR_EQ(got.v[3], "after");
    exec_result_free(&res);
    lines_free(&got);
}

static void collect_line_slowly(void *ud, const char *line, size_t len)
{
    struct timespec ts = {0, 100 * 1000};
    nanosleep(&ts, NULL);
    collect_line(ud, line, len);
}

static void test_slow_consumer_gets_every_line_written_before_exit(void)
{
    /* The task is long gone while we are still reading what it left in the pipe; the
     * drain window must not cut that short. */
    Lines got = {0};
    ExecRequest r = base_request("seq 1 2000");
    r.on_line = collect_line_slowly;
    r.ud = &got;
    ExecResult res;
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    CU_ASSERT_EQUAL(got.n, 2000);
    ASSERT_STR_EQ(res.last_line, "2000");
    exec_result_free(&res);
    lines_free(&got);
}

static void test_invalid_utf8_and_nul_are_escaped(void)
{
    Lines got = {0};
    ExecRequest r = base_request("printf 'a\\000b\\377\\303\\251\\n'; "
                                 "head -c 65535 /dev/zero | tr '\\0' x; printf '\\303\\251\\n'");
    r.on_line = collect_line;
    r.ud = &got;
    ExecResult res;
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    CU_ASSERT_EQUAL_FATAL(got.n, 3);
    ASSERT_STR_EQ(got.v[0], "a\\x00b\\xff\xc3\xa9"); /* é is valid and kept */
    /* A split never cuts a character in two: é moves to the next piece whole. */
    CU_ASSERT_EQUAL(strlen(got.v[1]), EXEC_LINE_MAX - 1);
    ASSERT_STR_EQ(got.v[2], "\xc3\xa9");
    exec_result_free(&res);
    lines_free(&got);
}

/* ---------------------------------------------------------------- XCom */

static void test_xcom_file_with_a_json_object_is_returned(void)
{
    char *dir = tmp_folder();
    char *xcom = xasprintf("%s/xcom.json", dir);
    ExecRequest r = base_request("printf '{\"rows\": 42, \"ok\": true}\\n' > \"$GUST_XCOM_FILE\"");
    r.xcom_path = xcom;
    ExecResult res;
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, EXEC_SUCCESS);
    ASSERT_STR_EQ(res.xcom_json, "{\"rows\": 42, \"ok\": true}\n");
    ASSERT_STR_EQ(res.xcom_error, "");
    exec_result_free(&res);

    /* Not an object: ignored, with a reason. */
    r.command = "echo '[1, 2, 3]' > \"$GUST_XCOM_FILE\"";
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    CU_ASSERT_PTR_NULL(res.xcom_json);
    ASSERT_CONTAINS(res.xcom_error, "does not hold a JSON object");
    exec_result_free(&res);

    r.command = "echo '{broken' > \"$GUST_XCOM_FILE\"";
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    CU_ASSERT_PTR_NULL(res.xcom_json);
    exec_result_free(&res);

    /* A file left by an earlier try is not mistaken for this try's. */
    FILE *f = fopen(xcom, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("{\"stale\": 1}", f);
    fclose(f);
    r.command = "true";
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    CU_ASSERT_PTR_NULL(res.xcom_json);
    ASSERT_STR_EQ(res.xcom_error, "");
    exec_result_free(&res);

    free(xcom);
    tmp_done(dir);
}

/* ---------------------------------------------------------------- environment, folders */

static void test_env_replaces_the_environment_unless_append_env(void)
{
    setenv("GUST_TEST_PARENT_ONLY", "from-parent", 1);
    setenv("GUST__DATABASE__URL", "postgresql://u:topsecret@db/gust", 1);
    const char *env[] = {"GREETING=hello", "GUST_TEST_PARENT_ONLY=overridden-later", NULL};
    const char *env2[] = {"GREETING=hello", NULL};
    ExecRequest r = base_request("echo \"$GREETING|${GUST_TEST_PARENT_ONLY-unset}|"
                                 "${GUST__DATABASE__URL-unset}|${PATH:+path}\"");
    ExecResult res;

    r.env = env2;
    r.append_env = 0;
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    ASSERT_STR_EQ(res.last_line, "hello|unset|unset|path");
    exec_result_free(&res);

    r.append_env = 1;
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    ASSERT_STR_EQ(res.last_line, "hello|from-parent|unset|path");
    exec_result_free(&res);

    /* env wins over the worker's value. */
    r.env = env;
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    ASSERT_STR_EQ(res.last_line, "hello|overridden-later|unset|path");
    exec_result_free(&res);

    unsetenv("GUST_TEST_PARENT_ONLY");
    unsetenv("GUST__DATABASE__URL");
}

static void test_default_cwd_is_a_fresh_folder_removed_afterwards(void)
{
    char *dir = tmp_folder();
    char *root = xasprintf("%s/work/root", dir); /* created */
    char *outside = xasprintf("%s/outside", dir);
    char *keep = xasprintf("%s/outside/keep", dir);
    mkdir(outside, 0755);
    FILE *f = fopen(keep, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fclose(f);

    /* Symlinks out of the folder must be removed, not followed; an unreadable subfolder
     * must not stop the removal. */
    char *cmd = xasprintf("mkdir -p a/b && touch a/b/f && ln -s '%s' dirlink && "
                          "ln -s '%s' filelink && chmod 000 a && pwd",
                          outside, keep);
    ExecRequest r = base_request(cmd);
    r.work_root = root;
    ExecResult res;
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, EXEC_SUCCESS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(res.last_line);
    char *prefix = xasprintf("%s/try-", root);
    CU_ASSERT(strncmp(res.last_line, prefix, strlen(prefix)) == 0);
    struct stat st;
    CU_ASSERT_EQUAL(stat(res.last_line, &st), -1);
    CU_ASSERT_EQUAL(errno, ENOENT);
    CU_ASSERT_EQUAL(stat(keep, &st), 0);
    exec_result_free(&res);

    /* Two tries get different folders. */
    r.command = "pwd";
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    char *first = res.last_line;
    res.last_line = NULL;
    exec_result_free(&res);
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    CU_ASSERT(first && res.last_line && strcmp(first, res.last_line) != 0);
    free(first);
    exec_result_free(&res);

    /* A given cwd is used, and left alone. */
    r.cwd = outside;
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    ASSERT_STR_EQ(res.last_line, outside);
    CU_ASSERT_EQUAL(stat(keep, &st), 0);
    exec_result_free(&res);

    free(prefix);
    free(cmd);
    free(keep);
    free(outside);
    free(root);
    tmp_done(dir);
}

static void test_worker_file_descriptors_are_not_inherited(void)
{
    int fd = open("/dev/null", O_RDONLY); /* deliberately without O_CLOEXEC */
    CU_ASSERT_FATAL(fd >= 0);
    char *cmd = xasprintf("if [ -e /proc/$$/fd/%d ]; then echo open; else echo closed; fi", fd);
    ExecResult res;
    CU_ASSERT_EQUAL(run_simple(cmd, &res), EXEC_SUCCESS);
    ASSERT_STR_EQ(res.last_line, "closed");
    exec_result_free(&res);
    free(cmd);
    close(fd);
}

static void test_rlimit_nofile_is_applied(void)
{
    ExecRequest r = base_request("ulimit -Sn; ulimit -Hn");
    r.rlimit_nofile = 32;
    Lines got = {0};
    r.on_line = collect_line;
    r.ud = &got;
    ExecResult res;
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, EXEC_SUCCESS);
    CU_ASSERT_EQUAL_FATAL(got.n, 2);
    ASSERT_STR_EQ(got.v[0], "32");
    ASSERT_STR_EQ(got.v[1], "32");
    exec_result_free(&res);
    lines_free(&got);

    r = base_request("ulimit -t");
    r.rlimit_cpu_s = 7;
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    ASSERT_STR_EQ(res.last_line, "7");
    exec_result_free(&res);
}

static void test_command_that_cannot_start_reports_why(void)
{
    ExecRequest r = base_request("echo never");
    r.cwd = "/nonexistent/gust-test";
    ExecResult res;
    CU_ASSERT_EQUAL(exec_run(&r, &res), -1);
    CU_ASSERT_EQUAL(res.outcome, EXEC_ERROR);
    ASSERT_STR_EQ(res.message,
                  "cannot start /bin/bash: chdir /nonexistent/gust-test: No such file or directory");
    CU_ASSERT_PTR_NULL(res.last_line);
    exec_result_free(&res);

    r = base_request(NULL);
    CU_ASSERT_EQUAL(exec_run(&r, &res), -1);
    CU_ASSERT_EQUAL(res.outcome, EXEC_ERROR);

    r = base_request("true");
    r.log_path = "/proc/gust-no-such/x.log";
    CU_ASSERT_EQUAL(exec_run(&r, &res), -1);
    ASSERT_CONTAINS(res.message, "cannot open the log file /proc/gust-no-such/x.log");
}

/* ---------------------------------------------------------------- stopping tasks */

static void test_timeout_kills_the_whole_process_tree(void)
{
    CU_ASSERT_EQUAL(exec_become_subreaper(), 0); /* so even zombies can be checked for */
    Lines got = {0};
    ExecRequest r = base_request("sleep 1000 & sleep 1000 & echo started; wait");
    r.timeout_us = 300000;
    r.kill_grace_us = 2000000;
    r.on_line = collect_line;
    r.ud = &got;
    ExecResult res;
    int64_t t0 = mono_us();
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    int64_t took = mono_us() - t0;
    CU_ASSERT_EQUAL(res.outcome, EXEC_TIMEOUT);
    ASSERT_STR_EQ(res.message, "timed out after 0.3s: terminated (SIGTERM)");
    CU_ASSERT_EQUAL(res.term_signal, SIGTERM);
    CU_ASSERT(took >= 300000);
    CU_ASSERT(took < 300000 + 2000000 + 500000);
    CU_ASSERT_EQUAL(got.n, 1);
    assert_group_gone(res.pid);
    exec_result_free(&res);
    lines_free(&got);
}

static void test_task_ignoring_sigterm_is_killed_after_the_grace_period(void)
{
    CU_ASSERT_EQUAL(exec_become_subreaper(), 0);
    ExecRequest r = base_request("trap '' TERM; sleep 100 & sleep 100");
    r.timeout_us = 200000;
    r.kill_grace_us = 300000;
    ExecResult res;
    int64_t t0 = mono_us();
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    int64_t took = mono_us() - t0;
    CU_ASSERT_EQUAL(res.outcome, EXEC_TIMEOUT);
    ASSERT_STR_EQ(res.message, "timed out after 0.2s: killed after the 0.3s grace period");
    CU_ASSERT_EQUAL(res.term_signal, SIGKILL);
    CU_ASSERT(took >= 500000);
    CU_ASSERT(took < 500000 + 700000);
    assert_group_gone(res.pid);
    exec_result_free(&res);
}

static void *set_flag_later(void *arg)
{
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    __atomic_store_n((volatile int *)arg, 1, __ATOMIC_RELAXED);
    return NULL;
}

static void test_cancel_flag_terminates_the_task(void)
{
    CU_ASSERT_EQUAL(exec_become_subreaper(), 0);
    volatile int cancel = 0;
    ExecRequest r = base_request("sleep 100 & sleep 100");
    r.cancel = &cancel;
    r.kill_grace_us = 3000000;
    pthread_t th;
    pthread_create(&th, NULL, set_flag_later, (void *)&cancel);
    ExecResult res;
    int64_t t0 = mono_us();
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    int64_t took = mono_us() - t0;
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(res.outcome, EXEC_CANCELLED);
    ASSERT_STR_EQ(res.message, "cancelled: terminated (SIGTERM)");
    CU_ASSERT(took >= 200000 && took < 1000000);
    assert_group_gone(res.pid);
    exec_result_free(&res);
}

static void test_sigterm_blocked_in_the_worker_still_reaches_the_task(void)
{
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, &old);
    ExecRequest r = base_request("sleep 100");
    r.timeout_us = 150000;
    r.kill_grace_us = 5000000;
    ExecResult res;
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    CU_ASSERT_EQUAL(res.outcome, EXEC_TIMEOUT);
    ASSERT_STR_EQ(res.message, "timed out after 0.15s: terminated (SIGTERM)");
    CU_ASSERT(res.duration_us < 1000000);
    exec_result_free(&res);
}

static void test_background_processes_die_when_the_task_exits(void)
{
    CU_ASSERT_EQUAL(exec_become_subreaper(), 0);
    ExecRequest r = base_request("sleep 1000 & echo bye");
    ExecResult res;
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, EXEC_SUCCESS);
    ASSERT_STR_EQ(res.last_line, "bye");
    CU_ASSERT(res.duration_us < 1000000);
    assert_group_gone(res.pid);
    exec_result_free(&res);

    /* A process that left the group keeps the pipe open: we stop reading after the drain
     * window instead of waiting for it. */
    r = base_request("setsid sleep 30 & echo $!");
    CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
    CU_ASSERT_EQUAL(res.outcome, EXEC_SUCCESS);
    CU_ASSERT(res.duration_us < 1000000);
    if (res.last_line) {
        int escaped = atoi(res.last_line);
        if (escaped > 0) {
            kill(escaped, SIGKILL);
            waitpid(escaped, NULL, 0); /* ours, as we are a subreaper */
        }
    }
    exec_result_free(&res);
}

/* ---------------------------------------------------------------- how the child starts */

/* The value of "Name:\t..." in /proc/<pid>/status text, or NULL. */
static const char *status_field(const Lines *l, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < l->n; i++)
        if (strncmp(l->v[i], name, n) == 0 && l->v[i][n] == ':') {
            const char *v = l->v[i] + n + 1;
            return v + strspn(v, " \t");
        }
    return NULL;
}

static void on_sighup(int sig)
{
    (void)sig;
}

/* Both ways of starting the child (clone with CLONE_VM, the default, and fork) give the
 * task the same start: no blocked or ignored signal from the worker, a process group of
 * its own, the rlimits. bash hands its inherited dispositions on to `cat`, which reports
 * its own in /proc/self/status. */
static void test_both_spawn_paths_give_the_task_a_clean_start(void)
{
    struct sigaction ign = {.sa_handler = SIG_IGN}, hup = {.sa_handler = on_sighup};
    struct sigaction old_pipe, old_usr2, old_hup;
    sigaction(SIGPIPE, &ign, &old_pipe);
    sigaction(SIGUSR2, &ign, &old_usr2);
    sigaction(SIGHUP, &hup, &old_hup);
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old_mask);

    for (int use_fork = 0; use_fork <= 1; use_fork++) {
        ExecRequest r =
            base_request("ulimit -Sv; ulimit -Hv; exec cat /proc/self/status /proc/self/stat");
        r.spawn_with_fork = use_fork;
        r.rlimit_as_mb = 4096;
        Lines got = {0};
        r.on_line = collect_line;
        r.ud = &got;
        ExecResult res;
        CU_ASSERT_EQUAL_FATAL(exec_run(&r, &res), 0);
        CU_ASSERT_EQUAL(res.outcome, EXEC_SUCCESS);
        CU_ASSERT_EQUAL(res.forked, use_fork); /* the default really is the clone path */
        CU_ASSERT_FATAL(got.n > 3);
        ASSERT_STR_EQ(got.v[0], "4194304");
        ASSERT_STR_EQ(got.v[1], "4194304");
        ASSERT_STR_EQ(status_field(&got, "SigBlk"), "0000000000000000");
        ASSERT_STR_EQ(status_field(&got, "SigIgn"), "0000000000000000");
        ASSERT_STR_EQ(status_field(&got, "SigCgt"), "0000000000000000");
        /* /proc/self/stat: "pid (comm) state ppid pgrp ...": the task leads its group */
        int pid = 0, pgrp = 0;
        const char *stat = got.v[got.n - 1];
        const char *after = strrchr(stat, ')');
        CU_ASSERT_FATAL(after != NULL);
        CU_ASSERT_EQUAL(sscanf(stat, "%d", &pid), 1);
        CU_ASSERT_EQUAL(sscanf(after + 1, " %*c %*d %d", &pgrp), 1);
        CU_ASSERT_EQUAL(pid, res.pid);
        CU_ASSERT_EQUAL(pgrp, res.pid);
        exec_result_free(&res);
        lines_free(&got);
    }

    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    sigaction(SIGUSR2, &old_usr2, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
}

/* execve's own failure comes back through the error pipe with its errno (here E2BIG: one
 * argument over the kernel's 128 KiB limit), on both paths, and the child is reaped. */
static void test_exec_failure_is_reported_with_its_errno(void)
{
    size_t n = 200 * 1024;
    char *cmd = xmalloc(n + 1);
    memset(cmd, ':', n);
    cmd[n] = '\0';
    for (int use_fork = 0; use_fork <= 1; use_fork++) {
        ExecRequest r = base_request(cmd);
        r.spawn_with_fork = use_fork;
        ExecResult res;
        CU_ASSERT_EQUAL(exec_run(&r, &res), -1);
        CU_ASSERT_EQUAL(res.outcome, EXEC_ERROR);
        CU_ASSERT_EQUAL(res.forked, use_fork);
        ASSERT_STR_EQ(res.message, "cannot start /bin/bash: Argument list too long");
        CU_ASSERT(res.pid > 0);
        errno = 0;
        CU_ASSERT_EQUAL(waitpid(res.pid, NULL, WNOHANG), -1); /* reaped already */
        CU_ASSERT_EQUAL(errno, ECHILD);
        exec_result_free(&res);

        r = base_request("true");
        r.spawn_with_fork = use_fork;
        r.cwd = "/etc/passwd";
        CU_ASSERT_EQUAL(exec_run(&r, &res), -1);
        ASSERT_STR_EQ(res.message, "cannot start /bin/bash: chdir /etc/passwd: Not a directory");
        exec_result_free(&res);
    }
    free(cmd);
}

static volatile sig_atomic_t usr1_seen, usr1_elsewhere;
static pid_t helper_pid;

static void on_usr1(int sig)
{
    (void)sig;
    usr1_seen++;
    if (getpid() != helper_pid) usr1_elsewhere = 1; /* ran in a child sharing our memory */
}

static void *spam_group(void *arg)
{
    volatile int *stop = arg;
    struct timespec ts = {0, 20 * 1000};
    while (!__atomic_load_n(stop, __ATOMIC_RELAXED)) {
        kill(0, SIGUSR1);
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* In a helper process leading a group of its own: a thread signals the whole group
 * (SIGUSR1, handled) over and over while tries start, so the signal keeps reaching
 * children that are not yet in their own group. The child has every signal blocked and
 * its disposition reset before it unblocks: the worker's handler never runs in it (it
 * would run on the helper's memory with clone), and the signal neither kills the task
 * (SIG_DFL would) nor is handed on. Exit status: 0 fine, 1 the handler ran in a child,
 * 2 a try did not succeed, 3 the signal never arrived (the test proved nothing). */
static int group_signal_helper(int use_fork, int tries)
{
    helper_pid = getpid();
    if (setpgid(0, 0) < 0) return 4;
    struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_RESTART};
    sigaction(SIGUSR1, &sa, NULL);
    volatile int stop = 0;
    pthread_t th;
    if (pthread_create(&th, NULL, spam_group, (void *)&stop) != 0) return 4;
    int failed = 0;
    for (int i = 0; i < tries && !failed; i++) {
        ExecRequest r = base_request("true");
        r.cwd = "/";
        r.spawn_with_fork = use_fork;
        ExecResult res;
        if (exec_run(&r, &res) != 0 || res.outcome != EXEC_SUCCESS || res.forked != use_fork) {
            fprintf(stderr, "\n  try %d: %s (forked %d)\n", i, res.message, res.forked);
            failed = 1;
        }
        exec_result_free(&res);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    return usr1_elsewhere ? 1 : failed ? 2 : usr1_seen == 0 ? 3 : 0;
}

static void test_signal_to_the_group_during_the_start_is_not_handled_in_the_child(void)
{
    for (int use_fork = 0; use_fork <= 1; use_fork++) {
        pid_t h = fork();
        CU_ASSERT_FATAL(h >= 0);
        if (h == 0) _exit(group_signal_helper(use_fork, 300));
        int st = 0;
        CU_ASSERT_EQUAL(waitpid(h, &st, 0), h);
        CU_ASSERT(WIFEXITED(st));
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fprintf(stderr, "\n  helper (fork %d): status 0x%x\n", use_fork, (unsigned)st);
        CU_ASSERT_EQUAL(WEXITSTATUS(st), 0);
    }
}

/* PR_SET_PDEATHSIG: when the worker dies (kill -9), its running task is killed too. The
 * task is started from a helper process that is then killed; we are a subreaper, so the
 * orphaned task becomes our child and its end can be seen. */
static void test_task_dies_with_the_worker(void)
{
    CU_ASSERT_EQUAL(exec_become_subreaper(), 0);
    char *dir = tmp_folder();
    char *pidfile = xasprintf("%s/pid", dir);
    char *cmd = xasprintf("echo $$ > %s.tmp && mv %s.tmp %s && exec sleep 100", pidfile, pidfile,
                          pidfile);
    pid_t h = fork();
    CU_ASSERT_FATAL(h >= 0);
    if (h == 0) {
        ExecRequest r = base_request(cmd);
        ExecResult res;
        exec_run(&r, &res);
        _exit(1);
    }
    int task = 0;
    for (int i = 0; i < 500 && task <= 0; i++) {
        char *text = NULL;
        if (access(pidfile, F_OK) == 0) text = slurp(pidfile);
        if (text) task = atoi(text);
        free(text);
        if (task <= 0) usleep(10000);
    }
    CU_ASSERT_FATAL(task > 0);
    kill(h, SIGKILL);
    CU_ASSERT_EQUAL(waitpid(h, NULL, 0), h);
    int st = 0, got = 0;
    for (int i = 0; i < 300 && got == 0; i++) {
        got = waitpid(task, &st, WNOHANG);
        if (got == 0) usleep(10000);
    }
    CU_ASSERT_EQUAL(got, task);
    CU_ASSERT(got == task && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    if (got != task) {
        kill(task, SIGKILL);
        waitpid(task, NULL, 0);
    }
    free(cmd);
    free(pidfile);
    tmp_done(dir);
}

/* ---------------------------------------------------------------- concurrency */

#define N_THREADS 8
#define N_LINES 300

typedef struct ThreadRun {
    int id;
    char *log;
    Lines got;
    ExecResult res;
    int rc;
} ThreadRun;

static void *thread_run(void *arg)
{
    ThreadRun *t = arg;
    char *cmd = xasprintf("for i in $(seq 1 %d); do echo \"T%d $i\"; "
                          "[ $((i %% 50)) = 0 ] && echo \"T%d err $i\" >&2; done; exit %d",
                          N_LINES, t->id, t->id, t->id);
    ExecRequest r = base_request(cmd);
    r.on_line = collect_line;
    r.ud = &t->got;
    r.log_path = t->log;
    t->rc = exec_run(&r, &t->res);
    free(cmd);
    return NULL;
}

static void test_concurrent_runs_keep_their_output_apart(void)
{
    char *dir = tmp_folder();
    ThreadRun runs[N_THREADS];
    pthread_t th[N_THREADS];
    memset(runs, 0, sizeof runs);
    for (int i = 0; i < N_THREADS; i++) {
        runs[i].id = i;
        runs[i].log = xasprintf("%s/%d.log", dir, i);
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, thread_run, &runs[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) pthread_join(th[i], NULL);

    for (int i = 0; i < N_THREADS; i++) {
        ThreadRun *t = &runs[i];
        CU_ASSERT_EQUAL(t->rc, 0);
        CU_ASSERT_EQUAL(t->res.exit_code, i);
        CU_ASSERT_EQUAL(t->res.outcome, i == 0 ? EXEC_SUCCESS : EXEC_FAILED);
        CU_ASSERT_EQUAL(t->got.n, N_LINES + N_LINES / 50);
        size_t k = 0;
        for (int n = 1; n <= N_LINES && k < t->got.n; n++) {
            char want[64];
            snprintf(want, sizeof want, "T%d %d", i, n);
            ASSERT_STR_EQ(t->got.v[k++], want);
            if (n % 50 == 0 && k < t->got.n) {
                snprintf(want, sizeof want, "T%d err %d", i, n);
                ASSERT_STR_EQ(t->got.v[k++], want);
            }
        }
        char *text = slurp(t->log);
        CU_ASSERT_PTR_NOT_NULL(text);
        size_t nl = 0;
        char mine[16];
        snprintf(mine, sizeof mine, "] T%d ", i);
        for (char *p = text; p && *p; p++)
            if (*p == '\n') nl++;
        CU_ASSERT_EQUAL(nl, N_LINES + N_LINES / 50);
        for (char *p = text; p && (p = strstr(p, "] T")); p++)
            CU_ASSERT(strncmp(p, mine, strlen(mine)) == 0);
        free(text);
        free(t->log);
        lines_free(&t->got);
        exec_result_free(&t->res);
    }
    tmp_done(dir);
}

static const UnitTest tests[] = {
    UNIT(test_exit_codes_map_to_success_failure_and_skip),
    UNIT(test_killed_by_a_signal_is_a_failure),
    UNIT(test_stdin_is_dev_null),
    UNIT(test_stdout_and_stderr_lines_reach_log_and_callback_in_order),
    UNIT(test_last_line_is_the_last_non_empty_one),
    UNIT(test_registered_secret_is_masked_in_log_and_lines),
    UNIT(test_very_long_line_is_split),
    UNIT(test_invalid_utf8_and_nul_are_escaped),
    UNIT(test_slow_consumer_gets_every_line_written_before_exit),
    UNIT(test_xcom_file_with_a_json_object_is_returned),
    UNIT(test_env_replaces_the_environment_unless_append_env),
    UNIT(test_default_cwd_is_a_fresh_folder_removed_afterwards),
    UNIT(test_worker_file_descriptors_are_not_inherited),
    UNIT(test_rlimit_nofile_is_applied),
    UNIT(test_command_that_cannot_start_reports_why),
    UNIT(test_timeout_kills_the_whole_process_tree),
    UNIT(test_task_ignoring_sigterm_is_killed_after_the_grace_period),
    UNIT(test_cancel_flag_terminates_the_task),
    UNIT(test_sigterm_blocked_in_the_worker_still_reaches_the_task),
    UNIT(test_background_processes_die_when_the_task_exits),
    UNIT(test_both_spawn_paths_give_the_task_a_clean_start),
    UNIT(test_exec_failure_is_reported_with_its_errno),
    UNIT(test_signal_to_the_group_during_the_start_is_not_handled_in_the_child),
    UNIT(test_task_dies_with_the_worker),
    UNIT(test_concurrent_runs_keep_their_output_apart),
    {0},
};

UNIT_MAIN("executor", tests)
