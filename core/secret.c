/* secret — AES-256-GCM tokens, the key file, log masking, HMAC and base64 (see secret.h).
 *
 * Every decrypted or decoded secret byte passes through buffers we own, so each of them
 * is wiped (OPENSSL_cleanse) before it is freed; OpenSSL's own contexts wipe themselves. */
#include "core/secret.h"

#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NONCE_BYTES 12
#define TAG_BYTES 16
#define KEY_ID_CHARS 8
/* Longest key file we read: a key is 64 characters; anything much longer is not a key. */
#define KEY_FILE_MAX 4096
/* EVP lengths are ints: feed big buffers in pieces well below INT_MAX. */
#define EVP_CHUNK (1u << 30)

struct SecretKey {
    unsigned char key[SECRET_KEY_BYTES]; /* the AES-256 key */
    char id[KEY_ID_CHARS + 1];           /* first 8 hex of SHA-256(key), shown in errors */
};

#define KEY_HINT "expected 32 bytes as 64 hex characters or base64"
#define ERR_CORRUPT "cannot decrypt: the stored secret is corrupt or was moved (authentication failed)"

int secret_random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        int n = len > EVP_CHUNK ? (int)EVP_CHUNK : (int)len;
        if (RAND_bytes(p, n) != 1) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- base64 ---------------------------------------------------------------------- */

static const char B64_STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64_URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

enum { B64_ALPHA_STD = 1, B64_ALPHA_URL = 2 };
enum { B64_PAD_OPTIONAL, B64_PAD_REQUIRED };

static char *b64_encode(const void *data, size_t len, const char *alphabet, int pad)
{
    const unsigned char *in = data;
    char *out = xmalloc((len + 2) / 3 * 4 + 1);
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = alphabet[v >> 18 & 63];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = alphabet[v >> 6 & 63];
        *o++ = alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *o++ = alphabet[v >> 18 & 63];
        *o++ = alphabet[v >> 12 & 63];
        if (pad) *o++ = '=', *o++ = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *o++ = alphabet[v >> 18 & 63];
        *o++ = alphabet[v >> 12 & 63];
        *o++ = alphabet[v >> 6 & 63];
        if (pad) *o++ = '=';
    }
    *o = '\0';
    return out;
}

static int b64_value(unsigned char c, int alphabets)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if ((alphabets & B64_ALPHA_STD) && c == '+') return 62;
    if ((alphabets & B64_ALPHA_STD) && c == '/') return 63;
    if ((alphabets & B64_ALPHA_URL) && c == '-') return 62;
    if ((alphabets & B64_ALPHA_URL) && c == '_') return 63;
    return -1;
}

/* Strict decoding: only the given alphabets, '=' only as the final padding, and the
 * unused bits of the last character zero — so each byte string has one spelling. */
static unsigned char *b64_decode(const char *text, size_t n, int alphabets, int padding,
                                 size_t *len_out)
{
    size_t pad = 0;
    while (pad < n && pad < 3 && text[n - 1 - pad] == '=') pad++;
    size_t body = n - pad;
    size_t rem = body % 4;
    if (rem == 1 || pad > 2) return NULL;
    if (pad > 0 && (n % 4 != 0 || (rem == 2 && pad != 2) || (rem == 3 && pad != 1))) return NULL;
    if (padding == B64_PAD_REQUIRED && n % 4 != 0) return NULL;

    size_t outlen = body / 4 * 3 + (rem == 2 ? 1 : rem == 3 ? 2 : 0);
    unsigned char *out = xmalloc(outlen + 1);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < body; i++) {
        int v = b64_value((unsigned char)text[i], alphabets);
        if (v < 0) goto invalid;
        acc = (acc << 6 | (uint32_t)v) & 0xFFFFFF;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) goto invalid; /* non-canonical tail */
    out[o] = '\0';
    if (len_out) *len_out = o;
    return out;
invalid:
    OPENSSL_cleanse(out, outlen + 1);
    free(out);
    return NULL;
}

char *secret_b64url_encode(const void *data, size_t len)
{
    return b64_encode(data, len, B64_URL, 0);
}

unsigned char *secret_b64url_decode(const char *text, size_t textlen, size_t *len_out)
{
    if (!text) return NULL;
    return b64_decode(text, textlen, B64_ALPHA_URL, B64_PAD_OPTIONAL, len_out);
}

char *secret_b64_encode(const void *data, size_t len)
{
    return b64_encode(data, len, B64_STD, 1);
}

unsigned char *secret_b64_decode(const char *text, size_t textlen, size_t *len_out)
{
    if (!text) return NULL;
    return b64_decode(text, textlen, B64_ALPHA_STD, B64_PAD_REQUIRED, len_out);
}

/* ---- HMAC ------------------------------------------------------------------------ */

int secret_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                       unsigned char out[32])
{
    static const unsigned char empty[1] = {0};
    unsigned int outlen = 0;
    if (klen > INT_MAX) return -1;
    if (!HMAC(EVP_sha256(), key ? key : empty, (int)klen, msg ? msg : empty, mlen, out, &outlen))
        return -1;
    return outlen == 32 ? 0 : -1;
}

/* ---- keys ------------------------------------------------------------------------ */

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static SecretKey *key_from_bytes(const unsigned char bytes[SECRET_KEY_BYTES])
{
    SecretKey *k = xcalloc(1, sizeof *k);
    memcpy(k->key, bytes, SECRET_KEY_BYTES);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(k->key, SECRET_KEY_BYTES, md, &mdlen, EVP_sha256(), NULL) != 1) {
        secret_key_free(k);
        return NULL;
    }
    for (int i = 0; i < KEY_ID_CHARS / 2; i++) snprintf(k->id + 2 * i, 3, "%02x", md[i]);
    return k;
}

/* `label` starts the error message ("core.secret_key" or the key file's path). The
 * message describes the text's shape only: a mistyped key is still mostly a key. */
static SecretKey *key_from_text(const char *text, const char *label, char *err, size_t errlen)
{
    if (!text) text = "";
    const char *start = text, *end = text + strlen(text);
    while (start < end && strchr(" \t\r\n", *start)) start++;
    while (end > start && strchr(" \t\r\n", end[-1])) end--;
    size_t n = (size_t)(end - start);

    size_t hexchars = 0;
    while (hexchars < n && hex_value((unsigned char)start[hexchars]) >= 0) hexchars++;
    int all_hex = n > 0 && hexchars == n;

    unsigned char bytes[SECRET_KEY_BYTES];
    if (all_hex && n == 2 * SECRET_KEY_BYTES) {
        for (size_t i = 0; i < SECRET_KEY_BYTES; i++)
            bytes[i] = (unsigned char)(hex_value((unsigned char)start[2 * i]) << 4 |
                                       hex_value((unsigned char)start[2 * i + 1]));
        SecretKey *k = key_from_bytes(bytes);
        OPENSSL_cleanse(bytes, sizeof bytes);
        if (!k) snprintf(err, errlen, "%s: cannot compute the key id (OpenSSL failed)", label);
        return k;
    }

    size_t declen = 0;
    unsigned char *dec = n ? b64_decode(start, n, B64_ALPHA_STD | B64_ALPHA_URL,
                                        B64_PAD_OPTIONAL, &declen)
                           : NULL;
    if (dec && declen == SECRET_KEY_BYTES) {
        SecretKey *k = key_from_bytes(dec);
        OPENSSL_cleanse(dec, declen);
        free(dec);
        if (!k) snprintf(err, errlen, "%s: cannot compute the key id (OpenSSL failed)", label);
        return k;
    }
    if (dec) {
        OPENSSL_cleanse(dec, declen);
        free(dec);
    }

    const char *fix = " (make one with: openssl rand -hex 32)";
    if (n == 0)
        snprintf(err, errlen, "%s: " KEY_HINT ", got an empty value%s", label, fix);
    else if (all_hex && n % 2 == 0)
        snprintf(err, errlen, "%s: " KEY_HINT ", got %zu hex characters (%zu bytes)%s", label, n,
                 n / 2, fix);
    else if (dec)
        snprintf(err, errlen, "%s: " KEY_HINT ", got base64 of %zu bytes%s", label, declen, fix);
    else
        snprintf(err, errlen, "%s: " KEY_HINT ", got %zu characters that are neither hex nor base64%s",
                 label, n, fix);
    return NULL;
}

SecretKey *secret_key_parse(const char *text, char *err, size_t errlen)
{
    return key_from_text(text, "core.secret_key", err, errlen);
}

void secret_key_free(SecretKey *k)
{
    if (!k) return;
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

const char *secret_key_id(const SecretKey *k)
{
    return k ? k->id : "";
}

/* Reads an open key file (closing it). The permission check is on the open descriptor,
 * so the file checked is the file read. */
static SecretKey *key_load_fd(int fd, const char *path, char *err, size_t errlen)
{
    SecretKey *k = NULL;
    char buf[KEY_FILE_MAX + 1];
    size_t len = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat key file %s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "key file %s is not a regular file", path);
        goto done;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen,
                 "key file %s is accessible by group or others (mode %04o); it must be private "
                 "to its owner: run chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
        goto done;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
            goto done;
        }
        if (r == 0) break;
        len += (size_t)r;
        if (len == sizeof buf - 1) {
            snprintf(err, errlen, "key file %s is larger than %d bytes: not a key file", path,
                     KEY_FILE_MAX);
            goto done;
        }
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) {
        snprintf(err, errlen, "%s: " KEY_HINT ", got binary data", path);
        goto done;
    }
    k = key_from_text(buf, path, err, errlen);
done:
    OPENSSL_cleanse(buf, sizeof buf);
    close(fd);
    return k;
}

static int write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* So a crash right after creating the key cannot lose the file's directory entry while
 * secrets encrypted with it survive. Best effort. */
static void fsync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? xstrndup(path, slash == path ? 1 : (size_t)(slash - path)) : xstrdup(".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(dir);
}

/* Writes a fresh key to a private temporary file and hard-links it into place, which
 * fails if the name exists: a concurrent first start sees either no file or a complete
 * one, never half a key. Returns 0 created, 1 someone else's file is there, -1 error. */
static int key_file_create(const char *path, char *err, size_t errlen)
{
    unsigned char bytes[SECRET_KEY_BYTES];
    char text[2 * SECRET_KEY_BYTES + 2];
    int rc = -1, fd = -1;
    char *tmp = xasprintf("%s.tmp.XXXXXX", path);

    if (secret_random_bytes(bytes, sizeof bytes) != 0) {
        snprintf(err, errlen, "cannot create key file %s: no random bytes from OpenSSL", path);
        goto done;
    }
    for (size_t i = 0; i < sizeof bytes; i++) snprintf(text + 2 * i, 3, "%02x", bytes[i]);
    text[2 * SECRET_KEY_BYTES] = '\n';
    text[2 * SECRET_KEY_BYTES + 1] = '\0';

    fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create key file %s: %s", path, strerror(errno));
        goto done;
    }
    if (fchmod(fd, 0600) != 0 || write_all(fd, text, sizeof text - 1) != 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "cannot write key file %s: %s", path, strerror(errno));
        goto unlink_tmp;
    }
    close(fd);
    fd = -1;
    if (link(tmp, path) == 0) {
        rc = 0;
    } else if (errno == EEXIST) {
        rc = 1;
    } else {
        /* Some filesystems have no hard links: fall back to an exclusive create. */
        int e = errno;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST) {
            rc = 1;
        } else if (fd < 0) {
            snprintf(err, errlen, "cannot create key file %s: %s", path, strerror(e));
        } else if (write_all(fd, text, sizeof text - 1) != 0 || fsync(fd) != 0) {
            snprintf(err, errlen, "cannot write key file %s: %s", path, strerror(errno));
            unlink(path);
        } else {
            rc = 0;
        }
    }
    if (rc == 0) fsync_parent_dir(path);
unlink_tmp:
    unlink(tmp);
done:
    if (fd >= 0) close(fd);
    OPENSSL_cleanse(bytes, sizeof bytes);
    OPENSSL_cleanse(text, sizeof text);
    free(tmp);
    return rc;
}

SecretKey *secret_key_load_or_create(const char *path, char *err, size_t errlen)
{
    if (!path || !*path) {
        snprintf(err, errlen, "no key file path given");
        return NULL;
    }
    /* Two rounds: after creating (or losing the race to create) the file, read it back
     * like any other start would, so what is used is exactly what is on disk. */
    for (int round = 0; round < 2; round++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd >= 0) return key_load_fd(fd, path, err, errlen);
        if (errno != ENOENT) {
            snprintf(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
            return NULL;
        }
        if (round == 0 && key_file_create(path, err, errlen) < 0) return NULL;
    }
    snprintf(err, errlen, "key file %s disappeared right after it was created", path);
    return NULL;
}

/* ---- tokens ---------------------------------------------------------------------- */

/* Runs len bytes through an initialised GCM context in int-sized pieces; out == NULL
 * feeds associated data. */
static int gcm_update(EVP_CIPHER_CTX *ctx, unsigned char *out, const unsigned char *in, size_t len)
{
    while (len > 0) {
        int n = len > EVP_CHUNK ? (int)EVP_CHUNK : (int)len, outl = 0;
        if (EVP_CipherUpdate(ctx, out, &outl, in, n) != 1) return -1;
        if (out) out += outl;
        in += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Sets up ctx for key k and nonce, feeds aad. enc: 1 encrypt, 0 decrypt. */
static EVP_CIPHER_CTX *gcm_begin(const SecretKey *k, const unsigned char *nonce, const char *aad,
                                 int enc)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return NULL;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_BYTES, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, k->key, nonce, enc) != 1 ||
        (aad && gcm_update(ctx, NULL, (const unsigned char *)aad, strlen(aad)) != 0)) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

char *secret_encrypt(const SecretKey *k, const char *plaintext, size_t len, const char *aad)
{
    if (!k || (!plaintext && len > 0) || len > SIZE_MAX - NONCE_BYTES - TAG_BYTES) return NULL;
    size_t rawlen = NONCE_BYTES + len + TAG_BYTES;
    unsigned char *raw = xmalloc(rawlen);
    unsigned char *nonce = raw, *ct = raw + NONCE_BYTES, *tag = raw + NONCE_BYTES + len;
    char *token = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    int outl = 0;

    if (secret_random_bytes(nonce, NONCE_BYTES) != 0) goto done;
    ctx = gcm_begin(k, nonce, aad, 1);
    if (!ctx || gcm_update(ctx, ct, (const unsigned char *)plaintext, len) != 0 ||
        EVP_CipherFinal_ex(ctx, ct + len, &outl) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, tag) != 1)
        goto done;

    char *body = secret_b64url_encode(raw, rawlen);
    token = xasprintf(SECRET_TOKEN_PREFIX "%s:%s", k->id, body);
    free(body);
done:
    EVP_CIPHER_CTX_free(ctx);
    free(raw); /* nonce, ciphertext and tag: nothing secret */
    return token;
}

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

int secret_is_token(const char *s)
{
    size_t plen = strlen(SECRET_TOKEN_PREFIX);
    if (!s || strncmp(s, SECRET_TOKEN_PREFIX, plen) != 0) return 0;
    s += plen;
    if (strlen(s) < KEY_ID_CHARS + 1 || !is_lower_hex(s, KEY_ID_CHARS) || s[KEY_ID_CHARS] != ':')
        return 0;
    const char *body = s + KEY_ID_CHARS + 1;
    size_t n = 0;
    for (; body[n]; n++)
        if (b64_value((unsigned char)body[n], B64_ALPHA_URL) < 0) return 0;
    size_t min_chars = ((NONCE_BYTES + TAG_BYTES) * 8 + 5) / 6;
    return n >= min_chars && n % 4 != 1;
}

char *secret_decrypt(const SecretKey *k, const char *token, const char *aad, size_t *len_out,
                     char *err, size_t errlen)
{
    size_t plen = strlen(SECRET_TOKEN_PREFIX);
    if (!token || strncmp(token, SECRET_TOKEN_PREFIX, plen) != 0) {
        snprintf(err, errlen, "not an encrypted value");
        return NULL;
    }
    if (!k) {
        snprintf(err, errlen, "cannot decrypt: no key");
        return NULL;
    }
    const char *id = token + plen;
    if (strnlen(id, KEY_ID_CHARS + 1) < KEY_ID_CHARS + 1 || !is_lower_hex(id, KEY_ID_CHARS) ||
        id[KEY_ID_CHARS] != ':') {
        snprintf(err, errlen, ERR_CORRUPT);
        return NULL;
    }
    if (memcmp(id, k->id, KEY_ID_CHARS) != 0) {
        snprintf(err, errlen,
                 "cannot decrypt: the secret was encrypted with key %.8s, core.secret_key is key %s",
                 id, k->id);
        return NULL;
    }
    const char *body = id + KEY_ID_CHARS + 1;
    size_t rawlen = 0;
    unsigned char *raw = secret_b64url_decode(body, strlen(body), &rawlen);
    if (!raw || rawlen < NONCE_BYTES + TAG_BYTES) {
        free(raw);
        snprintf(err, errlen, ERR_CORRUPT);
        return NULL;
    }
    size_t len = rawlen - NONCE_BYTES - TAG_BYTES;
    unsigned char tag[TAG_BYTES];
    memcpy(tag, raw + NONCE_BYTES + len, TAG_BYTES);
    unsigned char *out = xmalloc(len + 1);
    int outl = 0, ok = 0;
    EVP_CIPHER_CTX *ctx = gcm_begin(k, raw, aad, 0);
    if (ctx && gcm_update(ctx, out, raw + NONCE_BYTES, len) == 0 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, tag) == 1 &&
        EVP_CipherFinal_ex(ctx, out + len, &outl) == 1)
        ok = 1;
    EVP_CIPHER_CTX_free(ctx);
    free(raw);
    if (!ok) {
        /* GCM writes plaintext before it checks the tag: unauthenticated bytes must not leak. */
        OPENSSL_cleanse(out, len + 1);
        free(out);
        snprintf(err, errlen, ERR_CORRUPT);
        return NULL;
    }
    out[len] = '\0';
    if (len_out) *len_out = len;
    return (char *)out;
}

/* ---- masking --------------------------------------------------------------------- */

/* The values to hide, longest first so a secret containing another is hidden whole. */
static struct {
    pthread_mutex_t lock;
    char **values; /* owned, NUL-terminated, each at least SECRET_MASK_MIN_LEN bytes */
    size_t *lens;  /* strlen of each value */
    size_t n, cap;
} mask = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0, 0};

void secret_mask_register(const char *value)
{
    if (!value) return;
    size_t len = strlen(value);
    if (len < SECRET_MASK_MIN_LEN) return;
    pthread_mutex_lock(&mask.lock);
    size_t at = 0;
    for (; at < mask.n && mask.lens[at] >= len; at++)
        if (mask.lens[at] == len && memcmp(mask.values[at], value, len) == 0) goto out;
    if (mask.n == mask.cap) {
        mask.cap = mask.cap ? mask.cap * 2 : 16;
        mask.values = xrealloc(mask.values, mask.cap * sizeof *mask.values);
        mask.lens = xrealloc(mask.lens, mask.cap * sizeof *mask.lens);
    }
    memmove(mask.values + at + 1, mask.values + at, (mask.n - at) * sizeof *mask.values);
    memmove(mask.lens + at + 1, mask.lens + at, (mask.n - at) * sizeof *mask.lens);
    mask.values[at] = xstrndup(value, len);
    mask.lens[at] = len;
    mask.n++;
out:
    pthread_mutex_unlock(&mask.lock);
}

char *secret_mask(const char *text)
{
    if (!text) return NULL;
    StrBuf out = {0};
    const char *run = text, *p = text;
    pthread_mutex_lock(&mask.lock);
    while (*p) {
        size_t hit = 0;
        for (size_t i = 0; i < mask.n; i++) {
            if (*p == mask.values[i][0] && strncmp(p, mask.values[i], mask.lens[i]) == 0) {
                hit = mask.lens[i];
                break;
            }
        }
        if (hit) {
            sb_appendn(&out, run, (size_t)(p - run));
            sb_append(&out, "***");
            p += hit;
            run = p;
        } else {
            p++;
        }
    }
    pthread_mutex_unlock(&mask.lock);
    sb_appendn(&out, run, (size_t)(p - run));
    return sb_take(&out);
}

void secret_mask_clear(void)
{
    pthread_mutex_lock(&mask.lock);
    for (size_t i = 0; i < mask.n; i++) {
        OPENSSL_cleanse(mask.values[i], mask.lens[i]);
        free(mask.values[i]);
    }
    free(mask.values);
    free(mask.lens);
    mask.values = NULL;
    mask.lens = NULL;
    mask.n = mask.cap = 0;
    pthread_mutex_unlock(&mask.lock);
}
