/* diag — problems found while loading DAG files, each with the file, the line and the DAG
 * it belongs to, so that every one can be printed as FILE:LINE: DAG_ID: message. */
#ifndef GUST_DIAG_H
#define GUST_DIAG_H

#include <stddef.h>

typedef struct Diag {
    char *file;     /* path as given to the loader */
    int line;       /* 1-based; 0 when the problem is the whole file */
    char *dag_id;   /* NULL when the problem is not inside a DAG (syntax error, ...) */
    char *message;  /* one sentence, no trailing period */
    int warning;    /* 1: reported but does not make the DAG invalid */
} Diag;

typedef struct DiagList {
    Diag *items;   /* in the order found */
    size_t len;
    size_t cap;
} DiagList;

void diag_add(DiagList *l, int warning, const char *file, int line, const char *dag_id, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
size_t diag_count_errors(const DiagList *l);
/* Errors for one DAG id (dag_id NULL: file-level errors). */
size_t diag_count_for(const DiagList *l, const char *dag_id);
void diag_free(DiagList *l); /* frees the items; the list itself may be stack memory */

#endif
