/* SPDX-License-Identifier: MIT */
/* base64url (RFC 4648 §5) without padding, as JOSE uses it. */
#pragma once

#include <stddef.h>

/* Returns a NUL-terminated string, or NULL when out of memory. */
char *lk_b64url_encode(const unsigned char *data, size_t len);

/*
 * Decodes base64url with or without padding. Rejects any other character.
 * Returns 0 and a malloc'ed buffer (with an extra NUL after *ret_len bytes),
 * or -LK_ERR_INVALID_ARGUMENT / -LK_ERR_NOMEM.
 */
int lk_b64url_decode(const char *s, size_t len, unsigned char **ret, size_t *ret_len);
