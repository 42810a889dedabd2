/* routes — finding the route for a request among every api_routes_* table. */
#ifndef GUST_API_ROUTES_H
#define GUST_API_ROUTES_H

#include <stddef.h>

#include "api/api.h"

/* The route matching method and path; path parameters are copied into pbuf and pointed to
 * by params (at most 8). NULL when none matches: *method_mismatch says whether the path
 * matched another method's route (405 rather than 404). A literal segment wins over a
 * parameter ("/dags/~/dagRuns/list" before "/dags/{dag_id}/dagRuns/{dag_run_id}"). */
const ApiRoute *api_route_find(const char *method, const char *path, const char **params, int *nparams, char *pbuf,
                               size_t pbuflen, int *method_mismatch);

#endif
