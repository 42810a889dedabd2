/* Secrets at rest (AES-256-GCM tokens, key parsing, the key file), log masking,
 * password hashes, HMAC-SHA256 and base64. */
#include "core/passwd.h"
#include "core/secret.h"
#include "core/util.h"
#include "unit.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_A_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY_A_ID "630dcd29" /* sha256(bytes 0..31)[:8], computed with Python's hashlib */
#define KEY_B_B64 "+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/s=" /* 32 x 0xfb */
#define KEY_B_ID "456a0498"

static SecretKey *key(const char *text)
{
    char err[256] = "";
    SecretKey *k = secret_key_parse(text, err, sizeof err);
    if (!k) fprintf(stderr, "\n  key parse failed: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    return k;
}

/* Encrypts then decrypts; asserts the bytes come back. */
static void assert_round_trip(const SecretKey *k, const char *plain, size_t len, const char *aad)
{
    char *tok = secret_encrypt(k, plain, len, aad);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    CU_ASSERT(secret_is_token(tok));
    char err[256] = "";
    size_t outlen = 12345;
    char *out = secret_decrypt(k, tok, aad, &outlen, err, sizeof err);
    if (!out) fprintf(stderr, "\n  decrypt failed: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_EQUAL(outlen, len);
    CU_ASSERT(len == 0 || memcmp(out, plain, len) == 0);
    CU_ASSERT_EQUAL(out[len], '\0');
    free(out);
    free(tok);
}

static void test_round_trip_empty_unicode_and_binary_up_to_1mb(void)
{
    SecretKey *k = key(KEY_A_HEX);
    assert_round_trip(k, NULL, 0, "conn:empty");
    assert_round_trip(k, "", 0, NULL);
    const char *uni = "pässwörd ✓ 密码 🔑";
    assert_round_trip(k, uni, strlen(uni), "conn:ünïcode");
    size_t sizes[] = {1, 15, 16, 17, 4096, 1024 * 1024};
    for (size_t s = 0; s < GUST_ARRAY_LEN(sizes); s++) {
        char *buf = malloc(sizes[s]);
        for (size_t i = 0; i < sizes[s]; i++) buf[i] = (char)(i * 131 % 256); /* NULs included */
        assert_round_trip(k, buf, sizes[s], "conn:binary");
        free(buf);
    }
    secret_key_free(k);
}

static void test_token_names_key_and_two_encryptions_differ(void)
{
    SecretKey *k = key(KEY_A_HEX);
    ASSERT_STR_EQ(secret_key_id(k), KEY_A_ID);
    char *t1 = secret_encrypt(k, "hunter2", 7, "conn:x");
    char *t2 = secret_encrypt(k, "hunter2", 7, "conn:x");
    ASSERT_CONTAINS(t1, "gust1:" KEY_A_ID ":");
    CU_ASSERT_EQUAL(strncmp(t1, "gust1:" KEY_A_ID ":", 15), 0);
    CU_ASSERT(strcmp(t1, t2) != 0);
    CU_ASSERT(strstr(t1, "hunter2") == NULL);
    /* The body is url-safe base64 of nonce(12) + plaintext + tag(16), unpadded. */
    CU_ASSERT_EQUAL(strlen(t1 + 15), (12 + 7 + 16) * 4 / 3 + 1);
    CU_ASSERT(strspn(t1 + 15, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
              strlen(t1 + 15));
    free(t1);
    free(t2);
    secret_key_free(k);
}

static void test_is_token_tells_tokens_from_plaintext(void)
{
    SecretKey *k = key(KEY_A_HEX);
    char *t = secret_encrypt(k, "", 0, NULL);
    CU_ASSERT(secret_is_token(t));
    CU_ASSERT(!secret_is_token(NULL));
    CU_ASSERT(!secret_is_token(""));
    CU_ASSERT(!secret_is_token("hunter2"));
    CU_ASSERT(!secret_is_token("gust1:"));
    CU_ASSERT(!secret_is_token("gust1:630dcd29:short"));
    CU_ASSERT(!secret_is_token("gust1:630DCD29:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    CU_ASSERT(!secret_is_token("gust1:630dcd29:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+A"));
    CU_ASSERT(secret_is_token("gust1:630dcd29:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    free(t);
    secret_key_free(k);
}

static void test_wrong_key_names_both_key_ids(void)
{
    SecretKey *a = key(KEY_A_HEX), *b = key(KEY_B_B64);
    ASSERT_STR_EQ(secret_key_id(b), KEY_B_ID);
    char *tok = secret_encrypt(a, "s3cret", 6, "conn:1");
    char err[256] = "";
    CU_ASSERT_PTR_NULL(secret_decrypt(b, tok, "conn:1", NULL, err, sizeof err));
    ASSERT_STR_EQ(err, "cannot decrypt: the secret was encrypted with key " KEY_A_ID
                       ", core.secret_key is key " KEY_B_ID);
    free(tok);
    secret_key_free(a);
    secret_key_free(b);
}

/* Re-encodes tok with byte `at` of its raw body flipped. */
static char *flip_raw_byte(const char *tok, size_t at)
{
    size_t rawlen = 0;
    unsigned char *raw = secret_b64url_decode(tok + 15, strlen(tok + 15), &rawlen);
    CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
    CU_ASSERT_FATAL(at < rawlen);
    raw[at] ^= 0x01;
    char *body = secret_b64url_encode(raw, rawlen);
    char *out = malloc(15 + strlen(body) + 1);
    memcpy(out, tok, 15);
    strcpy(out + 15, body);
    free(body);
    free(raw);
    return out;
}

static void test_flipped_byte_fails_authentication(void)
{
    SecretKey *k = key(KEY_A_HEX);
    const char *plain = "postgres-password";
    char *tok = secret_encrypt(k, plain, strlen(plain), "conn:pg");
    size_t rawlen = 12 + strlen(plain) + 16;
    size_t positions[] = {0, 11, 12, 12 + 5, rawlen - 16, rawlen - 1}; /* nonce, ct, tag */
    for (size_t i = 0; i < GUST_ARRAY_LEN(positions); i++) {
        char *bad = flip_raw_byte(tok, positions[i]);
        char err[256] = "";
        CU_ASSERT_PTR_NULL(secret_decrypt(k, bad, "conn:pg", NULL, err, sizeof err));
        ASSERT_STR_EQ(err,
                      "cannot decrypt: the stored secret is corrupt or was moved (authentication failed)");
        free(bad);
    }
    /* Truncated, and not base64 at all. */
    char err[256] = "";
    tok[strlen(tok) - 4] = '\0';
    CU_ASSERT_PTR_NULL(secret_decrypt(k, tok, "conn:pg", NULL, err, sizeof err));
    ASSERT_CONTAINS(err, "authentication failed");
    CU_ASSERT_PTR_NULL(secret_decrypt(k, "gust1:" KEY_A_ID ":!!!", "conn:pg", NULL, err, sizeof err));
    ASSERT_CONTAINS(err, "corrupt");
    CU_ASSERT_PTR_NULL(secret_decrypt(k, "gust1:zz", "conn:pg", NULL, err, sizeof err));
    ASSERT_CONTAINS(err, "corrupt");
    free(tok);
    secret_key_free(k);
}

static void test_ciphertext_moved_to_another_row_fails(void)
{
    SecretKey *k = key(KEY_A_HEX);
    char *tok = secret_encrypt(k, "pw-of-conn-1", 12, "conn:1");
    char err[256] = "";
    CU_ASSERT_PTR_NULL(secret_decrypt(k, tok, "conn:2", NULL, err, sizeof err));
    ASSERT_CONTAINS(err, "authentication failed");
    CU_ASSERT_PTR_NULL(secret_decrypt(k, tok, NULL, NULL, err, sizeof err));
    free(tok);
    /* No aad and empty aad are the same thing. */
    tok = secret_encrypt(k, "x", 1, NULL);
    char *out = secret_decrypt(k, tok, "", NULL, err, sizeof err);
    ASSERT_STR_EQ(out, "x");
    free(out);
    free(tok);
    secret_key_free(k);
}

static void test_plaintext_is_not_an_encrypted_value(void)
{
    SecretKey *k = key(KEY_A_HEX);
    char err[256] = "";
    CU_ASSERT_PTR_NULL(secret_decrypt(k, "hunter2", NULL, NULL, err, sizeof err));
    ASSERT_STR_EQ(err, "not an encrypted value");
    CU_ASSERT_PTR_NULL(secret_decrypt(k, NULL, NULL, NULL, err, sizeof err));
    ASSERT_STR_EQ(err, "not an encrypted value");
    secret_key_free(k);
}

static void test_key_parses_hex_base64_and_fernet_alike(void)
{
    const char *same[] = {
        KEY_A_HEX,
        "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", /* standard base64 = Fernet key */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",  /* unpadded */
        "  " KEY_A_HEX "\n",
    };
    for (size_t i = 0; i < GUST_ARRAY_LEN(same); i++) {
        SecretKey *k = key(same[i]);
        ASSERT_STR_EQ(secret_key_id(k), KEY_A_ID);
        secret_key_free(k);
    }
    /* 0xfb bytes spell differently in the two alphabets; an Airflow fernet_key is url-safe. */
    const char *b[] = {KEY_B_B64, "-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s="};
    for (size_t i = 0; i < GUST_ARRAY_LEN(b); i++) {
        SecretKey *k = key(b[i]);
        ASSERT_STR_EQ(secret_key_id(k), KEY_B_ID);
        secret_key_free(k);
    }
}

static void assert_key_refused(const char *text, const char *want_got)
{
    char err[256] = "";
    SecretKey *k = secret_key_parse(text, err, sizeof err);
    CU_ASSERT_PTR_NULL(k);
    secret_key_free(k);
    ASSERT_CONTAINS(err, "core.secret_key: expected 32 bytes as 64 hex characters or base64, got ");
    ASSERT_CONTAINS(err, want_got);
    if (text && strlen(text) >= 4) CU_ASSERT(strstr(err, text) == NULL); /* never echo the key */
    CU_ASSERT(strstr(err, "0a0b0c0d") == NULL);
}

static void test_key_bad_length_or_garbage_is_refused_without_echo(void)
{
    assert_key_refused("000102030405060708090a0b0c0d0e0f", "got 32 hex characters (16 bytes)");
    assert_key_refused(KEY_A_HEX "20", "got 66 hex characters (33 bytes)");
    assert_key_refused("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw=", "got base64 of 29 bytes");
    assert_key_refused("correct horse battery staple!", "neither hex nor base64");
    assert_key_refused(KEY_A_HEX "x", "neither hex nor base64");
    assert_key_refused("", "got an empty value");
    assert_key_refused("   \n", "got an empty value");
    assert_key_refused(NULL, "got an empty value");
}

/* A fresh private directory under /tmp; caller removes it. */
static char *temp_dir(void)
{
    char tmpl[] = "/tmp/gust-secret-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    return strdup(d);
}

static void test_key_file_created_private_reloaded_and_refused_when_shared(void)
{
    char *dir = temp_dir();
    char path[512], path2[512], err[512] = "";
    snprintf(path, sizeof path, "%s/secret.key", dir);
    snprintf(path2, sizeof path2, "%s/other.key", dir);

    mode_t old_umask = umask(0); /* creation must not depend on a lax umask */
    SecretKey *k1 = secret_key_load_or_create(path, err, sizeof err);
    umask(old_umask);
    if (!k1) fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k1);

    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
    size_t len = 0;
    char *text = util_read_file(path, &len, err, sizeof err);
    CU_ASSERT_EQUAL(len, 65); /* 32 bytes as hex, and a newline */
    SecretKey *parsed = key(text);
    ASSERT_STR_EQ(secret_key_id(parsed), secret_key_id(k1));
    secret_key_free(parsed);
    OPENSSL_cleanse(text, len);
    free(text);

    /* Reloading gives the same key: what it encrypted, the reload decrypts. */
    SecretKey *k2 = secret_key_load_or_create(path, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k2);
    ASSERT_STR_EQ(secret_key_id(k2), secret_key_id(k1));
    char *tok = secret_encrypt(k1, "pw", 2, "c");
    char *out = secret_decrypt(k2, tok, "c", NULL, err, sizeof err);
    ASSERT_STR_EQ(out, "pw");
    free(out);
    free(tok);

    /* Another file gets another random key, and nothing is left behind but the keys. */
    SecretKey *k3 = secret_key_load_or_create(path2, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k3);
    CU_ASSERT(strcmp(secret_key_id(k3), secret_key_id(k1)) != 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 2", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);

    CU_ASSERT_EQUAL(chmod(path, 0644), 0);
    CU_ASSERT_PTR_NULL(secret_key_load_or_create(path, err, sizeof err));
    ASSERT_CONTAINS(err, path);
    ASSERT_CONTAINS(err, "accessible by group or others (mode 0644)");
    ASSERT_CONTAINS(err, "chmod 600");
    CU_ASSERT_EQUAL(chmod(path, 0640), 0);
    CU_ASSERT_PTR_NULL(secret_key_load_or_create(path, err, sizeof err));

    /* A file that is not a key says so, under its own name. */
    FILE *f = fopen(path2, "w");
    fputs("not a key\n", f);
    fclose(f);
    chmod(path2, 0600);
    CU_ASSERT_PTR_NULL(secret_key_load_or_create(path2, err, sizeof err));
    ASSERT_CONTAINS(err, path2);
    ASSERT_CONTAINS(err, "neither hex nor base64");

    char missing[600];
    snprintf(missing, sizeof missing, "%s/no/such/dir/secret.key", dir);
    CU_ASSERT_PTR_NULL(secret_key_load_or_create(missing, err, sizeof err));
    ASSERT_CONTAINS(err, "cannot create key file");
    ASSERT_CONTAINS(err, missing);

    secret_key_free(k1);
    secret_key_free(k2);
    secret_key_free(k3);
    unlink(path);
    unlink(path2);
    rmdir(dir);
    free(dir);
}

static void test_mask_replaces_registered_values_and_leaves_others(void)
{
    secret_mask_clear();
    secret_mask_register("hunter2-pw");
    secret_mask_register("hunter2-pw-longer"); /* contains the other: hidden whole */
    secret_mask_register("abc");               /* too short to mask */
    secret_mask_register(NULL);
    secret_mask_register("hunter2-pw"); /* twice is once */
    char *m = secret_mask("login bob/hunter2-pw; again hunter2-pw-longer. abc hunter2-p");
    ASSERT_STR_EQ(m, "login bob/***; again ***. abc hunter2-p");
    free(m);
    m = secret_mask("hunter2-pwhunter2-pw");
    ASSERT_STR_EQ(m, "******");
    free(m);
    m = secret_mask("");
    ASSERT_STR_EQ(m, "");
    free(m);
    CU_ASSERT_PTR_NULL(secret_mask(NULL));
    secret_mask_clear();
    m = secret_mask("hunter2-pw");
    ASSERT_STR_EQ(m, "hunter2-pw");
    free(m);
}

static void *mask_worker(void *arg)
{
    char value[32];
    snprintf(value, sizeof value, "thread-secret-%d", *(int *)arg);
    for (int i = 0; i < 200; i++) {
        secret_mask_register(value);
        char *m = secret_mask(value);
        if (strcmp(m, "***") != 0) *(int *)arg = -1;
        free(m);
    }
    return NULL;
}

static void test_mask_is_safe_from_many_threads(void)
{
    pthread_t th[8];
    int ids[8];
    for (int i = 0; i < 8; i++) {
        ids[i] = i;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, mask_worker, &ids[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(ids[i], i);
    }
    secret_mask_clear();
}

static void test_passwd_hash_verifies_right_and_rejects_wrong(void)
{
    /* Two real 600,000-iteration hashes and two verifications: about 0.1-0.5 s each. */
    char *h1 = passwd_hash("correct horse battery staple");
    char *h2 = passwd_hash("correct horse battery staple");
    CU_ASSERT_PTR_NOT_NULL_FATAL(h1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h2);
    CU_ASSERT_EQUAL(strncmp(h1, "pbkdf2_sha256$600000$", 21), 0);
    CU_ASSERT(strcmp(h1, h2) != 0); /* fresh salt each time */
    CU_ASSERT_EQUAL(strcmp(strrchr(h1, '$'), strrchr(h2, '$')) != 0, 1);
    CU_ASSERT_EQUAL(passwd_verify("correct horse battery staple", h1), 1);
    CU_ASSERT_EQUAL(passwd_verify("correct horse battery stapl", h1), 0);
    CU_ASSERT_EQUAL(passwd_needs_rehash(h1), 0);
    free(h1);
    free(h2);
    CU_ASSERT_PTR_NULL(passwd_hash(NULL));
}

static void test_passwd_corrupted_encodings_never_verify(void)
{
    /* Valid at 1,000 iterations (hashlib.pbkdf2_hmac), then broken one field at a time. */
    const char *good = "pbkdf2_sha256$1000$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=";
    CU_ASSERT_EQUAL(passwd_verify("correct horse", good), 1);
    CU_ASSERT_EQUAL(passwd_needs_rehash(good), 1);
    const char *bad[] = {
        "",
        "pbkdf2_sha256",
        "pbkdf2_sha1$1000$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=",
        "pbkdf2_sha256$$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=",
        "pbkdf2_sha256$0$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=",
        "pbkdf2_sha256$01000$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=",
        "pbkdf2_sha256$1k$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=",
        "pbkdf2_sha256$999999999999$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=",
        "pbkdf2_sha256$1000$$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=",
        "pbkdf2_sha256$1000$seasalt",
        "pbkdf2_sha256$1000$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfms",
        "pbkdf2_sha256$1000$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso",
        "pbkdf2_sha256$1000$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=$",
        "pbkdf2_sha256$1000$seasalt$mQnue*akb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=",
        "pbkdf2_sha256$1000$seaSalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=",
        "pbkdf2_sha256$1001$seasalt$mQnueSakb748zqBAC1tmWVZsZbi2zPGZarEzTGdfmso=",
    };
    /* One bit of the stored hash flipped: well-formed, and wrong. */
    char *flipped = strdup(good);
    char *last = strrchr(flipped, '$') + 1;
    last[0] = 'n'; /* 'm' -> 'n' */
    CU_ASSERT_EQUAL(passwd_verify("correct horse", flipped), 0);
    free(flipped);
    for (size_t i = 0; i < GUST_ARRAY_LEN(bad); i++) {
        int r = passwd_verify("correct horse", bad[i]);
        if (r != 0) fprintf(stderr, "\n  verified: %s\n", bad[i]);
        CU_ASSERT_EQUAL(r, 0);
    }
    CU_ASSERT_EQUAL(passwd_verify("correct horse", NULL), 0);
    CU_ASSERT_EQUAL(passwd_verify(NULL, good), 0);
    CU_ASSERT_EQUAL(passwd_needs_rehash("md5$x"), 1);
    /* UTF-8 passwords are hashed as their bytes, as Django does. */
    CU_ASSERT_EQUAL(passwd_verify("pässwörd",
                                  "pbkdf2_sha256$1000$Zm9vYmFyYmF6cXV4$"
                                  "EVNbKNk19frI9XVcEAd1Zl0jc3EYQnvnAJuMAiO5Sro="),
                    1);
}

static void test_passwd_random_is_url_safe_and_fresh(void)
{
    char *a = passwd_random(24), *b = passwd_random(24);
    CU_ASSERT_EQUAL(strlen(a), 24);
    CU_ASSERT_EQUAL(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 24);
    CU_ASSERT(strcmp(a, b) != 0);
    free(a);
    free(b);
    char *empty = passwd_random(0);
    ASSERT_STR_EQ(empty, "");
    free(empty);
}

static void test_hmac_sha256_matches_rfc4231_case_2(void)
{
    static const unsigned char want[32] = {
        0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
        0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43,
    };
    unsigned char out[32];
    const char *msg = "what do ya want for nothing?";
    CU_ASSERT_EQUAL(secret_hmac_sha256("Jefe", 4, msg, strlen(msg), out), 0);
    CU_ASSERT_EQUAL(memcmp(out, want, 32), 0);
    CU_ASSERT_EQUAL(secret_hmac_sha256(NULL, 0, NULL, 0, out), 0); /* empty key and message */
}

static void test_base64_known_vectors_and_round_trips(void)
{
    /* RFC 4648 §10, unpadded in the url-safe form. */
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    const char *std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < GUST_ARRAY_LEN(plain); i++) {
        char *e = secret_b64url_encode(plain[i], strlen(plain[i]));
        ASSERT_STR_EQ(e, url[i]);
        free(e);
        e = secret_b64_encode(plain[i], strlen(plain[i]));
        ASSERT_STR_EQ(e, std[i]);
        free(e);
        size_t n = 99;
        unsigned char *d = secret_b64url_decode(url[i], strlen(url[i]), &n);
        CU_ASSERT_EQUAL(n, strlen(plain[i]));
        ASSERT_STR_EQ((char *)d, plain[i]);
        free(d);
        d = secret_b64url_decode(std[i], strlen(std[i]), &n); /* padding optional */
        ASSERT_STR_EQ((char *)d, plain[i]);
        free(d);
        d = secret_b64_decode(std[i], strlen(std[i]), &n);
        ASSERT_STR_EQ((char *)d, plain[i]);
        free(d);
    }
    const unsigned char fb[] = {0xfb, 0xff};
    char *e = secret_b64url_encode(fb, 2);
    ASSERT_STR_EQ(e, "-_8");
    free(e);
    e = secret_b64_encode(fb, 2);
    ASSERT_STR_EQ(e, "+/8=");
    free(e);

    /* Every length 0..300 of every byte value comes back intact. */
    unsigned char buf[300];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 97 + 13);
    for (size_t len = 0; len <= sizeof buf; len++) {
        char *u = secret_b64url_encode(buf, len);
        size_t n = 0;
        unsigned char *d = secret_b64url_decode(u, strlen(u), &n);
        CU_ASSERT_FATAL(d != NULL && n == len && memcmp(d, buf, len) == 0);
        free(d);
        free(u);
    }

    const char *url_bad[] = {"Z", "Zg=", "Zg===", "Zh", "Zm9v=", "+/8", "Zm 9v", "Z=g=", "Zm9vYmFy===="};
    for (size_t i = 0; i < GUST_ARRAY_LEN(url_bad); i++) {
        unsigned char *d = secret_b64url_decode(url_bad[i], strlen(url_bad[i]), NULL);
        if (d) fprintf(stderr, "\n  decoded: %s\n", url_bad[i]);
        CU_ASSERT_PTR_NULL(d);
        free(d);
    }
    const char *std_bad[] = {"Zg", "-_8=", "Zh==", "Zm8"};
    for (size_t i = 0; i < GUST_ARRAY_LEN(std_bad); i++) {
        unsigned char *d = secret_b64_decode(std_bad[i], strlen(std_bad[i]), NULL);
        CU_ASSERT_PTR_NULL(d);
        free(d);
    }
    CU_ASSERT_PTR_NULL(secret_b64url_decode(NULL, 0, NULL));
}

static const UnitTest tests[] = {
    UNIT(test_round_trip_empty_unicode_and_binary_up_to_1mb),
    UNIT(test_token_names_key_and_two_encryptions_differ),
    UNIT(test_is_token_tells_tokens_from_plaintext),
    UNIT(test_wrong_key_names_both_key_ids),
    UNIT(test_flipped_byte_fails_authentication),
    UNIT(test_ciphertext_moved_to_another_row_fails),
    UNIT(test_plaintext_is_not_an_encrypted_value),
    UNIT(test_key_parses_hex_base64_and_fernet_alike),
    UNIT(test_key_bad_length_or_garbage_is_refused_without_echo),
    UNIT(test_key_file_created_private_reloaded_and_refused_when_shared),
    UNIT(test_mask_replaces_registered_values_and_leaves_others),
    UNIT(test_mask_is_safe_from_many_threads),
    UNIT(test_passwd_hash_verifies_right_and_rejects_wrong),
    UNIT(test_passwd_corrupted_encodings_never_verify),
    UNIT(test_passwd_random_is_url_safe_and_fresh),
    UNIT(test_hmac_sha256_matches_rfc4231_case_2),
    UNIT(test_base64_known_vectors_and_round_trips),
    {0},
};

UNIT_MAIN("secret", tests)
