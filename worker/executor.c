/* executor — one try of a task in a child process (see executor.h).
 *
 * The order of things matters more than usual here. Everything is allocated and every
 * file descriptor opened (close-on-exec) before the child is started, because other
 * worker threads may hold malloc's or stdio's locks at that moment, and because the child
 * runs on our memory (clone with CLONE_VM, see "the child" below). The child leads its
 * own process group, and its pid doubles as the group id; we only signal the group while
 * the leader is unreaped (alive or a zombie), because a reaped leader frees the number
 * for reuse by another thread's child. So when the leader exits we SIGKILL the group
 * first and reap the leader afterwards. A child that cannot exec reports the failing step and errno
 * through a close-on-exec pipe: end-of-file on it means execve succeeded. */
#include "worker/executor.h"

#include "core/secret.h"
#include "core/timeutil.h"
#include "core/util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#if defined(__SANITIZE_ADDRESS__)
#define EXEC_HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EXEC_HAVE_ASAN 1
#endif
#endif
#ifdef EXEC_HAVE_ASAN
#include <sanitizer/asan_interface.h>
#define EXEC_ASAN_UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define EXEC_ASAN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define CANCEL_POLL_US INT64_C(50000)    /* how often *cancel is looked at */
#define IDLE_US INT64_C(250000)          /* how often on_idle is called */
#define WAITID_POLL_US INT64_C(10000)    /* exit polling when pidfd_open is unavailable */
#define REAP_GROUP_US INT64_C(500000)    /* how long to wait for killed group members */
#define XCOM_MAX_BYTES (16 * 1024 * 1024)
#define CLOSE_LOOP_MAX 65536             /* fd loop bound when close_range is missing */
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* ---------------------------------------------------------------- small helpers */

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_us(int64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static const char *errstr(int err, char *buf, size_t len)
{
    return strerror_r(err, buf, len); /* GNU variant: returns the message */
}

/* "2s", "1.5s", "0.25s": configured durations as people wrote them. */
static void fmt_duration(int64_t us, char *buf, size_t len)
{
    snprintf(buf, len, "%.3f", (double)us / 1e6);
    char *dot = strchr(buf, '.');
    if (dot) {
        char *end = buf + strlen(buf) - 1;
        while (end > dot && *end == '0') *end-- = '\0';
        if (end == dot) *end = '\0';
    }
    size_t n = strlen(buf);
    if (n + 1 < len) {
        buf[n] = 's';
        buf[n + 1] = '\0';
    }
}

static const char *sig_name(int sig, char *buf, size_t len)
{
    const char *abbrev = sigabbrev_np(sig);
    if (abbrev)
        snprintf(buf, len, "SIG%s", abbrev);
    else
        snprintf(buf, len, "signal %d", sig);
    return buf;
}

/* Move fd above 2 so the child's dup2 onto 0/1/2 cannot clobber it (a daemon may run
 * with its standard descriptors closed). Keeps close-on-exec. */
static int fd_above_stdio(int fd)
{
    if (fd < 0 || fd > 2) return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int saved = errno;
    close(fd);
    errno = saved;
    return moved;
}

/* mkdir -p; 0 or -1 with errno. */
static int mkdir_p(const char *path, mode_t mode)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, mode) < 0 && errno != EEXIST) rc = -1;
            else rc = 0;
            *s = c;
            if (rc < 0 || c == '\0') break;
        }
    }
    if (rc == 0) {
        struct stat st;
        if (stat(p, &st) < 0) rc = -1;
        else if (!S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            rc = -1;
        }
    }
    int saved = errno;
    free(p);
    errno = saved;
    return rc;
}

static int mkdir_parent(const char *file)
{
    const char *slash = strrchr(file, '/');
    if (!slash || slash == file) return 0;
    char *dir = xstrndup(file, (size_t)(slash - file));
    int rc = mkdir_p(dir, 0755);
    int saved = errno;
    free(dir);
    errno = saved;
    return rc;
}

/* Remove the contents of the directory open at dfd, never following symlinks (entries
 * are unlinked, not opened, unless unlinkat says they are directories) and never
 * changing the process's working directory (other threads rely on it). Folders a task
 * made unreadable or read-only are chmod-ed back first. */
static void remove_contents(int dfd, int depth)
{
    if (depth > 128) return;
    for (int pass = 0; pass < 3; pass++) {
        int dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
        if (dup_fd < 0) return;
        DIR *d = fdopendir(dup_fd);
        if (!d) {
            close(dup_fd);
            return;
        }
        rewinddir(d);
        int left = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            const char *n = e->d_name;
            if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'))) continue;
            if (unlinkat(dfd, n, 0) == 0) continue;
            if (errno != EISDIR && errno != EPERM) {
                left = 1;
                continue;
            }
            int sub = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0 && errno == EACCES && fchmodat(dfd, n, 0700, 0) == 0)
                sub = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                left = 1;
                continue;
            }
            (void)fchmod(sub, 0700);
            remove_contents(sub, depth + 1);
            close(sub);
            if (unlinkat(dfd, n, AT_REMOVEDIR) < 0) left = 1;
        }
        closedir(d);
        if (!left) return;
    }
}

static void remove_tree(const char *path)
{
    if (rmdir(path) == 0) return;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    (void)fchmod(fd, 0700);
    remove_contents(fd, 0);
    close(fd);
    (void)rmdir(path);
}

/* ---------------------------------------------------------------- environment */

typedef struct EnvVec {
    char **v;      /* "NAME=value", heap strings, NULL-terminated */
    size_t n, cap;
} EnvVec;

static size_t env_name_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* Set or replace (later wins). Entries without '=' are ignored. */
static void env_put(EnvVec *e, const char *kv)
{
    if (!kv || !strchr(kv, '=') || kv[0] == '=') return;
    size_t nl = env_name_len(kv);
    for (size_t i = 0; i < e->n; i++) {
        if (env_name_len(e->v[i]) == nl && memcmp(e->v[i], kv, nl) == 0) {
            free(e->v[i]);
            e->v[i] = xstrdup(kv);
            return;
        }
    }
    if (e->n + 2 > e->cap) {
        e->cap = e->cap ? e->cap * 2 : 32;
        e->v = xrealloc(e->v, e->cap * sizeof *e->v);
    }
    e->v[e->n++] = xstrdup(kv);
    e->v[e->n] = NULL;
}

static void env_put_from_worker(EnvVec *e, const char *name, const char *fallback)
{
    const char *val = getenv(name);
    if (!val) val = fallback;
    if (!val) return;
    char *kv = xasprintf("%s=%s", name, val);
    env_put(e, kv);
    free(kv);
}

static void env_free(EnvVec *e)
{
    for (size_t i = 0; i < e->n; i++) free(e->v[i]);
    free(e->v);
    e->v = NULL;
    e->n = e->cap = 0;
}

/* The child runs in another folder, so a relative XCom path is made absolute. */
static char *absolute_path(const char *path)
{
    if (path[0] == '/') return xstrdup(path);
    char here[PATH_MAX];
    if (!getcwd(here, sizeof here)) return xstrdup(path);
    return xasprintf("%s/%s", here, path);
}

static void build_env(const ExecRequest *req, EnvVec *e)
{
    if (req->append_env) {
        for (char **p = environ; p && *p; p++)
            if (strncmp(*p, "GUST__", 6) != 0) env_put(e, *p);
    } else {
        env_put_from_worker(e, "PATH", DEFAULT_PATH);
        env_put_from_worker(e, "HOME", NULL);
        env_put_from_worker(e, "LANG", NULL);
    }
    for (const char *const *p = req->env; p && *p; p++) env_put(e, *p);
    if (req->xcom_path) {
        char *abs = absolute_path(req->xcom_path);
        char *kv = xasprintf("GUST_XCOM_FILE=%s", abs);
        env_put(e, kv);
        free(kv);
        free(abs);
    }
    if (!e->v) {
        e->cap = 1;
        e->v = xcalloc(1, sizeof *e->v);
    }
}

/* ---------------------------------------------------------------- the child */

/* How the child is started. fork() copies the worker's page tables (tens of MB of heap,
 * several threads) only for execve to throw the copy away: in a fan-out of `true` tasks
 * that was most of the worker's CPU (copy_page_range under fork, exit_mmap under execve).
 * So the child is started as glibc's posix_spawn starts its own, with
 * clone(CLONE_VM | CLONE_VFORK): it runs on the parent's memory, on a stack of its own,
 * while the calling thread waits until it has exec-ed or exited. posix_spawn itself
 * cannot do all the child must (rlimits, PR_SET_PDEATHSIG, reporting which step failed).
 *
 * Sharing memory puts rules on the child (child_run), on top of those fork already set:
 *   - it reads Launch, which the parent prepared, and writes only its own stack and the
 *     error pipe: no heap, no locks, no globals;
 *   - errno is thread-local and the child runs on the calling thread's TLS, so the child's
 *     failing calls change the parent's errno: start_child saves and restores it;
 *   - no signal handler may run in it, since handlers would run on the parent's memory:
 *     the parent blocks every signal around the start, the child (which has its own copy
 *     of the handler table, there is no CLONE_SIGHAND) leaves the worker's process group,
 *     resets every disposition to SIG_DFL, and only then empties its mask (fork gets the
 *     same treatment, so both start the task alike);
 *   - its stack is mapped for each start, so concurrent starts from several worker
 *     threads never share one, and unmapped once clone returns (the child has exec-ed or
 *     exited by then).
 * fork() is still used when a request asks for it (ExecRequest.spawn_with_fork, for the
 * benchmark) and when the kernel refuses the clone (ENOSYS, EINVAL or EPERM, e.g. a
 * seccomp filter or an emulator): from then on for the whole process. */

enum ChildStep { STEP_SETPGID, STEP_STDIO, STEP_CHDIR, STEP_RLIMIT, STEP_EXEC };

typedef struct ChildError {
    int step;      /* enum ChildStep */
    int detail;    /* which rlimit (index into Launch.rl) */
    int err;       /* errno */
} ChildError;

#define N_RLIMITS 3
#define CHILD_STACK_BYTES (64 * 1024) /* the child's frames, libc's and the sanitizers'
                                         interceptors need a few KB; glibc's posix_spawn
                                         uses 32 KB plus the argv */

/* Everything the child needs, prepared before it is started. */
typedef struct Launch {
    char *argv[4];                  /* "bash", "-c", command, NULL */
    char **envp;
    const char *cwd;
    int devnull;                    /* becomes stdin */
    int out_w;                      /* becomes stdout and stderr */
    int err_w;                      /* ChildError reports; close-on-exec */
    int max_fd;                     /* bound of the fallback close loop */
    int rl_set[N_RLIMITS];          /* 1: apply rl[i] */
    int rl_res[N_RLIMITS];          /* RLIMIT_CPU, RLIMIT_AS, RLIMIT_NOFILE */
    struct rlimit rl[N_RLIMITS];
    struct sigaction dfl, ign;      /* SIG_DFL and SIG_IGN, empty masks: built here so that
                                       the child does not even call memset */
    sigset_t no_signals;            /* the child's mask for execve */
} Launch;

static const char *const rlimit_names[N_RLIMITS] = {"RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_NOFILE"};

/* The child's code is not instrumented. Under ASan the instrumented prologue would poison
 * redzones in the shadow of a stack ASan does not know (and that the next start maps
 * again), and the call before a noreturn function (__asan_handle_no_return) would compare
 * our stack pointer with the calling thread's stack and warn about false positives; a
 * UBSan report would take locks and allocate on the parent's memory. The libc calls it
 * makes that the sanitizers intercept (sigaction, sigprocmask, prctl, write, _exit) only
 * check their arguments' shadow and flags: no locks, no allocation. */
#define CHILD_CODE __attribute__((noinline, no_sanitize("address", "undefined")))

CHILD_CODE static _Noreturn void child_fail(const Launch *L, int step, int detail)
{
    ChildError ce = {step, detail, errno};
    ssize_t w;
    do {
        w = write(L->err_w, &ce, sizeof ce);
    } while (w < 0 && errno == EINTR);
    _exit(127);
}

CHILD_CODE static void close_from(int lo, int hi_incl, int max_fd)
{
    if (lo > hi_incl) return;
    if (close_range((unsigned)lo, (unsigned)hi_incl, 0) == 0) return;
    int top = hi_incl < max_fd ? hi_incl : max_fd;
    for (int fd = lo; fd <= top; fd++) close(fd);
}

/* Between the start and execve: async-signal-safe calls only, no allocation, no locks,
 * no writes outside its own stack (see the rules above). It starts with every signal
 * blocked (start_child), and unblocks them once it has its own process group and its
 * dispositions are reset. */
CHILD_CODE static _Noreturn void child_run(const Launch *L)
{
    /* First out of the worker's process group, while every signal is still blocked:
     * from then on no signal sent to the worker's group reaches the child. */
    if (setpgid(0, 0) < 0) child_fail(L, STEP_SETPGID, 0);
    /* Handlers are reset by execve, but ignored signals and the blocked mask are not:
     * a worker that ignores SIGPIPE or blocks SIGTERM must not pass that on. Resetting
     * before unblocking also means no worker handler ever runs in the child. A signal
     * the worker handles or ignores that reached the child before setpgid is discarded
     * by a pass through SIG_IGN, as the worker's handler would have consumed it; left
     * pending under SIG_DFL it would kill the task before it starts. */
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        struct sigaction was;
        if (sigaction(s, &L->dfl, &was) == 0 && was.sa_handler != SIG_DFL) {
            (void)sigaction(s, &L->ign, NULL);
            (void)sigaction(s, &L->dfl, NULL);
        }
    }
    /* glibc's sigaction refuses its two internal signals (32 and 33), so a worker started
     * with them ignored (GNU make 4.3 starts its recipes so) would hand SIG_IGN on through
     * execve. The raw system call resets them; nothing sends them to the child before the
     * exec, after which glibc in the task installs its own handlers again. */
    for (int s = 32; s <= 33 && s < NSIG; s++) {
        struct {
            void (*handler)(int);
            unsigned long flags;
            void (*restorer)(void);
            unsigned long mask;
        } kdfl = {SIG_DFL, 0, NULL, 0};
        (void)syscall(SYS_rt_sigaction, s, &kdfl, NULL, sizeof kdfl.mask);
    }
    (void)sigprocmask(SIG_SETMASK, &L->no_signals, NULL);

    /* if the worker dies (kill -9), the task's shell dies with it instead of running on
     * unsupervised while the zombie sweep retries it elsewhere */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (dup2(L->devnull, 0) < 0 || dup2(L->out_w, 1) < 0 || dup2(L->out_w, 2) < 0)
        child_fail(L, STEP_STDIO, 0);
    close_from(3, L->err_w - 1, L->max_fd);
    close_from(L->err_w + 1, INT_MAX, L->max_fd);
    if (chdir(L->cwd) < 0) child_fail(L, STEP_CHDIR, 0);
    for (int i = 0; i < N_RLIMITS; i++)
        if (L->rl_set[i] && setrlimit(L->rl_res[i], &L->rl[i]) < 0) child_fail(L, STEP_RLIMIT, i);
    execve(EXEC_BASH, L->argv, L->envp);
    child_fail(L, STEP_EXEC, 0);
}

CHILD_CODE static int child_entry(void *arg)
{
    child_run(arg);
}

/* Set once the kernel refused clone(CLONE_VM | CLONE_VFORK): fork from then on. */
static int clone_refused;

/* The calling thread's signal mask, all of it (the raw system call also blocks the two
 * signals glibc keeps for itself, as glibc's posix_spawn does). */
static void mask_swap(int how, const sigset_t *set, sigset_t *old)
{
    (void)syscall(SYS_rt_sigprocmask, how, set, old, (size_t)(_NSIG / 8));
}

/* Starts child_run(L) in a new process: the pid, or -1 with errno and *call naming the
 * call that failed. *forked says whether fork() was used. With clone, returns once the
 * child has exec-ed or exited. The child starts with every signal blocked either way. */
static pid_t start_child(const Launch *L, int want_fork, int *forked, const char **call)
{
    *forked = 0;
    char *stack = NULL;
    size_t size = 0;
    if (!want_fork && !__atomic_load_n(&clone_refused, __ATOMIC_RELAXED)) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        size = CHILD_STACK_BYTES + page;
        stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                     -1, 0);
        if (stack == MAP_FAILED) {
            *call = "mmap";
            return -1;
        }
        /* the lowest page a guard: an overflow faults instead of writing below */
        (void)mprotect(stack, page, PROT_NONE);
        /* the shadow of a mapping at a reused address may still hold another's poison */
        EXEC_ASAN_UNPOISON(stack + page, CHILD_STACK_BYTES);
    }

    sigset_t all, old;
    sigfillset(&all);
    int saved_errno = errno;
    mask_swap(SIG_SETMASK, &all, &old);
    pid_t pid = -1;
    int err = 0, use_fork = stack == NULL;
    if (stack) {
        *call = "clone";
        pid = clone(child_entry, stack + size, CLONE_VM | CLONE_VFORK | SIGCHLD, (void *)L);
        err = errno;
        if (pid < 0 && (err == ENOSYS || err == EINVAL || err == EPERM)) {
            __atomic_store_n(&clone_refused, 1, __ATOMIC_RELAXED);
            use_fork = 1;
        }
    }
    if (use_fork) {
        *forked = 1;
        *call = "fork";
        pid = fork();
        if (pid == 0) child_run(L);
        err = errno;
    }
    mask_swap(SIG_SETMASK, &old, NULL);
    if (stack) munmap(stack, size);
    errno = pid < 0 ? err : saved_errno; /* after clone, the child's failed calls set it */
    return pid;
}

/* A limit lowers both the soft and the hard value (a task cannot raise it back), but
 * never raises the hard one, which an unprivileged worker could not do anyway. */
static void plan_rlimit(Launch *L, int i, int res, long value, rlim_t scale, rlim_t hard_slack)
{
    L->rl_res[i] = res;
    if (value < 0) return;
    struct rlimit cur;
    if (getrlimit(res, &cur) < 0) return;
    rlim_t v = (rlim_t)value * scale;
    if (scale > 1 && v / scale != (rlim_t)value) v = RLIM_INFINITY;
    rlim_t hard = v + hard_slack < v ? RLIM_INFINITY : v + hard_slack;
    if (cur.rlim_max != RLIM_INFINITY && hard > cur.rlim_max) hard = cur.rlim_max;
    if (v > hard) v = hard;
    L->rl[i].rlim_cur = v;
    L->rl[i].rlim_max = hard;
    L->rl_set[i] = 1;
}

/* ---------------------------------------------------------------- output lines */

typedef struct Reader {
    const ExecRequest *req;
    int log_fd;              /* -1: no log file */
    char *line;              /* EXEC_LINE_MAX + 1 bytes: the line being assembled */
    size_t line_len;
    StrBuf textbuf;          /* reused for a line that needed escaping */
    StrBuf logbuf;           /* reused for "[ts] line\n" */
    StrBuf last;             /* last non-empty line */
    int have_last;
} Reader;

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return; /* a full disk must not stop the task's supervision */
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Length of the well-formed UTF-8 sequence at p (1-4), or 0 if the bytes there are not
 * one (a stray continuation byte, an overlong form, a surrogate, a truncated sequence). */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return len;
}

/* The line as text the store accepts: invalid UTF-8 bytes and NUL become "\xNN", as
 * Airflow's errors="backslashreplace" decoding does. Returns the line itself when it
 * needs no change (the common case), else out's buffer. */
static const char *sanitize(char *line, size_t n, StrBuf *out)
{
    const unsigned char *u = (const unsigned char *)line;
    size_t i = 0;
    while (i < n && u[i] >= 0x01 && u[i] < 0x80) i++;
    if (i == n) {
        line[n] = '\0';
        return line;
    }
    out->len = 0;
    sb_appendn(out, line, i);
    while (i < n) {
        size_t k = u[i] ? utf8_seq(u + i, n - i) : 0;
        if (k) {
            sb_appendn(out, line + i, k);
            i += k;
        } else {
            sb_printf(out, "\\x%02x", u[i]);
            i++;
        }
    }
    return sb_str(out);
}

/* Emits the first n bytes of the line buffer as one line. */
static void emit_line(Reader *r, size_t n)
{
    size_t end = n;
    char saved = r->line[end]; /* sanitize may NUL-terminate in place; a split keeps using it */
    if (n && r->line[n - 1] == '\r') n--;
    char *masked = secret_mask(sanitize(r->line, n, &r->textbuf));
    r->line[end] = saved;
    size_t mlen = strlen(masked);

    if (r->log_fd >= 0) {
        char ts[48];
        time_format_iso(util_now_us(), 1, ts, sizeof ts);
        r->logbuf.len = 0;
        sb_appendc(&r->logbuf, '[');
        sb_append(&r->logbuf, ts);
        sb_append(&r->logbuf, "] ");
        sb_appendn(&r->logbuf, masked, mlen);
        sb_appendc(&r->logbuf, '\n');
        write_all(r->log_fd, r->logbuf.s, r->logbuf.len);
    }
    if (r->req->on_line) r->req->on_line(r->req->ud, masked, mlen);

    size_t t = mlen;
    while (t && (masked[t - 1] == ' ' || masked[t - 1] == '\t' || masked[t - 1] == '\r' ||
                 masked[t - 1] == '\v' || masked[t - 1] == '\f'))
        t--;
    if (t) {
        r->last.len = 0;
        sb_appendn(&r->last, masked, t);
        r->have_last = 1;
    }
    free(masked);
}

/* Bytes at the end of a full line buffer that start a UTF-8 character the split would
 * cut in two; they move to the next piece instead. */
static size_t utf8_tail(const char *line, size_t n)
{
    const unsigned char *u = (const unsigned char *)line;
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned c = u[n - back];
        if ((c & 0xC0) == 0x80) continue;                /* continuation: look further back */
        size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return want > back && want > 1 ? back : 0;
    }
    return 0;
}

static void feed(Reader *r, const char *p, size_t n)
{
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t seg = nl ? (size_t)(nl - p) : n;
        if (r->line_len + seg > EXEC_LINE_MAX) {
            size_t fit = EXEC_LINE_MAX - r->line_len;
            memcpy(r->line + r->line_len, p, fit);
            p += fit;
            n -= fit;
            size_t carry = utf8_tail(r->line, EXEC_LINE_MAX);
            emit_line(r, EXEC_LINE_MAX - carry);
            memmove(r->line, r->line + EXEC_LINE_MAX - carry, carry);
            r->line_len = carry;
            continue;
        }
        memcpy(r->line + r->line_len, p, seg);
        r->line_len += seg;
        p += seg;
        n -= seg;
        if (nl) {
            emit_line(r, r->line_len);
            r->line_len = 0;
            p++;
            n--;
        }
    }
}

/* One read: the number of bytes read, 0 at EOF (or on a hard error), -1 if nothing was
 * there after all (EAGAIN, EINTR). */
static ssize_t read_some(Reader *r, int fd, char *buf, size_t cap)
{
    ssize_t got = read(fd, buf, cap);
    if (got > 0) {
        feed(r, buf, (size_t)got);
        return got;
    }
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) return -1;
    return 0;
}

/* ---------------------------------------------------------------- supervision */

typedef enum Phase { PH_RUNNING, PH_TERMINATING, PH_KILLED } Phase;

static int poll_ms(int64_t wait_us)
{
    if (wait_us <= 0) return 0;
    if (wait_us > INT64_C(1000000000)) return 1000000;
    return (int)((wait_us + 999) / 1000);
}

static int leader_exited(int pidfd, pid_t pid, const struct pollfd *pf)
{
    if (pidfd >= 0) return pf && (pf->revents & (POLLIN | POLLHUP | POLLERR)) != 0;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) return errno == ECHILD;
    return si.si_pid != 0;
}

/* The group, and the leader itself in case it moved to another group (only safe while
 * the leader is unreaped, which is always the case where this is called). */
static void signal_task(pid_t pid, int sig)
{
    int rc = kill(-pid, sig);
    if ((rc < 0 && errno == ESRCH) || sig == SIGKILL) (void)kill(pid, sig);
}

static int cancel_requested(const ExecRequest *req)
{
    return req->cancel && __atomic_load_n(req->cancel, __ATOMIC_RELAXED) != 0;
}

/* Watches the running group until its leader exits; reads output meanwhile; applies the
 * timeout and the cancel flag. Returns the reason we stopped it (EXEC_TIMEOUT,
 * EXEC_CANCELLED) or EXEC_SUCCESS if it ended on its own; *phase says how far we went.
 * The leader is left unreaped. */
static ExecOutcome supervise(const ExecRequest *req, pid_t pid, int *out_fd, Reader *r,
                             char *buf, size_t cap, Phase *phase)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int64_t start = mono_us();
    int64_t deadline = req->timeout_us >= 0 ? start + req->timeout_us : INT64_MAX;
    int64_t grace = req->kill_grace_us > 0 ? req->kill_grace_us : EXEC_DEFAULT_GRACE_US;
    int64_t kill_at = INT64_MAX;
    int64_t idle_at = start + IDLE_US;
    ExecOutcome why = EXEC_SUCCESS;
    *phase = PH_RUNNING;

    for (;;) {
        int64_t now = mono_us();
        if (*phase == PH_RUNNING) {
            int expired = now >= deadline, cancelled = !expired && cancel_requested(req);
            if (expired || cancelled) {
                why = expired ? EXEC_TIMEOUT : EXEC_CANCELLED;
                signal_task(pid, SIGTERM);
                *phase = PH_TERMINATING;
                kill_at = now + grace;
            }
        }
        if (*phase == PH_TERMINATING && now >= kill_at) {
            signal_task(pid, SIGKILL);
            *phase = PH_KILLED;
        }

        int64_t wait = INT64_MAX;
        if (*phase == PH_RUNNING) {
            if (deadline != INT64_MAX) wait = deadline - now;
            if (req->cancel && wait > CANCEL_POLL_US) wait = CANCEL_POLL_US;
        } else if (*phase == PH_TERMINATING) {
            wait = kill_at - now;
        }
        if (pidfd < 0 && wait > WAITID_POLL_US) wait = WAITID_POLL_US;
        if (req->on_idle) {
            if (now >= idle_at) {
                req->on_idle(req->ud);
                idle_at = now + IDLE_US;
            }
            if (wait > idle_at - now) wait = idle_at - now;
        }

        struct pollfd pf[2];
        int n = 0, out_i = -1, pid_i = -1;
        if (*out_fd >= 0) {
            pf[n] = (struct pollfd){.fd = *out_fd, .events = POLLIN};
            out_i = n++;
        }
        if (pidfd >= 0) {
            pf[n] = (struct pollfd){.fd = pidfd, .events = POLLIN};
            pid_i = n++;
        }
        int rc = poll(pf, (nfds_t)n, wait == INT64_MAX ? -1 : poll_ms(wait));
        if (rc < 0 && errno != EINTR) sleep_us(1000);
        if (rc > 0 && out_i >= 0 && (pf[out_i].revents & (POLLIN | POLLHUP | POLLERR))) {
            if (read_some(r, *out_fd, buf, cap) == 0) {
                close(*out_fd);
                *out_fd = -1;
            }
        }
        if (leader_exited(pidfd, pid, rc > 0 && pid_i >= 0 ? &pf[pid_i] : NULL)) break;
    }
    if (pidfd >= 0) close(pidfd);
    return why;
}

/* After the leader exited (still a zombie, so the group id is ours): kill what is left of
 * the group, read what they wrote within EXEC_DRAIN_US, reap the leader and any group
 * member that is our child (we are PID 1 or a subreaper). Returns the leader's status,
 * or -1 with errno. */
static int finish_group(pid_t pid, int *out_fd, Reader *r, char *buf, size_t cap, int *status)
{
    kill(-pid, SIGKILL);

    /* What the group wrote before it died is in the pipe, at most its capacity: read all
     * of it however slow on_line is. Wait for more only within the drain window, since
     * only a process that escaped the group can still write. */
    int64_t drain_end = mono_us() + EXEC_DRAIN_US;
    int pipe_size = *out_fd >= 0 ? fcntl(*out_fd, F_GETPIPE_SZ) : 0;
    size_t owed = pipe_size > 0 ? (size_t)pipe_size : 65536;
    while (*out_fd >= 0) {
        int64_t left = drain_end - mono_us();
        if (left <= 0 && owed == 0) break;
        struct pollfd pf = {.fd = *out_fd, .events = POLLIN};
        int rc = poll(&pf, 1, left > 0 ? poll_ms(left) : 0);
        if (rc < 0 && errno == EINTR) continue;
        if (rc <= 0) break;
        ssize_t got = read_some(r, *out_fd, buf, cap);
        if (got == 0) {
            close(*out_fd);
            *out_fd = -1;
        } else if (got > 0) {
            owed = (size_t)got < owed ? owed - (size_t)got : 0;
        }
    }
    if (r->line_len) emit_line(r, r->line_len); /* a partial last line */
    r->line_len = 0;

    /* waitpid(-pgid) returns the leader or a member of its group, nothing else: other
     * threads' children lead groups of their own. */
    int got_leader = 0, saved_errno = 0;
    int64_t give_up = mono_us() + REAP_GROUP_US;
    for (;;) {
        int st;
        pid_t w = waitpid(-pid, &st, WNOHANG);
        if (w == pid) {
            *status = st;
            got_leader = 1;
        } else if (w == 0) {
            if (!got_leader || mono_us() >= give_up) break;
            sleep_us(1000);
        } else if (w < 0) {
            if (errno == EINTR) continue;
            if (errno != ECHILD) saved_errno = errno;
            break;
        }
    }
    if (got_leader) return 0;
    for (;;) {
        pid_t w = waitpid(pid, status, 0);
        if (w == pid) return 0;
        if (w < 0 && errno == EINTR) continue;
        errno = w < 0 ? errno : saved_errno;
        return -1;
    }
}

static int is_skip_code(const ExecRequest *req, int code)
{
    for (size_t i = 0; i < req->n_skip; i++)
        if (req->skip_exit_codes && req->skip_exit_codes[i] == code) return 1;
    return 0;
}

static void read_xcom(const ExecRequest *req, ExecResult *res)
{
    struct stat st;
    if (lstat(req->xcom_path, &st) < 0) return; /* no file: no XCom, nothing to say */
    if (!S_ISREG(st.st_mode)) {
        snprintf(res->xcom_error, sizeof res->xcom_error, "%s is not a regular file",
                 req->xcom_path);
        return;
    }
    if (st.st_size > XCOM_MAX_BYTES) {
        snprintf(res->xcom_error, sizeof res->xcom_error, "%s is larger than %d MiB",
                 req->xcom_path, XCOM_MAX_BYTES / (1024 * 1024));
        return;
    }
    char err[256] = "";
    size_t len = 0;
    char *text = util_read_file(req->xcom_path, &len, err, sizeof err);
    if (!text) {
        util_strlcpy(res->xcom_error, err, sizeof res->xcom_error);
        return;
    }
    cJSON *doc = strlen(text) == len ? cJSON_Parse(text) : NULL;
    if (cJSON_IsObject(doc))
        res->xcom_json = text;
    else {
        snprintf(res->xcom_error, sizeof res->xcom_error, "%s does not hold a JSON object",
                 req->xcom_path);
        free(text);
    }
    cJSON_Delete(doc);
}

/* ---------------------------------------------------------------- exec_run */

static void describe_end(const ExecRequest *req, ExecOutcome why, Phase phase, int status,
                         ExecResult *res)
{
    char sbuf[32], d1[32], d2[32];
    if (WIFEXITED(status)) {
        res->exit_code = WEXITSTATUS(status);
        res->term_signal = 0;
    } else {
        res->exit_code = -1;
        res->term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    if (why == EXEC_TIMEOUT || why == EXEC_CANCELLED) {
        int64_t grace = req->kill_grace_us > 0 ? req->kill_grace_us : EXEC_DEFAULT_GRACE_US;
        char head[64];
        if (why == EXEC_TIMEOUT) {
            fmt_duration(req->timeout_us, d1, sizeof d1);
            snprintf(head, sizeof head, "timed out after %s", d1);
        } else {
            snprintf(head, sizeof head, "cancelled");
        }
        res->outcome = why;
        if (phase == PH_KILLED) {
            fmt_duration(grace, d2, sizeof d2);
            snprintf(res->message, sizeof res->message, "%s: killed after the %s grace period",
                     head, d2);
        } else {
            snprintf(res->message, sizeof res->message, "%s: terminated (SIGTERM)", head);
        }
        return;
    }
    if (WIFEXITED(status)) {
        if (is_skip_code(req, res->exit_code)) {
            res->outcome = EXEC_SKIPPED;
            snprintf(res->message, sizeof res->message, "skipped (exit code %d)", res->exit_code);
        } else {
            res->outcome = res->exit_code == 0 ? EXEC_SUCCESS : EXEC_FAILED;
            snprintf(res->message, sizeof res->message, "exit code %d", res->exit_code);
        }
    } else {
        res->outcome = EXEC_FAILED;
        snprintf(res->message, sizeof res->message, "killed by signal %d (%s)", res->term_signal,
                 sig_name(res->term_signal, sbuf, sizeof sbuf));
    }
}

static void describe_start_failure(const ChildError *ce, const Launch *L, ExecResult *res)
{
    char eb[128];
    const char *e = errstr(ce->err, eb, sizeof eb);
    switch (ce->step) {
    case STEP_SETPGID:
        snprintf(res->message, sizeof res->message, "cannot start %s: setpgid: %s", EXEC_BASH, e);
        break;
    case STEP_STDIO:
        snprintf(res->message, sizeof res->message, "cannot start %s: dup2: %s", EXEC_BASH, e);
        break;
    case STEP_CHDIR:
        snprintf(res->message, sizeof res->message, "cannot start %s: chdir %s: %s", EXEC_BASH,
                 L->cwd, e);
        break;
    case STEP_RLIMIT:
        snprintf(res->message, sizeof res->message, "cannot start %s: setrlimit %s: %s",
                 EXEC_BASH,
                 rlimit_names[ce->detail >= 0 && ce->detail < N_RLIMITS ? ce->detail : 0], e);
        break;
    default:
        snprintf(res->message, sizeof res->message, "cannot start %s: %s", EXEC_BASH, e);
        break;
    }
}

int exec_run(const ExecRequest *req, ExecResult *res)
{
    memset(res, 0, sizeof *res);
    res->outcome = EXEC_ERROR;
    res->exit_code = -1;

    char eb[128];
    int log_fd = -1, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, devnull = -1;
    char *workdir = NULL, *buf = NULL;
    EnvVec env = {0};
    Launch L;
    memset(&L, 0, sizeof L);
    Reader r = {.req = req, .log_fd = -1};
    int rc = -1;

    if (!req || !req->command) {
        snprintf(res->message, sizeof res->message, "cannot start %s: no command", EXEC_BASH);
        return -1;
    }

    if (req->log_path) {
        if (mkdir_parent(req->log_path) < 0 ||
            (log_fd = open(req->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
            snprintf(res->message, sizeof res->message, "cannot open the log file %s: %s",
                     req->log_path, errstr(errno, eb, sizeof eb));
            goto out;
        }
    }

    const char *cwd = req->cwd;
    if (!cwd) {
        const char *root = req->work_root && *req->work_root ? req->work_root : "/tmp";
        workdir = xasprintf("%s/try-XXXXXX", root);
        if (mkdir_p(root, 0755) < 0 || !mkdtemp(workdir)) {
            snprintf(res->message, sizeof res->message, "cannot create a work folder in %s: %s",
                     root, errstr(errno, eb, sizeof eb));
            free(workdir);
            workdir = NULL;
            goto out;
        }
        cwd = workdir;
    }
    if (req->xcom_path) (void)unlink(req->xcom_path);

    build_env(req, &env);
    L.argv[0] = (char *)"bash";
    L.argv[1] = (char *)"-c";
    L.argv[2] = (char *)req->command;
    L.argv[3] = NULL;
    L.envp = env.v;
    L.cwd = cwd;
    plan_rlimit(&L, 0, RLIMIT_CPU, req->rlimit_cpu_s, 1, 5);
    plan_rlimit(&L, 1, RLIMIT_AS, req->rlimit_as_mb, (rlim_t)1024 * 1024, 0);
    plan_rlimit(&L, 2, RLIMIT_NOFILE, req->rlimit_nofile, 1, 0);
    struct rlimit nofile;
    L.max_fd = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
                       nofile.rlim_cur < CLOSE_LOOP_MAX
                   ? (int)nofile.rlim_cur
                   : CLOSE_LOOP_MAX;

    if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0 ||
        (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(res->message, sizeof res->message, "cannot start %s: %s", EXEC_BASH,
                 errstr(errno, eb, sizeof eb));
        goto out;
    }
    out_pipe[0] = fd_above_stdio(out_pipe[0]);
    out_pipe[1] = fd_above_stdio(out_pipe[1]);
    err_pipe[0] = fd_above_stdio(err_pipe[0]);
    err_pipe[1] = fd_above_stdio(err_pipe[1]);
    devnull = fd_above_stdio(devnull);
    if (out_pipe[0] < 0 || out_pipe[1] < 0 || err_pipe[0] < 0 || err_pipe[1] < 0 || devnull < 0) {
        snprintf(res->message, sizeof res->message, "cannot start %s: %s", EXEC_BASH,
                 errstr(errno, eb, sizeof eb));
        goto out;
    }
    L.devnull = devnull;
    L.out_w = out_pipe[1];
    L.err_w = err_pipe[1];

    L.dfl.sa_handler = SIG_DFL;
    sigemptyset(&L.dfl.sa_mask);
    L.ign.sa_handler = SIG_IGN;
    sigemptyset(&L.ign.sa_mask);
    sigemptyset(&L.no_signals);

    int64_t t0 = mono_us();
    const char *call;
    pid_t pid = start_child(&L, req->spawn_with_fork, &res->forked, &call);
    if (pid < 0) {
        snprintf(res->message, sizeof res->message, "cannot start %s: %s: %s", EXEC_BASH, call,
                 errstr(errno, eb, sizeof eb));
        goto out;
    }
    /* After fork, also from this side, so the group exists before we might signal it
     * (EACCES once the child has exec-ed: by then it did this itself). After clone the
     * child has exec-ed or exited already. */
    if (res->forked) (void)setpgid(pid, pid);
    res->pid = (int)pid;
    close(out_pipe[1]);
    out_pipe[1] = -1;
    close(err_pipe[1]);
    err_pipe[1] = -1;
    close(devnull);
    devnull = -1;

    ChildError ce;
    ssize_t got;
    do {
        got = read(err_pipe[0], &ce, sizeof ce);
    } while (got < 0 && errno == EINTR);
    if (got == (ssize_t)sizeof ce) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        describe_start_failure(&ce, &L, res);
        res->duration_us = mono_us() - t0;
        goto out;
    }
    env_free(&env);
    L.envp = NULL;

    (void)fcntl(out_pipe[0], F_SETFL, fcntl(out_pipe[0], F_GETFL) | O_NONBLOCK);
    size_t cap = 64 * 1024;
    buf = xmalloc(cap);
    r.log_fd = log_fd;
    r.line = xmalloc(EXEC_LINE_MAX + 1);

    Phase phase;
    ExecOutcome why = supervise(req, pid, &out_pipe[0], &r, buf, cap, &phase);
    int status = 0;
    int reaped = finish_group(pid, &out_pipe[0], &r, buf, cap, &status);
    res->duration_us = mono_us() - t0;
    rc = 0;
    if (reaped < 0) {
        res->outcome = EXEC_ERROR;
        snprintf(res->message, sizeof res->message, "cannot collect the exit status: %s",
                 errstr(errno, eb, sizeof eb));
    } else {
        describe_end(req, why, phase, status, res);
    }
    if (r.have_last) res->last_line = xstrdup(sb_str(&r.last));
    if (req->xcom_path) read_xcom(req, res);

out:
    if (out_pipe[0] >= 0) close(out_pipe[0]);
    if (out_pipe[1] >= 0) close(out_pipe[1]);
    if (err_pipe[0] >= 0) close(err_pipe[0]);
    if (err_pipe[1] >= 0) close(err_pipe[1]);
    if (devnull >= 0) close(devnull);
    if (log_fd >= 0) close(log_fd);
    if (workdir) {
        remove_tree(workdir);
        free(workdir);
    }
    env_free(&env);
    free(buf);
    free(r.line);
    sb_free(&r.textbuf);
    sb_free(&r.logbuf);
    sb_free(&r.last);
    return rc;
}

void exec_result_free(ExecResult *res)
{
    if (!res) return;
    free(res->last_line);
    free(res->xcom_json);
    res->last_line = NULL;
    res->xcom_json = NULL;
}

const char *exec_outcome_name(ExecOutcome o)
{
    switch (o) {
    case EXEC_SUCCESS: return "success";
    case EXEC_SKIPPED: return "skipped";
    case EXEC_FAILED: return "failed";
    case EXEC_TIMEOUT: return "timeout";
    case EXEC_CANCELLED: return "cancelled";
    case EXEC_ERROR: return "error";
    }
    return "error";
}

int exec_become_subreaper(void)
{
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}
