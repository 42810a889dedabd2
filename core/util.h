/* util — the few helpers every module needs: allocation that never returns NULL,
 * a growable string buffer, and "did you mean" suggestions for misspelt names.
 *
 * Allocation failure aborts: gust is a daemon whose only sensible reaction to an
 * exhausted heap is to stop loudly, and checking every small malloc would bury
 * the error paths that matter (bad input, dead servers) under ones that do not. */
#ifndef GUST_UTIL_H
#define GUST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define GUST_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);              /* NULL in, NULL out */
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable, always NUL-terminated string. Zero-initialise (StrBuf b = {0}) to start;
 * sb_take() hands the heap string to the caller (caller frees) and resets the buffer. */
typedef struct StrBuf {
    char *s;      /* the text; NULL until the first append */
    size_t len;   /* bytes used, not counting the NUL */
    size_t cap;   /* bytes allocated */
} StrBuf;

void sb_append(StrBuf *b, const char *s);
void sb_appendn(StrBuf *b, const char *s, size_t n);
void sb_appendc(StrBuf *b, char c);
void sb_printf(StrBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(StrBuf *b, const char *fmt, va_list ap);
const char *sb_str(const StrBuf *b);       /* "" when empty, never NULL */
char *sb_take(StrBuf *b);                  /* caller frees; never NULL */
void sb_free(StrBuf *b);

/* The candidate closest to `word` by edit distance, or NULL when none is close enough
 * to be a plausible typo (distance > max(2, len/3)). Case-insensitive. */
const char *util_closest(const char *word, const char *const *candidates, size_t n);

/* Copy at most dstlen-1 bytes and NUL-terminate; returns strlen(src). */
size_t util_strlcpy(char *dst, const char *src, size_t dstlen);

/* Read a whole file into a NUL-terminated heap buffer (caller frees). On failure
 * returns NULL and writes a message naming the file into err. */
char *util_read_file(const char *path, size_t *len_out, char *err, size_t errlen);

/* Current time, microseconds since the epoch (UTC). */
int64_t util_now_us(void);

#endif
