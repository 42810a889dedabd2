/* secret — secrets encrypted at rest, masking of secrets in logs, and the small
 * primitives (HMAC-SHA256, base64url) the API's tokens are built from.
 *
 * Connection passwords and `extra` are stored as printable tokens
 *     gust1:<keyid>:<base64url(nonce[12] || ciphertext || tag[16])>
 * made with AES-256-GCM. The key id (8 hex of SHA-256 of the key) is in clear so that
 * a wrong key is reported as such rather than as corruption, and the caller's
 * associated data (e.g. the connection id) is bound into the tag so a ciphertext
 * copied to another row does not decrypt. A random 96-bit nonce per call is safe for
 * far more encryptions than a metadata database will ever make under one key. */
#ifndef GUST_SECRET_H
#define GUST_SECRET_H

#include <stddef.h>

#define SECRET_KEY_BYTES 32
#define SECRET_TOKEN_PREFIX "gust1:"

typedef struct SecretKey SecretKey;

/* Key text is 64 hex characters, or base64 (standard or url-safe, padding optional)
 * of 32 bytes — which includes an Airflow fernet_key, whose 32 bytes all become the
 * AES key. Surrounding whitespace is ignored. NULL + err on failure; the message
 * describes the shape of the text, never the text. Caller frees with secret_key_free. */
SecretKey *secret_key_parse(const char *text, char *err, size_t errlen);

/* Load the key from `path`, or create the file (mode 0600, a fresh random key as 64
 * hex characters) when it does not exist. Creation is atomic: two processes starting
 * together end up with the same key. Refuses a file that group or others can access.
 * NULL + err on failure. Caller frees. */
SecretKey *secret_key_load_or_create(const char *path, char *err, size_t errlen);

void secret_key_free(SecretKey *k);                 /* wipes the key; accepts NULL */
const char *secret_key_id(const SecretKey *k);      /* "3fa2c1d0"; owned by k */

/* Encrypt len bytes (plaintext may be NULL when len is 0). aad may be NULL (same as "").
 * Returns a heap token, caller frees; NULL only if OpenSSL itself fails. */
char *secret_encrypt(const SecretKey *k, const char *plaintext, size_t len, const char *aad);

/* Decrypt a token made with the same key and aad. Returns the plaintext NUL-terminated
 * (len_out, if not NULL, gets its length); caller frees, after OPENSSL_cleanse if it
 * cares. NULL + err on failure, one of:
 *   "not an encrypted value"            (no gust1: prefix)
 *   "cannot decrypt: the secret was encrypted with key <id1>, core.secret_key is key <id2>"
 *   "cannot decrypt: the stored secret is corrupt or was moved (authentication failed)" */
char *secret_decrypt(const SecretKey *k, const char *token, const char *aad, size_t *len_out,
                     char *err, size_t errlen);

/* 1 if s has the exact shape of a token (prefix, 8-hex key id, base64url body long
 * enough for nonce and tag), so a stored value can be told from legacy plaintext. */
int secret_is_token(const char *s);

/* Masking for logs. A process-wide registry (mutex-protected) of values to hide;
 * values shorter than 4 bytes are ignored (masking "a" would ruin every line).
 * secret_mask() replaces every occurrence, longest value first, with "***";
 * caller frees. secret_mask_clear() forgets (and wipes) every registered value. */
#define SECRET_MASK_MIN_LEN 4
void secret_mask_register(const char *value);
char *secret_mask(const char *text);
void secret_mask_clear(void);

/* HMAC-SHA256 of msg under key (for JWT HS256). 0 ok, -1 if OpenSSL fails. */
int secret_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                       unsigned char out[32]);

/* Base64. Encoders return a heap string, caller frees: url-safe without padding
 * (RFC 4648 §5, as JWT wants) and standard with padding. Decoders return heap bytes
 * with a NUL after them (caller frees) and the length in *len_out, or NULL when the
 * text is not canonical base64 of that alphabet; padding is optional for url-safe. */
char *secret_b64url_encode(const void *data, size_t len);
unsigned char *secret_b64url_decode(const char *text, size_t textlen, size_t *len_out);
char *secret_b64_encode(const void *data, size_t len);
unsigned char *secret_b64_decode(const char *text, size_t textlen, size_t *len_out);

/* Fill buf with cryptographically random bytes (RAND_bytes). 0 ok, -1 on failure. */
int secret_random_bytes(void *buf, size_t len);

#endif
