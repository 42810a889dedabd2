/* auth — tokens, Basic credentials, the user cache and the login throttle (see auth.h).
 *
 * Tokens are JWTs (RFC 7519) signed with HMAC-SHA256, built here from core/secret.h's
 * HMAC and base64url rather than through a JWT library: the format is three fields, and
 * the one rule that matters — the algorithm is fixed to HS256, so "none" and key-confusion
 * tricks never reach the signature check — is easiest to see in a hundred lines.
 *
 * Three small process-wide tables, each under one mutex and each bounded (when full, the
 * least recently used entry goes): the user cache (username -> role, changed_at; 5 s), the
 * Basic cache (SHA-256 of "user\0password" -> user and the changed_at it was checked
 * against; 60 s) and the throttle (username or address -> failures, block). Store calls
 * and the KDF run outside the mutex, so a slow login never stalls other requests — which
 * also means attempts already past the throttle check when the limit trips (at most one per
 * API thread) still finish. */
#include "api/auth.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/passwd.h"
#include "core/secret.h"
#include "core/util.h"
#include "store/store.h"
#include "store/users.h"
#include "store/xcom.h"

#define SEC 1000000LL
#define USER_TTL (5 * SEC)          /* how stale a cached role may be */
#define BASIC_TTL (60 * SEC)        /* how long a good Basic credential skips the KDF */
#define FAIL_LIMIT 5                /* failures ... */
#define FAIL_WINDOW (300 * SEC)     /* ... within this long start a block */
#define BLOCK_FIRST (60 * SEC)      /* the first block; each new one doubles ... */
#define BLOCK_MAX (900 * SEC)       /* ... up to this */
#define FORGET_AFTER (3600 * SEC)   /* an entry quiet this long is forgotten (its doubling too) */
#define CLOCK_SKEW 60               /* seconds a token's iat may be ahead of our clock */

#define USER_SLOTS 256
#define BASIC_SLOTS 256
#define THROTTLE_SLOTS 4096

/* A hash of a random password nobody knows, verified when the username does not exist so
 * that a wrong name takes as long as a wrong password (no user enumeration by timing). */
static const char DUMMY_HASH[] = "pbkdf2_sha256$600000$BuXx6dDL9VWWg8IVHr0aCA$/N7Ig1/5jf/ftYOKl7gXBR4J+JL8bL2hd5OlQxc24mc=";

typedef struct UserSlot {
    char name[STORE_USER_NAME_MAX + 1]; /* "" = free */
    int found;                          /* 0: the user does not exist */
    ApiRole role;
    int64_t changed_at;
    int64_t fetched;                    /* when it was read from the store */
} UserSlot;

typedef struct BasicSlot {
    unsigned char key[SHA256_DIGEST_LENGTH]; /* SHA-256 of "user\0password" */
    char name[STORE_USER_NAME_MAX + 1];      /* "" = free */
    int64_t changed_at;                      /* the user's changed_at when the password was checked */
    int64_t until;
} BasicSlot;

typedef struct ThrottleSlot {
    char key[80];          /* "u:NAME" or "a:ADDRESS"; "" = free */
    int fails;             /* failures since window_start */
    int64_t window_start;
    int64_t blocked_until; /* 0 = not blocked */
    int blocks;            /* blocks so far: the next one lasts BLOCK_FIRST << blocks */
    int64_t last;          /* last touched */
} ThrottleSlot;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static UserSlot users[USER_SLOTS];
static BasicSlot basics[BASIC_SLOTS];
static ThrottleSlot throttle[THROTTLE_SLOTS];

static void set_why(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
    if (!why || !whylen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* ---- tokens ------------------------------------------------------------------------------ */

static char *b64url_json(const cJSON *o)
{
    char *text = cJSON_PrintUnformatted(o);
    if (!text) return NULL;
    char *enc = secret_b64url_encode(text, strlen(text));
    free(text);
    return enc;
}

char *api_token_issue(const ApiContext *ctx, const char *user, ApiRole role, int64_t now_us)
{
    unsigned char jti[16];
    if (!user || secret_random_bytes(jti, sizeof jti) != 0) return NULL;
    char *jti_text = secret_b64url_encode(jti, sizeof jti);
    int64_t iat = now_us / SEC, ttl = ctx->token_ttl_us > 0 ? ctx->token_ttl_us / SEC : 86400;
    cJSON *h = cJSON_CreateObject(), *c = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "alg", "HS256");
    cJSON_AddStringToObject(h, "typ", "JWT");
    cJSON_AddStringToObject(c, "sub", user);
    cJSON_AddStringToObject(c, "role", api_role_name(role));
    cJSON_AddNumberToObject(c, "iat", (double)iat);
    cJSON_AddNumberToObject(c, "exp", (double)(iat + ttl));
    cJSON_AddStringToObject(c, "jti", jti_text ? jti_text : "");
    char *hp = b64url_json(h), *cp = b64url_json(c);
    cJSON_Delete(h);
    cJSON_Delete(c);
    free(jti_text);
    char *token = NULL;
    if (hp && cp) {
        char *signing = xasprintf("%s.%s", hp, cp);
        unsigned char mac[32];
        if (secret_hmac_sha256(ctx->token_key, sizeof ctx->token_key, signing, strlen(signing), mac) == 0) {
            char *sig = secret_b64url_encode(mac, sizeof mac);
            if (sig) token = xasprintf("%s.%s", signing, sig);
            free(sig);
        }
        free(signing);
    }
    free(hp);
    free(cp);
    return token;
}

/* Decode one base64url part as a JSON object; NULL when it is not one. */
static cJSON *part_json(const char *text, size_t len)
{
    size_t n = 0;
    unsigned char *raw = secret_b64url_decode(text, len, &n);
    if (!raw) return NULL;
    cJSON *o = cJSON_ParseWithLength((const char *)raw, n);
    free(raw);
    if (o && !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        o = NULL;
    }
    return o;
}

/* api_token_verify with the token's iat (seconds) too. */
static int token_verify(const ApiContext *ctx, const char *token, int64_t now_us, char *user, size_t ulen,
                        ApiRole *role, int64_t *iat_out, char *why, size_t whylen)
{
    const char *d1 = token ? strchr(token, '.') : NULL, *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.') || d1 == token || d2 == d1 + 1) {
        set_why(why, whylen, "malformed token: a JWT has three parts separated by dots");
        return 0;
    }
    /* The algorithm is checked before anything else, and only HS256 passes: a token that
     * says "none" (or RS256, whose "public key" would be our secret) never gets further. */
    cJSON *h = part_json(token, (size_t)(d1 - token));
    if (!h) {
        set_why(why, whylen, "malformed token: its header is not base64url JSON");
        return 0;
    }
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
    if (!cJSON_IsString(alg) || strcmp(alg->valuestring, "HS256") != 0) {
        set_why(why, whylen, "unsupported token algorithm '%.20s': only HS256 is accepted",
                cJSON_IsString(alg) ? alg->valuestring : "");
        cJSON_Delete(h);
        return 0;
    }
    cJSON_Delete(h);

    size_t siglen = 0;
    unsigned char *sig = secret_b64url_decode(d2 + 1, strlen(d2 + 1), &siglen);
    unsigned char mac[32];
    int good = sig && siglen == sizeof mac &&
               secret_hmac_sha256(ctx->token_key, sizeof ctx->token_key, token, (size_t)(d2 - token), mac) == 0 &&
               CRYPTO_memcmp(sig, mac, sizeof mac) == 0;
    free(sig);
    if (!good) {
        set_why(why, whylen, "invalid token signature");
        return 0;
    }

    cJSON *c = part_json(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!c) {
        set_why(why, whylen, "malformed token: its claims are not base64url JSON");
        return 0;
    }
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(c, "sub");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(c, "exp");
    const cJSON *iat = cJSON_GetObjectItemCaseSensitive(c, "iat");
    const cJSON *rl = cJSON_GetObjectItemCaseSensitive(c, "role");
    int rc = 0;
    int64_t now = now_us / SEC;
    if (!cJSON_IsString(sub) || !store_user_name_valid(sub->valuestring, NULL, 0) || !cJSON_IsNumber(exp) ||
        !cJSON_IsNumber(iat) || !isfinite(exp->valuedouble) || !isfinite(iat->valuedouble))
        set_why(why, whylen, "malformed token: it needs the claims sub, iat and exp");
    else if ((double)now >= exp->valuedouble)
        set_why(why, whylen, "the token has expired");
    else if (iat->valuedouble > (double)(now + CLOCK_SKEW))
        set_why(why, whylen, "the token was issued in the future");
    else {
        int r = cJSON_IsString(rl) ? api_role_parse(rl->valuestring) : -1;
        if (user && ulen) util_strlcpy(user, sub->valuestring, ulen);
        if (role) *role = r > 0 ? (ApiRole)r : API_ROLE_NONE;
        if (iat_out) *iat_out = (int64_t)iat->valuedouble;
        rc = 1;
    }
    cJSON_Delete(c);
    return rc;
}

int api_token_verify(const ApiContext *ctx, const char *token, int64_t now_us, char *user, size_t ulen, ApiRole *role,
                     char *why, size_t whylen)
{
    return token_verify(ctx, token, now_us, user, ulen, role, NULL, why, whylen);
}

/* ---- the user cache ---------------------------------------------------------------------- */

static void user_remember(const char *name, int found, ApiRole role, int64_t changed_at, int64_t now)
{
    pthread_mutex_lock(&mu);
    int slot = 0;
    for (int i = 0; i < USER_SLOTS; i++) {
        if (strcmp(users[i].name, name) == 0) {
            slot = i;
            break;
        }
        if (users[i].fetched < users[slot].fetched) slot = i; /* free slots have fetched 0 */
    }
    UserSlot *e = &users[slot];
    util_strlcpy(e->name, name, sizeof e->name);
    e->found = found;
    e->role = role;
    e->changed_at = changed_at;
    e->fetched = now;
    pthread_mutex_unlock(&mu);
}

/* The user's role and changed_at, from the cache when fresh, else from the store:
 * 1 exists, 0 does not, -1 store failure. */
static int user_lookup(Store *s, const char *name, int64_t now, ApiRole *role, int64_t *changed_at)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < USER_SLOTS; i++)
        if (users[i].name[0] && strcmp(users[i].name, name) == 0 && now - users[i].fetched < USER_TTL) {
            int found = users[i].found;
            *role = users[i].role;
            *changed_at = users[i].changed_at;
            pthread_mutex_unlock(&mu);
            return found;
        }
    pthread_mutex_unlock(&mu);

    if (!s) return -1;
    int missing = 0;
    StoreUser *u = store_user_get(s, name, &missing);
    if (!u && !missing) return -1;
    int found = u != NULL, r = u ? api_role_parse(u->role) : -1;
    /* a row with a role nobody can parse (edited by hand) grants nothing */
    *role = r > 0 ? (ApiRole)r : API_ROLE_NONE;
    *changed_at = u ? u->changed_at : 0;
    store_user_free(u);

    user_remember(name, found, *role, *changed_at, now);
    return found;
}

void api_auth_invalidate(const char *username)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < USER_SLOTS; i++)
        if (!username || strcmp(users[i].name, username) == 0) memset(&users[i], 0, sizeof users[i]);
    for (int i = 0; i < BASIC_SLOTS; i++)
        if (!username || strcmp(basics[i].name, username) == 0) memset(&basics[i], 0, sizeof basics[i]);
    pthread_mutex_unlock(&mu);
}

void api_auth_reset(void)
{
    api_auth_invalidate(NULL);
    pthread_mutex_lock(&mu);
    memset(throttle, 0, sizeof throttle);
    pthread_mutex_unlock(&mu);
}

/* ---- the throttle ------------------------------------------------------------------------ */

/* Which of two slots to give away: a free one, else one not blocked, else the one touched
 * longest ago. */
static int better_victim(const ThrottleSlot *t, const ThrottleSlot *v, int64_t now)
{
    if (!v->key[0]) return 0;
    if (!t->key[0]) return 1;
    int tb = t->blocked_until > now, vb = v->blocked_until > now;
    if (tb != vb) return !tb;
    return t->last < v->last;
}

/* The slot for key, created when create is set (NULL when absent and not created). Under mu. */
static ThrottleSlot *throttle_slot(const char *key, int64_t now, int create)
{
    ThrottleSlot *victim = &throttle[0];
    for (int i = 0; i < THROTTLE_SLOTS; i++) {
        ThrottleSlot *t = &throttle[i];
        if (t->key[0] && now - t->last > FORGET_AFTER && t->blocked_until <= now) memset(t, 0, sizeof *t);
        if (t->key[0] && strcmp(t->key, key) == 0) return t;
        if (better_victim(t, victim, now)) victim = t;
    }
    if (!create) return NULL;
    memset(victim, 0, sizeof *victim);
    util_strlcpy(victim->key, key, sizeof victim->key);
    victim->last = now;
    return victim;
}

/* The throttle's keys. An IPv6 client is keyed by its /64: one host usually holds a whole
 * /64 and could otherwise rotate through addresses past the limit. */
static void throttle_keys(const char *user, const char *addr, char ukey[80], char akey[80])
{
    snprintf(ukey, 80, "u:%s", user ? user : "");
    struct in6_addr a6;
    char buf[INET6_ADDRSTRLEN];
    if (addr && strchr(addr, ':') && inet_pton(AF_INET6, addr, &a6) == 1 && !IN6_IS_ADDR_V4MAPPED(&a6)) {
        memset(a6.s6_addr + 8, 0, 8);
        inet_ntop(AF_INET6, &a6, buf, sizeof buf);
        snprintf(akey, 80, "a:%s/64", buf);
    } else {
        snprintf(akey, 80, "a:%s", addr ? addr : "");
    }
}

/* Seconds until user and addr may try again; 0 when neither is blocked. */
static int throttle_blocked(const char *user, const char *addr, int64_t now)
{
    char ukey[80], akey[80];
    throttle_keys(user, addr, ukey, akey);
    int64_t until = 0;
    pthread_mutex_lock(&mu);
    ThrottleSlot *u = user ? throttle_slot(ukey, now, 0) : NULL, *a = addr ? throttle_slot(akey, now, 0) : NULL;
    if (u && u->blocked_until > until) until = u->blocked_until;
    if (a && a->blocked_until > until) until = a->blocked_until;
    pthread_mutex_unlock(&mu);
    return until > now ? (int)((until - now + SEC - 1) / SEC) : 0;
}

static void throttle_fail_one(const char *key, int64_t now)
{
    ThrottleSlot *t = throttle_slot(key, now, 1);
    if (now - t->window_start > FAIL_WINDOW) t->window_start = now, t->fails = 0;
    t->last = now;
    if (++t->fails < FAIL_LIMIT) return;
    int64_t len = BLOCK_FIRST << (t->blocks < 4 ? t->blocks : 4);
    t->blocked_until = now + (len < BLOCK_MAX ? len : BLOCK_MAX);
    t->blocks++;
    t->fails = 0;
    t->window_start = now;
}

static void throttle_fail(const char *user, const char *addr, int64_t now)
{
    char ukey[80], akey[80];
    throttle_keys(user, addr, ukey, akey);
    pthread_mutex_lock(&mu);
    if (user) throttle_fail_one(ukey, now);
    if (addr) throttle_fail_one(akey, now);
    pthread_mutex_unlock(&mu);
}

/* A good password clears the user's record. The address keeps its count: an address that
 * guesses at many names must not be able to reset its record with one account it owns. */
static void throttle_ok(const char *user, int64_t now)
{
    char ukey[80], akey[80];
    throttle_keys(user, NULL, ukey, akey);
    pthread_mutex_lock(&mu);
    ThrottleSlot *t = throttle_slot(ukey, now, 0);
    if (t) memset(t, 0, sizeof *t);
    pthread_mutex_unlock(&mu);
}

/* ---- password logins --------------------------------------------------------------------- */

static void login_event(Store *s, const char *user, int valid_name, const char *method, const char *addr, int ok,
                        const char *reason)
{
    char owner[STORE_USER_NAME_MAX + 8];
    snprintf(owner, sizeof owner, "api:%s", valid_name ? user : "");
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "method", method ? method : "token");
    if (addr) cJSON_AddStringToObject(x, "remote_addr", addr);
    if (reason) cJSON_AddStringToObject(x, "reason", reason);
    char *extra = cJSON_PrintUnformatted(x);
    cJSON_Delete(x);
    StoreEvent e;
    memset(&e, 0, sizeof e);
    e.event = (char *)(uintptr_t)(ok ? "api.login" : "api.login_failed");
    e.owner = valid_name ? owner : NULL;
    e.map_index = -1;
    e.extra = extra;
    if (store_event_append(s, &e, NULL) != 0)
        log_warn("api", "cannot write %s of %s to the event log: %s", e.event, valid_name ? user : "(invalid name)",
                 store_last_error(s));
    free(extra);
}

/* api_auth_password, also giving the changed_at the password was checked against. */
static int password_login(ApiContext *ctx, Store *s, const char *method, const char *username, const char *password,
                          const char *addr, ApiRole *role, int64_t *changed_at, int *retry_after_s, char *why,
                          size_t whylen)
{
    (void)ctx;
    if (!s) return -1;
    int64_t now = util_now_us();
    int valid = store_user_name_valid(username, NULL, 0);
    /* an invalid name is not a key: it would let a guesser rotate names past the limit */
    const char *tuser = valid ? username : NULL;
    int wait = throttle_blocked(tuser, addr, now);
    if (wait > 0) {
        if (retry_after_s) *retry_after_s = wait;
        set_why(why, whylen, "too many failed logins: try again in %d s", wait);
        login_event(s, username, valid, method, addr, 0, "throttled");
        return API_AUTH_THROTTLED;
    }
    StoreUser *u = NULL;
    int missing = 1;
    if (valid) {
        u = store_user_get(s, username, &missing);
        if (!u && !missing) return -1;
    }
    int ok = passwd_verify(password ? password : "", u ? u->password_hash : DUMMY_HASH) == 1 && u;
    int r = u ? api_role_parse(u->role) : -1;
    if (ok && r <= 0) ok = 0; /* a hand-edited role we cannot read grants nothing */
    if (!ok) {
        throttle_fail(tuser, addr, util_now_us());
        set_why(why, whylen, "Invalid username or password");
        login_event(s, username, valid, method, addr, 0,
                    !valid ? "invalid username" : !u ? "no such user" : r <= 0 ? "unknown role" : "wrong password");
        store_user_free(u);
        return 0;
    }
    throttle_ok(username, now);
    *role = (ApiRole)r;
    if (changed_at) *changed_at = u->changed_at;
    store_user_free(u);
    if (store_user_record_login(s, username, util_now_us()) < 0)
        log_warn("api", "cannot record the login of %s: %s", username, store_last_error(s));
    login_event(s, username, 1, method, addr, 1, NULL);
    return 1;
}

int api_auth_password(ApiContext *ctx, Store *s, const char *method, const char *username, const char *password,
                      const char *addr, ApiRole *role, int *retry_after_s, char *why, size_t whylen)
{
    return password_login(ctx, s, method, username, password, addr, role, NULL, retry_after_s, why, whylen);
}

/* ---- requests ---------------------------------------------------------------------------- */

/* SHA-256 of "user\0password" (with the name's NUL, "ab" + "c" differs from "a" + "bc").
 * 0 ok, -1 if OpenSSL fails (the credential is then not cached). */
static int basic_key(const char *user, const char *pass, unsigned char out[SHA256_DIGEST_LENGTH])
{
    size_t ul = strlen(user) + 1, pl = strlen(pass);
    unsigned char *buf = xmalloc(ul + pl);
    memcpy(buf, user, ul);
    memcpy(buf + ul, pass, pl);
    unsigned int len = 0;
    int ok = EVP_Digest(buf, ul + pl, out, &len, EVP_sha256(), NULL) == 1 && len == SHA256_DIGEST_LENGTH;
    OPENSSL_cleanse(buf, ul + pl);
    free(buf);
    return ok ? 0 : -1;
}

/* The user a cached Basic credential belongs to (copied to name) and the changed_at it
 * was checked against; 0 when it is not cached. */
static int basic_cached(const unsigned char key[SHA256_DIGEST_LENGTH], int64_t now, char *name, size_t nlen,
                        int64_t *changed_at)
{
    int hit = 0;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < BASIC_SLOTS && !hit; i++)
        if (basics[i].name[0] && basics[i].until > now && CRYPTO_memcmp(basics[i].key, key, SHA256_DIGEST_LENGTH) == 0) {
            util_strlcpy(name, basics[i].name, nlen);
            *changed_at = basics[i].changed_at;
            hit = 1;
        }
    pthread_mutex_unlock(&mu);
    return hit;
}

static void basic_remember(const unsigned char key[SHA256_DIGEST_LENGTH], const char *name, int64_t changed_at,
                           int64_t now)
{
    pthread_mutex_lock(&mu);
    int slot = 0;
    for (int i = 0; i < BASIC_SLOTS; i++) {
        if (basics[i].name[0] && memcmp(basics[i].key, key, SHA256_DIGEST_LENGTH) == 0) {
            slot = i;
            break;
        }
        if (basics[i].until < basics[slot].until) slot = i;
    }
    BasicSlot *b = &basics[slot];
    memcpy(b->key, key, SHA256_DIGEST_LENGTH);
    util_strlcpy(b->name, name, sizeof b->name);
    b->changed_at = changed_at;
    b->until = now + BASIC_TTL;
    pthread_mutex_unlock(&mu);
}

static int auth_basic(ApiContext *ctx, Store *s, const char *b64, const char *addr, char *user, size_t ulen,
                      ApiRole *role, char *why, size_t whylen)
{
    size_t n = 0;
    unsigned char *raw = secret_b64_decode(b64, strlen(b64), &n);
    char *colon = raw ? memchr(raw, ':', n) : NULL;
    if (!raw || !colon || memchr(raw, 0, n)) {
        if (raw) OPENSSL_cleanse(raw, n);
        free(raw);
        set_why(why, whylen, "malformed Basic credentials: expected base64 of username:password");
        return 0;
    }
    *colon = 0;
    const char *name = (const char *)raw, *pass = colon + 1;
    int64_t now = util_now_us();
    int rc;
    /* the throttle comes first: a blocked name or address gets nothing, cached or not */
    int wait = throttle_blocked(store_user_name_valid(name, NULL, 0) ? name : NULL, addr, now);
    unsigned char key[SHA256_DIGEST_LENGTH];
    int keyed = basic_key(name, pass, key) == 0;
    char cached_name[STORE_USER_NAME_MAX + 1];
    int64_t cached_changed = 0, changed = 0;
    if (wait > 0) {
        set_why(why, whylen, "too many failed logins: try again in %d s", wait);
        login_event(s, name, store_user_name_valid(name, NULL, 0), "basic", addr, 0, "throttled");
        rc = 0;
    } else if (keyed && basic_cached(key, now, cached_name, sizeof cached_name, &cached_changed) &&
               strcmp(cached_name, name) == 0) {
        /* the role comes from the (cached) row; a password changed since sends us back to the KDF */
        rc = user_lookup(s, name, now, role, &changed);
        if (rc == 1 && changed != cached_changed) rc = 2;
        if (rc == 0) set_why(why, whylen, "user '%s' no longer exists", name);
        if (rc == 1 && *role == API_ROLE_NONE) rc = 0, set_why(why, whylen, "user '%s' has no valid role", name);
    } else {
        rc = 2;
    }
    if (rc == 2) {
        int retry = 0;
        rc = password_login(ctx, s, "basic", name, pass, addr, role, &changed, &retry, why, whylen);
        if (rc == API_AUTH_THROTTLED) rc = 0;
        if (rc == 1) {
            /* the row was just read: the user cache gets it too, so the next call matches */
            if (keyed) basic_remember(key, name, changed, now);
            user_remember(name, 1, *role, changed, now);
        }
    }
    if (rc == 1) util_strlcpy(user, name, ulen);
    OPENSSL_cleanse(raw, n);
    free(raw);
    return rc;
}

static int auth_bearer(ApiContext *ctx, Store *s, const char *token, char *user, size_t ulen, ApiRole *role,
                       char *why, size_t whylen)
{
    char name[STORE_USER_NAME_MAX + 1];
    ApiRole claimed = API_ROLE_NONE;
    int64_t iat = 0, now = util_now_us(), changed = 0;
    if (!token_verify(ctx, token, now, name, sizeof name, &claimed, &iat, why, whylen)) return 0;
    ApiRole r = API_ROLE_NONE;
    int found = user_lookup(s, name, now, &r, &changed);
    if (found < 0) return -1;
    if (!found) {
        set_why(why, whylen, "user '%s' no longer exists", name);
        return 0;
    }
    if (iat < changed / SEC) {
        set_why(why, whylen, "the token was issued before %s's password or role changed: get a new one", name);
        return 0;
    }
    if (r == API_ROLE_NONE) {
        set_why(why, whylen, "user '%s' has no valid role", name);
        return 0;
    }
    util_strlcpy(user, name, ulen);
    *role = r; /* the row's role, not the token's: a demotion applies at once */
    return 1;
}

int api_auth_request(ApiContext *ctx, Store *s, const char *authorization, const char *addr, char *user,
                     size_t ulen, ApiRole *role, char *why, size_t whylen)
{
    if (whylen) why[0] = 0;
    const char *a = authorization;
    while (a && (*a == ' ' || *a == '\t')) a++;
    if (!a || !*a) {
        set_why(why, whylen, "Not authenticated: send Authorization: Bearer TOKEN (from POST /auth/token) "
                             "or Basic credentials");
        return 0;
    }
    const char *sp = strchr(a, ' ');
    size_t slen = sp ? (size_t)(sp - a) : strlen(a);
    const char *cred = sp ? sp + 1 : "";
    while (*cred == ' ') cred++;
    if (slen == 6 && strncasecmp(a, "Bearer", 6) == 0) return auth_bearer(ctx, s, cred, user, ulen, role, why, whylen);
    if (slen == 5 && strncasecmp(a, "Basic", 5) == 0)
        return auth_basic(ctx, s, cred, addr, user, ulen, role, why, whylen);
    set_why(why, whylen, "unsupported Authorization scheme '%.*s': use Bearer or Basic", (int)(slen > 20 ? 20 : slen),
            a);
    return 0;
}
