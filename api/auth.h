/* auth — who is calling: JWT bearer tokens (HS256, signed with ctx->token_key), HTTP Basic
 * for scripts, users and their roles in the store (store/users.h), and the throttle on failed
 * logins. Thread-safe: called from every pool thread at once.
 *
 * A token carries the user's name and role, but the role that counts is the one in the
 * user's row (cached ~5 s per process): a user deleted or demoted loses access within
 * seconds, and a token issued before the user's changed_at (a password or role change;
 * whole-second precision, as JWT's iat has) is refused.
 *
 * Password checks (POST /auth/token and Basic) are throttled per username and per client
 * address: 5 failures within 5 minutes block further attempts for 1 minute, doubling with
 * each new block up to 15 minutes, even with the right password and without running the
 * ~0.3 s KDF — that is what keeps guessing and CPU exhaustion away. A good Basic credential
 * is remembered (as a SHA-256 of user and password, never in clear) for 60 s so scripts
 * that use Basic on every call do not pay the KDF each time. */
#ifndef GUST_API_AUTH_H
#define GUST_API_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "api/api.h"

/* Authenticate a request from its Authorization header (may be NULL) and the client's
 * address. 1 = authenticated (*user, *role set); 0 = not (why says what, for the 401's
 * detail: "missing credentials", "the token has expired", "too many failed logins ...");
 * -1 = the store failed (the server answers 503). A user deleted or demoted after a
 * token was issued loses access within a few seconds. */
int api_auth_request(ApiContext *ctx, struct Store *s, const char *authorization, const char *addr, char *user,
                     size_t ulen, ApiRole *role, char *why, size_t whylen);

/* A signed token for user (heap; caller frees). NULL only if OpenSSL fails. */
char *api_token_issue(const ApiContext *ctx, const char *user, ApiRole role, int64_t now_us);
/* 1 valid (user/role from its claims), 0 invalid/expired/tampered (why says which:
 * "the token has expired", "invalid token signature", "unsupported token algorithm 'none'",
 * "malformed token"). Checks only the token itself, not the user's row. */
int api_token_verify(const ApiContext *ctx, const char *token, int64_t now_us, char *user, size_t ulen, ApiRole *role,
                     char *why, size_t whylen);

/* api_auth_password's answer when the username or the address is blocked. */
#define API_AUTH_THROTTLED (-429)

/* Check a username and password as a login (method is "token" or "basic", for the event
 * log), with the throttle: 1 = right (*role set, last_login recorded), 0 = wrong (why:
 * "Invalid username or password"), -1 = the store failed, API_AUTH_THROTTLED = blocked
 * (*retry_after_s set, the password was not even checked). Every call leaves an event-log
 * row: "api.login" or "api.login_failed", owner the username (when it is a valid name),
 * extra the method, the address and the reason — never the password. */
int api_auth_password(ApiContext *ctx, struct Store *s, const char *method, const char *username,
                      const char *password, const char *addr, ApiRole *role, int *retry_after_s, char *why,
                      size_t whylen);

/* Forget what this process cached about a user (call after changing it here, so the change
 * applies at once instead of within the cache's ~5 s). NULL forgets every user. */
void api_auth_invalidate(const char *username);
/* Forget every cache and every throttle (tests). */
void api_auth_reset(void);

#endif
