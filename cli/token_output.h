/* SPDX-License-Identifier: MIT */
/*
 * What `latchkeyctl token` prints, in the formats tools read (--format): the bare token,
 * an HTTP header, JSON, and Kubernetes' ExecCredential (client.authentication.k8s.io/v1).
 * The text holds the token: it is built in memory of our own, written with write(2) (no
 * stdio buffer keeps a copy) and wiped.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum token_format {
        TOKEN_FORMAT_TOKEN,      /* the token and a newline */
        TOKEN_FORMAT_HEADER,     /* Authorization: Bearer TOKEN */
        TOKEN_FORMAT_JSON,       /* {"access_token", "token_type", "expires_at"} */
        TOKEN_FORMAT_KUBERNETES, /* an ExecCredential for kubectl's exec plugin */
};

/* "token", "header", "json", "kubernetes"; false for anything else. */
bool token_format_parse(const char *name, enum token_format *ret);

/* The text for the format (a secret: lk_secret_free it); NULL when out of memory. type may
 * be NULL (Bearer); expires_at 0 when unknown (ExecCredential then leaves it out). */
char *token_format_render(enum token_format f, const char *token, const char *type,
                          int64_t expires_at);

/* "2026-12-02T14:00:00Z" (RFC 3339, UTC) into buf (at least 32 bytes); false when t is out
 * of range. */
bool format_rfc3339(int64_t t, char *buf, size_t size);

/* Writes all of s to standard output with write(2); -1 with errno on failure. */
int write_secret(const char *s);
