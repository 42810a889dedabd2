/* auth — stub: being written. */
#include "api/auth.h"

int api_auth_request(ApiContext *ctx, struct Store *s, const char *authorization, const char *addr, char *user,
                     size_t ulen, ApiRole *role, char *why, size_t whylen)
{
    (void)ctx; (void)s; (void)authorization; (void)addr; (void)user; (void)ulen; (void)role;
    if (whylen) why[0] = 0;
    return 0;
}
char *api_token_issue(const ApiContext *ctx, const char *user, ApiRole role, int64_t now_us)
{
    (void)ctx; (void)user; (void)role; (void)now_us;
    return NULL;
}
int api_token_verify(const ApiContext *ctx, const char *token, int64_t now_us, char *user, size_t ulen, ApiRole *role,
                     char *why, size_t whylen)
{
    (void)ctx; (void)token; (void)now_us; (void)user; (void)ulen; (void)role; (void)why; (void)whylen;
    return 0;
}
