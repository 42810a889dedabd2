/* auth — who is calling: JWT bearer tokens (HS256, signed with ctx->token_key), HTTP Basic
 * for scripts, users and their roles in the store (store/users.h), and the throttle on failed
 * logins. Thread-safe: called from every pool thread at once. */
#ifndef GUST_API_AUTH_H
#define GUST_API_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "api/api.h"

/* Authenticate a request from its Authorization header (may be NULL) and the client's
 * address. 1 = authenticated (*user, *role set); 0 = not (why says what, for the 401's
 * detail: "missing credentials", "the token has expired", ...); -1 = the store failed
 * (the server answers 503). A user deleted or demoted after a token was issued loses
 * access within a few seconds. */
int api_auth_request(ApiContext *ctx, struct Store *s, const char *authorization, const char *addr, char *user,
                     size_t ulen, ApiRole *role, char *why, size_t whylen);

/* A signed token for user (heap; caller frees). */
char *api_token_issue(const ApiContext *ctx, const char *user, ApiRole role, int64_t now_us);
/* 1 valid (user/role from its claims), 0 invalid/expired/tampered (why says which). */
int api_token_verify(const ApiContext *ctx, const char *token, int64_t now_us, char *user, size_t ulen, ApiRole *role,
                     char *why, size_t whylen);

#endif
