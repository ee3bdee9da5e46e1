/* SPDX-License-Identifier: MIT */
#include "cli/token_output.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"

bool token_format_parse(const char *name, enum token_format *ret)
{
        static const struct {
                const char *name;
                enum token_format f;
        } formats[] = {
                { "token", TOKEN_FORMAT_TOKEN },
                { "header", TOKEN_FORMAT_HEADER },
                { "json", TOKEN_FORMAT_JSON },
                { "kubernetes", TOKEN_FORMAT_KUBERNETES },
        };

        for (size_t i = 0; i < ELEMENTSOF(formats); i++)
                if (streq(name, formats[i].name)) {
                        *ret = formats[i].f;
                        return true;
                }
        return false;
}

bool format_rfc3339(int64_t t, char *buf, size_t size)
{
        time_t tt = (time_t)t;
        struct tm tm;

        return t > 0 && gmtime_r(&tt, &tm) && strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0;
}

/* A growing buffer for a secret: each growth copies and wipes the old one (no realloc). */
struct sbuf {
        char *p;
        size_t len, cap;
        bool failed;
};

static void sbuf_add(struct sbuf *b, const char *s, size_t n)
{
        if (b->failed)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t cap = (b->len + n + 1) * 2;
                char *p = malloc(cap);

                if (!p) {
                        b->failed = true;
                        return;
                }
                if (b->p) {
                        memcpy(p, b->p, b->len);
                        explicit_bzero(b->p, b->cap);
                        free(b->p);
                }
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = 0;
}

static void sbuf_puts(struct sbuf *b, const char *s)
{
        sbuf_add(b, s, strlen(s));
}

/* s as a JSON string, quotes included (the broker's words are printable ASCII already;
 * anything else is escaped all the same). */
static void sbuf_json_string(struct sbuf *b, const char *s)
{
        sbuf_add(b, "\"", 1);
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                char esc[8];

                if (c == '"' || c == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char)c;
                        sbuf_add(b, esc, 2);
                } else if (c < 0x20) {
                        snprintf(esc, sizeof(esc), "\\u%04x", c);
                        sbuf_add(b, esc, 6);
                } else {
                        sbuf_add(b, s, 1);
                }
        }
        sbuf_add(b, "\"", 1);
}

char *token_format_render(enum token_format f, const char *token, const char *type,
                          int64_t expires_at)
{
        struct sbuf b = {0};
        char num[32], when[32];

        if (!type || strcasecmp(type, "bearer") == 0)
                type = "Bearer";
        switch (f) {
        case TOKEN_FORMAT_TOKEN:
                sbuf_puts(&b, token);
                break;
        case TOKEN_FORMAT_HEADER:
                sbuf_puts(&b, "Authorization: ");
                sbuf_puts(&b, type);
                sbuf_puts(&b, " ");
                sbuf_puts(&b, token);
                break;
        case TOKEN_FORMAT_JSON:
                snprintf(num, sizeof(num), "%lld", (long long)expires_at);
                sbuf_puts(&b, "{\"access_token\": ");
                sbuf_json_string(&b, token);
                sbuf_puts(&b, ", \"token_type\": ");
                sbuf_json_string(&b, type);
                sbuf_puts(&b, ", \"expires_at\": ");
                sbuf_puts(&b, num);
                sbuf_puts(&b, "}");
                break;
        case TOKEN_FORMAT_KUBERNETES:
                /* https://kubernetes.io/docs/reference/config-api/client-authentication.v1/ */
                sbuf_puts(&b, "{\"apiVersion\": \"client.authentication.k8s.io/v1\", "
                              "\"kind\": \"ExecCredential\", \"status\": {\"token\": ");
                sbuf_json_string(&b, token);
                if (format_rfc3339(expires_at, when, sizeof(when))) {
                        sbuf_puts(&b, ", \"expirationTimestamp\": ");
                        sbuf_json_string(&b, when);
                }
                sbuf_puts(&b, "}}");
                break;
        }
        sbuf_puts(&b, "\n");
        if (b.failed) {
                lk_secret_free(b.p);
                return NULL;
        }
        return b.p;
}

int write_secret(const char *s)
{
        size_t len = strlen(s), done = 0;

        while (done < len) {
                ssize_t n = write(STDOUT_FILENO, s + done, len - done);

                if (n < 0)
                        return -1;
                done += (size_t)n;
        }
        return 0;
}
