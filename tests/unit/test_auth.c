/* test_auth — API users in the store (both engines) and api/auth.c: tokens made and
 * checked, Bearer and Basic requests, the user cache that lets a deleted or demoted user
 * lose access, and the login throttle that refuses even the right password without
 * running the KDF. */
#include <openssl/crypto.h>
#include <string.h>
#include <time.h>

#include "api/auth.h"
#include "core/passwd.h"
#include "core/secret.h"
#include "core/util.h"
#include "store/users.h"
#include "store/xcom.h"
#include "store_harness.h"

#define SEC 1000000LL

static ApiContext test_ctx(void)
{
    ApiContext c;
    memset(&c, 0, sizeof c);
    for (size_t i = 0; i < sizeof c.token_key; i++) c.token_key[i] = (unsigned char)(i * 7 + 3);
    c.token_ttl_us = 3600 * SEC;
    c.deployment = "api";
    return c;
}

static char *basic_header(const char *user, const char *pass)
{
    char *raw = xasprintf("%s:%s", user, pass);
    char *b64 = secret_b64_encode(raw, strlen(raw));
    char *h = xasprintf("Basic %s", b64);
    free(raw);
    free(b64);
    return h;
}

static char *bearer_header(const char *token)
{
    return xasprintf("Bearer %s", token);
}

/* api_auth_request, returning its answer and filling user/role/why. */
static int auth(ApiContext *c, Store *s, const char *header, const char *addr, char user[128], ApiRole *role,
                char why[256])
{
    user[0] = 0;
    *role = API_ROLE_NONE;
    return api_auth_request(c, s, header, addr, user, 128, role, why, 256);
}

static double elapsed_ms(struct timespec a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
}

/* ---- pure checks --------------------------------------------------------------------------- */

static void test_role_names_are_canonical_in_any_case(void)
{
    ASSERT_STR_EQ(store_user_role_canonical("admin"), "Admin");
    ASSERT_STR_EQ(store_user_role_canonical("OP"), "Op");
    ASSERT_STR_EQ(store_user_role_canonical("User"), "User");
    ASSERT_STR_EQ(store_user_role_canonical("vIeWeR"), "Viewer");
    CU_ASSERT_PTR_NULL(store_user_role_canonical("root"));
    CU_ASSERT_PTR_NULL(store_user_role_canonical(""));
    CU_ASSERT_PTR_NULL(store_user_role_canonical(NULL));
}

static void test_username_rules(void)
{
    char why[128];
    CU_ASSERT(store_user_name_valid("alice", why, sizeof why));
    CU_ASSERT(store_user_name_valid("a.b-c_d@example.com", why, sizeof why));
    CU_ASSERT(store_user_name_valid("x", why, sizeof why));
    char long64[65], long65[66];
    memset(long64, 'a', 64), long64[64] = 0;
    memset(long65, 'a', 65), long65[65] = 0;
    CU_ASSERT(store_user_name_valid(long64, why, sizeof why));
    CU_ASSERT_FALSE(store_user_name_valid(long65, why, sizeof why));
    ASSERT_CONTAINS(why, "longer than 64");
    CU_ASSERT_FALSE(store_user_name_valid("", why, sizeof why));
    ASSERT_CONTAINS(why, "must not be empty");
    CU_ASSERT_FALSE(store_user_name_valid("bob smith", why, sizeof why));
    ASSERT_CONTAINS(why, "letters, digits and _ . @ -");
    CU_ASSERT_FALSE(store_user_name_valid("bob:x", why, sizeof why));
    CU_ASSERT_FALSE(store_user_name_valid("b\xc3\xa9", why, sizeof why));
    CU_ASSERT_FALSE(store_user_name_valid("'; DROP TABLE api_user; --", why, sizeof why));
}

static void test_token_round_trip_carries_user_and_role(void)
{
    ApiContext c = test_ctx();
    int64_t now = util_now_us();
    char *t = api_token_issue(&c, "alice", API_ROLE_OP, now);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    /* header.claims.signature, the header saying HS256 */
    const char *d1 = strchr(t, '.');
    CU_ASSERT_PTR_NOT_NULL_FATAL(d1);
    size_t hl = 0;
    unsigned char *h = secret_b64url_decode(t, (size_t)(d1 - t), &hl);
    ASSERT_CONTAINS((char *)h, "\"alg\":\"HS256\"");
    ASSERT_CONTAINS((char *)h, "\"typ\":\"JWT\"");
    free(h);
    const char *d2 = strchr(d1 + 1, '.');
    unsigned char *claims = secret_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &hl);
    ASSERT_CONTAINS((char *)claims, "\"sub\":\"alice\"");
    ASSERT_CONTAINS((char *)claims, "\"role\":\"Op\"");
    ASSERT_CONTAINS((char *)claims, "\"iat\":");
    ASSERT_CONTAINS((char *)claims, "\"exp\":");
    ASSERT_CONTAINS((char *)claims, "\"jti\":");
    free(claims);

    char user[128], why[256];
    ApiRole role = API_ROLE_NONE;
    CU_ASSERT_EQUAL(api_token_verify(&c, t, now + 10 * SEC, user, sizeof user, &role, why, sizeof why), 1);
    ASSERT_STR_EQ(user, "alice");
    CU_ASSERT_EQUAL(role, API_ROLE_OP);
    /* two tokens for the same user at the same time differ (jti) */
    char *t2 = api_token_issue(&c, "alice", API_ROLE_OP, now);
    CU_ASSERT(strcmp(t, t2) != 0);
    free(t);
    free(t2);
}

static void test_token_expires_at_its_ttl(void)
{
    ApiContext c = test_ctx();
    int64_t now = util_now_us();
    char *t = api_token_issue(&c, "alice", API_ROLE_VIEWER, now);
    char user[128], why[256];
    ApiRole role;
    CU_ASSERT_EQUAL(api_token_verify(&c, t, now + 3599 * SEC, user, sizeof user, &role, why, sizeof why), 1);
    CU_ASSERT_EQUAL(api_token_verify(&c, t, now + 3601 * SEC, user, sizeof user, &role, why, sizeof why), 0);
    ASSERT_STR_EQ(why, "the token has expired");
    free(t);
}

/* A token whose parts are given as JSON texts, signed (or not) with key. */
static char *craft(const char *header, const char *claims, const unsigned char *key, const char *sig_override)
{
    char *h = secret_b64url_encode(header, strlen(header)), *c = secret_b64url_encode(claims, strlen(claims));
    char *signing = xasprintf("%s.%s", h, c);
    char *sig;
    if (sig_override) {
        sig = xstrdup(sig_override);
    } else {
        unsigned char mac[32];
        secret_hmac_sha256(key, 32, signing, strlen(signing), mac);
        sig = secret_b64url_encode(mac, sizeof mac);
    }
    char *t = xasprintf("%s.%s", signing, sig);
    free(h), free(c), free(signing), free(sig);
    return t;
}

static void test_token_rejects_none_other_algorithms_tampering_and_garbage(void)
{
    ApiContext c = test_ctx();
    int64_t now = util_now_us();
    char claims[200], user[128], why[256];
    ApiRole role;
    snprintf(claims, sizeof claims, "{\"sub\":\"alice\",\"role\":\"Admin\",\"iat\":%lld,\"exp\":%lld}",
             (long long)(now / SEC), (long long)(now / SEC + 600));

    /* alg none with an empty signature, and none with a valid-looking one */
    char *t = craft("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims, c.token_key, "");
    CU_ASSERT_EQUAL(api_token_verify(&c, t, now, user, sizeof user, &role, why, sizeof why), 0);
    ASSERT_CONTAINS(why, "unsupported token algorithm 'none'");
    free(t);
    t = craft("{\"alg\":\"none\"}", claims, c.token_key, NULL);
    CU_ASSERT_EQUAL(api_token_verify(&c, t, now, user, sizeof user, &role, why, sizeof why), 0);
    ASSERT_CONTAINS(why, "unsupported token algorithm");
    free(t);
    /* HS512, RS256, lower-case hs256, no alg at all */
    const char *headers[] = {"{\"alg\":\"HS512\"}", "{\"alg\":\"RS256\"}", "{\"alg\":\"hs256\"}", "{\"typ\":\"JWT\"}"};
    for (int i = 0; i < 4; i++) {
        t = craft(headers[i], claims, c.token_key, NULL);
        CU_ASSERT_EQUAL(api_token_verify(&c, t, now, user, sizeof user, &role, why, sizeof why), 0);
        ASSERT_CONTAINS(why, "unsupported token algorithm");
        free(t);
    }
    /* the right algorithm, signed with another key */
    unsigned char other[32];
    memset(other, 0x55, sizeof other);
    t = craft("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims, other, NULL);
    CU_ASSERT_EQUAL(api_token_verify(&c, t, now, user, sizeof user, &role, why, sizeof why), 0);
    ASSERT_STR_EQ(why, "invalid token signature");
    free(t);
    /* a genuine token whose claims were swapped for a promotion */
    char *good = api_token_issue(&c, "alice", API_ROLE_VIEWER, now);
    char *d1 = strchr(good, '.'), *d2 = strchr(d1 + 1, '.');
    char *forged_claims = secret_b64url_encode(claims, strlen(claims));
    char *forged = xasprintf("%.*s.%s%s", (int)(d1 - good), good, forged_claims, d2);
    CU_ASSERT_EQUAL(api_token_verify(&c, forged, now, user, sizeof user, &role, why, sizeof why), 0);
    ASSERT_STR_EQ(why, "invalid token signature");
    /* one signature character changed */
    char *flipped = xstrdup(good);
    size_t n = strlen(flipped);
    flipped[n - 2] = flipped[n - 2] == 'A' ? 'B' : 'A';
    CU_ASSERT_EQUAL(api_token_verify(&c, flipped, now, user, sizeof user, &role, why, sizeof why), 0);
    ASSERT_STR_EQ(why, "invalid token signature");
    free(good), free(forged_claims), free(forged), free(flipped);
    /* garbage */
    const char *junk[] = {"", "abc", "a.b", "a.b.c.d", "..", "!!!.???.###", "eyJhbGciOiJIUzI1NiJ9.e30."};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        CU_ASSERT_EQUAL(api_token_verify(&c, junk[i], now, user, sizeof user, &role, why, sizeof why), 0);
        CU_ASSERT(why[0] != 0);
    }
    /* correctly signed but missing claims */
    t = craft("{\"alg\":\"HS256\"}", "{\"sub\":\"alice\"}", c.token_key, NULL);
    CU_ASSERT_EQUAL(api_token_verify(&c, t, now, user, sizeof user, &role, why, sizeof why), 0);
    ASSERT_CONTAINS(why, "needs the claims sub, iat and exp");
    free(t);
}

/* ---- the store ------------------------------------------------------------------------------- */

BOTH_DRIVERS(test_users_create_get_list_delete)
static void test_users_create_get_list_delete(Store *s)
{
    CU_ASSERT_EQUAL(store_user_count(s), 0);
    int exists = -1;
    CU_ASSERT_EQUAL_FATAL(store_user_create(s, "alice", "s3cret pass", "op", &exists), 0);
    CU_ASSERT_EQUAL(exists, 0);
    CU_ASSERT_EQUAL(store_user_create(s, "bob", "hunter2", "Viewer", NULL), 0);
    CU_ASSERT_EQUAL(store_user_count(s), 2);

    int missing = -1;
    StoreUser *u = store_user_get(s, "alice", &missing);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    CU_ASSERT_EQUAL(missing, 0);
    ASSERT_STR_EQ(u->username, "alice");
    ASSERT_STR_EQ(u->role, "Op");
    CU_ASSERT(strncmp(u->password_hash, "pbkdf2_sha256$600000$", 21) == 0);
    CU_ASSERT(strstr(u->password_hash, "s3cret") == NULL);
    CU_ASSERT_EQUAL(passwd_verify("s3cret pass", u->password_hash), 1);
    CU_ASSERT_EQUAL(passwd_verify("s3cret", u->password_hash), 0);
    CU_ASSERT(u->created_at > 0 && u->changed_at == u->created_at);
    CU_ASSERT_EQUAL(u->last_login, -1);
    store_user_free(u);

    StoreUserList l;
    CU_ASSERT_EQUAL_FATAL(store_user_list(s, &l), 0);
    CU_ASSERT_EQUAL_FATAL(l.n, 2);
    ASSERT_STR_EQ(l.items[0].username, "alice");
    ASSERT_STR_EQ(l.items[1].username, "bob");
    ASSERT_STR_EQ(l.items[1].role, "Viewer");
    CU_ASSERT_PTR_NULL(l.items[0].password_hash);
    store_user_list_free(&l);

    CU_ASSERT_EQUAL(store_user_delete(s, "bob"), 1);
    CU_ASSERT_EQUAL(store_user_delete(s, "bob"), 0);
    ASSERT_STR_EQ(store_last_error(s), "no user 'bob'");
    CU_ASSERT_PTR_NULL(store_user_get(s, "bob", &missing));
    CU_ASSERT_EQUAL(missing, 1);
    ASSERT_STR_EQ(store_last_error(s), "no user 'bob'");
    CU_ASSERT_EQUAL(store_user_count(s), 1);
}

BOTH_DRIVERS(test_users_refuse_duplicates_and_bad_input_naming_the_field)
static void test_users_refuse_duplicates_and_bad_input_naming_the_field(Store *s)
{
    CU_ASSERT_EQUAL_FATAL(store_user_create(s, "alice", "pw-one", "Admin", NULL), 0);
    int exists = 0;
    CU_ASSERT_EQUAL(store_user_create(s, "alice", "pw-two", "Viewer", &exists), -1);
    CU_ASSERT_EQUAL(exists, 1);
    ASSERT_STR_EQ(store_last_error(s), "user 'alice' already exists");
    /* the first one is untouched */
    StoreUser *u = store_user_get(s, "alice", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    ASSERT_STR_EQ(u->role, "Admin");
    CU_ASSERT_EQUAL(passwd_verify("pw-one", u->password_hash), 1);
    store_user_free(u);
    /* names differing only in case are different users */
    CU_ASSERT_EQUAL(store_user_create(s, "Alice", "pw", "User", NULL), 0);

    exists = 1;
    CU_ASSERT_EQUAL(store_user_create(s, "carol", "pw", "root", &exists), -1);
    CU_ASSERT_EQUAL(exists, 0);
    ASSERT_STR_EQ(store_last_error(s), "role 'root' is not one of Admin, Op, User, Viewer");
    CU_ASSERT_EQUAL(store_user_create(s, "carol smith", "pw", "User", NULL), -1);
    ASSERT_CONTAINS(store_last_error(s), "username may only contain");
    CU_ASSERT_EQUAL(store_user_create(s, "", "pw", "User", NULL), -1);
    ASSERT_CONTAINS(store_last_error(s), "username must not be empty");
    CU_ASSERT_EQUAL(store_user_create(s, "carol", "", "User", NULL), -1);
    ASSERT_STR_EQ(store_last_error(s), "password must not be empty");
    CU_ASSERT_EQUAL(store_user_create(s, "carol", "\xff\xfe", "User", NULL), -1);
    ASSERT_STR_EQ(store_last_error(s), "password is not valid UTF-8 text");
    char big[STORE_USER_PASSWORD_MAX + 2];
    memset(big, 'p', sizeof big - 1), big[sizeof big - 1] = 0;
    CU_ASSERT_EQUAL(store_user_create(s, "carol", big, "User", NULL), -1);
    ASSERT_CONTAINS(store_last_error(s), "password is longer than 1024 bytes");
    CU_ASSERT_EQUAL(store_user_count(s), 2);
    CU_ASSERT_EQUAL(store_user_set_role(s, "alice", "superuser"), -1);
    ASSERT_CONTAINS(store_last_error(s), "not one of Admin, Op, User, Viewer");
    CU_ASSERT_EQUAL(store_user_set_role(s, "nobody", "Op"), 0);
    ASSERT_STR_EQ(store_last_error(s), "no user 'nobody'");
    CU_ASSERT_EQUAL(store_user_set_password(s, "nobody", "x"), 0);
    CU_ASSERT_EQUAL(store_user_record_login(s, "nobody", 1), 0);
}

BOTH_DRIVERS(test_users_role_and_password_changes_move_changed_at)
static void test_users_role_and_password_changes_move_changed_at(Store *s)
{
    CU_ASSERT_EQUAL_FATAL(store_user_create(s, "alice", "first", "Viewer", NULL), 0);
    StoreUser *u0 = store_user_get(s, "alice", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u0);

    CU_ASSERT_EQUAL(store_user_set_role(s, "alice", "ADMIN"), 1);
    StoreUser *u1 = store_user_get(s, "alice", NULL);
    ASSERT_STR_EQ(u1->role, "Admin");
    CU_ASSERT(u1->changed_at > u0->changed_at);
    CU_ASSERT_EQUAL(u1->created_at, u0->created_at);

    CU_ASSERT_EQUAL(store_user_set_password(s, "alice", "second"), 1);
    StoreUser *u2 = store_user_get(s, "alice", NULL);
    CU_ASSERT(u2->changed_at > u1->changed_at);
    CU_ASSERT_EQUAL(passwd_verify("first", u2->password_hash), 0);
    CU_ASSERT_EQUAL(passwd_verify("second", u2->password_hash), 1);

    CU_ASSERT_EQUAL(store_user_record_login(s, "alice", 1234567), 1);
    StoreUser *u3 = store_user_get(s, "alice", NULL);
    CU_ASSERT_EQUAL(u3->last_login, 1234567);
    CU_ASSERT_EQUAL(u3->changed_at, u2->changed_at); /* a login is not a change */
    store_user_free(u0), store_user_free(u1), store_user_free(u2), store_user_free(u3);
}

/* ---- requests -------------------------------------------------------------------------------- */

BOTH_DRIVERS(test_bearer_uses_the_rows_role_and_dies_with_the_user)
static void test_bearer_uses_the_rows_role_and_dies_with_the_user(Store *s)
{
    api_auth_reset();
    ApiContext c = test_ctx();
    CU_ASSERT_EQUAL_FATAL(store_user_create(s, "alice", "pw", "Op", NULL), 0);
    char user[128], why[256];
    ApiRole role;

    /* the token claims Admin; the row says Op, and the row wins */
    char *t = api_token_issue(&c, "alice", API_ROLE_ADMIN, util_now_us());
    char *h = bearer_header(t);
    CU_ASSERT_EQUAL(auth(&c, s, h, "10.0.0.1", user, &role, why), 1);
    ASSERT_STR_EQ(user, "alice");
    CU_ASSERT_EQUAL(role, API_ROLE_OP);
    /* the scheme is case-insensitive */
    char *lower = xasprintf("bearer %s", t);
    CU_ASSERT_EQUAL(auth(&c, s, lower, "10.0.0.1", user, &role, why), 1);
    free(lower);

    /* a token for a user who never existed */
    char *ghost = api_token_issue(&c, "ghost", API_ROLE_ADMIN, util_now_us());
    char *gh = bearer_header(ghost);
    CU_ASSERT_EQUAL(auth(&c, s, gh, "10.0.0.1", user, &role, why), 0);
    ASSERT_STR_EQ(why, "user 'ghost' no longer exists");
    free(ghost), free(gh);

    /* deleted: still cached for up to ~5 s, then gone */
    CU_ASSERT_EQUAL(store_user_delete(s, "alice"), 1);
    CU_ASSERT_EQUAL(auth(&c, s, h, "10.0.0.1", user, &role, why), 1);
    struct timespec nap = {5, 200 * 1000000L};
    nanosleep(&nap, NULL);
    CU_ASSERT_EQUAL(auth(&c, s, h, "10.0.0.1", user, &role, why), 0);
    ASSERT_STR_EQ(why, "user 'alice' no longer exists");
    free(t), free(h);
}

BOTH_DRIVERS(test_bearer_issued_before_a_change_is_refused)
static void test_bearer_issued_before_a_change_is_refused(Store *s)
{
    api_auth_reset();
    ApiContext c = test_ctx();
    CU_ASSERT_EQUAL_FATAL(store_user_create(s, "alice", "pw", "Admin", NULL), 0);
    char user[128], why[256];
    ApiRole role;
    char *old = api_token_issue(&c, "alice", API_ROLE_ADMIN, util_now_us());
    char *oh = bearer_header(old);
    CU_ASSERT_EQUAL(auth(&c, s, oh, "10.0.0.1", user, &role, why), 1);
    CU_ASSERT_EQUAL(role, API_ROLE_ADMIN);
    /* iat has whole-second precision: the change must fall in a later second */
    struct timespec nap = {1, 50 * 1000000L};
    nanosleep(&nap, NULL);

    CU_ASSERT_EQUAL(store_user_set_role(s, "alice", "Viewer"), 1);
    api_auth_invalidate("alice"); /* what an in-process change does; other processes wait ~5 s */
    CU_ASSERT_EQUAL(auth(&c, s, oh, "10.0.0.1", user, &role, why), 0);
    ASSERT_CONTAINS(why, "issued before alice's password or role changed");

    char *fresh = api_token_issue(&c, "alice", API_ROLE_VIEWER, util_now_us());
    char *fh = bearer_header(fresh);
    CU_ASSERT_EQUAL(auth(&c, s, fh, "10.0.0.1", user, &role, why), 1);
    CU_ASSERT_EQUAL(role, API_ROLE_VIEWER);
    free(old), free(oh), free(fresh), free(fh);
}

static void test_missing_and_unknown_credentials_say_why(void)
{
    api_auth_reset();
    ApiContext c = test_ctx();
    char user[128], why[256];
    ApiRole role;
    /* no store call is needed for these */
    CU_ASSERT_EQUAL(auth(&c, NULL, NULL, "10.0.0.1", user, &role, why), 0);
    ASSERT_CONTAINS(why, "Not authenticated");
    CU_ASSERT_EQUAL(auth(&c, NULL, "", "10.0.0.1", user, &role, why), 0);
    ASSERT_CONTAINS(why, "Not authenticated");
    CU_ASSERT_EQUAL(auth(&c, NULL, "Digest abc", "10.0.0.1", user, &role, why), 0);
    ASSERT_CONTAINS(why, "unsupported Authorization scheme 'Digest'");
    CU_ASSERT_EQUAL(auth(&c, NULL, "Bearer", "10.0.0.1", user, &role, why), 0);
    ASSERT_CONTAINS(why, "malformed token");
    CU_ASSERT_EQUAL(auth(&c, NULL, "Bearer not.a.jwt", "10.0.0.1", user, &role, why), 0);
    CU_ASSERT(why[0] != 0);
    CU_ASSERT_EQUAL(auth(&c, NULL, "Basic !!!", "10.0.0.1", user, &role, why), 0);
    ASSERT_CONTAINS(why, "malformed Basic credentials");
    char *nocolon = secret_b64_encode("alice", 5), *h = xasprintf("Basic %s", nocolon);
    CU_ASSERT_EQUAL(auth(&c, NULL, h, "10.0.0.1", user, &role, why), 0);
    ASSERT_CONTAINS(why, "malformed Basic credentials");
    free(nocolon), free(h);
}

BOTH_DRIVERS(test_basic_checks_the_password_once_then_caches_it)
static void test_basic_checks_the_password_once_then_caches_it(Store *s)
{
    api_auth_reset();
    ApiContext c = test_ctx();
    CU_ASSERT_EQUAL_FATAL(store_user_create(s, "alice", "pa:ss word", "User", NULL), 0);
    char user[128], why[256];
    ApiRole role;
    char *good = basic_header("alice", "pa:ss word"), *bad = basic_header("alice", "pa:ss wore");

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT_EQUAL(auth(&c, s, good, "10.0.0.2", user, &role, why), 1);
    double first = elapsed_ms(t0);
    ASSERT_STR_EQ(user, "alice");
    CU_ASSERT_EQUAL(role, API_ROLE_USER);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 20; i++) CU_ASSERT_EQUAL(auth(&c, s, good, "10.0.0.2", user, &role, why), 1);
    double twenty = elapsed_ms(t0);
    /* the KDF runs once (~0.3 s); twenty cached calls cost less than one of it */
    if (!(twenty < first)) fprintf(stderr, "\n  first %.1f ms, 20 cached %.1f ms\n", first, twenty);
    CU_ASSERT(twenty < first);

    CU_ASSERT_EQUAL(auth(&c, s, bad, "10.0.0.2", user, &role, why), 0);
    ASSERT_STR_EQ(why, "Invalid username or password");

    /* a password change sends the cached credential back to the KDF, which refuses it */
    CU_ASSERT_EQUAL(store_user_set_password(s, "alice", "new one"), 1);
    api_auth_invalidate("alice");
    CU_ASSERT_EQUAL(auth(&c, s, good, "10.0.0.2", user, &role, why), 0);
    char *fresh = basic_header("alice", "new one");
    CU_ASSERT_EQUAL(auth(&c, s, fresh, "10.0.0.2", user, &role, why), 1);

    /* a demotion applies to a cached credential too */
    CU_ASSERT_EQUAL(store_user_set_role(s, "alice", "Viewer"), 1);
    api_auth_invalidate("alice");
    CU_ASSERT_EQUAL(auth(&c, s, fresh, "10.0.0.2", user, &role, why), 1);
    CU_ASSERT_EQUAL(role, API_ROLE_VIEWER);

    StoreUser *u = store_user_get(s, "alice", NULL);
    CU_ASSERT(u && u->last_login > 0);
    store_user_free(u);
    free(good), free(bad), free(fresh);
}

BOTH_DRIVERS(test_throttle_blocks_a_user_after_five_failures_even_with_the_right_password)
static void test_throttle_blocks_a_user_after_five_failures_even_with_the_right_password(Store *s)
{
    api_auth_reset();
    ApiContext c = test_ctx();
    CU_ASSERT_EQUAL_FATAL(store_user_create(s, "alice", "right", "Op", NULL), 0);
    ApiRole role;
    int retry = 0;
    char why[256];
    /* five wrong passwords from five addresses: the user's own count trips */
    double kdf_ms = 1e9; /* the fastest real check: what a login that runs the KDF costs here */
    for (int i = 0; i < 5; i++) {
        char addr[32];
        snprintf(addr, sizeof addr, "10.1.0.%d", i);
        struct timespec k0;
        clock_gettime(CLOCK_MONOTONIC, &k0);
        CU_ASSERT_EQUAL(api_auth_password(&c, s, "token", "alice", "guess-XYZ", addr, &role, &retry, why, sizeof why),
                        0);
        double k = elapsed_ms(k0);
        if (k < kdf_ms) kdf_ms = k;
        ASSERT_STR_EQ(why, "Invalid username or password");
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT_EQUAL(api_auth_password(&c, s, "token", "alice", "right", "10.9.9.9", &role, &retry, why, sizeof why),
                    API_AUTH_THROTTLED);
    double ms = elapsed_ms(t0);
    /* no KDF ran: compared with a real check measured just before on the same machine (a
     * ratio, so a busy machine slows both), the refusal costs a small fraction of one */
    if (!(ms * 4 < kdf_ms)) fprintf(stderr, "\n  a throttled login took %.1f ms, a real check %.1f ms\n", ms, kdf_ms);
    CU_ASSERT(ms * 4 < kdf_ms);
    CU_ASSERT(retry > 50 && retry <= 60);
    ASSERT_CONTAINS(why, "too many failed logins");
    /* Basic is throttled too, and says why */
    char *h = basic_header("alice", "right"), user[128];
    CU_ASSERT_EQUAL(auth(&c, s, h, "10.9.9.9", user, &role, why), 0);
    ASSERT_CONTAINS(why, "too many failed logins");
    free(h);
    /* another user is not affected */
    CU_ASSERT_EQUAL_FATAL(store_user_create(s, "bob", "bobpw", "Viewer", NULL), 0);
    CU_ASSERT_EQUAL(api_auth_password(&c, s, "token", "bob", "bobpw", "10.9.9.9", &role, &retry, why, sizeof why), 1);
    CU_ASSERT_EQUAL(role, API_ROLE_VIEWER);

    /* every attempt is in the event log, without the password */
    StoreEventList l;
    CU_ASSERT_EQUAL_FATAL(store_event_list(s, NULL, "api.login_failed", 0, 0, &l), 0);
    CU_ASSERT_EQUAL(l.n, 7); /* 5 wrong + 1 throttled token + 1 throttled basic */
    int throttled = 0;
    for (size_t i = 0; i < l.n; i++) {
        ASSERT_STR_EQ(l.items[i].owner, "api:alice");
        CU_ASSERT(strstr(l.items[i].extra, "guess-XYZ") == NULL);
        CU_ASSERT(strstr(l.items[i].extra, "right") == NULL);
        throttled += strstr(l.items[i].extra, "\"throttled\"") != NULL;
    }
    CU_ASSERT_EQUAL(throttled, 2);
    store_event_list_free(&l);
    CU_ASSERT_EQUAL_FATAL(store_event_list(s, NULL, "api.login", 0, 0, &l), 0);
    CU_ASSERT_EQUAL_FATAL(l.n, 1);
    ASSERT_STR_EQ(l.items[0].owner, "api:bob");
    ASSERT_CONTAINS(l.items[0].extra, "\"method\":\"token\"");
    ASSERT_CONTAINS(l.items[0].extra, "\"remote_addr\":\"10.9.9.9\"");
    store_event_list_free(&l);
}

BOTH_DRIVERS(test_throttle_blocks_an_address_that_sprays_usernames)
static void test_throttle_blocks_an_address_that_sprays_usernames(Store *s)
{
    api_auth_reset();
    ApiContext c = test_ctx();
    CU_ASSERT_EQUAL_FATAL(store_user_create(s, "alice", "right", "Op", NULL), 0);
    ApiRole role;
    int retry = 0;
    char why[256];
    const char *names[] = {"root", "admin", "test", "guest", "bad name!"};
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(api_auth_password(&c, s, "token", names[i], "x", "192.0.2.7", &role, &retry, why, sizeof why),
                        0);
    CU_ASSERT_EQUAL(api_auth_password(&c, s, "token", "alice", "right", "192.0.2.7", &role, &retry, why, sizeof why),
                    API_AUTH_THROTTLED);
    CU_ASSERT(retry > 0);
    /* from elsewhere, alice logs in */
    CU_ASSERT_EQUAL(api_auth_password(&c, s, "token", "alice", "right", "192.0.2.8", &role, &retry, why, sizeof why),
                    1);
    CU_ASSERT_EQUAL(role, API_ROLE_OP);
    /* an IPv6 client is counted by its /64: rotating the low bits does not help */
    const char *v6[] = {"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:aaaa::3", "2001:db8:1:2::4",
                        "2001:db8:1:2:ffff:ffff:ffff:ffff"};
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(api_auth_password(&c, s, "token", names[i], "x", v6[i], &role, &retry, why, sizeof why), 0);
    CU_ASSERT_EQUAL(api_auth_password(&c, s, "token", "alice", "right", "2001:db8:1:2::99", &role, &retry, why,
                                      sizeof why),
                    API_AUTH_THROTTLED);
    CU_ASSERT_EQUAL(api_auth_password(&c, s, "token", "alice", "right", "2001:db8:1:3::1", &role, &retry, why,
                                      sizeof why),
                    1);
    /* the invalid name is logged without an owner */
    StoreEventList l;
    CU_ASSERT_EQUAL_FATAL(store_event_list(s, NULL, "api.login_failed", 0, 0, &l), 0);
    int anonymous = 0;
    for (size_t i = 0; i < l.n; i++) anonymous += l.items[i].owner == NULL;
    CU_ASSERT_EQUAL(anonymous, 2);
    store_event_list_free(&l);
}

BOTH_DRIVERS(test_a_good_login_clears_the_users_failures)
static void test_a_good_login_clears_the_users_failures(Store *s)
{
    api_auth_reset();
    ApiContext c = test_ctx();
    CU_ASSERT_EQUAL_FATAL(store_user_create(s, "alice", "right", "Op", NULL), 0);
    ApiRole role;
    int retry = 0;
    char why[256];
    /* four typos, a success, four more typos (each from its own address): never blocked */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 4; i++) {
            char addr[32];
            snprintf(addr, sizeof addr, "10.2.%d.%d", round, i);
            CU_ASSERT_EQUAL(api_auth_password(&c, s, "token", "alice", "typo", addr, &role, &retry, why, sizeof why), 0);
        }
        CU_ASSERT_EQUAL(api_auth_password(&c, s, "token", "alice", "right", "10.2.9.9", &role, &retry, why, sizeof why),
                        1);
    }
}

static const UnitTest tests[] = {
    UNIT(test_role_names_are_canonical_in_any_case),
    UNIT(test_username_rules),
    UNIT(test_token_round_trip_carries_user_and_role),
    UNIT(test_token_expires_at_its_ttl),
    UNIT(test_token_rejects_none_other_algorithms_tampering_and_garbage),
    UNIT(test_missing_and_unknown_credentials_say_why),
    UNIT2(test_users_create_get_list_delete),
    UNIT2(test_users_refuse_duplicates_and_bad_input_naming_the_field),
    UNIT2(test_users_role_and_password_changes_move_changed_at),
    UNIT2(test_bearer_uses_the_rows_role_and_dies_with_the_user),
    UNIT2(test_bearer_issued_before_a_change_is_refused),
    UNIT2(test_basic_checks_the_password_once_then_caches_it),
    UNIT2(test_throttle_blocks_a_user_after_five_failures_even_with_the_right_password),
    UNIT2(test_throttle_blocks_an_address_that_sprays_usernames),
    UNIT2(test_a_good_login_clears_the_users_failures),
    {0},
};

UNIT_MAIN("auth", tests)
