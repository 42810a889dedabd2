/* executor — runs one try of a task as `/bin/bash -c command` in a child process, the way
 * Airflow's BashOperator does, and reports how it ended.
 *
 * Worker threads call exec_run() concurrently, so everything the child needs (argv, envp,
 * paths, rlimits, file descriptors) is prepared before the child is started, and the child
 * calls only async-signal-safe functions until execve(). The child is started with
 * clone(CLONE_VM | CLONE_VFORK), as posix_spawn does, so that a worker with a large heap
 * does not pay for copying its page tables on every try; fork() remains for when the
 * kernel refuses that (and on request, to compare). The child leads a new process group; the
 * group is the unit we signal, so a task's background grandchildren go down with it: on
 * timeout or cancel (SIGTERM, a grace period, then SIGKILL) and, with SIGKILL, as soon as
 * the main process exits. Output (stdout and stderr in one pipe) is read with poll() on
 * the calling thread, masked, timestamped into the log file and handed to on_line.
 *
 * The environment. With append_env = 0 (the default, as Airflow's `env` replaces the
 * environment) the child sees only `env` plus PATH, HOME and LANG from the worker, so the
 * worker's own secrets (database and broker URLs, GUST__* settings, keys) never reach the
 * task. With append_env = 1 the child inherits the worker's environment (minus GUST__*
 * variables, which carry gust's settings and may hold credentials) plus `env`: whatever
 * else the worker's environment holds is visible to the task, so deployments that keep
 * secrets in the worker's environment should leave append_env off. The environment is
 * read without a lock: the process must not call setenv()/putenv() once workers run.
 *
 * Process requirements: SIGCHLD must not be set to SIG_IGN (children would be reaped by
 * the kernel and their exit status lost). The executor reaps only its own children
 * (waitpid on the child's pid and on its process group, never wait(-1)). */
#ifndef GUST_EXECUTOR_H
#define GUST_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#define EXEC_BASH "/bin/bash"
#define EXEC_LINE_MAX (64 * 1024)                 /* longer output lines are split */
#define EXEC_DEFAULT_GRACE_US INT64_C(5000000)    /* SIGTERM → SIGKILL when kill_grace_us is 0 */
#define EXEC_DRAIN_US INT64_C(100000)             /* pipe reading after the group is killed */
#define EXEC_SKIP_EXIT_CODE 99                    /* Airflow's default skip_on_exit_code */

typedef enum ExecOutcome {
    EXEC_SUCCESS,   /* exit code 0 */
    EXEC_SKIPPED,   /* exit code in skip_exit_codes (checked first, as Airflow does) */
    EXEC_FAILED,    /* any other exit code, or killed by a signal we did not send */
    EXEC_TIMEOUT,   /* timeout_us expired; we terminated the group */
    EXEC_CANCELLED, /* *cancel became non-zero; we terminated the group */
    EXEC_ERROR      /* could not start, or the exit status could not be collected */
} ExecOutcome;

typedef struct ExecRequest {
    const char *command;            /* run as: /bin/bash -c command (Airflow's BashOperator) */
    const char *const *env;         /* "NAME=value" strings to set, NULL-terminated (may be NULL) */
    int append_env;                 /* 1: the worker's environment + env; 0: env only plus PATH,
                                       HOME, LANG from the worker (see the file comment) */
    const char *cwd;                /* NULL: a fresh folder <work_root>/try-XXXXXX, removed afterwards */
    const char *work_root;          /* where per-try folders go (created if missing); NULL: /tmp */
    const char *log_path;           /* the try's log file, appended to (folders created); NULL: none */
    int64_t timeout_us;             /* -1: none. On expiry: SIGTERM to the whole process group,
                                       then SIGKILL after kill_grace_us */
    int64_t kill_grace_us;          /* 0: EXEC_DEFAULT_GRACE_US */
    long rlimit_cpu_s, rlimit_as_mb, rlimit_nofile; /* -1: leave as is (0 is a real limit);
                                       soft and hard limits are both lowered (never raised) */
    const int *skip_exit_codes;     /* exit codes meaning "skipped" (Airflow default: 99) */
    size_t n_skip;
    void (*on_line)(void *ud, const char *line, size_t len); /* every output line, masked, without
                                       its newline (nor a trailing CR), as it is produced; called
                                       on the calling thread; may be NULL */
    void *ud;                       /* passed to on_line */
    void (*on_idle)(void *ud);      /* called on the calling thread about every 250 ms while the
                                       task runs (e.g. to flush buffered log lines a follower
                                       waits for); may be NULL */
    volatile int *cancel;           /* if set and becomes non-zero: terminate like a timeout
                                       → EXEC_CANCELLED (checked every 50 ms) */
    const char *xcom_path;          /* if set: exported as GUST_XCOM_FILE; a stale file is removed
                                       before the start; after the run, a JSON object in it is
                                       returned in xcom_json */
    int spawn_with_fork;            /* 1: start the child with fork() instead of
                                       clone(CLONE_VM | CLONE_VFORK); the same child either
                                       way, only slower in a large process. For benchmarks
                                       and tests that compare the two; workers leave it 0 */
} ExecRequest;

typedef struct ExecResult {
    ExecOutcome outcome;
    int exit_code;                  /* -1 if killed by a signal (or never started) */
    int term_signal;                /* 0 if exited */
    char *last_line;                /* last non-empty output line (masked, trailing blanks
                                       removed): Airflow's return_value XCom; NULL if none */
    char *xcom_json;                /* contents of GUST_XCOM_FILE if a JSON object; NULL otherwise */
    char xcom_error[160];           /* why a present XCom file was ignored; "" if not */
    int pid;                        /* the child's pid, which is also its process-group id */
    int64_t duration_us;            /* from the start of the child to reaping */
    int forked;                     /* 1 if the child was started with fork(): requested
                                       (spawn_with_fork), or the kernel refused the clone
                                       (ENOSYS, EINVAL, EPERM: then for the whole process) */
    char message[256];              /* human summary: "exit code 0", "exit code 3",
                                       "skipped (exit code 99)", "killed by signal 9 (SIGKILL)",
                                       "timed out after 2s: terminated (SIGTERM)",
                                       "timed out after 2s: killed after the 5s grace period",
                                       "cancelled: terminated (SIGTERM)",
                                       "cannot start /bin/bash: chdir /x: No such file or directory" */
} ExecResult;

/* Run one try. Returns 0 when the command ran (see res->outcome), -1 when it could not be
 * started (outcome EXEC_ERROR, message says why; nothing was run). res is always filled;
 * free it with exec_result_free. Thread-safe. */
int exec_run(const ExecRequest *req, ExecResult *res);

/* Frees last_line and xcom_json; accepts NULL and may be called twice. */
void exec_result_free(ExecResult *res);

/* "success", "skipped", "failed", "timeout", "cancelled", "error". */
const char *exec_outcome_name(ExecOutcome o);

/* Optional, once at worker start-up: make this process the reaper of orphaned descendants
 * (PR_SET_CHILD_SUBREAPER). Killed grandchildren of a task are then reparented to us and
 * exec_run reaps them before returning, so nothing of the task is left even as a zombie
 * (without it they go to init, which reaps them whenever it gets to it; a worker running
 * as PID 1 in a container is their reaper either way). Side effect: a task process that
 * leaves its process group (setsid) and is orphaned also becomes our child and is not
 * reaped by the executor. 0 ok, -1 with errno. */
int exec_become_subreaper(void);

#endif
