/* routes_ui — serves the embedded web UI (see api/ui.h). The UI's files are public, like a
 * login page: what they show comes from the API, which checks every call. Responses carry
 * an ETag and revalidate (Cache-Control: no-cache), so a browser keeps one copy per build
 * and a new build is seen at once; a strict Content-Security-Policy keeps the page to its
 * own scripts and its own API. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/ui.h"
#include "core/util.h"

static const char SECURITY[] = "Cache-Control: no-cache\r\n"
                               "Content-Security-Policy: default-src 'self'; img-src 'self' data:; "
                               "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'\r\n"
                               "Referrer-Policy: no-referrer\r\n"
                               "X-Frame-Options: DENY\r\n";

static void serve(ApiReq *r, ApiResp *out, const char *name)
{
    for (const UiAsset *a = ui_assets; a->name; a++) {
        if (strcmp(a->name, name) != 0) continue;
        const char *inm = api_header(r, "If-None-Match");
        out->extra_headers = xasprintf("%sETag: %s\r\n", SECURITY, a->etag);
        out->content_type = a->content_type;
        if (inm && strcmp(inm, a->etag) == 0) {
            out->status = 304;
            return;
        }
        out->status = 200;
        out->body = xmalloc(a->len + 1);
        memcpy(out->body, a->data, a->len + 1);
        out->body_len = a->len;
        return;
    }
    api_error(out, 404, "Not found: /ui/%s", name);
}

static void h_index(ApiReq *r, ApiResp *out) { serve(r, out, "index.html"); }
static void h_file(ApiReq *r, ApiResp *out) { serve(r, out, r->params[0]); }

const ApiRoute api_routes_ui[] = {
    {"GET", "/", API_ROLE_NONE, h_index},
    {"GET", "/ui/{file}", API_ROLE_NONE, h_file},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
