/* config — gust's settings, all described by one table (core/config_table.c).
 *
 * Like Redis's config table, every row says a setting's name, type, default, bounds,
 * whether it may change at run time and what it is for; the INI file, the
 * GUST__SECTION__KEY environment variables, the --section.key flags, `gust config show`
 * and docs/configuration.md are all derived from it, so adding a setting is adding a row.
 *
 * Sources, lowest precedence first: the built-in default, the file named by
 * --config FILE, GUST_HOME (core.home only), GUST__SECTION__KEY variables, then
 * --section.key=value flags. Every value is validated against its row when it is set;
 * an error names the setting, the source it came from and, for a misspelt name, the
 * closest known one. A GustConfig remembers where each value came from. */
#ifndef GUST_CONFIG_H
#define GUST_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

typedef enum ConfigType {
    CONFIG_STRING,   /* any text; "$home" expanded */
    CONFIG_INT,      /* decimal integer within [min, max] */
    CONFIG_BOOL,     /* true/false, yes/no, on/off, 1/0 */
    CONFIG_DURATION, /* duration_parse(): "30", "30s", "5m", "1h30m", "2 days"; bounds in microseconds */
    CONFIG_ENUM,     /* one of `allowed` ("a|b|c"), case-insensitive */
    CONFIG_PATH,     /* a file or folder; non-empty; leading "~" and "$home" expanded */
    CONFIG_URL,      /* empty or scheme://...; "$home" expanded; password redacted on display */
    CONFIG_SECRET,   /* any text; shown as ******** */
} ConfigType;

/* One row of the table. */
typedef struct ConfigSpec {
    const char *key;     /* "section.key", lower case */
    ConfigType type;     /* how values are parsed, checked and displayed */
    const char *def;     /* default in string form, as it would be written in the file */
    long long min, max;  /* CONFIG_INT bounds; CONFIG_DURATION bounds in microseconds */
    const char *allowed; /* CONFIG_ENUM: allowed values "a|b|c"; NULL otherwise */
    int reloadable;      /* 1 if a running daemon may pick up a new value on reload */
    const char *doc;     /* one line, for the docs, `config show --output json` and --help */
} ConfigSpec;

/* Where the effective value of a setting came from. */
typedef enum ConfigSourceKind {
    CONFIG_SRC_DEFAULT, /* the table */
    CONFIG_SRC_FILE,    /* --config FILE; origin "FILE:LINE" */
    CONFIG_SRC_ENV,     /* origin "GUST__SECTION__KEY" or "GUST_HOME" */
    CONFIG_SRC_FLAG,    /* origin "--section.key" */
    CONFIG_SRC_OTHER,   /* config_set() with a caller-chosen origin ("test", "api") */
} ConfigSourceKind;

typedef struct GustConfig GustConfig;

/* The table, in display order. */
const ConfigSpec *config_specs(size_t *n_out);
/* The row for "section.key", or NULL. */
const ConfigSpec *config_spec(const char *key);
/* 0 if "section.key" is in the table; otherwise -1 and "unknown setting 'x' (from
 * ORIGIN; did you mean 'y'?)" in err (the "from" part left out when origin is NULL). */
int config_check_key(const char *key, const char *origin, char *err, size_t errlen);
/* "string", "int", ... */
const char *config_type_name(ConfigType t);

/* A config holding every default. Caller frees with config_free(). */
GustConfig *config_new(void);
void config_free(GustConfig *c); /* accepts NULL */

/* Apply every source, in precedence order: --config FILE, the environment (environ),
 * then --section.key flags. Scans argv (from argv[0]; "--" ends the scan) for
 * "--config FILE", "--config=FILE", "--section.key=value" and "--section.key value",
 * removes them and compacts argv, updating *argc (argv[*argc] is set to NULL when
 * anything was removed). Dashes in flag keys read as underscores. Other arguments are
 * left in order. Returns 0, or -1 with the first error in err. */
int config_load(GustConfig *c, int *argc, char **argv, char *err, size_t errlen);

/* Read one INI file: "[section]" headers, "key = value" lines, "#" and ";" comments,
 * optional matching quotes around a value. Errors name FILE:LINE. 0 or -1. */
int config_load_file(GustConfig *c, const char *path, char *err, size_t errlen);
/* Same, from text already in memory; `name` stands for the file in messages. */
int config_load_ini(GustConfig *c, const char *text, const char *name, char *err, size_t errlen);

/* Apply GUST_HOME, then every GUST__SECTION__KEY variable, from a NULL-terminated
 * "NAME=value" array (environ or a test's own). Any other GUST__ name is an error. */
int config_load_env(GustConfig *c, const char *const *envp, char *err, size_t errlen);

/* Validate and set one value. `origin` names the source in messages and in
 * config_source() ("test", "api"). 0, or -1 with a message in err. */
int config_set(GustConfig *c, const char *key, const char *value, const char *origin, char *err,
               size_t errlen);
/* The same with an explicit source kind; used by the loaders. */
int config_set_from(GustConfig *c, const char *key, const char *value, ConfigSourceKind kind,
                    const char *origin, char *err, size_t errlen);

/* Effective value of "section.key" with "~" and "$home" expanded, or NULL for an
 * unknown key. The string belongs to c and stays valid until the next set or free. */
const char *config_get(const GustConfig *c, const char *key);
/* Typed getters. An unknown key or a key of another type is a programming error:
 * they print it and abort. */
long long config_get_int(const GustConfig *c, const char *key);
int config_get_bool(const GustConfig *c, const char *key);
int64_t config_get_duration_us(const GustConfig *c, const char *key);

/* Where the value came from, for display: "default", "file FILE:LINE",
 * "env GUST__X__Y", "flag --x.y", or the origin given to config_set(). NULL if unknown. */
const char *config_source(const GustConfig *c, const char *key);
ConfigSourceKind config_source_kind(const GustConfig *c, const char *key);

/* The value as it may be shown to a person: secrets as "********" (empty stays empty),
 * URLs with only the password (and any password= query parameter) replaced. */
void config_append_display(StrBuf *out, const ConfigSpec *spec, const char *value);
void config_redact_url(StrBuf *out, const char *url);

/* "GUST__CORE__DAGS_FOLDER" for "core.dags_folder". */
void config_env_name(StrBuf *out, const char *key);
/* The bounds of a row in words: "1-4096", "100ms-10m", "debug|info|warning|error", or
 * nothing when it has none. */
void config_append_bounds(StrBuf *out, const ConfigSpec *spec);

#endif
