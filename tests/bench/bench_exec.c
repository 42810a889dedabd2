/* bench_exec — the cost of starting a task in a large worker process, fork() against
 * clone(CLONE_VM | CLONE_VFORK), printed as figures for docs/performance.md (a benchmark,
 * not a test: it asserts nothing).
 *
 * A worker holds tens of MB of heap and runs several threads; fork() copies its page
 * tables for every try, and the child's execve tears the copy down again. Here one process
 * holds a touched heap (64 MB, then 256 MB) and 4 threads run `true` tries through
 * exec_run, as `gust worker -c 4` would. The two ways of starting the child are selected
 * per request with ExecRequest.spawn_with_fork (1: the old fork path; 0: the default).
 * Rounds alternate the order (clone then fork, fork then clone); medians of the rounds
 * are printed with their ratio: tries per second, and CPU per try — the process's own
 * (the worker's cost) and with its reaped children (utime + stime of both).
 *
 *   bench_exec [tries-per-round]        default 400; GUST_BENCH_REPEAT rounds (default 5)
 *
 * Needs no server. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "worker/executor.h"

#define THREADS 4
#define MAX_ROUNDS 50

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* utime + stime of this process (all threads), and of its reaped children. */
static void cpu_s(double *self, double *children)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *self = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
    getrusage(RUSAGE_CHILDREN, &ru);
    *children = tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
}

static long rss_mb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * sysconf(_SC_PAGESIZE) / (1024 * 1024);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, (size_t)n * sizeof *v);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

typedef struct Slot {
    int use_fork;
    int tries;
    int failed;         /* tries that did not succeed, or used the other path */
} Slot;

static void *slot_run(void *arg)
{
    Slot *s = arg;
    for (int i = 0; i < s->tries; i++) {
        ExecRequest r;
        memset(&r, 0, sizeof r);
        r.command = "true";
        r.cwd = "/tmp"; /* no per-try folder: the start itself is measured */
        r.timeout_us = -1;
        r.rlimit_cpu_s = r.rlimit_as_mb = r.rlimit_nofile = -1;
        r.spawn_with_fork = s->use_fork;
        ExecResult res;
        if (exec_run(&r, &res) != 0 || res.outcome != EXEC_SUCCESS || res.forked != s->use_fork) {
            if (!s->failed) fprintf(stderr, "bench_exec: %s\n", res.message);
            s->failed++;
        }
        exec_result_free(&res);
    }
    return NULL;
}

typedef struct Figures {
    double tps, self_ms, total_ms; /* tries per second; CPU per try in ms */
} Figures;

/* n tries over THREADS threads, all on one path. */
static Figures measure(int use_fork, int n)
{
    Slot slots[THREADS];
    pthread_t th[THREADS];
    double self0, child0, self1, child1;
    cpu_s(&self0, &child0);
    double t0 = now_s();
    for (int i = 0; i < THREADS; i++) {
        slots[i] = (Slot){.use_fork = use_fork, .tries = n / THREADS + (i < n % THREADS)};
        if (pthread_create(&th[i], NULL, slot_run, &slots[i]) != 0) {
            perror("bench_exec: pthread_create");
            exit(1);
        }
    }
    int failed = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        failed += slots[i].failed;
    }
    double wall = now_s() - t0;
    cpu_s(&self1, &child1);
    if (failed) {
        fprintf(stderr, "bench_exec: %d of %d tries failed on the %s path\n", failed, n,
                use_fork ? "fork" : "clone");
        exit(1);
    }
    return (Figures){.tps = n / wall,
                     .self_ms = (self1 - self0) * 1000 / n,
                     .total_ms = (self1 - self0 + child1 - child0) * 1000 / n};
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 400;
    int rounds = getenv("GUST_BENCH_REPEAT") ? atoi(getenv("GUST_BENCH_REPEAT")) : 5;
    if (n < THREADS) n = THREADS;
    if (rounds < 1) rounds = 1;
    if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("task start: %d `true` tries per round on %d threads, %d rounds alternating "
           "clone/fork order, medians (%ld CPUs online)\n",
           n, THREADS, rounds, sysconf(_SC_NPROCESSORS_ONLN));

    static const size_t heaps_mb[] = {64, 256};
    char *heaps[2] = {NULL, NULL};
    for (size_t h = 0; h < 2; h++) {
        /* the whole heap, touched page by page so that it is resident and mapped */
        heaps[h] = xmalloc(heaps_mb[h] * 1024 * 1024);
        memset(heaps[h], 0x5a, heaps_mb[h] * 1024 * 1024);
        if (h > 0) {
            free(heaps[h - 1]);
            heaps[h - 1] = NULL;
        }
        (void)measure(0, 4 * THREADS); /* warm-up: page cache, bash, the allocator */
        (void)measure(1, 4 * THREADS);

        Figures c[MAX_ROUNDS], f[MAX_ROUNDS];
        double tps_c[MAX_ROUNDS], tps_f[MAX_ROUNDS], self_c[MAX_ROUNDS], self_f[MAX_ROUNDS],
            tot_c[MAX_ROUNDS], tot_f[MAX_ROUNDS], r_tps[MAX_ROUNDS], r_self[MAX_ROUNDS],
            r_tot[MAX_ROUNDS];
        printf("\nheap %zu MB touched, RSS %ld MB:\n", heaps_mb[h], rss_mb());
        for (int r = 0; r < rounds; r++) {
            if (r % 2 == 0) {
                c[r] = measure(0, n);
                f[r] = measure(1, n);
            } else {
                f[r] = measure(1, n);
                c[r] = measure(0, n);
            }
            tps_c[r] = c[r].tps, tps_f[r] = f[r].tps;
            self_c[r] = c[r].self_ms, self_f[r] = f[r].self_ms;
            tot_c[r] = c[r].total_ms, tot_f[r] = f[r].total_ms;
            r_tps[r] = c[r].tps / f[r].tps;
            r_self[r] = f[r].self_ms / c[r].self_ms;
            r_tot[r] = f[r].total_ms / c[r].total_ms;
            printf("  round %d: clone %6.0f tries/s  CPU %.3f ms/try (worker %.3f)   "
                   "fork %6.0f tries/s  CPU %.3f ms/try (worker %.3f)\n",
                   r + 1, c[r].tps, c[r].total_ms, c[r].self_ms, f[r].tps, f[r].total_ms,
                   f[r].self_ms);
        }
        printf("  median  clone %6.0f tries/s  CPU %.3f ms/try (worker %.3f)   "
               "fork %6.0f tries/s  CPU %.3f ms/try (worker %.3f)\n",
               median(tps_c, rounds), median(tot_c, rounds), median(self_c, rounds),
               median(tps_f, rounds), median(tot_f, rounds), median(self_f, rounds));
        printf("  ratio (median of the paired rounds): tries/s clone/fork %.2f   "
               "CPU per try fork/clone %.2f (worker alone %.2f)\n",
               median(r_tps, rounds), median(r_tot, rounds), median(r_self, rounds));
    }
    free(heaps[1]);
    return 0;
}
