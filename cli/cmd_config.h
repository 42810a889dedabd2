/* cmd_config — `gust config show|get|list-keys|docs`: the settings table and the
 * effective values, for people (text, secrets redacted) and scripts (--output json).
 * The renderers write to a StrBuf so they can be tested without capturing stdout. */
#ifndef GUST_CMD_CONFIG_H
#define GUST_CMD_CONFIG_H

#include <stdio.h>

#include "core/config.h"
#include "core/util.h"

/* argv[0] == "config". Prints to stdout/stderr; returns the process exit code:
 * 0 ok, 1 error (unknown key), 2 usage error. Usage on --help/-h or no subcommand. */
int cmd_config(GustConfig *c, int argc, char **argv);
/* The same, writing to out and errf (tests pass open_memstream streams). */
int cmd_config_run(GustConfig *c, int argc, char **argv, FILE *out, FILE *errf);

/* `config show`: text is one "section.key = value  (source)" line per setting;
 * json is {"settings":[{"key","value","source","type","reloadable","doc"}]}.
 * Secrets and URL passwords are redacted in both. */
void cmd_config_render_show(const GustConfig *c, int json, StrBuf *out);
/* `config docs`: docs/configuration.md, generated from the table. */
void cmd_config_render_docs(StrBuf *out);

#endif
