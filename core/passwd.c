/* passwd — PBKDF2-HMAC-SHA256 password hashes in Django's format (see passwd.h). */
#include "core/passwd.h"

#include "core/secret.h"
#include "core/util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define SALT_BYTES 16
#define HASH_BYTES 32
/* Django salts are 22 characters; anything near this limit is not a salt. */
#define SALT_MAX_CHARS 256

static int pbkdf2(const char *password, const char *salt, size_t saltlen, int iterations,
                  unsigned char out[HASH_BYTES])
{
    return PKCS5_PBKDF2_HMAC(password, (int)strlen(password), (const unsigned char *)salt,
                             (int)saltlen, iterations, EVP_sha256(), HASH_BYTES, out) == 1
               ? 0
               : -1;
}

char *passwd_hash(const char *password)
{
    if (!password || strlen(password) > INT32_MAX) return NULL;
    unsigned char saltbytes[SALT_BYTES], hash[HASH_BYTES];
    if (secret_random_bytes(saltbytes, sizeof saltbytes) != 0) return NULL;
    char *salt = secret_b64url_encode(saltbytes, sizeof saltbytes);
    char *encoded = NULL;
    if (pbkdf2(password, salt, strlen(salt), PASSWD_ITERATIONS, hash) == 0) {
        char *b64 = secret_b64_encode(hash, sizeof hash);
        encoded = xasprintf(PASSWD_ALGORITHM "$%d$%s$%s", PASSWD_ITERATIONS, salt, b64);
        free(b64);
    }
    OPENSSL_cleanse(hash, sizeof hash);
    free(salt);
    return encoded;
}

/* Finds the fields of "pbkdf2_sha256$<iter>$<salt>$<hash>" (pointers into encoded).
 * 0 ok, -1 if it is not that shape. */
static int parse(const char *encoded, int *iterations, const char **salt, size_t *saltlen,
                 const char **hash)
{
    size_t alen = strlen(PASSWD_ALGORITHM);
    if (!encoded || strncmp(encoded, PASSWD_ALGORITHM "$", alen + 1) != 0) return -1;
    const char *p = encoded + alen + 1;
    long iter = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (digits == 0 && *p == '0') return -1; /* no leading zeros: one spelling */
        iter = iter * 10 + (*p - '0');
        if (iter > PASSWD_MAX_ITERATIONS) return -1;
    }
    if (digits == 0 || iter < 1 || *p != '$') return -1;
    const char *s = ++p;
    const char *dollar = strchr(s, '$');
    if (!dollar || dollar == s || (size_t)(dollar - s) > SALT_MAX_CHARS) return -1;
    *iterations = (int)iter;
    *salt = s;
    *saltlen = (size_t)(dollar - s);
    *hash = dollar + 1;
    return 0;
}

int passwd_verify(const char *password, const char *encoded)
{
    int iterations;
    const char *salt, *hashtext;
    size_t saltlen, stored_len = 0;
    if (!password || strlen(password) > INT32_MAX ||
        parse(encoded, &iterations, &salt, &saltlen, &hashtext) != 0)
        return 0;
    unsigned char *stored = secret_b64_decode(hashtext, strlen(hashtext), &stored_len);
    if (!stored || stored_len != HASH_BYTES) {
        free(stored);
        return 0;
    }
    unsigned char hash[HASH_BYTES];
    int match = pbkdf2(password, salt, saltlen, iterations, hash) == 0 &&
                CRYPTO_memcmp(hash, stored, HASH_BYTES) == 0;
    OPENSSL_cleanse(hash, sizeof hash);
    free(stored);
    return match;
}

int passwd_needs_rehash(const char *encoded)
{
    int iterations;
    const char *salt, *hash;
    size_t saltlen;
    if (parse(encoded, &iterations, &salt, &saltlen, &hash) != 0) return 1;
    return iterations < PASSWD_ITERATIONS;
}

char *passwd_random(size_t nchars)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char *bytes = xmalloc(nchars + 1);
    if (secret_random_bytes(bytes, nchars) != 0) {
        free(bytes);
        return NULL;
    }
    char *out = xmalloc(nchars + 1);
    /* 64 symbols: the low 6 bits of a uniform byte are uniform, no rejection needed. */
    for (size_t i = 0; i < nchars; i++) out[i] = alphabet[bytes[i] & 63];
    out[nchars] = '\0';
    OPENSSL_cleanse(bytes, nchars + 1);
    free(bytes);
    return out;
}
