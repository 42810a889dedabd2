/* metrics — stub: being written. */
#include "api/metrics.h"
#include "api/api.h"

const ApiRoute api_routes_metrics[] = {{NULL, NULL, API_ROLE_NONE, NULL}};
void api_metrics_observe(const char *route, const char *method, int status, int64_t usec)
{
    (void)route; (void)method; (void)status; (void)usec;
}
