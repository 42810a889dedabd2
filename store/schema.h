/* schema — the numbered migrations, oldest first. Each is a list of statements in the SQL
 * both engines accept; `{{ID}}` stands for an auto-numbered primary key, the one spelling
 * they disagree on. A migration, once released, is never edited: add the next one. */
#ifndef GUST_STORE_SCHEMA_H
#define GUST_STORE_SCHEMA_H

typedef struct Migration {
    int version;            /* 1, 2, 3, ... with no gaps */
    const char *name;       /* what it does, for `gust db check` and the docs */
    const char *const *sql; /* statements, NULL-terminated */
} Migration;

const Migration *schema_migrations(int *n);

#endif
