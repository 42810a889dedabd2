/* log — leveled, whole-line, secret-masked logging (see log.h). */
#include "core/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/secret.h"
#include "core/timeutil.h"
#include "core/util.h"

static LogLevel min_level = LOG_INFO;
static int as_json;
static FILE *out;

void log_set_level(LogLevel level)
{
    min_level = level;
}

void log_set_json(int json)
{
    as_json = json;
}

void log_set_file(FILE *f)
{
    out = f;
}

int log_level_parse(const char *name)
{
    static const char *const names[] = {"debug", "info", "warning", "error"};
    for (int i = 0; name && i < 4; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

void log_msg(LogLevel level, const char *component, const char *fmt, ...)
{
    if (level < min_level) return;
    static const char *const names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};
    StrBuf b = {0};
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    char *masked = secret_mask(sb_str(&b));
    sb_free(&b);
    char ts[48];
    time_format_iso(util_now_us(), 1, ts, sizeof ts);
    FILE *f = out ? out : stderr;
    if (as_json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "ts", ts);
        cJSON_AddStringToObject(o, "level", names[level]);
        cJSON_AddStringToObject(o, "component", component);
        cJSON_AddStringToObject(o, "message", masked ? masked : "");
        char *line = cJSON_PrintUnformatted(o);
        fprintf(f, "%s\n", line);
        free(line);
        cJSON_Delete(o);
    } else {
        fprintf(f, "%s %-7s %s: %s\n", ts, names[level], component, masked ? masked : "");
    }
    fflush(f);
    free(masked);
}
