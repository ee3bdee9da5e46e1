/* SPDX-License-Identifier: MIT */
#include "cli/git_map.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/ini_line.h"
#include "base/util.h"

/* Copies s[0..len) into out (GIT_FIELD_MAX + 1 bytes) when it fits and holds no control
 * character. */
static bool take_field(const char *s, size_t len, char *out)
{
        if (len > GIT_FIELD_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return false;
        memcpy(out, s, len);
        out[len] = 0;
        return true;
}

bool git_request_parse(const char *text, size_t len, struct git_request *ret, char *why,
                       size_t why_size)
{
        struct git_request r;
        size_t line = 0;

        memset(&r, 0, sizeof(r));

        for (size_t at = 0; at < len;) {
                const char *s = text + at, *nl = memchr(s, '\n', len - at), *eq;
                size_t l = nl ? (size_t)(nl - s) : len - at;

                at += l + 1;
                line++;
                if (l > 0 && s[l - 1] == '\r')
                        l--;
                if (l == 0)
                        break; /* the blank line that ends the request */
                eq = memchr(s, '=', l);
                if (!eq) {
                        snprintf(why, why_size, "line %zu of the request is not key=value", line);
                        return false;
                }
                if ((size_t)(eq - s) == 8 && memcmp(s, "protocol", 8) == 0) {
                        if (!take_field(eq + 1, l - 9, r.protocol)) {
                                snprintf(why, why_size, "the protocol (line %zu) is too long or "
                                         "holds control characters", line);
                                return false;
                        }
                } else if ((size_t)(eq - s) == 4 && memcmp(s, "host", 4) == 0) {
                        if (!take_field(eq + 1, l - 5, r.host)) {
                                snprintf(why, why_size, "the host (line %zu) is too long or "
                                         "holds control characters", line);
                                return false;
                        }
                }
                /* path, username, password, url, wwwauth[]...: not ours to use */
        }
        if (!r.protocol[0] || !r.host[0]) {
                snprintf(why, why_size, "the request names no %s", r.protocol[0] ? "host"
                                                                                   : "protocol");
                return false;
        }
        *ret = r;
        return true;
}

static bool key_is(const struct lk_ini_line *il, const char *key)
{
        return il->name_len == strlen(key) && memcmp(il->name, key, il->name_len) == 0;
}

/* One key of a host's section into h; false with why. */
static bool set_key(const struct lk_ini_line *il, size_t line, struct git_host *h, char *why,
                    size_t why_size)
{
        char *field = NULL, num[16];

        if (key_is(il, "scope"))
                field = h->scope;
        else if (key_is(il, "audience"))
                field = h->audience;
        else if (key_is(il, "username"))
                field = h->username;
        else if (key_is(il, "min_valid")) {
                unsigned long v;
                char *end;

                if (il->value_len == 0 || il->value_len >= sizeof(num)) {
                        snprintf(why, why_size, "line %zu: min_valid must be seconds, 0 to %d",
                                 line, GIT_MIN_VALID_MAX);
                        return false;
                }
                memcpy(num, il->value, il->value_len);
                num[il->value_len] = 0;
                errno = 0;
                v = strtoul(num, &end, 10);
                if (num[0] < '0' || num[0] > '9' || *end || errno || v > GIT_MIN_VALID_MAX) {
                        snprintf(why, why_size, "line %zu: min_valid must be seconds, 0 to %d",
                                 line, GIT_MIN_VALID_MAX);
                        return false;
                }
                h->min_valid = (unsigned)v;
                return true;
        } else {
                snprintf(why, why_size, "line %zu: unknown key '%.*s' (scope, audience, "
                         "username, min_valid)", line, (int)(il->name_len > 64 ? 64 : il->name_len),
                         il->name);
                return false;
        }
        if (il->value_len == 0 || !take_field(il->value, il->value_len, field)) {
                snprintf(why, why_size, "line %zu: %.*s needs a value of 1 to %d characters",
                         line, (int)il->name_len, il->name, GIT_FIELD_MAX);
                return false;
        }
        if (field == h->username && strpbrk(field, " \t")) {
                snprintf(why, why_size, "line %zu: username may not hold blanks", line);
                return false;
        }
        return true;
}

int git_map_find(const char *text, size_t len, const char *host, struct git_host *ret,
                 char *why, size_t why_size)
{
        struct git_host h, found;
        bool in_section = false, mine = false, have = false;
        size_t line = 0;

        memset(&h, 0, sizeof(h));
        memset(&found, 0, sizeof(found));

        for (size_t at = 0; at < len;) {
                const char *s = text + at, *nl = memchr(s, '\n', len - at);
                size_t l = nl ? (size_t)(nl - s) : len - at;
                struct lk_ini_line il;

                at += l + 1;
                line++;
                if (memchr(s, 0, l)) {
                        snprintf(why, why_size, "line %zu holds a NUL byte", line);
                        return -1;
                }
                lk_ini_line(s, l, line == 1, &il);
                switch (il.kind) {
                case LK_INI_NOTHING:
                        break;
                case LK_INI_SECTION:
                        if (il.trailing || il.name_len == 0 || il.name_len > GIT_FIELD_MAX) {
                                snprintf(why, why_size, "line %zu: a section is [host] alone",
                                         line);
                                return -1;
                        }
                        if (mine) {
                                found = h;
                                have = true;
                        }
                        h = (struct git_host){ .min_valid = GIT_DEFAULT_MIN_VALID };
                        in_section = true;
                        mine = strlen(host) == il.name_len &&
                               strncasecmp(host, il.name, il.name_len) == 0;
                        break;
                case LK_INI_KEY:
                        if (!in_section) {
                                snprintf(why, why_size, "line %zu: a key before any [host]",
                                         line);
                                return -1;
                        }
                        if (!set_key(&il, line, &h, why, why_size))
                                return -1;
                        break;
                default:
                        snprintf(why, why_size, "line %zu is neither [host] nor key = value",
                                 line);
                        return -1;
                }
        }
        if (mine) {
                found = h;
                have = true;
        }
        if (!have)
                return 0;
        if (!found.username[0])
                snprintf(found.username, sizeof(found.username), "%s", GIT_DEFAULT_USERNAME);
        *ret = found;
        return 1;
}
