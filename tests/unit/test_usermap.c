/* SPDX-License-Identifier: MIT */
/* From id_token claims to a local user name: the [users] rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "oidc/config.h"
#include "oidc/usermap.h"

static struct lk_config *config(const char *users_section)
{
        _cleanup_free_ char *text = NULL;
        struct lk_config *c = NULL;
        struct lk_error e = {0};

        assert_true(asprintf(&text,
                             "[provider]\n"
                             "issuer = https://idp.example.com\n"
                             "client_id = x\n"
                             "redirect_uri = https://x.example.com/cb\n"
                             "[users]\n%s",
                             users_section) > 0);
        if (lk_config_load_string(text, "users.conf", &c, NULL, &e) < 0)
                fail_msg("config: %s", e.message);
        return c;
}

static json_t *claims(const char *json)
{
        json_error_t err;
        json_t *j = json_loads(json, 0, &err);

        if (!j)
                fail_msg("bad test JSON: %s", err.text);
        return j;
}

static void expect_user(const char *users_section, const char *json, const char *want)
{
        _cleanup_(lk_config_freep) struct lk_config *c = config(users_section);
        json_t *j = claims(json);
        _cleanup_free_ char *user = NULL;
        struct lk_error e = {0};

        if (lk_usermap(c, j, &user, &e) < 0)
                fail_msg("refused: %s", e.message);
        assert_string_equal(user, want);
        json_decref(j);
}

static void expect_refusal(const char *users_section, json_t *j, int code, const char *message)
{
        _cleanup_(lk_config_freep) struct lk_config *c = config(users_section);
        char *user = NULL;
        struct lk_error e = {0};

        assert_int_equal(lk_usermap(c, j, &user, &e), -code);
        assert_null(user);
        assert_int_equal(e.code, code);
        if (!streq(e.message, message))
                fail_msg("expected '%s'\n     got '%s'", message, e.message);
        json_decref(j);
}

static void test_default_claim(void **state)
{
        expect_user("", "{\"sub\":\"123\",\"preferred_username\":\"alice\"}", "alice");
}

static void test_missing_claim(void **state)
{
        expect_refusal("", claims("{\"sub\":\"123\"}"), LK_ERR_INVALID_ID_TOKEN,
                       "The id_token has no 'preferred_username' claim");
}

static void test_claim_not_string(void **state)
{
        expect_refusal("", claims("{\"preferred_username\":42}"), LK_ERR_INVALID_ID_TOKEN,
                       "The id_token's 'preferred_username' claim is not a string");
        expect_refusal("", claims("{\"preferred_username\":[\"alice\"]}"), LK_ERR_INVALID_ID_TOKEN,
                       "The id_token's 'preferred_username' claim is not a string");
}

static void test_custom_claim_and_suffix(void **state)
{
        const char *rules = "username_claim = email\nstrip_suffix = @example.com\n";

        expect_user(rules, "{\"email\":\"bob@example.com\",\"preferred_username\":\"x\"}", "bob");
        /* Not ending with the suffix: kept whole. */
        expect_user(rules, "{\"email\":\"bob@example.org\"}", "bob@example.org");
        /* The suffix is matched exactly, at the end only. */
        expect_user(rules, "{\"email\":\"bob@example.com.evil\"}", "bob@example.com.evil");
        /* Nothing left once it is removed */
        expect_refusal(rules, claims("{\"email\":\"@example.com\"}"), LK_ERR_INVALID_ID_TOKEN,
                       "The id_token's 'email' claim ('') is not a usable user name: it is empty");
}

static void test_unusable_names(void **state)
{
        static const struct {
                const char *name;
                const char *why;
                const char *shown; /* as the message shows it; NULL: as it is */
        } bad[] = {
                { "", "is empty", NULL },
                { "../root", "holds '/'", NULL },
                { "a/b", "holds '/'", NULL },
                { "-oProxyCommand", "starts with '-'", NULL },
                { "bob\n", "holds a control character", "bob\\n" },
                { "bob\x7f", "holds a control character", "bob\\x7f" },
                { "root:x", "holds ':'", NULL },
                { "bob smith", "holds a space", NULL },
                { "..", "is '.' or '..'", NULL },
                { "-\xe2\x80\xae" "toor", "starts with '-'", "-\\u202etoor" },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *msg = NULL;

                assert_true(asprintf(&msg, "The id_token's 'preferred_username' claim ('%s') is "
                                           "not a usable user name: it %s",
                                     bad[i].shown ?: bad[i].name, bad[i].why) > 0);
                expect_refusal("", json_pack("{ss}", "preferred_username", bad[i].name),
                               LK_ERR_INVALID_ID_TOKEN, msg);
        }
}

static void test_name_bytes(void **state)
{
        char long_name[258];
        json_t *j;
        _cleanup_(lk_config_freep) struct lk_config *c = config("");
        char *user = NULL;
        struct lk_error e = {0};

        /* 256 bytes is fine, 257 is not */
        memset(long_name, 'a', 256);
        long_name[256] = 0;
        j = json_pack("{ss}", "preferred_username", long_name);
        assert_int_equal(lk_usermap(c, j, &user, &e), 0);
        assert_int_equal(strlen(user), 256);
        free(user);
        json_decref(j);

        long_name[256] = 'a';
        long_name[257] = 0;
        j = json_pack("{ss}", "preferred_username", long_name);
        e = (struct lk_error){0};
        user = NULL;
        assert_int_equal(lk_usermap(c, j, &user, &e), -LK_ERR_INVALID_ID_TOKEN);
        assert_non_null(strstr(e.message, "is longer than 256 bytes"));
        json_decref(j);

        /* A NUL inside the string (JSON allows "\u0000") */
        j = json_object();
        json_object_set_new(j, "preferred_username", json_stringn("ali\0ce", 6));
        e = (struct lk_error){0};
        assert_int_equal(lk_usermap(c, j, &user, &e), -LK_ERR_INVALID_ID_TOKEN);
        assert_non_null(strstr(e.message, "holds a NUL byte"));
        json_decref(j);

        /* Not UTF-8 (jansson checks its input, so build it unchecked) */
        j = json_object();
        json_object_set_new(j, "preferred_username", json_string_nocheck("bob\xc0\xaf"));
        e = (struct lk_error){0};
        assert_int_equal(lk_usermap(c, j, &user, &e), -LK_ERR_INVALID_ID_TOKEN);
        assert_non_null(strstr(e.message, "is not valid UTF-8"));
        json_decref(j);

        /* UTF-8 names are names */
        expect_user("", "{\"preferred_username\":\"j\\u00fcrgen\"}", "j\xc3\xbcrgen");
}

static void test_allowed_users(void **state)
{
        const char *rules = "allowed_users = alice, bob\n";

        expect_user(rules, "{\"preferred_username\":\"bob\"}", "bob");
        expect_refusal(rules, claims("{\"preferred_username\":\"carol\"}"), LK_ERR_NOT_ALLOWED,
                       "User carol is not in allowed_users");
        /* compared after strip_suffix */
        expect_user("allowed_users = alice\nusername_claim = upn\nstrip_suffix = @corp\n",
                    "{\"upn\":\"alice@corp\"}", "alice");
        /* exact: no case folding, no prefixes */
        expect_refusal(rules, claims("{\"preferred_username\":\"Alice\"}"), LK_ERR_NOT_ALLOWED,
                       "User Alice is not in allowed_users");
        /* A name the provider chose enters the message escaped: no bidi override, no C1 */
        expect_refusal(rules, claims("{\"preferred_username\":\"bob\\u202e\\u0085x\"}"),
                       LK_ERR_NOT_ALLOWED, "User bob\\u202e\\u0085x is not in allowed_users");
}

static void test_allowed_groups(void **state)
{
        const char *rules = "allowed_groups = admins staff\n";

        expect_user(rules, "{\"preferred_username\":\"a\",\"groups\":[\"x\",\"staff\"]}", "a");
        /* one string instead of an array */
        expect_user(rules, "{\"preferred_username\":\"a\",\"groups\":\"admins\"}", "a");
        /* non-strings in the array never match, and do not break the rest */
        expect_user(rules, "{\"preferred_username\":\"a\",\"groups\":[1,{},null,\"admins\"]}", "a");
        /* another claim name */
        expect_user("allowed_groups = ops\ngroups_claim = roles\n",
                    "{\"preferred_username\":\"a\",\"roles\":[\"ops\"],\"groups\":[]}", "a");

        expect_refusal(rules, claims("{\"preferred_username\":\"a\",\"groups\":[\"users\"]}"),
                       LK_ERR_NOT_ALLOWED, "User a is in none of the allowed_groups");
        expect_refusal(rules, claims("{\"preferred_username\":\"a\",\"groups\":[]}"),
                       LK_ERR_NOT_ALLOWED, "User a is in none of the allowed_groups");
        expect_refusal(rules, claims("{\"preferred_username\":\"a\"}"), LK_ERR_NOT_ALLOWED,
                       "User a is not allowed: the id_token has no 'groups' claim, and "
                       "allowed_groups is set");
        expect_refusal(rules, claims("{\"preferred_username\":\"a\",\"groups\":{\"admins\":1}}"),
                       LK_ERR_NOT_ALLOWED,
                       "User a is not allowed: the id_token's 'groups' claim is neither a string "
                       "nor an array of strings");
        /* no group rule: the groups claim does not matter */
        expect_user("", "{\"preferred_username\":\"a\",\"groups\":42}", "a");
}

static void test_users_and_groups_both(void **state)
{
        const char *rules = "allowed_users = alice bob\nallowed_groups = admins\n";

        expect_user(rules, "{\"preferred_username\":\"alice\",\"groups\":[\"admins\"]}", "alice");
        expect_refusal(rules, claims("{\"preferred_username\":\"alice\",\"groups\":[\"users\"]}"),
                       LK_ERR_NOT_ALLOWED, "User alice is in none of the allowed_groups");
        expect_refusal(rules, claims("{\"preferred_username\":\"carol\",\"groups\":[\"admins\"]}"),
                       LK_ERR_NOT_ALLOWED, "User carol is not in allowed_users");
}

static const char *login_defs_fixture; /* argv[1]: tests/unit/data/login.defs */

static uid_t uid_min_of(const char *text, int want_r, struct lk_error *e)
{
        char path[] = "/tmp/lk-login-defs-XXXXXX";
        int fd = mkstemp(path);
        uid_t uid_min = 12345;

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        lk_error_clear(e);
        assert_int_equal(lk_login_defs_uid_min(path, &uid_min, e), want_r);
        unlink(path);
        return uid_min;
}

/* UID_MIN as shadow reads it; the fixture is shaped as Debian's file. */
static void test_login_defs(void **state)
{
        struct lk_error e = {0};
        uid_t uid_min = 0;

        assert_non_null(login_defs_fixture);
        assert_int_equal(lk_login_defs_uid_min(login_defs_fixture, &uid_min, &e), 0);
        assert_int_equal(uid_min, 2000);

        /* No file, no key: shadow's default. */
        assert_int_equal(lk_login_defs_uid_min("/nonexistent/login.defs", &uid_min, &e), 0);
        assert_int_equal(uid_min, LK_UID_MIN_DEFAULT);
        assert_int_equal(uid_min_of("", 0, &e), LK_UID_MIN_DEFAULT);
        assert_int_equal(uid_min_of("UID_MAX 60000\n#UID_MIN 5\n", 0, &e), LK_UID_MIN_DEFAULT);

        /* Hex and octal, as strtoul(..., 0) in shadow; no newline at the end. */
        assert_int_equal(uid_min_of("UID_MIN 0x3e8", 0, &e), 1000);
        assert_int_equal(uid_min_of("UID_MIN\t01750\n", 0, &e), 1000);
        assert_int_equal(uid_min_of("  UID_MIN 500\r\n", 0, &e), 500);

        /* A value that is not a uid: an error naming file and line (not written). */
        uid_min_of("# x\nUID_MIN ten\n", -LK_ERR_CONFIG, &e);
        assert_non_null(strstr(e.message, ":2: UID_MIN 'ten' is not a uid"));
        uid_min_of("UID_MIN -1\n", -LK_ERR_CONFIG, &e);
        uid_min_of("UID_MIN 99999999999\n", -LK_ERR_CONFIG, &e);
        uid_min_of("UID_MIN\n", -LK_ERR_CONFIG, &e);
        uid_min_of("UID_MIN 1000 # a note\n", -LK_ERR_CONFIG, &e);
}

/* Root and system accounts are refused unless allow_system_users lists them. */
static void test_system_accounts(void **state)
{
        _cleanup_(lk_config_freep) struct lk_config *none = config("");
        _cleanup_(lk_config_freep) struct lk_config *listed =
                config("allow_system_users = root backup\n");
        struct lk_error e = {0};

        assert_int_equal(lk_usermap_check_account(none, 1000, "alice", 1000, &e), 0);
        assert_int_equal(lk_usermap_check_account(none, 1000, "nobody", 65534, &e), 0);

        assert_int_equal(lk_usermap_check_account(none, 1000, "root", 0, &e), -LK_ERR_NOT_ALLOWED);
        assert_string_equal(e.message, "root is root (uid 0): single sign-on may log in as root "
                                       "only where [users] allow_system_users names it");
        lk_error_clear(&e);
        assert_int_equal(lk_usermap_check_account(none, 1000, "backup", 34, &e),
                         -LK_ERR_NOT_ALLOWED);
        assert_string_equal(e.message, "backup is a system account (uid 34, below UID_MIN 1000): "
                                       "single sign-on may log in as it only where [users] "
                                       "allow_system_users names it");
        lk_error_clear(&e);
        /* Another name for uid 0 is root all the same. */
        assert_int_equal(lk_usermap_check_account(none, 0, "toor", 0, &e), -LK_ERR_NOT_ALLOWED);
        lk_error_clear(&e);
        assert_int_equal(lk_usermap_check_account(none, 5000, "carol", 4999, &e),
                         -LK_ERR_NOT_ALLOWED);
        lk_error_clear(&e);

        assert_int_equal(lk_usermap_check_account(listed, 1000, "root", 0, &e), 0);
        assert_int_equal(lk_usermap_check_account(listed, 1000, "backup", 34, &e), 0);
        assert_int_equal(lk_usermap_check_account(listed, 1000, "daemon", 1, &e),
                         -LK_ERR_NOT_ALLOWED);
        lk_error_clear(&e);
        assert_int_equal(lk_usermap_check_account(listed, 1000, "toor", 0, &e),
                         -LK_ERR_NOT_ALLOWED);
}

int main(int argc, char **argv)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_default_claim),
                cmocka_unit_test(test_missing_claim),
                cmocka_unit_test(test_claim_not_string),
                cmocka_unit_test(test_custom_claim_and_suffix),
                cmocka_unit_test(test_unusable_names),
                cmocka_unit_test(test_name_bytes),
                cmocka_unit_test(test_allowed_users),
                cmocka_unit_test(test_allowed_groups),
                cmocka_unit_test(test_users_and_groups_both),
                cmocka_unit_test(test_login_defs),
                cmocka_unit_test(test_system_accounts),
        };

        login_defs_fixture = argc > 1 ? argv[1] : NULL;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
