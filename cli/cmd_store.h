/* cmd_store — the operator commands that edit the store directly, mirroring the airflow CLI:
 *
 *   gust db migrate|check|reset --yes
 *   gust variables set KEY VALUE [--description D] | get KEY | list | delete KEY
 *   gust connections add CONN_ID (--conn-uri URI | --conn-type T [--conn-host ...]) | get | list | delete
 *   gust pools set NAME SLOTS [DESCRIPTION] | get NAME | list | delete NAME
 *
 * Each opens the store at database.url (creating core.home when missing) and, except
 * `db migrate` and `db reset`, refuses to go on when the schema is not this binary's
 * (store_check's message). Connection secrets use core.secret_key, or the key file
 * $home/secret.key (created mode 0600 on first use). Changes are recorded in the event
 * log with owner "cli:$USER". Every command that prints data takes --output json.
 *
 * argv[0] is the command's name ("db", "variables", ...). Exit codes: 0 ok, 1 failure
 * (one line on stderr), 2 usage error. */
#ifndef GUST_CMD_STORE_H
#define GUST_CMD_STORE_H

#include "core/config.h"

int cmd_db(GustConfig *cfg, int argc, char **argv);
int cmd_variables(GustConfig *cfg, int argc, char **argv);
int cmd_connections(GustConfig *cfg, int argc, char **argv);
int cmd_pools(GustConfig *cfg, int argc, char **argv);

/* Shared by every command that uses the store. Each prints why it failed (prefixed with
 * "gust CMD:") and returns NULL. */
struct Store;
struct SecretKey;
/* database.url with core.home created and the sqlite path normalised (caller frees). */
char *cli_store_url(GustConfig *cfg, const char *cmd);
/* Open the store; with check, refuse a schema that is not this binary's. */
struct Store *cli_open_store(GustConfig *cfg, const char *cmd, int check);
/* core.secret_key, or $home/secret.key created 0600 on first use. */
struct SecretKey *cli_open_key(GustConfig *cfg, const char *cmd);

#endif
