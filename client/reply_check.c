/* SPDX-License-Identifier: MIT */
#include "client/reply_check.h"

#include <string.h>

#include "base/utf8.h"

bool lk_reply_string_valid(const char *s, size_t max)
{
        size_t len;

        if (!s)
                return false;
        len = strnlen(s, max + 1);
        return len > 0 && len <= max && lk_utf8_valid(s, len);
}

bool lk_reply_word_valid(const char *s, size_t max)
{
        size_t len;

        if (!s)
                return false;
        len = strnlen(s, max + 1);
        if (len == 0 || len > max)
                return false;
        for (size_t i = 0; i < len; i++)
                if (s[i] <= ' ' || s[i] >= 0x7f)
                        return false;
        return true;
}

bool lk_reply_user_valid(const char *s)
{
        return lk_reply_string_valid(s, LK_ARG_ID_MAX);
}

bool lk_reply_url_valid(const char *s)
{
        return lk_reply_word_valid(s, LK_ARG_AUTHORIZE_URL_MAX) &&
               (strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0);
}

bool lk_reply_claims_valid(const char *s)
{
        return lk_reply_string_valid(s, LK_ARG_CLAIMS_JSON_MAX) && s[strspn(s, " \t\r\n")] == '{';
}
