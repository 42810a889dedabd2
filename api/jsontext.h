/* jsontext — JSON written as text straight into one buffer, for the API's big lists.
 *
 * Building a page of 100 DAGs or task instances as a cJSON tree means ~4,000 nodes allocated,
 * printed and freed per request: that was half the CPU of those endpoints under load. These
 * writers produce exactly what cJSON_PrintUnformatted would (same escaping, same number
 * formatting, keys in the order written), so an answer can still be parsed back when a route
 * adds to it. Keys must be plain ASCII literals (they are not escaped). Not thread-safe: one
 * JsonText per request. */
#ifndef GUST_API_JSONTEXT_H
#define GUST_API_JSONTEXT_H

#include <stdint.h>

#include "core/util.h"

typedef struct JsonText {
    StrBuf b;
    int first; /* no member written yet in the current object or array */
    /* the last few timestamps formatted: a list repeats its run's dates and version's
     * creation on every row (a slot is empty while its text is) */
    struct {
        int64_t us;
        char text[40];
    } times[4];
    unsigned next_time;
} JsonText;

/* s as a JSON string, escaped as cJSON escapes it (", \ and control characters; UTF-8 as is). */
void jt_string(JsonText *j, const char *s);
/* The separator and "key": of the next member (key NULL: an array element). */
void jt_key(JsonText *j, const char *key);
/* Open / close an object ('{' '}') or array ('[' ']'), as a member named key (NULL: element). */
void jt_open(JsonText *j, const char *key, char bracket);
void jt_close(JsonText *j, char bracket);
void jt_str(JsonText *j, const char *key, const char *s); /* NULL: null */
void jt_null(JsonText *j, const char *key);
void jt_bool(JsonText *j, const char *key, int v);
void jt_int(JsonText *j, const char *key, long long v);
void jt_double(JsonText *j, const char *key, double d);  /* as cJSON prints numbers */
void jt_time(JsonText *j, const char *key, int64_t us);  /* ISO 8601 with micros; < 0: null */
void jt_uuid(JsonText *j, const char *key, const char *hex); /* api_uuid's text */

#endif
