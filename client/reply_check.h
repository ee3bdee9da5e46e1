/* SPDX-License-Identifier: MIT */
/*
 * The one rule set for text crossing the bus between a client (pam_latchkey.so, liblatchkey)
 * and the broker: what the client stubs (client/broker_client.c) send, and what they accept in
 * a reply before handing it out. Caps come from the interface XML (dbus/broker_wire.h).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "dbus/broker_wire.h"

/*
 * 1..max bytes of valid UTF-8 (base/utf8) without NUL: what libdbus insists on, and what the
 * broker accepts for an id or a user name. Sent arguments, session ids and user names.
 */
bool lk_reply_string_valid(const char *s, size_t max);

/*
 * 1..max bytes of printable ASCII without spaces: what a login id, an address, a token or its
 * type must be before it goes into an environment, a header or onto a screen.
 */
bool lk_reply_word_valid(const char *s, size_t max);

/*
 * A local user name, from CompleteLogin or ListSessions: the same rule as BeginLogin's user
 * argument (lk_reply_string_valid, LK_ARG_ID_MAX), so every name a client may send comes back.
 */
bool lk_reply_user_valid(const char *s);

/* BeginLogin's address: a word of at most LK_ARG_AUTHORIZE_URL_MAX bytes, http:// or https://. */
bool lk_reply_url_valid(const char *s);

/* GetClaims' JSON: at most LK_ARG_CLAIMS_JSON_MAX bytes, an object ('{' after white space). */
bool lk_reply_claims_valid(const char *s);
