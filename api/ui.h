/* ui — the web UI's files, embedded in the binary at build time (ui/embed.sh writes
 * build/gen/ui_assets.c from ui/), and the routes that serve them: "/" is the UI's
 * index.html (a single page that routes with the URL's #fragment), "/ui/FILE" the rest. */
#ifndef GUST_API_UI_H
#define GUST_API_UI_H

#include <stddef.h>

typedef struct UiAsset {
    const char *name;          /* "index.html", "app.js"; NULL ends the table */
    const unsigned char *data; /* NUL-terminated (one byte past len) */
    size_t len;
    const char *content_type;
    const char *etag;          /* quoted, e.g. "\"3fa2c1d0e4b5a697\"" */
} UiAsset;

extern const UiAsset ui_assets[];

#endif
