/* driver — picks the engine a database URL names (see driver.h).
 *
 * The scheme is the only thing read here; everything after it belongs to the driver. A URL may
 * carry a password, so messages quote the scheme at most, never the rest. */
#include "store/driver.h"

#include "core/util.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int has_scheme(const char *url, const char *scheme)
{
    size_t n = strlen(scheme);
    return strncasecmp(url, scheme, n) == 0;
}

const StoreDriver *store_driver_for_url(const char *url)
{
    if (!url) return NULL;
    if (has_scheme(url, "postgresql://") || has_scheme(url, "postgres://")) return &store_driver_postgres;
    if (has_scheme(url, "sqlite://")) return &store_driver_sqlite;
    return NULL;
}

StoreConn *store_connect(const char *url, char *err, size_t errlen)
{
    const StoreDriver *drv = store_driver_for_url(url);
    if (drv) return drv->connect(url, err, errlen);
    if (!err || !errlen) return NULL;
    const char *sep = url ? strstr(url, "://") : NULL;
    if (!url || !*url)
        snprintf(err, errlen, "no database URL given: use postgresql://user:pass@host:port/db or sqlite:///path");
    else if (sep)
        snprintf(err, errlen, "unsupported database URL scheme '%.*s://': use postgresql://user:pass@host:port/db "
                 "or sqlite:///path", (int)(sep - url > 32 ? 32 : sep - url), url);
    else
        snprintf(err, errlen, "database URL has no scheme: use postgresql://user:pass@host:port/db or sqlite:///path");
    return NULL;
}
