/* diag — the list of problems found in DAG files (see diag.h). */
#include "core/diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

void diag_add(DiagList *l, int warning, const char *file, int line, const char *dag_id, const char *fmt, ...)
{
    if (l->len == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->items = xrealloc(l->items, l->cap * sizeof *l->items);
    }
    StrBuf b = {0};
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    Diag *d = &l->items[l->len++];
    d->file = xstrdup(file ? file : "");
    d->line = line;
    d->dag_id = xstrdup(dag_id);
    d->message = sb_take(&b);
    d->warning = warning;
}

size_t diag_count_errors(const DiagList *l)
{
    size_t n = 0;
    for (size_t i = 0; i < l->len; i++) n += !l->items[i].warning;
    return n;
}

size_t diag_count_for(const DiagList *l, const char *dag_id)
{
    size_t n = 0;
    for (size_t i = 0; i < l->len; i++) {
        const Diag *d = &l->items[i];
        if (d->warning) continue;
        if (dag_id ? (d->dag_id && strcmp(d->dag_id, dag_id) == 0) : !d->dag_id) n++;
    }
    return n;
}

void diag_free(DiagList *l)
{
    for (size_t i = 0; i < l->len; i++) {
        free(l->items[i].file);
        free(l->items[i].dag_id);
        free(l->items[i].message);
    }
    free(l->items);
    l->items = NULL;
    l->len = l->cap = 0;
}
