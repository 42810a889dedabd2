/* doc — the document tree, its scalar rules, and the YAML loader (see doc.h). */
#include "core/doc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "core/util.h"

DocNode *doc_new(DocKind kind, int line, int col)
{
    DocNode *n = xcalloc(1, sizeof *n);
    n->kind = kind;
    n->line = line;
    n->col = col;
    return n;
}

DocNode *doc_new_scalar(const char *text, int quoted, int line, int col)
{
    DocNode *n = doc_new(DOC_SCALAR, line, col);
    n->text = xstrdup(text ? text : "");
    n->quoted = quoted;
    return n;
}

static void doc_grow(DocNode *n)
{
    if (n->len < n->cap) return;
    n->cap = n->cap ? n->cap * 2 : 4;
    n->vals = xrealloc(n->vals, n->cap * sizeof *n->vals);
    if (n->kind == DOC_MAP) n->keys = xrealloc(n->keys, n->cap * sizeof *n->keys);
}

void doc_seq_push(DocNode *seq, DocNode *item)
{
    doc_grow(seq);
    seq->vals[seq->len++] = item;
}

void doc_map_put(DocNode *map, DocNode *key, DocNode *val)
{
    doc_grow(map);
    map->keys[map->len] = key;
    map->vals[map->len] = val;
    map->len++;
}

void doc_free(DocNode *n)
{
    if (!n) return;
    for (size_t i = 0; i < n->len; i++) {
        if (n->keys) doc_free(n->keys[i]);
        doc_free(n->vals[i]);
    }
    free(n->keys);
    free(n->vals);
    free(n->text);
    free(n);
}

DocNode *doc_clone(const DocNode *n)
{
    if (!n) return NULL;
    DocNode *c = doc_new(n->kind, n->line, n->col);
    c->quoted = n->quoted;
    c->text = xstrdup(n->text);
    for (size_t i = 0; i < n->len; i++) {
        if (n->kind == DOC_MAP)
            doc_map_put(c, doc_clone(n->keys[i]), doc_clone(n->vals[i]));
        else
            doc_seq_push(c, doc_clone(n->vals[i]));
    }
    return c;
}

static long doc_index(const DocNode *map, const char *key)
{
    if (!map || map->kind != DOC_MAP) return -1;
    /* Last one wins, as in PyYAML; the loaders reject duplicates anyway. */
    for (size_t i = map->len; i-- > 0;)
        if (map->keys[i]->text && strcmp(map->keys[i]->text, key) == 0) return (long)i;
    return -1;
}

DocNode *doc_get(const DocNode *map, const char *key)
{
    long i = doc_index(map, key);
    return i < 0 ? NULL : map->vals[i];
}

const DocNode *doc_get_key(const DocNode *map, const char *key)
{
    long i = doc_index(map, key);
    return i < 0 ? NULL : map->keys[i];
}

DocNode *doc_take(DocNode *map, const char *key)
{
    long i = doc_index(map, key);
    if (i < 0) return NULL;
    DocNode *v = map->vals[i];
    doc_free(map->keys[i]);
    memmove(map->keys + i, map->keys + i + 1, (map->len - (size_t)i - 1) * sizeof *map->keys);
    memmove(map->vals + i, map->vals + i + 1, (map->len - (size_t)i - 1) * sizeof *map->vals);
    map->len--;
    return v;
}

int doc_is_null(const DocNode *n)
{
    if (!n) return 1;
    if (n->kind != DOC_SCALAR || n->quoted) return 0;
    const char *t = n->text;
    return !*t || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 || strcmp(t, "Null") == 0 ||
           strcmp(t, "NULL") == 0;
}

int doc_as_bool(const DocNode *n, int *out)
{
    if (!n || n->kind != DOC_SCALAR || n->quoted) return 0;
    /* YAML 1.1's booleans, exactly as PyYAML (and so dag-factory) reads them */
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
    for (size_t i = 0; i < GUST_ARRAY_LEN(yes); i++) {
        if (strcmp(n->text, yes[i]) == 0) {
            *out = 1;
            return 1;
        }
        if (strcmp(n->text, no[i]) == 0) {
            *out = 0;
            return 1;
        }
    }
    return 0;
}

int doc_as_int(const DocNode *n, long long *out)
{
    if (!n || n->kind != DOC_SCALAR || n->quoted || !*n->text) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(n->text, &end, 10);
    if (errno || *end || isspace((unsigned char)n->text[0])) return 0;
    *out = v;
    return 1;
}

int doc_as_number(const DocNode *n, double *out)
{
    if (!n || n->kind != DOC_SCALAR || n->quoted || !*n->text) return 0;
    char *end;
    errno = 0;
    double v = strtod(n->text, &end);
    if (errno || *end || isspace((unsigned char)n->text[0])) return 0;
    /* strtod accepts "inf", "nan" and hex; YAML 1.1 spells those differently. */
    for (const char *p = n->text; *p; p++)
        if (!strchr("0123456789+-.eE", *p)) return 0;
    *out = v;
    return 1;
}

const char *doc_str(const DocNode *n)
{
    return n && n->kind == DOC_SCALAR ? n->text : NULL;
}

const char *doc_kind_name(const DocNode *n)
{
    if (!n || doc_is_null(n)) return "null";
    if (n->kind == DOC_SEQ) return "a list";
    if (n->kind == DOC_MAP) return "a mapping";
    int b;
    long long i;
    double d;
    if (doc_as_bool(n, &b)) return "a boolean";
    if (doc_as_int(n, &i)) return "an integer";
    if (doc_as_number(n, &d)) return "a number";
    return "a string";
}

void doc_merge_defaults(DocNode *dst, const DocNode *src)
{
    if (!dst || !src || dst->kind != DOC_MAP || src->kind != DOC_MAP) return;
    for (size_t i = 0; i < src->len; i++) {
        DocNode *mine = doc_get(dst, src->keys[i]->text);
        if (!mine)
            doc_map_put(dst, doc_clone(src->keys[i]), doc_clone(src->vals[i]));
        else if (mine->kind == DOC_MAP && src->vals[i]->kind == DOC_MAP)
            doc_merge_defaults(mine, src->vals[i]);
    }
}

/* Keys are compared by text; sorting a copy keeps a 100k-key map from going quadratic. */
static int cmp_key(const void *a, const void *b)
{
    const DocNode *x = *(DocNode *const *)a, *y = *(DocNode *const *)b;
    int c = strcmp(x->text, y->text);
    return c ? c : (x->line - y->line);
}

const DocNode *doc_duplicate_key(const DocNode *map, const DocNode **first)
{
    if (map->len < 2) return NULL;
    DocNode **copy = xmalloc(map->len * sizeof *copy);
    memcpy(copy, map->keys, map->len * sizeof *copy);
    qsort(copy, map->len, sizeof *copy, cmp_key);
    const DocNode *dup = NULL;
    for (size_t i = 1; i < map->len && !dup; i++) {
        if (strcmp(copy[i - 1]->text, copy[i]->text) == 0) {
            *first = copy[i - 1];
            dup = copy[i];
        }
    }
    free(copy);
    return dup;
}

static void set_error(DocError *err, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_error(DocError *err, int line, int col, const char *fmt, ...)
{
    if (!err) return;
    err->line = line;
    err->col = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

/* Converts libyaml's node graph (where aliases are shared node indices) into a tree.
 * `budget` counts nodes produced, so that expanding aliases cannot explode. */
typedef struct YamlConv {
    yaml_document_t *doc;
    long budget;
    DocError *err;
    int failed;
} YamlConv;

static DocNode *yaml_convert(YamlConv *cv, yaml_node_t *node, int depth);

static int yaml_merge_into(YamlConv *cv, DocNode *map, yaml_node_t *src, int depth)
{
    /* `<<: *anchor` or `<<: [*a, *b]`: copy keys the map does not set explicitly. */
    DocNode *m = yaml_convert(cv, src, depth + 1);
    if (!m) return -1;
    DocNode *list = m;
    if (m->kind == DOC_MAP) {
        list = doc_new(DOC_SEQ, m->line, m->col);
        doc_seq_push(list, m);
    }
    for (size_t i = 0; i < list->len; i++) {
        if (list->vals[i]->kind != DOC_MAP) {
            set_error(cv->err, list->vals[i]->line, list->vals[i]->col,
                      "a merge key (<<) needs a mapping or a list of mappings");
            doc_free(list);
            return -1;
        }
        /* YAML's merge key is shallow (as PyYAML does it): only missing top-level keys */
        const DocNode *from = list->vals[i];
        for (size_t k = 0; k < from->len; k++)
            if (!doc_get(map, from->keys[k]->text))
                doc_map_put(map, doc_clone(from->keys[k]), doc_clone(from->vals[k]));
    }
    doc_free(list);
    return 0;
}

static DocNode *yaml_convert(YamlConv *cv, yaml_node_t *node, int depth)
{
    if (!node) {
        set_error(cv->err, 0, 0, "invalid YAML document");
        return NULL;
    }
    int line = (int)node->start_mark.line + 1, col = (int)node->start_mark.column + 1;
    if (depth > DOC_MAX_DEPTH) {
        set_error(cv->err, line, col, "nesting deeper than %d levels", DOC_MAX_DEPTH);
        return NULL;
    }
    if (--cv->budget < 0) {
        set_error(cv->err, line, col, "document too large (more than %d nodes after expanding aliases)",
                  DOC_MAX_NODES);
        return NULL;
    }
    const char *tag = (const char *)node->tag;
    if (tag && strncmp(tag, "tag:yaml.org,2002:python/", 25) == 0) {
        set_error(cv->err, line, col, "the YAML tag !!%s needs Python, which gust does not run",
                  tag + 18);
        return NULL;
    }
    switch (node->type) {
    case YAML_SCALAR_NODE: {
        /* libyaml gives every untagged plain scalar the str tag, so style is what tells
         * `false` (a boolean) from "false" (a string); block scalars (| >) are strings. */
        int quoted = node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        DocNode *n = doc_new(DOC_SCALAR, line, col);
        n->text = xstrndup((const char *)node->data.scalar.value, node->data.scalar.length);
        n->quoted = quoted;
        return n;
    }
    case YAML_SEQUENCE_NODE: {
        DocNode *n = doc_new(DOC_SEQ, line, col);
        for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
            DocNode *c = yaml_convert(cv, yaml_document_get_node(cv->doc, *it), depth + 1);
            if (!c) {
                doc_free(n);
                return NULL;
            }
            doc_seq_push(n, c);
        }
        return n;
    }
    case YAML_MAPPING_NODE: {
        DocNode *n = doc_new(DOC_MAP, line, col);
        yaml_node_t *merges[16];
        size_t nmerges = 0;
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
            yaml_node_t *kn = yaml_document_get_node(cv->doc, p->key);
            yaml_node_t *vn = yaml_document_get_node(cv->doc, p->value);
            if (!kn || kn->type != YAML_SCALAR_NODE) {
                int kl = kn ? (int)kn->start_mark.line + 1 : line;
                set_error(cv->err, kl, kn ? (int)kn->start_mark.column + 1 : col,
                          "mapping keys must be plain values, not lists or mappings");
                doc_free(n);
                return NULL;
            }
            if (kn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && kn->data.scalar.length == 2 &&
                memcmp(kn->data.scalar.value, "<<", 2) == 0) {
                if (nmerges == GUST_ARRAY_LEN(merges)) {
                    set_error(cv->err, (int)kn->start_mark.line + 1, 0, "too many merge keys (<<) in one mapping");
                    doc_free(n);
                    return NULL;
                }
                merges[nmerges++] = vn;
                continue;
            }
            DocNode *k = yaml_convert(cv, kn, depth + 1);
            DocNode *v = k ? yaml_convert(cv, vn, depth + 1) : NULL;
            if (!v) {
                doc_free(k);
                doc_free(n);
                return NULL;
            }
            doc_map_put(n, k, v);
        }
        const DocNode *first = NULL, *dup = doc_duplicate_key(n, &first);
        if (dup) {
            set_error(cv->err, dup->line, dup->col, "duplicate key '%s' (first at line %d)", dup->text, first->line);
            doc_free(n);
            return NULL;
        }
        for (size_t i = 0; i < nmerges; i++) {
            if (yaml_merge_into(cv, n, merges[i], depth) != 0) {
                doc_free(n);
                return NULL;
            }
        }
        return n;
    }
    default:
        set_error(cv->err, line, col, "empty YAML node");
        return NULL;
    }
}

DocNode *doc_parse_yaml(const char *text, size_t len, DocError *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (err) memset(err, 0, sizeof *err);
    if (!yaml_parser_initialize(&parser)) {
        set_error(err, 0, 0, "cannot initialise the YAML parser");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        const yaml_mark_t *m = parser.problem ? &parser.problem_mark : &parser.context_mark;
        if (parser.context)
            set_error(err, (int)m->line + 1, (int)m->column + 1, "YAML syntax error: %s %s",
                      parser.problem ? parser.problem : "invalid document", parser.context);
        else
            set_error(err, (int)m->line + 1, (int)m->column + 1, "YAML syntax error: %s",
                      parser.problem ? parser.problem : "invalid document");
        yaml_parser_delete(&parser);
        return NULL;
    }
    DocNode *out;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        out = doc_new(DOC_MAP, 1, 1); /* an empty file is an empty mapping */
    } else {
        YamlConv cv = {&doc, DOC_MAX_NODES, err, 0};
        out = yaml_convert(&cv, root, 0);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return out;
}

DocNode *doc_parse(const char *path, const char *text, size_t len, DocError *err)
{
    size_t n = strlen(path);
    if (n >= 5 && strcasecmp(path + n - 5, ".json") == 0) return doc_parse_json(text, len, err);
    return doc_parse_yaml(text, len, err);
}
