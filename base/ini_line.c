/* SPDX-License-Identifier: MIT */
#include "base/ini_line.h"

#include <string.h>

/* isspace() in the C locale, as inih trims */
static bool is_space(char ch)
{
        return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f';
}

static const char *trim(const char *s, size_t *len)
{
        while (*len > 0 && is_space(*s)) {
                s++;
                (*len)--;
        }
        while (*len > 0 && is_space(s[*len - 1]))
                (*len)--;
        return s;
}

void lk_ini_line(const char *s, size_t len, bool first, struct lk_ini_line *ret)
{
        const char *close, *delim = NULL;

        *ret = (struct lk_ini_line){ .kind = LK_INI_NOTHING };
        if (first && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
                s += 3;
                len -= 3;
        }
        s = trim(s, &len);
        if (len == 0 || *s == '#' || *s == ';')
                return;

        if (*s == '[') {
                close = memchr(s, ']', len);
                if (!close) {
                        ret->kind = LK_INI_UNCLOSED;
                        return;
                }
                ret->kind = LK_INI_SECTION;
                ret->name = s + 1;
                ret->name_len = (size_t)(close - s - 1);
                ret->trailing = close + 1 < s + len && close[1] != '#' && close[1] != ';';
                return;
        }

        for (size_t i = 0; i < len && !delim; i++)
                if (s[i] == '=' || s[i] == ':')
                        delim = s + i;
        if (!delim) {
                ret->kind = LK_INI_NO_VALUE;
                return;
        }
        ret->kind = LK_INI_KEY;
        ret->name_len = (size_t)(delim - s);
        ret->name = trim(s, &ret->name_len);
        ret->value_len = len - (size_t)(delim + 1 - s);
        ret->value = trim(delim + 1, &ret->value_len);
}
