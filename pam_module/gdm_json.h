/* SPDX-License-Identifier: MIT */
/*
 * GNOME's login screen (GDM) and its PAM extension for JSON messages
 * (org.gnome.DisplayManager.UserVerifier.CustomJSON), with the "auth-mechanisms" protocol,
 * version 1, and its web-login mechanism "eidp": the greeter shows the address (as a link
 * and a QR code) and the code, and answers once the person presses Done. Written from the
 * protocol's description (GDM's headers are GPL and are not used):
 *
 *  - the greeter offers the extensions it speaks in the environment variable
 *    GDM_SUPPORTED_PAM_EXTENSIONS, names separated by spaces; an extension's message type is
 *    its 0-based position there;
 *  - a message goes out as a PAM_BINARY_PROMPT whose msg points at a struct of a header
 *    (uint32 length, big-endian, of the whole struct; one byte of type; padded as a struct
 *    of those two), a NUL-terminated protocol name in 64 bytes, an unsigned version and a
 *    pointer to the JSON text, in this process's memory; the reply's resp points at a struct
 *    of the same layout (its JSON and the struct are freed by the module);
 *  - the request: {"authSelection": {"mechanisms": {"eidp": {"name", "role": "eidp",
 *    "initPrompt", "linkPrompt", "uri", "code" (where the flow has one), "timeout"}},
 *    "priority": ["eidp"]}}; the reply: {"authSelection": {"status": "Ok", "eidp": {}}}
 *    when the person pressed Done, another status otherwise.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <security/pam_modules.h>

#define LKP_GDM_JSON_EXTENSION "org.gnome.DisplayManager.UserVerifier.CustomJSON"
#define LKP_GDM_JSON_PROTOCOL "auth-mechanisms"
#define LKP_GDM_JSON_VERSION 1
#define LKP_GDM_JSON_REPLY_MAX (64 * 1024) /* bytes of the greeter's JSON reply read */

/* The message, as the extension lays it out. */
struct lkp_gdm_json_header {
        uint32_t length; /* big-endian */
        unsigned char type;
};
struct lkp_gdm_json_message {
        struct lkp_gdm_json_header header;
        char protocol_name[64];
        unsigned int version;
        char *json;
};

/*
 * The CustomJSON extension's type in a GDM_SUPPORTED_PAM_EXTENSIONS value (NULL: none), or
 * -1 where it is not offered.
 */
int lkp_gdm_json_type(const char *supported);
/* The same, from the PAM environment, else the process's (where GDM's worker puts it). */
int lkp_gdm_json_offered(pam_handle_t *pamh);

/* The auth-mechanisms request for the eidp mechanism; code may be NULL. NULL on OOM. */
char *lkp_gdm_eidp_request(const char *uri, const char *code, unsigned timeout);

/*
 * The greeter's reply JSON (len bytes): 0 when its status is Ok (the person pressed Done),
 * -ECANCELED for any other status, -EBADMSG when it is not the protocol's reply.
 */
int lkp_gdm_eidp_reply_parse(const char *json, size_t len);

/*
 * Sends request (JSON) as the extension's message of that type and waits for the reply:
 * PAM_SUCCESS with *ret the reply's JSON (free it), or the conversation's error, or
 * PAM_CONV_ERR when the reply is not the protocol's.
 */
int lkp_gdm_json_exchange(pam_handle_t *pamh, int type, const char *request, char **ret);
