/* http — the HTTP client behind the `http` and `http_sensor` operators, with the meaning
 * Airflow's HttpHook gives a connection, an endpoint, data, headers and extra options.
 *
 * One request is one libcurl easy handle, so requests run from any number of worker
 * threads at once; curl_global_init, which is not thread safe, runs once (pthread_once)
 * on the first request. The caller gets any HTTP answer as a response (a 500 is not a
 * transport error) and decides with http_check() — gust's declarative stand-in for
 * Airflow's Python response_check — whether it is a success. */
#ifndef GUST_HTTP_H
#define GUST_HTTP_H

#include <stddef.h>

/* What an Airflow HTTP connection gives. Strings are borrowed for the call. */
typedef struct HttpConn {
    const char *conn_type;  /* "http"/"https": the scheme when `scheme` is NULL; else NULL */
    const char *scheme;     /* Airflow's `schema` field: "http"/"https"; NULL → conn_type or "http" */
    const char *host;       /* "api.example.com", or a whole base URL "https://api.example.com/v1" */
    int port;               /* 0: the scheme's default (or the port in a base-URL host) */
    const char *login;      /* basic auth when set (password NULL means empty) */
    const char *password;
    const char *extra_json; /* Airflow extra (JSON object) or NULL: see "Extra" below */
} HttpConn;

/* Extra — the connection's extra and the request's extra_options take the same keys:
 *   "verify" (or "verify_ssl"): false turns TLS verification off; a string is a CA bundle
 *       file (or folder) to verify against;
 *   "timeout": seconds;  "allow_redirects": bool (default true);  "max_redirects": n (30);
 *   "proxies" (or "proxy"): {"http": url, "https": url} or one url string;
 *   "trust_env": false ignores the http_proxy/https_proxy environment;
 *   "cert": client certificate file, or [cert, key];
 *   "stream", "check_response": accepted, no effect (the caller checks responses).
 * extra_options win over the connection's extra. Every other key of the connection's
 * extra is a header ("X-Api-Key": "...", numbers and booleans as their JSON text), as in
 * Airflow; a "headers" object there is merged too. Unknown extra_options keys are ignored. */

typedef struct HttpRequest {
    const HttpConn *conn;            /* required */
    const char *method;              /* GET POST PUT PATCH DELETE HEAD (any token); NULL → GET */
    const char *endpoint;            /* joined to the base URL as Airflow's url_from_endpoint */
    const char *data;                /* body text, or NULL; see data_is_json */
    int data_is_json;                /* data is JSON text: sent with Content-Type: application/json
                                      * unless a header sets another type; a form content type
                                      * (application/x-www-form-urlencoded) sends the object
                                      * urlencoded. With GET, a JSON object becomes query
                                      * parameters (plain text data is appended as the query).
                                      * HEAD sends no data. */
    const char *const *headers;      /* "Name: value", NULL-terminated; beat the conn extra's */
    const char *request_params_json; /* query parameters (JSON object) or NULL */
    const char *extra_options_json;  /* Airflow's extra_options (JSON object) or NULL */
    long timeout_ms;                 /* whole request; 0 → extra "timeout" or 30 s */
    int verify_tls;                  /* 0 or 1: verify TLS (the default) unless an extra says
                                      * "verify": false; -1: do not verify */
    long max_body_bytes;             /* response body kept; <= 0 → 10 MiB. The rest is read,
                                      * counted in body_total and dropped */
} HttpRequest;

/* Query values: strings as they are, numbers and booleans as JSON text (true, 3.5), null
 * leaves the key out, an array repeats the key per element, an object is its JSON text;
 * encoded as application/x-www-form-urlencoded (space → '+'), like Python's urlencode. */

typedef struct HttpResponse {
    long status;          /* HTTP status of the final response (after redirects); 0 if none */
    char *body;           /* NUL-terminated, never NULL after a 0 return ("" for HEAD) */
    size_t body_len;      /* bytes kept in body */
    size_t body_total;    /* bytes the server sent (decoded), kept or not */
    int truncated;        /* 1 when body_total > body_len */
    char *content_type;   /* the Content-Type header, or NULL */
    char error[256];      /* why a -1 return failed; "" otherwise */
} HttpResponse;

/* Send the request. 0: a response arrived, whatever its status. -1: no response; error
 * says why, naming host and port where it matters:
 *   "cannot connect to api.example.com:443: Connection refused"
 *   "cannot resolve host 'api.example.con'"
 *   "timed out after 30s waiting for api.example.com:443"
 *   "TLS handshake with 127.0.0.1:8080 failed: ... wrong version number"
 *   "TLS certificate of api.example.com:443 failed verification: ... (extra "verify": false skips the check)"
 * and bad arguments (invalid URL, extra that is not a JSON object, data that is not JSON).
 * resp is overwritten (no need to zero it first); free it with http_response_free after
 * either return. */
int http_request(const HttpRequest *req, HttpResponse *resp);
void http_response_free(HttpResponse *r); /* frees body and content_type; accepts NULL */

/* The URL a request goes to, without query parameters from data or request_params:
 * Airflow's base URL (scheme://host[:port], or the host when it holds "://", with port
 * added when that URL names none) joined to the endpoint as Airflow's url_from_endpoint
 * does — a '/' between them when neither has one — except that where both have one,
 * gust keeps one (Airflow sends "//"). Spaces and non-ASCII bytes are %-escaped.
 * Caller frees; NULL when the result is not a valid http or https URL. */
char *http_url_from_endpoint(const HttpConn *conn, const char *endpoint);

/* Declarative response checks; every part given must pass. */
typedef struct HttpCheck {
    const int *ok_statuses;  /* statuses that pass; NULL/n_ok 0 → any 2xx */
    size_t n_ok;
    const char *contains;    /* the body must contain this text, or NULL */
    const char *json_path;   /* "a.b[0].c": the body is JSON and holds a value there, or NULL */
    const char *json_equals; /* with json_path: that value must equal this JSON literal
                              * ("\"done\"", "true", "3"); text that is not JSON is taken
                              * as a string, so done means "done" */
} HttpCheck;

/* 1 pass, 0 fail with a reason in why: "status 503 is not 2xx", "status 404 is not one
 * of 200, 202", "body does not contain \"ready\"", "body is not JSON",
 * "no value at data.state", "data.state is \"running\", want \"done\"". chk NULL → 2xx. */
int http_check(const HttpCheck *chk, const HttpResponse *r, char *why, size_t whylen);

/* The value at path in a JSON text, as compact JSON text, or NULL when the text is not
 * JSON or nothing is there. Path: dot-separated keys and [index] steps ("a.b[0].c",
 * "[2]", "items[-1]" is the last element, ["odd.key"] quotes a key); a leading "$" is
 * allowed; "" or "$" is the whole document. Keys match case-sensitively. Caller frees. */
char *http_json_path(const char *json, const char *path);

#endif
