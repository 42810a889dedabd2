/* processor — the DAG processor: keeps the store in step with the DAG folder.
 *
 * A scan walks the folder and fingerprints every DAG file (path, size, mtime, and the
 * defaults.yml files, which change what files mean). When nothing changed since the last
 * scan, that is all it does. When something did, the folder is parsed again (a file that
 * fails affects only its own DAGs) and every DAG is synced: store_dag_sync writes a new
 * version only when the serialised DAG's hash changed. Import errors are recorded per
 * file and cleared when the file is fixed; DAGs whose file no longer defines them are
 * marked inactive. New DAGs start paused unless core.dags_are_paused_at_creation is off. */
#include <dirent.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/dagbag.h"
#include "core/log.h"
#include "core/util.h"
#include "scheduler/scheduler.h"
#include "store/dags.h"
#include "store/xcom.h"

static void fingerprint(const char *dir, StrBuf *fp, int depth)
{
    if (depth > 32) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    /* readdir order is arbitrary: sort so the same folder gives the same fingerprint */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        char *p = xasprintf("%s/%s", dir, names[i]);
        struct stat st;
        if (stat(p, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                fingerprint(p, fp, depth + 1);
            else
                sb_printf(fp, "%s:%lld:%lld.%09ld\n", p, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                          st.st_mtim.tv_nsec);
        }
        free(p);
        free(names[i]);
    }
    free(names);
}

static int in_bag(const DagBag *b, const char *dag_id)
{
    return dagbag_find(b, dag_id) != NULL;
}

int sched_processor_scan(Scheduler *s, Store *store, const SchedOptions *opt, char **last_fp, int force, char *err,
                         size_t errlen);

int sched_processor_scan(Scheduler *s, Store *store, const SchedOptions *opt, char **last_fp, int force, char *err,
                         size_t errlen)
{
    (void)s;
    StrBuf fp = {0};
    fingerprint(opt->dags_folder, &fp, 0);
    if (!force && *last_fp && strcmp(*last_fp, sb_str(&fp)) == 0) {
        sb_free(&fp);
        return 0;
    }
    free(*last_fp);
    *last_fp = sb_take(&fp);

    DagBag bag;
    dagbag_init(&bag);
    DagLoadOptions lo = {.root = opt->dags_folder, .default_timezone = opt->default_timezone};
    dagbag_load_path(&bag, opt->dags_folder, &lo);
    int synced = 0, rc = 0;
    for (size_t i = 0; i < bag.n_dags; i++) {
        int new_version = 0;
        if (store_dag_sync(store, bag.dags[i], opt->paused_at_creation, NULL, &new_version) != 0) {
            snprintf(err, errlen, "dag=%s: cannot store: %s", bag.dags[i]->dag_id, store_last_error(store));
            rc = -1;
            continue;
        }
        if (new_version) log_info("processor", "dag=%s: new version from %s", bag.dags[i]->dag_id, bag.dags[i]->file);
        if (sched_asset_refs(store, bag.dags[i]) != 0)
            log_warn("processor", "dag=%s: cannot record its datasets: %s", bag.dags[i]->dag_id, store_last_error(store));
        synced++;
    }
    /* import errors: one entry per file, all its problems in it */
    StoreImportErrorList old;
    memset(&old, 0, sizeof old);
    store_import_error_list(store, &old);
    for (size_t i = 0; i < bag.diags.len; i++) {
        const Diag *d = &bag.diags.items[i];
        if (d->warning) continue;
        int first = 1;
        for (size_t j = 0; j < i; j++)
            if (!bag.diags.items[j].warning && strcmp(bag.diags.items[j].file, d->file) == 0) first = 0;
        if (!first) continue;
        StrBuf msg = {0};
        for (size_t j = i; j < bag.diags.len; j++) {
            const Diag *x = &bag.diags.items[j];
            if (x->warning || strcmp(x->file, d->file) != 0) continue;
            sb_printf(&msg, "%s%s:%d: %s: %s", msg.len ? "\n" : "", x->file, x->line, x->dag_id ? x->dag_id : "-",
                      x->message);
        }
        store_import_error_set(store, d->file, sb_str(&msg));
        log_warn("processor", "import error in %s: %s", d->file, sb_str(&msg));
        sb_free(&msg);
    }
    for (size_t i = 0; i < old.n; i++) {
        int still = 0;
        for (size_t j = 0; j < bag.diags.len && !still; j++)
            still = !bag.diags.items[j].warning && strcmp(bag.diags.items[j].file, old.items[i].filename) == 0;
        if (!still) store_import_error_clear(store, old.items[i].filename);
    }
    store_import_error_list_free(&old);
    /* DAGs no longer defined anywhere in the folder */
    StoreDag *dags;
    size_t n;
    if (store_dag_list(store, &dags, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            if (dags[i].is_active && !in_bag(&bag, dags[i].dag_id)) {
                store_dag_set_active(store, dags[i].dag_id, 0);
                log_info("processor", "dag=%s: no longer in %s: inactive", dags[i].dag_id, opt->dags_folder);
            }
        store_dag_list_free(dags, n);
    }
    dagbag_free(&bag);
    /* Parsing a large DAG file leaves tens of MB of freed heap that glibc keeps (a 10,000-task
     * file: ~70 MB resident after the bag was freed); give it back, as a scan is rare. */
    malloc_trim(0);
    return rc < 0 ? -1 : synced;
}
