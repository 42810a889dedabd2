/* doc_json — JSON into the document tree, with line numbers cJSON does not keep.
 *
 * cJSON (1.7.15) validates and unescapes; it records no positions. So after it has
 * accepted the text, a second, trivial scanner walks the same text in document order,
 * in lockstep with cJSON's tree (both preserve member order), noting where each value
 * starts. The scanner can be naive because the text is already known to be valid. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/doc.h"
#include "core/util.h"

typedef struct Scan {
    const char *s;   /* the text */
    size_t len;      /* its length */
    size_t pos;      /* current byte */
    int line, col;   /* 1-based position of pos */
    long budget;     /* nodes left before we call the document too large */
    DocError *err;
} Scan;

static void scan_adv(Scan *sc, size_t n)
{
    while (n-- && sc->pos < sc->len) {
        if (sc->s[sc->pos] == '\n') {
            sc->line++;
            sc->col = 1;
        } else {
            sc->col++;
        }
        sc->pos++;
    }
}

static void scan_ws(Scan *sc)
{
    while (sc->pos < sc->len && strchr(" \t\r\n", sc->s[sc->pos]) && sc->s[sc->pos]) scan_adv(sc, 1);
}

static void scan_string(Scan *sc)
{
    scan_adv(sc, 1); /* opening quote */
    while (sc->pos < sc->len && sc->s[sc->pos] != '"') scan_adv(sc, sc->s[sc->pos] == '\\' ? 2 : 1);
    scan_adv(sc, 1);
}

static void json_error(DocError *err, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void json_error(DocError *err, int line, int col, const char *fmt, ...)
{
    if (!err) return;
    err->line = line;
    err->col = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

static DocNode *json_convert(Scan *sc, const cJSON *item, int depth)
{
    scan_ws(sc);
    int line = sc->line, col = sc->col;
    if (depth > DOC_MAX_DEPTH) {
        json_error(sc->err, line, col, "nesting deeper than %d levels", DOC_MAX_DEPTH);
        return NULL;
    }
    if (--sc->budget < 0) {
        json_error(sc->err, line, col, "document too large (more than %d nodes)", DOC_MAX_NODES);
        return NULL;
    }
    if (cJSON_IsObject(item)) {
        DocNode *n = doc_new(DOC_MAP, line, col);
        scan_adv(sc, 1); /* { */
        for (const cJSON *c = item->child; c; c = c->next) {
            scan_ws(sc);
            DocNode *k = doc_new_scalar(c->string, 1, sc->line, sc->col);
            scan_string(sc);
            scan_ws(sc);
            scan_adv(sc, 1); /* : */
            DocNode *v = json_convert(sc, c, depth + 1);
            if (!v) {
                doc_free(k);
                doc_free(n);
                return NULL;
            }
            doc_map_put(n, k, v);
            scan_ws(sc);
            scan_adv(sc, 1); /* , or } */
        }
        if (!item->child) {
            scan_ws(sc);
            scan_adv(sc, 1);
        }
        const DocNode *first = NULL, *dup = doc_duplicate_key(n, &first);
        if (dup) {
            json_error(sc->err, dup->line, dup->col, "duplicate key '%s' (first at line %d)", dup->text, first->line);
            doc_free(n);
            return NULL;
        }
        return n;
    }
    if (cJSON_IsArray(item)) {
        DocNode *n = doc_new(DOC_SEQ, line, col);
        scan_adv(sc, 1); /* [ */
        for (const cJSON *c = item->child; c; c = c->next) {
            DocNode *v = json_convert(sc, c, depth + 1);
            if (!v) {
                doc_free(n);
                return NULL;
            }
            doc_seq_push(n, v);
            scan_ws(sc);
            scan_adv(sc, 1); /* , or ] */
        }
        if (!item->child) {
            scan_ws(sc);
            scan_adv(sc, 1);
        }
        return n;
    }
    if (cJSON_IsString(item)) {
        scan_string(sc);
        return doc_new_scalar(item->valuestring, 1, line, col);
    }
    /* numbers, true, false, null: keep the token exactly as written */
    size_t start = sc->pos;
    while (sc->pos < sc->len && !strchr(",]} \t\r\n", sc->s[sc->pos]) && sc->s[sc->pos]) scan_adv(sc, 1);
    DocNode *n = doc_new(DOC_SCALAR, line, col);
    n->text = xstrndup(sc->s + start, sc->pos - start);
    return n;
}

/* Line and column of a byte offset, for syntax errors. */
static void offset_to_line(const char *s, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && s[i]; i++) {
        if (s[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

DocNode *doc_parse_json(const char *text, size_t len, DocError *err)
{
    if (err) memset(err, 0, sizeof *err);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    int line, col;
    if (!root) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        if (off > len) off = len;
        offset_to_line(text, off, &line, &col);
        char near[24];
        size_t k = 0;
        for (; off < len && k < 20 && text[off + k] && text[off + k] != '\n' && text[off + k] != '\r'; k++)
            near[k] = text[off + k];
        near[k] = '\0';
        json_error(err, line, col, "JSON syntax error near '%s'", off < len && k ? near : "end of file");
        return NULL;
    }
    size_t off = (size_t)(end - text);
    while (off < len && strchr(" \t\r\n", text[off]) && text[off]) off++;
    if (off < len) {
        offset_to_line(text, off, &line, &col);
        json_error(err, line, col, "JSON syntax error: unexpected content after the document");
        cJSON_Delete(root);
        return NULL;
    }
    Scan sc = {text, len, 0, 1, 1, DOC_MAX_NODES, err};
    DocNode *n = json_convert(&sc, root, 0);
    cJSON_Delete(root);
    return n;
}
