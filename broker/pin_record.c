/* SPDX-License-Identifier: MIT */
#include "broker/pin_record.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define MAGIC "latchkey-offline 1"

/* A decimal number 0..max, the whole of s[0..len). */
static bool parse_number(const char *s, size_t len, uint64_t max, uint64_t *ret)
{
        uint64_t v = 0;

        if (len == 0 || len > 20)
                return false;
        for (size_t i = 0; i < len; i++) {
                unsigned d;
                if (s[i] < '0' || s[i] > '9')
                        return false;
                d = (unsigned)(s[i] - '0');
                if (d > max || v > (max - d) / 10)
                        return false;
                v = v * 10 + d;
        }
        *ret = v;
        return true;
}

static bool hash_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '$' || c == '=' || c == ',' || c == '+' || c == '/';
}

bool lk_pin_hash_params(const char *hash, unsigned *m, unsigned *t, unsigned *p)
{
        unsigned mm, tt, pp;
        int n = 0;

        if (strncmp(hash, "$argon2id$v=19$", 15) != 0)
                return false;
        if (sscanf(hash + 15, "m=%u,t=%u,p=%u$%n", &mm, &tt, &pp, &n) != 3 || n == 0)
                return false;
        /* salt$hash after the parameters, both non-empty */
        {
                const char *salt = hash + 15 + n, *sep = strchr(salt, '$');
                if (!sep || sep == salt || !sep[1] || strchr(sep + 1, '$'))
                        return false;
        }
        if (mm < 8 || mm > LK_PIN_MEMORY_MAX || tt < 1 || tt > LK_PIN_TIME_MAX || pp < 1 ||
            pp > LK_PIN_LANES_MAX)
                return false;
        *m = mm;
        *t = tt;
        *p = pp;
        return true;
}

static bool user_char(char c)
{
        return (unsigned char)c > 0x20 && (unsigned char)c != 0x7f;
}

enum { K_UID, K_USER, K_ONLINE, K_FAILURES, K_LOCKED, K_DISABLED, K_HASH, K_N };
static const char *const key_names[K_N] = {"uid",          "user",     "online_at", "failures",
                                           "locked_until", "disabled", "hash"};

int lk_pin_record_parse(const char *data, size_t len, struct lk_pin_record *ret,
                        struct lk_error *e)
{
        struct lk_pin_record r = {0};
        bool seen[K_N] = {0};
        size_t pos = 0;
        unsigned line = 0;

        if (len > LK_PIN_RECORD_MAX)
                return lk_error_set(e, LK_ERR_IO, "larger than %d bytes", LK_PIN_RECORD_MAX);
        while (pos < len) {
                const char *s = data + pos, *nl = memchr(s, '\n', len - pos), *sp;
                size_t n = nl ? (size_t)(nl - s) : len - pos;
                size_t klen, vlen;
                const char *v;
                uint64_t num = 0;
                int k;

                line++;
                pos += n + (nl ? 1 : 0);
                if (!nl)
                        return lk_error_set(e, LK_ERR_IO, "line %u: no newline at the end", line);
                if (line == 1) {
                        if (n != strlen(MAGIC) || memcmp(s, MAGIC, n) != 0)
                                return lk_error_set(e, LK_ERR_IO,
                                                    "line 1: not \"" MAGIC "\"");
                        continue;
                }
                sp = memchr(s, ' ', n);
                if (!sp)
                        return lk_error_set(e, LK_ERR_IO, "line %u: not \"key value\"", line);
                klen = (size_t)(sp - s);
                v = sp + 1;
                vlen = n - klen - 1;
                for (k = 0; k < K_N; k++)
                        if (strlen(key_names[k]) == klen && memcmp(key_names[k], s, klen) == 0)
                                break;
                if (k == K_N)
                        return lk_error_set(e, LK_ERR_IO, "line %u: unknown key", line);
                if (seen[k])
                        return lk_error_set(e, LK_ERR_IO, "line %u: %s given twice", line,
                                            key_names[k]);
                seen[k] = true;
                switch (k) {
                case K_USER:
                case K_HASH: {
                        size_t max = k == K_USER ? LK_PIN_USER_MAX : LK_PIN_HASH_MAX;
                        char *dst = k == K_USER ? r.user : r.hash;
                        unsigned m, t, p;
                        if (vlen == 0 || vlen > max)
                                return lk_error_set(e, LK_ERR_IO, "line %u: %s empty or longer "
                                                    "than %zu bytes", line, key_names[k], max);
                        for (size_t i = 0; i < vlen; i++)
                                if (k == K_USER ? !user_char(v[i]) : !hash_char(v[i]))
                                        return lk_error_set(e, LK_ERR_IO,
                                                            "line %u: %s has a bad byte", line,
                                                            key_names[k]);
                        memcpy(dst, v, vlen);
                        dst[vlen] = 0;
                        if (k == K_HASH && !lk_pin_hash_params(r.hash, &m, &t, &p))
                                return lk_error_set(e, LK_ERR_IO, "line %u: not an Argon2id hash "
                                                    "within the parameters' bounds", line);
                        break;
                }
                case K_UID:
                        if (!parse_number(v, vlen, UINT32_MAX - 1, &num))
                                return lk_error_set(e, LK_ERR_IO, "line %u: bad uid", line);
                        r.uid = (uid_t)num;
                        break;
                case K_FAILURES:
                        if (!parse_number(v, vlen, 1000000, &num))
                                return lk_error_set(e, LK_ERR_IO, "line %u: bad failures", line);
                        r.failures = (unsigned)num;
                        break;
                case K_DISABLED:
                        if (!parse_number(v, vlen, 1, &num))
                                return lk_error_set(e, LK_ERR_IO, "line %u: disabled is not 0 or 1",
                                                    line);
                        r.disabled = num;
                        break;
                case K_ONLINE:
                case K_LOCKED:
                        if (!parse_number(v, vlen, INT64_MAX, &num))
                                return lk_error_set(e, LK_ERR_IO, "line %u: bad %s", line,
                                                    key_names[k]);
                        *(k == K_ONLINE ? &r.online_at : &r.locked_until) = (int64_t)num;
                        break;
                }
        }
        if (line == 0)
                return lk_error_set(e, LK_ERR_IO, "empty");
        for (int k = 0; k < K_N; k++)
                if (!seen[k] && k != K_HASH)
                        return lk_error_set(e, LK_ERR_IO, "%s missing", key_names[k]);
        *ret = r;
        return 0;
}

int lk_pin_record_format(const struct lk_pin_record *r, char *buf, size_t size)
{
        int n;

        n = snprintf(buf, size,
                     MAGIC "\nuid %u\nuser %s\nonline_at %" PRId64 "\nfailures %u\n"
                           "locked_until %" PRId64 "\ndisabled %d\n%s%s%s",
                     (unsigned)r->uid, r->user, r->online_at, r->failures, r->locked_until,
                     r->disabled ? 1 : 0, r->hash[0] ? "hash " : "", r->hash,
                     r->hash[0] ? "\n" : "");
        if (n < 0 || (size_t)n >= size)
                return -LK_ERR_IO;
        return n;
}
