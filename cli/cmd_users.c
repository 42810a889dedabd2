/* cmd_users — stub: being written. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_users(GustConfig *cfg, int argc, char **argv)
{
    (void)cfg; (void)argc; (void)argv;
    fprintf(stderr, "gust users: not built yet\n");
    return 2;
}
int cli_users_standalone_admin(GustConfig *cfg, struct Store *s)
{
    (void)cfg; (void)s;
    return 0;
}
