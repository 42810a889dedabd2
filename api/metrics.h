/* metrics — the Prometheus text served at /metrics: API latency by route (recorded here by
 * the server for every request), and gauges read from the store and the cluster when
 * scraped (task instances by state, queue depth, live workers, ...). Thread-safe. */
#ifndef GUST_API_METRICS_H
#define GUST_API_METRICS_H

#include <stdint.h>

/* One finished request: the route's pattern (or "unmatched"), its method and status. */
void api_metrics_observe(const char *route, const char *method, int status, int64_t usec);

#endif
