/* duration — the lengths of time DAG files and settings write: 300, "300", "5m",
 * "1h30m", "2 days", "1 week 2 days", "90s", "1.5h". The mapping form
 * {__type__: datetime.timedelta, days:, hours:, minutes:, seconds:} is read by the
 * DAG loader, which calls duration_from_parts(). */
#ifndef GUST_DURATION_H
#define GUST_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Parse into microseconds (>= 0). On error returns -1 and writes a message such as
 * "invalid duration '1 days,': unexpected ',' (write e.g. 300, \"5m\", \"1h30m\" or \"2 days\")". */
int duration_parse(const char *s, int64_t *out_us, char *err, size_t errlen);

/* Format as the shortest readable form: "1h30m", "2d", "45s", "0s", "250ms". */
void duration_format(int64_t us, char *buf, size_t buflen);

#endif
