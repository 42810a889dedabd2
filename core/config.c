/* config — values, validation and loaders for the settings table (see config.h).
 *
 * A GustConfig is an array parallel to the table: each slot holds the value as set
 * (canonical for bools, ints and enums), its expansion ("~", "$home") and where it
 * came from. Values are validated once, when set, so the typed getters never fail on
 * user input; expansions are recomputed after every set because changing core.home
 * moves every "$home/..." path with it. */
#include "core/config.h"

#include "core/duration.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_REDACTED "********"
#define CONFIG_HOME_KEY "core.home"

typedef struct ConfigValue {
    char *raw;             /* value as set, canonical form, before expansion; never NULL */
    char *effective;       /* raw with "~" and "$home" expanded; what config_get returns */
    int64_t num;           /* parsed int, bool (0/1) or duration in microseconds */
    char *source;          /* where raw came from, display form ("env GUST__API__PORT") */
    ConfigSourceKind kind; /* the same, as a kind */
} ConfigValue;

struct GustConfig {
    const ConfigSpec *specs; /* the table (static) */
    size_t n;                /* rows in the table */
    ConfigValue *values;     /* one per row, same order */
};

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- the table ------------------------------------------------------------------ */

static long spec_index(const char *key)
{
    size_t n;
    const ConfigSpec *t = config_specs(&n);
    if (!key) return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].key, key) == 0) return (long)i;
    return -1;
}

const ConfigSpec *config_spec(const char *key)
{
    size_t n;
    const ConfigSpec *t = config_specs(&n);
    long i = spec_index(key);
    return i < 0 ? NULL : &t[i];
}

const char *config_type_name(ConfigType t)
{
    switch (t) {
    case CONFIG_STRING: return "string";
    case CONFIG_INT: return "int";
    case CONFIG_BOOL: return "bool";
    case CONFIG_DURATION: return "duration";
    case CONFIG_ENUM: return "enum";
    case CONFIG_PATH: return "path";
    case CONFIG_URL: return "url";
    case CONFIG_SECRET: return "secret";
    }
    return "?";
}

/* "unknown setting 'x.y' (from SRC; did you mean 'x.z'?)". The right name in the
 * wrong section ([core] port = ...) is a better guess than the nearest spelling. */
static int unknown_key(const char *key, const char *origin, char *err, size_t errlen)
{
    size_t n;
    const ConfigSpec *t = config_specs(&n);
    const char *dot = strchr(key, '.');
    const char *leaf = dot ? dot + 1 : key;
    const char *best = NULL;
    for (size_t i = 0; i < n && !best; i++)
        if (strcmp(strchr(t[i].key, '.') + 1, leaf) == 0) best = t[i].key;
    if (!best) {
        const char **names = xmalloc(n * sizeof *names);
        for (size_t i = 0; i < n; i++) names[i] = t[i].key;
        best = util_closest(key, names, n);
        free(names);
    }
    StrBuf b = {0};
    sb_printf(&b, "unknown setting '%s'", key);
    if (origin && best) sb_printf(&b, " (from %s; did you mean '%s'?)", origin, best);
    else if (origin) sb_printf(&b, " (from %s)", origin);
    else if (best) sb_printf(&b, " (did you mean '%s'?)", best);
    fail(err, errlen, "%s", sb_str(&b));
    sb_free(&b);
    return -1;
}

int config_check_key(const char *key, const char *origin, char *err, size_t errlen)
{
    return spec_index(key) >= 0 ? 0 : unknown_key(key, origin, err, errlen);
}

/* ---- display --------------------------------------------------------------------- */

void config_redact_url(StrBuf *out, const char *url)
{
    const char *sep = strstr(url, "://");
    const char *p = url;
    if (sep) {
        /* userinfo ends at the last '@' before the path, so an unencoded '@', '#' or
         * '?' in a password is still hidden rather than leaked. */
        const char *auth = sep + 3;
        const char *auth_end = auth + strcspn(auth, "/");
        const char *at = NULL;
        for (const char *q = auth; q < auth_end; q++)
            if (*q == '@') at = q;
        if (at) {
            const char *colon = memchr(auth, ':', (size_t)(at - auth));
            if (colon && colon + 1 < at) {
                sb_appendn(out, url, (size_t)(colon + 1 - url));
                sb_append(out, CONFIG_REDACTED);
                p = at;
            }
        }
    }
    /* libpq also takes ?password=...; hide that too. */
    const char *query = strchr(p, '?');
    if (!query) {
        sb_append(out, p);
        return;
    }
    sb_appendn(out, p, (size_t)(query + 1 - p));
    const char *q = query + 1;
    while (*q) {
        size_t len = strcspn(q, "&#");
        const char *eq = memchr(q, '=', len);
        if (eq && (size_t)(eq - q) == 8 && strncasecmp(q, "password", 8) == 0) {
            sb_appendn(out, q, 9);
            sb_append(out, CONFIG_REDACTED);
        } else {
            sb_appendn(out, q, len);
        }
        q += len;
        if (*q == '&') {
            sb_appendc(out, '&');
            q++;
        } else if (*q == '#') {
            sb_append(out, q);
            break;
        }
    }
}

void config_append_display(StrBuf *out, const ConfigSpec *spec, const char *value)
{
    if (!value) return;
    if (spec->type == CONFIG_SECRET) sb_append(out, *value ? CONFIG_REDACTED : "");
    else if (spec->type == CONFIG_URL) config_redact_url(out, value);
    else sb_append(out, value);
}

void config_env_name(StrBuf *out, const char *key)
{
    sb_append(out, "GUST__");
    for (const char *p = key; *p; p++) {
        if (*p == '.') sb_append(out, "__");
        else sb_appendc(out, (char)toupper((unsigned char)*p));
    }
}

void config_append_bounds(StrBuf *out, const ConfigSpec *spec)
{
    switch (spec->type) {
    case CONFIG_INT: sb_printf(out, "%lld-%lld", spec->min, spec->max); break;
    case CONFIG_DURATION: {
        char lo[32], hi[32];
        duration_format(spec->min, lo, sizeof lo);
        duration_format(spec->max, hi, sizeof hi);
        sb_printf(out, "%s-%s", lo, hi);
        break;
    }
    case CONFIG_ENUM: sb_append(out, spec->allowed ? spec->allowed : ""); break;
    default: break;
    }
}

/* ---- validation ------------------------------------------------------------------ */

static int has_url_scheme(const char *v)
{
    if (!isalpha((unsigned char)*v)) return 0;
    const char *p = v;
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.') p++;
    return strncmp(p, "://", 3) == 0;
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < GUST_ARRAY_LEN(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) return *out = 1, 0;
        if (strcasecmp(v, no[i]) == 0) return *out = 0, 0;
    }
    return -1;
}

/* The allowed value of an enum matching v (case-insensitive), as a heap copy, or NULL. */
static char *enum_match(const char *allowed, const char *v)
{
    size_t vl = strlen(v);
    for (const char *p = allowed; *p;) {
        size_t len = strcspn(p, "|");
        if (len == vl && strncasecmp(p, v, len) == 0) return xstrndup(p, len);
        p += len;
        if (*p == '|') p++;
    }
    return NULL;
}

/* Check `value` against its row. On success *canon is the form to store (caller frees)
 * and *num its parsed number. Messages show the value as config show would. */
static int parse_value(const ConfigSpec *s, const char *value, const char *origin, char **canon,
                       int64_t *num, char *err, size_t errlen)
{
    StrBuf shown = {0};
    if (*value) config_append_display(&shown, s, value);
    else sb_append(&shown, "''");
    const char *sv = sb_str(&shown);
    int rc = 0;
    *num = 0;
    *canon = NULL;

    switch (s->type) {
    case CONFIG_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        while (isspace((unsigned char)*end)) end++;
        if (end == value || *end || !*value) {
            rc = fail(err, errlen, "%s = %s (from %s) is not an integer", s->key, sv, origin);
        } else if (errno == ERANGE || v < s->min || v > s->max) {
            rc = fail(err, errlen, "%s = %s (from %s) is out of range %lld-%lld", s->key, sv, origin,
                      s->min, s->max);
        } else {
            *num = v;
            *canon = xasprintf("%lld", v);
        }
        break;
    }
    case CONFIG_BOOL: {
        int b;
        if (parse_bool(value, &b) < 0) {
            rc = fail(err, errlen, "%s = %s (from %s) is not a boolean (true/false, yes/no, on/off, 1/0)",
                      s->key, sv, origin);
        } else {
            *num = b;
            *canon = xstrdup(b ? "true" : "false");
        }
        break;
    }
    case CONFIG_DURATION: {
        int64_t us;
        char why[160];
        if (duration_parse(value, &us, why, sizeof why) < 0) {
            rc = fail(err, errlen, "%s (from %s): %s", s->key, origin, why);
        } else if (us < s->min || us > s->max) {
            StrBuf range = {0};
            config_append_bounds(&range, s);
            rc = fail(err, errlen, "%s = %s (from %s) is out of range %s", s->key, sv, origin,
                      sb_str(&range));
            sb_free(&range);
        } else {
            *num = us;
            *canon = xstrdup(value);
        }
        break;
    }
    case CONFIG_ENUM: {
        *canon = enum_match(s->allowed, value);
        if (!*canon) {
            StrBuf list = {0};
            for (const char *p = s->allowed; *p;) {
                size_t len = strcspn(p, "|");
                if (list.len) sb_append(&list, ", ");
                sb_appendn(&list, p, len);
                p += len;
                if (*p == '|') p++;
            }
            rc = fail(err, errlen, "%s = %s (from %s) is not one of %s", s->key, sv, origin, sb_str(&list));
            sb_free(&list);
        }
        break;
    }
    case CONFIG_PATH:
        if (!*value) rc = fail(err, errlen, "%s = '' (from %s) must not be empty", s->key, origin);
        else *canon = xstrdup(value);
        break;
    case CONFIG_URL:
        if (*value && !has_url_scheme(value))
            rc = fail(err, errlen, "%s = %s (from %s) is not a URL (expected scheme://...)", s->key, sv,
                      origin);
        else *canon = xstrdup(value);
        break;
    case CONFIG_STRING:
    case CONFIG_SECRET: *canon = xstrdup(value); break;
    }
    sb_free(&shown);
    return rc;
}

/* ---- expansion ------------------------------------------------------------------- */

static const char *user_home(void)
{
    const char *h = getenv("HOME");
    if (h && *h) return h;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir ? pw->pw_dir : "/";
}

static int is_ident_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_';
}

/* "~/x" (paths only) → $HOME/x; "$home" and "${home}" → core.home. Secrets and
 * enums are never expanded: a key may legitimately contain "$home". */
static char *expand(const ConfigSpec *s, const char *raw, const char *home)
{
    if (s->type != CONFIG_STRING && s->type != CONFIG_PATH && s->type != CONFIG_URL) return xstrdup(raw);
    StrBuf b = {0};
    const char *p = raw;
    if (s->type == CONFIG_PATH && p[0] == '~' && (p[1] == '/' || p[1] == '\0')) {
        sb_append(&b, user_home());
        p++;
    }
    int may_use_home = home != NULL;
    while (*p) {
        if (may_use_home && strncmp(p, "${home}", 7) == 0) {
            sb_append(&b, home);
            p += 7;
        } else if (may_use_home && strncmp(p, "$home", 5) == 0 && !is_ident_char(p[5])) {
            sb_append(&b, home);
            p += 5;
        } else {
            sb_appendc(&b, *p++);
        }
    }
    return sb_take(&b);
}

static void refresh_effective(GustConfig *c)
{
    long hi = spec_index(CONFIG_HOME_KEY);
    const char *home = NULL;
    if (hi >= 0 && c->values[hi].raw) {
        free(c->values[hi].effective);
        c->values[hi].effective = expand(&c->specs[hi], c->values[hi].raw, NULL);
        home = c->values[hi].effective;
    }
    for (size_t i = 0; i < c->n; i++) {
        if ((long)i == hi || !c->values[i].raw) continue;
        free(c->values[i].effective);
        c->values[i].effective = expand(&c->specs[i], c->values[i].raw, home ? home : "");
    }
}

/* ---- set and get ----------------------------------------------------------------- */

int config_set_from(GustConfig *c, const char *key, const char *value, ConfigSourceKind kind,
                    const char *origin, char *err, size_t errlen)
{
    char *lkey = xstrdup(key);
    for (char *p = lkey; *p; p++) *p = (char)tolower((unsigned char)*p);
    if (!origin) origin = "?";
    long i = spec_index(lkey);
    if (i < 0) {
        unknown_key(lkey, origin, err, errlen);
        free(lkey);
        return -1;
    }
    free(lkey);
    char *canon;
    int64_t num;
    if (parse_value(&c->specs[i], value ? value : "", origin, &canon, &num, err, errlen) < 0) return -1;

    ConfigValue *v = &c->values[i];
    free(v->raw);
    free(v->source);
    v->raw = canon;
    v->num = num;
    v->kind = kind;
    switch (kind) {
    case CONFIG_SRC_DEFAULT: v->source = xstrdup("default"); break;
    case CONFIG_SRC_FILE: v->source = xasprintf("file %s", origin); break;
    case CONFIG_SRC_ENV: v->source = xasprintf("env %s", origin); break;
    case CONFIG_SRC_FLAG: v->source = xasprintf("flag %s", origin); break;
    case CONFIG_SRC_OTHER: v->source = xstrdup(origin); break;
    }
    refresh_effective(c);
    return 0;
}

int config_set(GustConfig *c, const char *key, const char *value, const char *origin, char *err,
               size_t errlen)
{
    return config_set_from(c, key, value, CONFIG_SRC_OTHER, origin, err, errlen);
}

GustConfig *config_new(void)
{
    GustConfig *c = xcalloc(1, sizeof *c);
    c->specs = config_specs(&c->n);
    c->values = xcalloc(c->n, sizeof *c->values);
    for (size_t i = 0; i < c->n; i++) {
        char err[256];
        if (config_set_from(c, c->specs[i].key, c->specs[i].def, CONFIG_SRC_DEFAULT, "default", err,
                            sizeof err) < 0) {
            /* The table is code: a bad default is a bug, found by the first test run. */
            fprintf(stderr, "gust: bad default in the config table: %s\n", err);
            abort();
        }
    }
    return c;
}

void config_free(GustConfig *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->values[i].raw);
        free(c->values[i].effective);
        free(c->values[i].source);
    }
    free(c->values);
    free(c);
}

const char *config_get(const GustConfig *c, const char *key)
{
    long i = spec_index(key);
    return i < 0 ? NULL : c->values[i].effective;
}

const char *config_source(const GustConfig *c, const char *key)
{
    long i = spec_index(key);
    return i < 0 ? NULL : c->values[i].source;
}

ConfigSourceKind config_source_kind(const GustConfig *c, const char *key)
{
    long i = spec_index(key);
    return i < 0 ? CONFIG_SRC_DEFAULT : c->values[i].kind;
}

static const ConfigValue *typed_value(const GustConfig *c, const char *key, ConfigType t)
{
    long i = spec_index(key);
    if (i < 0 || c->specs[i].type != t) {
        fprintf(stderr, "gust: config: %s is %s, not a known %s setting\n", key ? key : "(null)",
                i < 0 ? "unknown" : config_type_name(c->specs[i].type), config_type_name(t));
        abort();
    }
    return &c->values[i];
}

long long config_get_int(const GustConfig *c, const char *key)
{
    return (long long)typed_value(c, key, CONFIG_INT)->num;
}

int config_get_bool(const GustConfig *c, const char *key)
{
    return (int)typed_value(c, key, CONFIG_BOOL)->num;
}

int64_t config_get_duration_us(const GustConfig *c, const char *key)
{
    return typed_value(c, key, CONFIG_DURATION)->num;
}

/* ---- sources --------------------------------------------------------------------- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

static int is_name(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!is_ident_char(*s) && *s != '-') return 0;
    return 1;
}

int config_load_ini(GustConfig *c, const char *text, const char *name, char *err, size_t errlen)
{
    char *copy = xstrdup(text);
    char *line = copy;
    char *section = NULL;
    int lineno = 0, rc = 0;
    if ((unsigned char)line[0] == 0xEF && (unsigned char)line[1] == 0xBB && (unsigned char)line[2] == 0xBF)
        line += 3;
    while (line && rc == 0) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        lineno++;
        char *s = trim(line);
        line = nl ? nl + 1 : NULL;
        if (!*s || *s == '#' || *s == ';') continue;
        if (*s == '[') {
            size_t len = strlen(s);
            if (s[len - 1] != ']') {
                rc = fail(err, errlen, "%s:%d: unterminated section header '%.60s'", name, lineno, s);
                break;
            }
            s[len - 1] = '\0';
            char *sec = trim(s + 1);
            if (!is_name(sec)) {
                rc = fail(err, errlen, "%s:%d: bad section name '[%.60s]'", name, lineno, sec);
                break;
            }
            section = sec;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = fail(err, errlen, "%s:%d: expected 'key = value' or '[section]', got '%.60s'", name, lineno, s);
            break;
        }
        *eq = '\0';
        char *key = trim(s);
        char *value = trim(eq + 1);
        if (!is_name(key)) {
            rc = fail(err, errlen, "%s:%d: bad key '%.60s' (expected 'key = value')", name, lineno, key);
            break;
        }
        if (!section) {
            rc = fail(err, errlen, "%s:%d: '%.60s' is outside any [section]", name, lineno, key);
            break;
        }
        size_t vl = strlen(value);
        if (vl >= 2 && (value[0] == '"' || value[0] == '\'') && value[vl - 1] == value[0]) {
            value[vl - 1] = '\0';
            value++;
        }
        char *full = xasprintf("%s.%s", section, key);
        char *origin = xasprintf("%s:%d", name, lineno);
        rc = config_set_from(c, full, value, CONFIG_SRC_FILE, origin, err, errlen);
        free(full);
        free(origin);
    }
    free(copy);
    return rc;
}

int config_load_file(GustConfig *c, const char *path, char *err, size_t errlen)
{
    char *text = util_read_file(path, NULL, err, errlen);
    if (!text) return -1;
    int rc = config_load_ini(c, text, path, err, errlen);
    free(text);
    return rc;
}

int config_load_env(GustConfig *c, const char *const *envp, char *err, size_t errlen)
{
    if (!envp) return 0;
    /* GUST_HOME first, whatever the order of envp: GUST__CORE__HOME outranks it. */
    for (const char *const *e = envp; *e; e++) {
        if (strncmp(*e, "GUST_HOME=", 10) == 0 && (*e)[10] &&
            config_set_from(c, CONFIG_HOME_KEY, *e + 10, CONFIG_SRC_ENV, "GUST_HOME", err, errlen) < 0)
            return -1;
    }
    for (const char *const *e = envp; *e; e++) {
        if (strncmp(*e, "GUST__", 6) != 0) continue;
        const char *eqp = strchr(*e, '=');
        if (!eqp) continue;
        char *name = xstrndup(*e, (size_t)(eqp - *e));
        const char *rest = name + 6;
        const char *sep = strstr(rest, "__");
        int rc;
        if (!sep || sep == rest || !sep[2]) {
            rc = fail(err, errlen, "malformed environment variable %s (expected GUST__SECTION__KEY)", name);
        } else {
            char *key = xasprintf("%.*s.%s", (int)(sep - rest), rest, sep + 2);
            rc = config_set_from(c, key, eqp + 1, CONFIG_SRC_ENV, name, err, errlen);
            free(key);
        }
        free(name);
        if (rc < 0) return -1;
    }
    return 0;
}

/* "--section.key" (before any '='): word characters and dashes around at least one dot. */
static int is_config_flag(const char *name, size_t len)
{
    int dot = 0;
    if (!len || name[0] == '.' || name[len - 1] == '.') return 0;
    for (size_t i = 0; i < len; i++) {
        if (name[i] == '.') dot = 1;
        else if (!is_ident_char(name[i]) && name[i] != '-') return 0;
    }
    return dot;
}

typedef struct ConfigFlag {
    char *key;         /* normalised "section.key" */
    char *origin;      /* "--section.key" as typed */
    const char *value; /* points into argv */
} ConfigFlag;

int config_load(GustConfig *c, int *argc, char **argv, char *err, size_t errlen)
{
    int n = *argc, out = 0, rc = 0, stop = 0;
    const char *file = NULL;
    ConfigFlag *flags = xcalloc((size_t)n + 1, sizeof *flags);
    size_t nflags = 0;

    /* Pass 1: take our arguments out of argv. Keep compacting after an error so argv
     * is consistent whatever happens; report the first error. */
    for (int i = 0; i < n; i++) {
        char *a = argv[i];
        if (stop || !a || a[0] != '-' || a[1] != '-') {
            argv[out++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            stop = 1;
            argv[out++] = a;
            continue;
        }
        if (strncmp(a, "--config", 8) == 0 && (a[8] == '\0' || a[8] == '=')) {
            const char *f = a[8] == '=' ? a + 9 : (i + 1 < n ? argv[++i] : NULL);
            if ((!f || !*f) && rc == 0) rc = fail(err, errlen, "--config needs a FILE");
            if (f && *f) file = f;
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (!is_config_flag(name, len)) {
            argv[out++] = a;
            continue;
        }
        const char *value = eq ? eq + 1 : (i + 1 < n ? argv[++i] : NULL);
        if (!value) {
            if (rc == 0) rc = fail(err, errlen, "flag --%.*s needs a value", (int)len, name);
            continue;
        }
        ConfigFlag *f = &flags[nflags++];
        f->key = xstrndup(name, len);
        for (char *p = f->key; *p; p++) *p = *p == '-' ? '_' : (char)tolower((unsigned char)*p);
        f->origin = xasprintf("--%.*s", (int)len, name);
        f->value = value;
    }
    if (out < n) argv[out] = NULL;
    *argc = out;

    /* Pass 2: apply the sources in precedence order. */
    if (rc == 0 && file) rc = config_load_file(c, file, err, errlen);
    if (rc == 0) rc = config_load_env(c, (const char *const *)environ, err, errlen);
    for (size_t i = 0; i < nflags && rc == 0; i++)
        rc = config_set_from(c, flags[i].key, flags[i].value, CONFIG_SRC_FLAG, flags[i].origin, err, errlen);

    for (size_t i = 0; i < nflags; i++) {
        free(flags[i].key);
        free(flags[i].origin);
    }
    free(flags);
    return rc;
}
