/* rabbitmq_url — amqp:// and amqps:// URLs (broker.h lists the options) → RmqConfig.
 * Bad input is refused with a message naming the part that is wrong; an unknown option
 * suggests the nearest known one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker-adapters/rabbitmq_int.h"
#include "core/util.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out; -1 on a bad escape or overflow. */
static int pct_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0) return -1;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (o + 1 >= outlen) return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

static int parse_int_opt(const char *key, const char *v, int lo, int hi, int *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) {
        snprintf(err, errlen, "broker.url: option %s=%s: want a whole number from %d to %d", key, v, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

int rmq_parse_url(const char *url, RmqConfig *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    const char *p;
    if (strncmp(url, "amqp://", 7) == 0) {
        p = url + 7;
        c->port = 5672;
    } else if (strncmp(url, "amqps://", 8) == 0) {
        p = url + 8;
        c->tls = 1;
        c->port = 5671;
    } else {
        snprintf(err, errlen, "broker.url: not an amqp:// or amqps:// URL");
        return -1;
    }
    c->heartbeat = 10;
    c->connect_timeout_ms = 5000;
    c->publish_timeout_ms = 10000;
    c->verify = 1;
    util_strlcpy(c->user, "guest", sizeof c->user);
    util_strlcpy(c->pass, "guest", sizeof c->pass);
    util_strlcpy(c->vhost, "/", sizeof c->vhost);

    size_t rest = strcspn(p, "?#");
    const char *query = p[rest] == '?' ? p + rest + 1 : NULL;
    /* userinfo ends at the last '@' before the path; the path starts at the first '/' after it */
    const char *at = NULL;
    for (const char *s = p; s < p + rest; s++)
        if (*s == '@') at = s;
    const char *hp = at ? at + 1 : p;
    const char *slash = memchr(hp, '/', (size_t)(p + rest - hp));
    const char *hp_end = slash ? slash : p + rest;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *uend = colon ? colon : at;
        if (pct_decode(p, (size_t)(uend - p), c->user, sizeof c->user) != 0) {
            snprintf(err, errlen, "broker.url: bad %%-escape in the user name");
            return -1;
        }
        if (colon && pct_decode(colon + 1, (size_t)(at - colon - 1), c->pass, sizeof c->pass) != 0) {
            snprintf(err, errlen, "broker.url: bad %%-escape in the password");
            return -1;
        }
        if (!colon) c->pass[0] = '\0';
    }
    /* host[:port], [v6]:port */
    const char *host = hp, *host_end, *port = NULL;
    if (*hp == '[') {
        const char *rb = memchr(hp, ']', (size_t)(hp_end - hp));
        if (!rb) {
            snprintf(err, errlen, "broker.url: unterminated '[' in the host");
            return -1;
        }
        host = hp + 1;
        host_end = rb;
        if (rb + 1 < hp_end && rb[1] == ':') port = rb + 2;
    } else {
        const char *colon = memchr(hp, ':', (size_t)(hp_end - hp));
        host_end = colon ? colon : hp_end;
        if (colon) port = colon + 1;
    }
    if (host_end == host) {
        util_strlcpy(c->host, "localhost", sizeof c->host);
    } else if (pct_decode(host, (size_t)(host_end - host), c->host, sizeof c->host) != 0) {
        snprintf(err, errlen, "broker.url: bad host");
        return -1;
    }
    if (port) {
        char pb[16];
        size_t n = (size_t)(hp_end - port);
        if (n == 0 || n >= sizeof pb) {
            snprintf(err, errlen, "broker.url: bad port");
            return -1;
        }
        memcpy(pb, port, n);
        pb[n] = '\0';
        if (parse_int_opt("port", pb, 1, 65535, &c->port, err, errlen) != 0) {
            snprintf(err, errlen, "broker.url: bad port '%s'", pb);
            return -1;
        }
    }
    if (slash && slash + 1 < p + rest) {
        if (pct_decode(slash + 1, (size_t)(p + rest - slash - 1), c->vhost, sizeof c->vhost) != 0) {
            snprintf(err, errlen, "broker.url: bad %%-escape in the vhost");
            return -1;
        }
    }
    if (strchr(c->host, ':'))
        snprintf(c->where, sizeof c->where, "[%s]:%d", c->host, c->port);
    else
        snprintf(c->where, sizeof c->where, "%s:%d", c->host, c->port);

    static const char *const opts[] = {"heartbeat", "queue_type", "connect_timeout", "publish_timeout",
                                       "cacert",    "cert",       "key",             "verify"};
    while (query && *query) {
        size_t n = strcspn(query, "&#");
        char kv[1024];
        if (n >= sizeof kv) {
            snprintf(err, errlen, "broker.url: option too long");
            return -1;
        }
        memcpy(kv, query, n);
        kv[n] = '\0';
        query = query[n] == '&' ? query + n + 1 : NULL;
        if (!kv[0]) continue;
        char *eq = strchr(kv, '=');
        char key[64], val[1024];
        size_t kn = eq ? (size_t)(eq - kv) : strlen(kv);
        if (kn >= sizeof key) kn = sizeof key - 1;
        memcpy(key, kv, kn);
        key[kn] = '\0';
        if (pct_decode(eq ? eq + 1 : "", eq ? strlen(eq + 1) : 0, val, sizeof val) != 0) {
            snprintf(err, errlen, "broker.url: bad %%-escape in option %s", key);
            return -1;
        }
        int rc = 0;
        if (strcmp(key, "heartbeat") == 0) rc = parse_int_opt(key, val, 0, 3600, &c->heartbeat, err, errlen);
        else if (strcmp(key, "connect_timeout") == 0)
            rc = parse_int_opt(key, val, 100, 600000, &c->connect_timeout_ms, err, errlen);
        else if (strcmp(key, "publish_timeout") == 0)
            rc = parse_int_opt(key, val, 1, 3600000, &c->publish_timeout_ms, err, errlen);
        else if (strcmp(key, "verify") == 0) rc = parse_int_opt(key, val, 0, 1, &c->verify, err, errlen);
        else if (strcmp(key, "cacert") == 0) util_strlcpy(c->cacert, val, sizeof c->cacert);
        else if (strcmp(key, "cert") == 0) util_strlcpy(c->cert, val, sizeof c->cert);
        else if (strcmp(key, "key") == 0) util_strlcpy(c->key, val, sizeof c->key);
        else if (strcmp(key, "queue_type") == 0) {
            if (strcmp(val, "quorum") == 0) c->quorum = 1;
            else if (strcmp(val, "classic") == 0) c->quorum = 0;
            else {
                snprintf(err, errlen, "broker.url: queue_type=%s: want classic or quorum", val);
                return -1;
            }
        } else {
            const char *near = util_closest(key, opts, GUST_ARRAY_LEN(opts));
            if (near)
                snprintf(err, errlen, "broker.url: unknown option '%s' (did you mean '%s'?)", key, near);
            else
                snprintf(err, errlen, "broker.url: unknown option '%s' (known: heartbeat, queue_type, "
                         "connect_timeout, publish_timeout, cacert, cert, key, verify)", key);
            return -1;
        }
        if (rc != 0) return -1;
    }
    return 0;
}
