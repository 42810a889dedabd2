/* dagbag — files and folders into DAGs (see dagbag.h): reading, the defaults cascade,
 * normalising dag-factory's two spellings of tasks and task groups, and the per-DAG build. */
#include "core/dagbag.h"

#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/dagload_int.h"
#include "core/util.h"

void dagbag_init(DagBag *b)
{
    memset(b, 0, sizeof *b);
}

void dagbag_free(DagBag *b)
{
    for (size_t i = 0; i < b->n_dags; i++) dag_free(b->dags[i]);
    free(b->dags);
    diag_free(&b->diags);
    memset(b, 0, sizeof *b);
}

Dag *dagbag_find(const DagBag *b, const char *dag_id)
{
    for (size_t i = 0; i < b->n_dags; i++)
        if (strcmp(b->dags[i]->dag_id, dag_id) == 0) return b->dags[i];
    return NULL;
}

/* tasks: [ {task_id: a, ...}, ... ]  or  tasks: { a: {...}, ... }  →  the mapping form,
 * keyed by id. Same for task_groups with group_name. Returns the number of errors. */
static int normalize(const LoadCtx *ctx, DocNode *cfg, const char *key, const char *idkey)
{
    DocNode *v = doc_get(cfg, key);
    if (!v || doc_is_null(v)) {
        if (v) doc_free(doc_take(cfg, key));
        return 0;
    }
    if (v->kind == DOC_MAP) {
        for (size_t i = 0; i < v->len; i++) {
            if (v->vals[i]->kind == DOC_MAP) {
                DocNode *id = doc_take(v->vals[i], idkey); /* the key is the id */
                doc_free(id);
            }
        }
        return 0;
    }
    if (v->kind != DOC_SEQ) {
        LOAD_ERR(ctx, v, "%s: expected a list or a mapping, got %s", key, doc_kind_name(v));
        doc_free(doc_take(cfg, key));
        return 1;
    }
    int errors = 0;
    DocNode *map = doc_new(DOC_MAP, v->line, v->col);
    for (size_t i = 0; i < v->len; i++) {
        DocNode *item = v->vals[i];
        const char *id = doc_str(doc_get(item, idkey));
        if (item->kind != DOC_MAP || !id || doc_is_null(doc_get(item, idkey))) {
            LOAD_ERR(ctx, item, "%s: item %zu has no %s", key, i + 1, idkey);
            errors++;
            continue;
        }
        const DocNode *prev = doc_get(map, id);
        if (prev) {
            LOAD_ERR(ctx, item, "duplicate %s '%s' (first at line %d)", idkey, id, prev->line);
            errors++;
            continue;
        }
        DocNode *k = doc_clone(doc_get(item, idkey));
        DocNode *c = doc_clone(item);
        doc_free(doc_take(c, idkey));
        c->line = item->line;
        doc_map_put(map, k, c);
    }
    size_t idx;
    for (idx = 0; idx < cfg->len && cfg->vals[idx] != v; idx++) {}
    doc_free(cfg->vals[idx]);
    cfg->vals[idx] = map;
    return errors;
}

/* defaults.yml files from the file's folder up to the root, nearest first. */
typedef struct Defaults {
    DocNode *docs[32];
    char *paths[32];
    size_t n;
} Defaults;

static void defaults_load(Defaults *df, const char *file, const char *root, DiagList *diags)
{
    df->n = 0;
    char dir[PATH_MAX], rootbuf[PATH_MAX];
    util_strlcpy(dir, file, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0'; else strcpy(dir, ".");
    char real_dir[PATH_MAX], real_root[PATH_MAX];
    if (!realpath(dir, real_dir)) return;
    util_strlcpy(rootbuf, root ? root : dir, sizeof rootbuf);
    if (!realpath(rootbuf, real_root)) util_strlcpy(real_root, real_dir, sizeof real_root);
    size_t rl = strlen(real_root);
    /* outside the root: only the file's own folder */
    int inside = strncmp(real_dir, real_root, rl) == 0 && (real_dir[rl] == '/' || real_dir[rl] == '\0');
    for (;;) {
        static const char *const names[] = {"defaults.yml", "defaults.yaml"};
        for (size_t i = 0; i < 2 && df->n < 32; i++) {
            char *p = xasprintf("%s/%s", real_dir, names[i]);
            struct stat st;
            if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                char err[512];
                size_t len;
                char *text = util_read_file(p, &len, err, sizeof err);
                DocError derr = {0};
                DocNode *doc = text ? doc_parse(p, text, len, &derr) : NULL;
                free(text);
                if (!text)
                    diag_add(diags, 0, p, 0, NULL, "%s", err);
                else if (!doc)
                    diag_add(diags, 0, p, derr.line, NULL, "%s", derr.message);
                else if (doc->kind != DOC_MAP)
                    diag_add(diags, 0, p, doc->line, NULL, "defaults file must be a mapping");
                if (doc && doc->kind == DOC_MAP) {
                    df->docs[df->n] = doc;
                    df->paths[df->n++] = p;
                    p = NULL;
                } else {
                    doc_free(doc);
                }
            }
            free(p);
        }
        if (!inside || strcmp(real_dir, real_root) == 0 || strcmp(real_dir, "/") == 0) break;
        char *s = strrchr(real_dir, '/');
        if (!s) break;
        if (s == real_dir) s[1] = '\0'; else *s = '\0';
    }
}

static void defaults_free(Defaults *df)
{
    for (size_t i = 0; i < df->n; i++) {
        doc_free(df->docs[i]);
        free(df->paths[i]);
    }
    df->n = 0;
}

/* A file whose only content is {datasets: [{name, uri}, ...]} defines dataset names for
 * other files to reference (dag-factory's datasets config); it holds no DAGs. */
static int is_dataset_definitions(const DocNode *root)
{
    return root->len == 1 && strcmp(root->keys[0]->text, "datasets") == 0 && root->vals[0]->kind == DOC_SEQ;
}

static int load_doc(DagBag *b, const char *file, const DocNode *root, const Defaults *df, const DagLoadOptions *opt,
                    const char *root_dir)
{
    if (root->kind != DOC_MAP) {
        diag_add(&b->diags, 0, file, root->line, NULL,
                 "a DAG file must be a mapping of dag_id to DAG, got %s", doc_kind_name(root));
        return 0;
    }
    if (is_dataset_definitions(root)) return 0;
    const DocNode *fdefault = doc_get(root, "default");
    if (fdefault && fdefault->kind != DOC_MAP && !doc_is_null(fdefault)) {
        diag_add(&b->diags, 0, file, fdefault->line, NULL, "default: expected a mapping, got %s",
                 doc_kind_name(fdefault));
        return 0;
    }
    int added = 0;
    for (size_t i = 0; i < root->len; i++) {
        const char *dag_id = root->keys[i]->text;
        if (strcmp(dag_id, "default") == 0) continue;
        LoadCtx ctx = {file, dag_id, root_dir, NULL, opt && opt->now_us ? opt->now_us : util_now_us(), &b->diags,
                       opt ? opt->no_file_refs : 0};
        const DocNode *v = root->vals[i];
        if (v->kind != DOC_MAP) {
            LOAD_ERR(&ctx, root->keys[i], "a DAG must be a mapping of fields, got %s", doc_kind_name(v));
            continue;
        }
        DocNode *cfg = doc_clone(v);
        int errors = normalize(&ctx, cfg, "tasks", "task_id") + normalize(&ctx, cfg, "task_groups", "group_name");
        /* precedence: the DAG, the file's default block, defaults.yml nearest to farthest */
        for (size_t s = 0; s <= df->n; s++) {
            const DocNode *src = s == 0 ? fdefault : df->docs[s - 1];
            if (!src || src->kind != DOC_MAP) continue;
            DocNode *tmp = doc_clone(src);
            errors += normalize(&ctx, tmp, "tasks", "task_id") + normalize(&ctx, tmp, "task_groups", "group_name");
            doc_merge_defaults(cfg, tmp);
            doc_free(tmp);
        }
        Dag *d = errors ? NULL : dagload_build(&ctx, root->keys[i]->line, cfg, opt ? opt->default_timezone : NULL);
        doc_free(cfg);
        if (!d) continue;
        Dag *other = dagbag_find(b, dag_id);
        if (other) {
            LOAD_ERR(&ctx, root->keys[i], "dag_id '%s' is already defined in %s:%d", dag_id, other->file, other->line);
            dag_free(d);
            continue;
        }
        b->dags = xrealloc(b->dags, (b->n_dags + 1) * sizeof *b->dags);
        b->dags[b->n_dags++] = d;
        added++;
    }
    return added;
}

static int load_text(DagBag *b, const char *name, const char *text, size_t len, const Defaults *df,
                     const DagLoadOptions *opt, const char *root_dir)
{
    DocError err;
    DocNode *root = doc_parse(name, text, len, &err);
    b->n_files++;
    if (!root) {
        diag_add(&b->diags, 0, name, err.line, NULL, "%s", err.message);
        return 0;
    }
    int n = load_doc(b, name, root, df, opt, root_dir);
    doc_free(root);
    return n;
}

int dagbag_load_text(DagBag *b, const char *name, const char *text, size_t len, const DagLoadOptions *opt)
{
    Defaults none = {.n = 0};
    return load_text(b, name, text, len, &none, opt, opt && opt->root ? opt->root : ".");
}

static int is_dag_file(const char *name)
{
    size_t n = strlen(name);
    if (strcmp(name, "defaults.yml") == 0 || strcmp(name, "defaults.yaml") == 0) return 0;
    return (n > 4 && strcasecmp(name + n - 4, ".yml") == 0) || (n > 5 && strcasecmp(name + n - 5, ".yaml") == 0) ||
           (n > 5 && strcasecmp(name + n - 5, ".json") == 0);
}

static int load_file(DagBag *b, const char *path, const DagLoadOptions *opt, const char *root_dir)
{
    char err[512];
    size_t len;
    char *text = util_read_file(path, &len, err, sizeof err);
    if (!text) {
        diag_add(&b->diags, 0, path, 0, NULL, "%s", err);
        return 0;
    }
    Defaults df;
    defaults_load(&df, path, root_dir, &b->diags);
    int n = load_text(b, path, text, len, &df, opt, root_dir);
    defaults_free(&df);
    free(text);
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void collect(const char *dir, char ***paths, size_t *n, int depth)
{
    if (depth > 32) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = xasprintf("%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            collect(p, paths, n, depth + 1);
            free(p);
        } else if (S_ISREG(st.st_mode) && is_dag_file(e->d_name)) {
            *paths = xrealloc(*paths, (*n + 1) * sizeof **paths);
            (*paths)[(*n)++] = p;
        } else {
            free(p);
        }
    }
    closedir(d);
}

int dagbag_load_path(DagBag *b, const char *path, const DagLoadOptions *opt)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        diag_add(&b->diags, 0, path, 0, NULL, "no such file or folder");
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (strcmp(base, "defaults.yml") == 0 || strcmp(base, "defaults.yaml") == 0) return 0;
        char dir[PATH_MAX];
        util_strlcpy(dir, path, sizeof dir);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0'; else strcpy(dir, ".");
        return load_file(b, path, opt, opt && opt->root ? opt->root : dir);
    }
    char **paths = NULL;
    size_t n = 0;
    char *dir = xstrdup(path);
    for (size_t l = strlen(dir); l > 1 && dir[l - 1] == '/'; l--) dir[l - 1] = '\0';
    collect(dir, &paths, &n, 0);
    free(dir);
    if (n) qsort(paths, n, sizeof *paths, cmp_str);
    int added = 0;
    for (size_t i = 0; i < n; i++) {
        added += load_file(b, paths[i], opt, opt && opt->root ? opt->root : path);
        free(paths[i]);
    }
    free(paths);
    return added;
}
