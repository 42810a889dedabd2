/* doc — a YAML or JSON document as a small tree that remembers where every node came from.
 *
 * The DAG loader needs two things the parsers do not give together: YAML and JSON read
 * into one shape, and a line number on every key and value so that each problem can be
 * reported as FILE:LINE. libyaml carries marks on its nodes; cJSON carries none, so the
 * JSON loader walks cJSON's tree and the source text side by side (doc_json.c).
 *
 * Scalars keep their text as written plus whether they were quoted: `catchup: false` is a
 * boolean, `catchup: "false"` is a string that merely looks like one, and the loader can
 * tell the user which. Aliases and merge keys (<<) are expanded, with a cap on the total
 * number of nodes so that a "billion laughs" document is an error, not an OOM. */
#ifndef GUST_DOC_H
#define GUST_DOC_H

#include <stddef.h>

typedef enum DocKind { DOC_SCALAR, DOC_SEQ, DOC_MAP } DocKind;

typedef struct DocNode DocNode;
struct DocNode {
    DocKind kind;
    int line;          /* 1-based line of the node's first character */
    int col;           /* 1-based column */
    char *text;        /* DOC_SCALAR: the value as written (unescaped); NULL otherwise */
    int quoted;        /* DOC_SCALAR: 1 if it was a quoted string (or a JSON string) */
    size_t len;        /* DOC_SEQ: items; DOC_MAP: pairs */
    size_t cap;        /* allocated slots */
    DocNode **keys;    /* DOC_MAP: key scalars (their line is the key's line) */
    DocNode **vals;    /* DOC_SEQ: items; DOC_MAP: values */
};

/* Where and why loading failed. line/col are 1-based, 0 when unknown. */
typedef struct DocError {
    int line;
    int col;
    char message[256];
} DocError;

/* Parse YAML (first document only) or JSON text. Return NULL and fill *err on a syntax
 * error, a duplicate key, nesting deeper than DOC_MAX_DEPTH or more than DOC_MAX_NODES
 * nodes. An empty YAML document yields an empty map. Caller frees with doc_free. */
#define DOC_MAX_DEPTH 64
#define DOC_MAX_NODES 200000
DocNode *doc_parse_yaml(const char *text, size_t len, DocError *err);
DocNode *doc_parse_json(const char *text, size_t len, DocError *err);
/* Chooses by extension: .json is JSON, anything else YAML. */
DocNode *doc_parse(const char *path, const char *text, size_t len, DocError *err);
void doc_free(DocNode *n); /* accepts NULL */

/* Construction (used by the loaders and by the defaults merge). Nodes take ownership of
 * what is added to them. */
DocNode *doc_new(DocKind kind, int line, int col);
DocNode *doc_new_scalar(const char *text, int quoted, int line, int col);
void doc_seq_push(DocNode *seq, DocNode *item);
void doc_map_put(DocNode *map, DocNode *key, DocNode *val); /* appends, no duplicate check */
DocNode *doc_clone(const DocNode *n);                       /* deep copy; caller frees */

/* Lookups. doc_get returns the value for key in a map, or NULL (also for non-maps). */
DocNode *doc_get(const DocNode *map, const char *key);
const DocNode *doc_get_key(const DocNode *map, const char *key); /* the key node, for its line */
/* Remove key from map and return its value (caller owns it), or NULL. */
DocNode *doc_take(DocNode *map, const char *key);

/* Scalar interpretation, YAML 1.1 style (what PyYAML and so dag-factory read).
 * Each returns 1 when the node is of that type, 0 otherwise. Quoted scalars are never
 * null, bool or numbers. */
int doc_is_null(const DocNode *n);                   /* NULL node, ~, null, Null, NULL, empty */
int doc_as_bool(const DocNode *n, int *out);         /* true/false/yes/no/on/off, any case */
int doc_as_int(const DocNode *n, long long *out);    /* decimal integers */
int doc_as_number(const DocNode *n, double *out);    /* integers and decimals */
const char *doc_str(const DocNode *n);               /* scalar text, or NULL for seq/map */
const char *doc_kind_name(const DocNode *n);         /* "a string", "a list", "a mapping", ... */

/* The second occurrence of a key that appears twice in map (and the first, via *first),
 * or NULL. O(n log n), so a huge mapping cannot make loading quadratic. */
const DocNode *doc_duplicate_key(const DocNode *map, const DocNode **first);

/* Deep merge: every key of src missing from dst is copied in; when both values are maps
 * they are merged recursively; otherwise dst's value wins. dst must be a map. */
void doc_merge_defaults(DocNode *dst, const DocNode *src);

#endif
