/* events — stub: being written. */
#include "api/events.h"

const ApiRoute api_routes_events[] = {{NULL, NULL, API_ROLE_NONE, NULL}};
int api_events_start(ApiContext *ctx, char *err, size_t errlen) { (void)ctx; (void)err; (void)errlen; return 0; }
void api_events_stop(void) {}
