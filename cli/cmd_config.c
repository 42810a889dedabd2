/* cmd_config — `gust config …` (see cmd_config.h). Everything printed here is derived
 * from the settings table, including docs/configuration.md, which a unit test keeps
 * in step with it. `get` prints a secret in clear because scripts ask for it by name
 * (`psql "$(gust config get database.url)"`); `show` never does. */
#include "cli/cmd_config.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: gust config show [--output json]        every setting, its value and where it came from\n"
    "       gust config get KEY [--output json]     one setting's effective value (secrets in clear)\n"
    "       gust config list-keys [--output json]   every setting's name\n"
    "       gust config docs                        the settings reference (docs/configuration.md)\n"
    "\n"
    "Sources, lowest precedence first: defaults, --config FILE, GUST_HOME,\n"
    "GUST__SECTION__KEY environment variables, --section.key=value flags.\n";

void cmd_config_render_show(const GustConfig *c, int json, StrBuf *out)
{
    size_t n;
    const ConfigSpec *specs = config_specs(&n);
    if (!json) {
        for (size_t i = 0; i < n; i++) {
            sb_printf(out, "%s = ", specs[i].key);
            config_append_display(out, &specs[i], config_get(c, specs[i].key));
            sb_printf(out, "  (%s)\n", config_source(c, specs[i].key));
        }
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "settings");
    for (size_t i = 0; i < n; i++) {
        StrBuf v = {0};
        config_append_display(&v, &specs[i], config_get(c, specs[i].key));
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "key", specs[i].key);
        cJSON_AddStringToObject(o, "value", sb_str(&v));
        cJSON_AddStringToObject(o, "source", config_source(c, specs[i].key));
        cJSON_AddStringToObject(o, "type", config_type_name(specs[i].type));
        cJSON_AddBoolToObject(o, "reloadable", specs[i].reloadable);
        cJSON_AddStringToObject(o, "doc", specs[i].doc);
        cJSON_AddItemToArray(arr, o);
        sb_free(&v);
    }
    char *s = cJSON_Print(root);
    sb_append(out, s);
    sb_appendc(out, '\n');
    free(s);
    cJSON_Delete(root);
}

/* A Markdown table cell: '|' would end the cell. */
static void append_cell(StrBuf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') sb_append(out, "\\|");
        else sb_appendc(out, *s);
    }
}

static const char docs_intro[] =
    "# Configuration\n"
    "\n"
    "<!-- Generated from core/config_table.c by `gust config docs`; do not edit by hand.\n"
    "     Regenerate with: GUST_UPDATE_DOCS=1 ./bin/tests/test_config -->\n"
    "\n"
    "Every setting has a name `section.key`. gust reads them from these sources, each\n"
    "overriding the ones above it:\n"
    "\n"
    "1. the built-in defaults listed below;\n"
    "2. the INI file named by `--config FILE` (or `--config=FILE`);\n"
    "3. `GUST_HOME`, which sets `core.home`;\n"
    "4. environment variables `GUST__SECTION__KEY`, e.g. `GUST__CORE__DAGS_FOLDER=/srv/dags`;\n"
    "5. command-line flags `--section.key=value` or `--section.key value`, e.g. `--api.port=9090`.\n"
    "\n"
    "```ini\n"
    "# gust.cfg\n"
    "[core]\n"
    "dags_folder = /srv/gust/dags\n"
    "parallelism = 64\n"
    "\n"
    "[database]\n"
    "url = postgresql://gust:secret@db:5432/gust\n"
    "```\n"
    "\n"
    "A misspelt name, a value of the wrong type or one out of bounds stops gust with a message\n"
    "naming the setting and where it came from, and suggesting the closest known name:\n"
    "\n"
    "```\n"
    "unknown setting 'core.dag_folder' (from --core.dag_folder; did you mean 'core.dags_folder'?)\n"
    "api.port = 70000 (from GUST__API__PORT) is out of range 1-65535\n"
    "```\n"
    "\n"
    "So does any other environment variable starting with `GUST__`.\n"
    "\n"
    "Values:\n"
    "\n"
    "- **bool**: `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`.\n"
    "- **duration**: `30` (seconds), `30s`, `250ms`, `5m`, `1h30m`, `1.5h`, `2 days`, `1w`.\n"
    "- **path**, **url**, **string**: `$home` (or `${home}`) stands for `core.home`, and a path\n"
    "  starting with `~` starts in your home folder.\n"
    "- **secret**: shown as `********` by `gust config show`; for a **url**, only the password is\n"
    "  hidden (`postgresql://gust:********@db:5432/gust`).\n"
    "\n"
    "`gust config show [--output json]` prints every setting, its effective value and its source;\n"
    "`gust config get KEY` prints one value. *Reload* says whether a running daemon may pick up a\n"
    "new value without a restart.\n";

void cmd_config_render_docs(StrBuf *out)
{
    size_t n;
    const ConfigSpec *specs = config_specs(&n);
    sb_append(out, docs_intro);
    const char *section = NULL;
    size_t section_len = 0;
    for (size_t i = 0; i < n; i++) {
        const ConfigSpec *s = &specs[i];
        size_t len = strcspn(s->key, ".");
        if (!section || len != section_len || strncmp(section, s->key, len) != 0) {
            section = s->key;
            section_len = len;
            sb_printf(out, "\n## [%.*s]\n\n", (int)len, s->key);
            sb_append(out, "| key | type | default | allowed | reload | description |\n");
            sb_append(out, "|---|---|---|---|---|---|\n");
        }
        StrBuf env = {0}, bounds = {0};
        config_env_name(&env, s->key);
        config_append_bounds(&bounds, s);
        sb_printf(out, "| `%s`<br>`%s` | %s | ", s->key, sb_str(&env), config_type_name(s->type));
        if (*s->def) {
            sb_append(out, "`");
            append_cell(out, s->def);
            sb_append(out, "`");
        } else {
            sb_append(out, "(empty)");
        }
        sb_append(out, " | ");
        if (s->type == CONFIG_ENUM) {
            for (const char *p = s->allowed; *p;) {
                size_t l = strcspn(p, "|");
                sb_printf(out, "%s`%.*s`", p == s->allowed ? "" : ", ", (int)l, p);
                p += l;
                if (*p == '|') p++;
            }
        } else {
            append_cell(out, sb_str(&bounds));
        }
        sb_printf(out, " | %s | ", s->reloadable ? "yes" : "no");
        append_cell(out, s->doc);
        sb_append(out, " |\n");
        sb_free(&env);
        sb_free(&bounds);
    }
}

static void render_get(const GustConfig *c, const char *key, int json, StrBuf *out)
{
    const ConfigSpec *s = config_spec(key);
    if (!json) {
        sb_printf(out, "%s\n", config_get(c, key));
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", s->key);
    cJSON_AddStringToObject(o, "value", config_get(c, key));
    cJSON_AddStringToObject(o, "source", config_source(c, key));
    cJSON_AddStringToObject(o, "type", config_type_name(s->type));
    cJSON_AddBoolToObject(o, "reloadable", s->reloadable);
    cJSON_AddStringToObject(o, "doc", s->doc);
    char *text = cJSON_Print(o);
    sb_printf(out, "%s\n", text);
    free(text);
    cJSON_Delete(o);
}

static void render_keys(int json, StrBuf *out)
{
    size_t n;
    const ConfigSpec *specs = config_specs(&n);
    if (!json) {
        for (size_t i = 0; i < n; i++) sb_printf(out, "%s\n", specs[i].key);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "keys");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(specs[i].key));
    char *text = cJSON_Print(o);
    sb_printf(out, "%s\n", text);
    free(text);
    cJSON_Delete(o);
}

int cmd_config_run(GustConfig *c, int argc, char **argv, FILE *out, FILE *errf)
{
    const char *sub = NULL, *arg = NULL, *output = "text";
    int nargs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, out);
            return 0;
        }
        if (strcmp(a, "--output") == 0 || strcmp(a, "-o") == 0) {
            if (i + 1 >= argc) {
                fprintf(errf, "gust config: %s needs a value (text or json)\n", a);
                return 2;
            }
            output = argv[++i];
        } else if (strncmp(a, "--output=", 9) == 0) {
            output = a + 9;
        } else if (a[0] == '-' && a[1]) {
            fprintf(errf, "gust config: unknown option %s\n%s", a, usage_text);
            return 2;
        } else if (!sub) {
            sub = a;
        } else {
            if (!arg) arg = a;
            nargs++;
        }
    }
    if (!sub) {
        fputs(usage_text, errf);
        return 2;
    }
    if (strcmp(output, "text") != 0 && strcmp(output, "json") != 0) {
        fprintf(errf, "gust config: --output must be text or json, not '%s'\n", output);
        return 2;
    }
    int json = strcmp(output, "json") == 0;
    int want_args = strcmp(sub, "get") == 0 ? 1 : 0;
    int known = strcmp(sub, "show") == 0 || strcmp(sub, "get") == 0 || strcmp(sub, "list-keys") == 0 ||
                strcmp(sub, "docs") == 0;
    if (!known) {
        fprintf(errf, "gust config: unknown command '%s'\n%s", sub, usage_text);
        return 2;
    }
    if (nargs != want_args) {
        fprintf(errf, "gust config %s: %s\n%s", sub, want_args ? "needs one KEY" : "takes no arguments",
                usage_text);
        return 2;
    }

    StrBuf b = {0};
    if (strcmp(sub, "show") == 0) {
        cmd_config_render_show(c, json, &b);
    } else if (strcmp(sub, "get") == 0) {
        char err[256];
        if (config_check_key(arg, NULL, err, sizeof err) < 0) {
            fprintf(errf, "gust config get: %s\n", err);
            return 1;
        }
        render_get(c, arg, json, &b);
    } else if (strcmp(sub, "list-keys") == 0) {
        render_keys(json, &b);
    } else {
        cmd_config_render_docs(&b);
    }
    fputs(sb_str(&b), out);
    sb_free(&b);
    return 0;
}

int cmd_config(GustConfig *c, int argc, char **argv)
{
    return cmd_config_run(c, argc, argv, stdout, stderr);
}
