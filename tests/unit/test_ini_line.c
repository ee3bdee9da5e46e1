/* SPDX-License-Identifier: MIT */
/*
 * The grammar of one latchkey.conf line (base/ini_line.c), which
 * pam_latchkey.so reads with, and its agreement with the broker's reader,
 * where inih splits the keys: both must read every line alike.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/ini_line.h"
#include "base/util.h"
#include "oidc/config.h"

static void expect(const char *line, bool first, enum lk_ini_kind kind, const char *name,
                   const char *value)
{
        struct lk_ini_line il;

        lk_ini_line(line, strlen(line), first, &il);
        if (il.kind != kind)
                fail_msg("'%s': kind %d, want %d", line, il.kind, kind);
        if (name && (il.name_len != strlen(name) || memcmp(il.name, name, il.name_len) != 0))
                fail_msg("'%s': name '%.*s', want '%s'", line, (int)il.name_len, il.name, name);
        if (value && (il.value_len != strlen(value) || memcmp(il.value, value, il.value_len) != 0))
                fail_msg("'%s': value '%.*s', want '%s'", line, (int)il.value_len, il.value, value);
}

static void test_kinds(void **state)
{
        struct lk_ini_line il;

        expect("", false, LK_INI_NOTHING, NULL, NULL);
        expect(" \t\r\v\f", false, LK_INI_NOTHING, NULL, NULL);
        expect("# services = sshd", false, LK_INI_NOTHING, NULL, NULL);
        expect("  ; note", false, LK_INI_NOTHING, NULL, NULL);
        expect("[pam]", false, LK_INI_SECTION, "pam", NULL);
        expect("  [ pam ]  ", false, LK_INI_SECTION, " pam ", NULL);
        expect("[pam] # note", false, LK_INI_SECTION, "pam", NULL);
        expect("[pam", false, LK_INI_UNCLOSED, NULL, NULL);
        expect("services", false, LK_INI_NO_VALUE, NULL, NULL);
        expect("services = sshd login", false, LK_INI_KEY, "services", "sshd login");
        expect("\tusers:alice bob\r", false, LK_INI_KEY, "users", "alice bob");
        expect("groups = a=b:c", false, LK_INI_KEY, "groups", "a=b:c");
        expect("users: a = b", false, LK_INI_KEY, "users", "a = b");
        expect("= x", false, LK_INI_KEY, "", "x");
        expect("services =", false, LK_INI_KEY, "services", "");
        /* No inline comments: the value is all of it. */
        expect("services = sshd ; login", false, LK_INI_KEY, "services", "sshd ; login");

        /* A BOM opens only the first line. */
        expect("\xEF\xBB\xBF[pam]", true, LK_INI_SECTION, "pam", NULL);
        expect("\xEF\xBB\xBF[pam]", false, LK_INI_NO_VALUE, NULL, NULL);
        expect("\xEF\xBB\xBF", true, LK_INI_NOTHING, NULL, NULL);

        lk_ini_line("[pam] x", 7, false, &il);
        assert_int_equal(il.kind, LK_INI_SECTION);
        assert_true(il.trailing);
        lk_ini_line("[pam];x", 7, false, &il);
        assert_false(il.trailing);
}

/* Loads "[provider]\n" + line with the other required keys, as the broker does; its client_id. */
static char *broker_client_id(const char *line)
{
        struct lk_config_problems p = {0};
        struct lk_config *c = NULL;
        struct lk_error e = {0};
        char *text, *id = NULL;

        assert_true(asprintf(&text, "[provider]\nissuer = https://idp.example.com\n"
                                    "redirect_uri = https://login.example.com/cb\n%s\n",
                             line) > 0);
        if (lk_config_load_string(text, "t.conf", &c, &p, &e) == 0) {
                id = strdup(c->client_id);
                assert_non_null(id);
        }
        lk_config_free(c);
        lk_config_problems_clear(&p);
        free(text);
        return id;
}

/* The broker (inih) and lk_ini_line() split every key line alike. */
static void test_agrees_with_the_broker(void **state)
{
        static const char chars[] = " \t\r\v=:ab[]";
        unsigned seed = 18;

        for (int i = 0; i < 3000; i++) {
                char line[48], *id;
                struct lk_ini_line il;
                size_t n = 0;

                /* blanks, client_id, blanks, '=' or ':', then anything from chars */
                for (int j = rand_r(&seed) % 3; j > 0; j--)
                        line[n++] = " \t"[rand_r(&seed) % 2];
                memcpy(line + n, "client_id", 9);
                n += 9;
                for (int j = rand_r(&seed) % 3; j > 0; j--)
                        line[n++] = " \t"[rand_r(&seed) % 2];
                line[n++] = "=:"[rand_r(&seed) % 2];
                for (int j = rand_r(&seed) % 12; j > 0; j--)
                        line[n++] = chars[rand_r(&seed) % (sizeof(chars) - 1)];
                line[n] = 0;

                lk_ini_line(line, n, false, &il);
                assert_int_equal(il.kind, LK_INI_KEY);
                assert_int_equal(il.name_len, 9);
                assert_memory_equal(il.name, "client_id", 9);
                id = broker_client_id(line);
                if (il.value_len == 0) {
                        /* empty: unset, so the broker refuses the config (client_id required) */
                        if (id)
                                fail_msg("'%s': broker read '%s', lk_ini_line an empty value",
                                         line, id);
                        continue;
                }
                if (!id || strlen(id) != il.value_len || memcmp(id, il.value, il.value_len) != 0)
                        fail_msg("'%s': broker read '%s', lk_ini_line '%.*s'", line,
                                 id ?: "(refused)", (int)il.value_len, il.value);
                free(id);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kinds),
                cmocka_unit_test(test_agrees_with_the_broker),
        };

        unsetenv("CREDENTIALS_DIRECTORY");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
