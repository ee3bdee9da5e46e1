/* SPDX-License-Identifier: MIT */
/*
 * The client stubs' one rule set for the broker's replies (client/reply_check.c), on its own
 * and through the reply parsers (client/broker_client.c) on messages made of the input, and
 * pam_latchkey's checks on the person's answer. What reaches a person's screen goes through the
 * base's lk_text_escape(), fuzzed in fuzz_text.c. The module's UTF-8 check must agree with the
 * base's (base/utf8.c) on every NUL-free input.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "client/broker_client.h"
#include "pam_module/input_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_word(const char *s, size_t max)
{
        if (strlen(s) > max)
                abort();
        for (size_t i = 0; s[i]; i++)
                if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
                        abort();
}

/* The reply parsers: whatever they hand out obeys the rules; a refusal says so. */
static void parse(const char *a, const char *b)
{
        struct lk_client_error e;
        DBusMessage *m;
        char *x = NULL, *y = NULL;
        int r;

        m = dbus_message_new(DBUS_MESSAGE_TYPE_METHOD_RETURN);
        if (!m || !dbus_message_append_args(m, DBUS_TYPE_STRING, &a, DBUS_TYPE_STRING, &b,
                                            DBUS_TYPE_INVALID))
                abort();
        r = lk_client_parse_begin_login(m, &x, &y, &e);
        if (r == 0) {
                check_word(x, LK_ARG_ID_MAX);
                if (!lk_reply_url_valid(y))
                        abort();
                free(x);
                free(y);
        } else if (r != -EBADMSG || strcmp(e.name, LK_CLIENT_ERROR_BAD_REPLY) != 0)
                abort();
        /* (ss) is not (s): refused */
        if (lk_client_parse_complete_login(m, &x, &e) != -EBADMSG)
                abort();
        dbus_message_unref(m);

        m = dbus_message_new(DBUS_MESSAGE_TYPE_METHOD_RETURN);
        if (!m || !dbus_message_append_args(m, DBUS_TYPE_STRING, &a, DBUS_TYPE_INVALID))
                abort();
        x = NULL;
        r = lk_client_parse_complete_login(m, &x, &e);
        if (r == 0) {
                if (!lk_reply_user_valid(x) || strcmp(x, a) != 0)
                        abort();
                free(x);
        } else if (r != -EBADMSG || lk_reply_user_valid(a))
                abort();
        x = NULL;
        r = lk_client_parse_get_claims(m, &x, &e);
        if (r == 0) {
                if (!lk_reply_claims_valid(x))
                        abort();
                free(x);
        }
        dbus_message_unref(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *s, *nl;

        if (size > 64 * 1024)
                return 0;
        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;

        if (!memchr(data, 0, size) && lkp_utf8_valid(s, size) != lk_utf8_valid(s, size))
                abort();
        if (lk_reply_word_valid(s, 256))
                check_word(s, 256);
        if (lk_reply_string_valid(s, 256) &&
            (strlen(s) > 256 || !*s || !lk_utf8_valid(s, strlen(s))))
                abort();
        if (lk_reply_url_valid(s))
                check_word(s, LK_ARG_AUTHORIZE_URL_MAX);

        /* libdbus takes only valid UTF-8: the first line and the rest as two strings */
        if (!memchr(data, 0, size) && lk_utf8_valid(s, size)) {
                nl = strchr(s, '\n');
                if (nl)
                        *nl = '\0';
                parse(s, nl ? nl + 1 : "");
                if (nl)
                        *nl = '\n';
        }

        lkp_strip(s);
        size_t n = strlen(s);
        if (n > 0 && (strchr(" \t\r\n", s[0]) || strchr(" \t\r\n", s[n - 1])))
                abort();
        free(s);
        return 0;
}
