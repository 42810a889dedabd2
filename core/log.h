/* log — one line per event, with the component and the identity of what it is about in
 * front ("scheduler: dag=etl run=manual__… task=load: queued"), as pgbouncer does.
 *
 *   2026-11-25T18:00:00.123Z INFO  scheduler: dag=etl run=r1: created
 *
 * Lines go to stderr (or the file set with log_set_file), written whole so that threads do
 * not interleave, with registered secrets masked (core/secret.h). The level is set once
 * at start-up (logging.level). */
#ifndef GUST_LOG_H
#define GUST_LOG_H

#include <stdio.h>

typedef enum LogLevel { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERROR } LogLevel;

void log_set_level(LogLevel level);
int log_level_parse(const char *name); /* debug|info|warning|error → level, -1 if unknown */
void log_set_json(int json);           /* logging.format = json: one JSON object per line */
void log_set_file(FILE *f);            /* NULL: stderr */
void log_msg(LogLevel level, const char *component, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_debug(c, ...) log_msg(LOG_DEBUG, c, __VA_ARGS__)
#define log_info(c, ...) log_msg(LOG_INFO, c, __VA_ARGS__)
#define log_warn(c, ...) log_msg(LOG_WARNING, c, __VA_ARGS__)
#define log_error(c, ...) log_msg(LOG_ERROR, c, __VA_ARGS__)

#endif
