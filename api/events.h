/* events — /api/v2/gust/events: Server-Sent Events of run and task-instance state changes,
 * read from the store's state_event journal by one follower thread per server and fanned
 * out to every subscribed client. */
#ifndef GUST_API_EVENTS_H
#define GUST_API_EVENTS_H

#include "api/api.h"

/* Start / stop the follower thread (the server calls these). 0 ok, -1 with err. */
int api_events_start(ApiContext *ctx, char *err, size_t errlen);
void api_events_stop(void);

#endif
