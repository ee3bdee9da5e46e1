/* SPDX-License-Identifier: MIT */
/* The one table from LK_ERR_* codes to D-Bus error names (SPEC §4). */
#pragma once

#include <stddef.h>

#include "oidc/error.h"

#define LK_DBUS_ERROR_PREFIX "org.latchkey.Broker1.Error."

/* The D-Bus error name for r (negative or positive LK_ERR_*). */
const char *lk_dbus_error_name(int r);

/*
 * The message a person can act on: e's message, plus the provider's own error
 * and error_description where there are some. Never holds a secret, since
 * lk_error messages never do.
 */
void lk_dbus_error_message(int r, const struct lk_error *e, char *buf, size_t size);
