/* SPDX-License-Identifier: MIT */
#include "pam_module/gdm_json.h"

#include <endian.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <security/pam_ext.h>

#include "base/util.h"

_Static_assert(offsetof(struct lkp_gdm_json_message, protocol_name) ==
                       sizeof(struct lkp_gdm_json_header),
               "the protocol name follows the padded header");

int lkp_gdm_json_type(const char *supported)
{
        static const size_t want = sizeof(LKP_GDM_JSON_EXTENSION) - 1;
        int index = 0;

        if (!supported)
                return -1;
        for (const char *p = supported; *p;) {
                size_t len = strcspn(p, " ");

                if (len > 0) {
                        if (len == want && strncmp(p, LKP_GDM_JSON_EXTENSION, len) == 0)
                                return index;
                        /* A message's type is one byte. */
                        if (++index > 255)
                                return -1;
                }
                p += len;
                p += strspn(p, " ");
        }
        return -1;
}

int lkp_gdm_json_offered(pam_handle_t *pamh)
{
        const char *v = pam_getenv(pamh, "GDM_SUPPORTED_PAM_EXTENSIONS");

        return lkp_gdm_json_type(v ? v : getenv("GDM_SUPPORTED_PAM_EXTENSIONS"));
}

char *lkp_gdm_eidp_request(const char *uri, const char *code, unsigned timeout)
{
        json_t *eidp, *doc;
        char *text;

        eidp = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "name", "Web Login", "role", "eidp",
                         "initPrompt", "Sign in with your organisation's account",
                         "linkPrompt", code ? "Sign in on another device and confirm the code"
                                            : "Sign in on another device",
                         "uri", uri, "timeout", (json_int_t)timeout);
        if (!eidp)
                return NULL;
        if (code && json_object_set_new(eidp, "code", json_string(code)) < 0) {
                json_decref(eidp);
                return NULL;
        }
        doc = json_pack("{s:{s:{s:o}, s:[s]}}", "authSelection", "mechanisms", "eidp", eidp,
                        "priority", "eidp");
        if (!doc)
                return NULL;
        text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        return text;
}

int lkp_gdm_eidp_reply_parse(const char *json, size_t len)
{
        json_t *doc, *sel, *status;
        int r = -EBADMSG;

        if (!json || len > LKP_GDM_JSON_REPLY_MAX)
                return -EBADMSG;
        doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
        sel = json_object_get(doc, "authSelection");
        status = json_object_get(sel, "status");
        if (json_is_string(status)) {
                if (!streq(json_string_value(status), "Ok"))
                        r = -ECANCELED;
                else if (json_is_object(json_object_get(sel, "eidp")))
                        r = 0; /* Done, on the mechanism we offered */
        }
        json_decref(doc);
        return r;
}

/* The greeter's reply: our protocol, our type, a JSON text of bounded size. */
static int take_reply(const struct lkp_gdm_json_message *m, int type, char **ret)
{
        size_t len;

        if (!m || be32toh(m->header.length) < sizeof(*m) || m->header.type != type ||
            strncmp(m->protocol_name, LKP_GDM_JSON_PROTOCOL, sizeof(m->protocol_name)) != 0 ||
            m->version != LKP_GDM_JSON_VERSION || !m->json)
                return PAM_CONV_ERR;
        len = strnlen(m->json, LKP_GDM_JSON_REPLY_MAX + 1);
        if (len > LKP_GDM_JSON_REPLY_MAX)
                return PAM_CONV_ERR;
        *ret = strndup(m->json, len);
        return *ret ? PAM_SUCCESS : PAM_BUF_ERR;
}

int lkp_gdm_json_exchange(pam_handle_t *pamh, int type, const char *request, char **ret)
{
        struct lkp_gdm_json_message m = {
                .header = {.length = htobe32(sizeof(m)), .type = (unsigned char)type},
                .version = LKP_GDM_JSON_VERSION,
                .json = (char *)request,
        };
        struct pam_message msg = {.msg_style = PAM_BINARY_PROMPT, .msg = (const char *)&m};
        const struct pam_message *msgs[] = {&msg};
        struct pam_response *resp = NULL;
        const struct pam_conv *conv = NULL;
        struct lkp_gdm_json_message *reply;
        int r;

        if (type < 0 || type > 255)
                return PAM_CONV_ERR;
        memcpy(m.protocol_name, LKP_GDM_JSON_PROTOCOL, sizeof(LKP_GDM_JSON_PROTOCOL));
        r = pam_get_item(pamh, PAM_CONV, (const void **)&conv);
        if (r != PAM_SUCCESS || !conv || !conv->conv)
                return PAM_CONV_ERR;
        r = conv->conv(1, msgs, &resp, conv->appdata_ptr);
        if (r != PAM_SUCCESS) {
                if (resp) {
                        free(resp[0].resp);
                        free(resp);
                }
                return r;
        }
        if (!resp)
                return PAM_CONV_ERR;
        reply = (struct lkp_gdm_json_message *)(void *)resp[0].resp;
        r = take_reply(reply, type, ret);
        if (reply)
                free(reply->json);
        free(reply);
        free(resp);
        return r;
}
