/* passwd — password hashing for API users, and random passwords for `gust standalone`.
 *
 * PBKDF2-HMAC-SHA256 at 600,000 iterations (OWASP 2023), stored the way Django stores it:
 *     pbkdf2_sha256$<iterations>$<salt>$<base64 of the 32-byte hash>
 * PBKDF2 rather than scrypt: it is what the stored format names (Django's, so hashes
 * exported from a Django site verify), it is FIPS-approved, and it needs no memory per
 * attempt — scrypt at N=2^15,r=8 takes 32 MiB per login, which a burst of bad logins
 * against a small API server turns into memory exhaustion. What PBKDF2 gives up is
 * scrypt's resistance to GPU guessing; 600,000 iterations is OWASP's answer to that.
 * The iteration count is part of each hash, so it can be raised later: old hashes keep
 * verifying and passwd_needs_rehash() says when to re-hash at the next good login.
 *
 * The salt field is 16 random bytes in url-safe base64 and, as in Django, its text is
 * the salt PBKDF2 sees — so hashes made by Django's PBKDF2PasswordHasher verify here. */
#ifndef GUST_PASSWD_H
#define GUST_PASSWD_H

#include <stddef.h>

#define PASSWD_ALGORITHM "pbkdf2_sha256"
#define PASSWD_ITERATIONS 600000
/* A stored hash claiming more is refused: verifying it would stall a login for minutes. */
#define PASSWD_MAX_ITERATIONS 10000000

/* The encoded hash of password, caller frees; NULL if password is NULL or OpenSSL fails. */
char *passwd_hash(const char *password);

/* 1 if password matches encoded; 0 if not, or if encoded is not a hash we understand.
 * The comparison is constant-time (CRYPTO_memcmp). */
int passwd_verify(const char *password, const char *encoded);

/* 1 if encoded should be replaced by a fresh passwd_hash() (fewer iterations than
 * PASSWD_ITERATIONS, or not a hash we make); 0 if it is current. */
int passwd_needs_rehash(const char *encoded);

/* nchars random characters from [A-Za-z0-9_-] (6 bits each), caller frees; NULL if
 * OpenSSL has no randomness. */
char *passwd_random(size_t nchars);

#endif
