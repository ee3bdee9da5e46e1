/* SPDX-License-Identifier: MIT */
#include "base/util.h"

#include <string.h>

void lk_strv_free(char **l)
{
        if (!l)
                return;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
}

size_t lk_strv_length(char *const *l)
{
        size_t n = 0;

        if (l)
                while (l[n])
                        n++;
        return n;
}

bool lk_strv_contains(char *const *l, const char *s)
{
        if (!l)
                return false;
        for (char *const *i = l; *i; i++)
                if (streq(*i, s))
                        return true;
        return false;
}

char **lk_strv_split(const char *s)
{
        static const char sep[] = " \t,";
        char **l;
        size_t n = 0;

        l = calloc(1, sizeof(char *));
        if (!l)
                return NULL;

        while (*s) {
                size_t len;
                char **grown;

                s += strspn(s, sep);
                len = strcspn(s, sep);
                if (len == 0)
                        break;

                grown = realloc(l, (n + 2) * sizeof(char *));
                if (!grown) {
                        lk_strv_free(l);
                        return NULL;
                }
                l = grown;
                l[n] = strndup(s, len);
                if (!l[n]) {
                        lk_strv_free(l);
                        return NULL;
                }
                l[++n] = NULL;
                s += len;
        }
        return l;
}

void lk_secret_free(char *s)
{
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        free(s);
}

bool lk_endswith(const char *s, const char *suffix)
{
        size_t a = strlen(s), b = strlen(suffix);

        return a >= b && memcmp(s + a - b, suffix, b) == 0;
}
