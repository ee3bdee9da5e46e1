/* SPDX-License-Identifier: MIT */
/* GDM's JSON extension (pam_module/gdm_json.c): the type, the request, the reply. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pam_module/gdm_json.h"

static void test_type(void **state)
{
        assert_int_equal(lkp_gdm_json_type(NULL), -1);
        assert_int_equal(lkp_gdm_json_type(""), -1);
        assert_int_equal(lkp_gdm_json_type(LKP_GDM_JSON_EXTENSION), 0);
        assert_int_equal(lkp_gdm_json_type("org.gnome.DisplayManager.UserVerifier.ChoiceList "
                                           LKP_GDM_JSON_EXTENSION),
                         1);
        assert_int_equal(lkp_gdm_json_type("  a   b " LKP_GDM_JSON_EXTENSION " c"), 2);
        /* A prefix or a longer name is not the extension. */
        assert_int_equal(lkp_gdm_json_type("org.gnome.DisplayManager.UserVerifier.Custom"), -1);
        assert_int_equal(lkp_gdm_json_type(LKP_GDM_JSON_EXTENSION "2"), -1);
}

static void test_layout(void **state)
{
        /* As the protocol lays it out on LP64: header padded to 8, name, version, pointer. */
        assert_int_equal(sizeof(struct lkp_gdm_json_header), 8);
        assert_int_equal(offsetof(struct lkp_gdm_json_message, protocol_name), 8);
        assert_int_equal(offsetof(struct lkp_gdm_json_message, version), 72);
        assert_int_equal(offsetof(struct lkp_gdm_json_message, json), 80);
}

static void test_request(void **state)
{
        char *text = lkp_gdm_eidp_request("https://idp.example/device?user_code=AB\"CD", "AB\"CD",
                                          120);
        json_t *doc, *eidp;

        assert_non_null(text);
        doc = json_loads(text, 0, NULL);
        assert_non_null(doc);
        eidp = json_object_get(json_object_get(json_object_get(doc, "authSelection"),
                                               "mechanisms"),
                               "eidp");
        assert_string_equal(json_string_value(json_object_get(eidp, "role")), "eidp");
        assert_string_equal(json_string_value(json_object_get(eidp, "uri")),
                            "https://idp.example/device?user_code=AB\"CD");
        assert_string_equal(json_string_value(json_object_get(eidp, "code")), "AB\"CD");
        assert_int_equal(json_integer_value(json_object_get(eidp, "timeout")), 120);
        assert_non_null(json_string_value(json_object_get(eidp, "linkPrompt")));
        assert_string_equal(json_string_value(json_array_get(
                                json_object_get(json_object_get(doc, "authSelection"), "priority"),
                                0)),
                            "eidp");
        json_decref(doc);
        free(text);

        /* The code flow has no code. */
        text = lkp_gdm_eidp_request("https://idp.example/authorize?x=1", NULL, 60);
        assert_null(strstr(text, "\"code\""));
        free(text);
}

static int parse(const char *s)
{
        return lkp_gdm_eidp_reply_parse(s, strlen(s));
}

static void test_reply(void **state)
{
        assert_int_equal(parse("{\"authSelection\": {\"status\": \"Ok\", \"eidp\": {}}}"), 0);
        assert_int_equal(parse("{\"authSelection\": {\"status\": \"Cancel\"}}"), -ECANCELED);
        assert_int_equal(parse("{\"authSelection\": {\"status\": \"Ok\", \"password\": {}}}"),
                         -EBADMSG);
        assert_int_equal(parse("{\"authSelection\": {\"status\": 1}}"), -EBADMSG);
        assert_int_equal(parse("{\"authSelection\": {\"status\": \"Ok\", \"eidp\": {}"), -EBADMSG);
        assert_int_equal(parse("{\"authSelection\": {\"status\": \"Ok\", \"status\": \"Ok\", "
                               "\"eidp\": {}}}"),
                         -EBADMSG);
        assert_int_equal(parse("[]"), -EBADMSG);
        assert_int_equal(lkp_gdm_eidp_reply_parse(NULL, 0), -EBADMSG);
        assert_int_equal(lkp_gdm_eidp_reply_parse("{}", LKP_GDM_JSON_REPLY_MAX + 1), -EBADMSG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_type),    cmocka_unit_test(test_layout),
            cmocka_unit_test(test_request), cmocka_unit_test(test_reply),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
