/* SPDX-License-Identifier: MIT */
/*
 * The one place where a failure becomes a PAM return code (SPEC §8): a table
 * from D-Bus error names (the broker's org.latchkey.Broker1.Error.*, the bus's
 * org.freedesktop.DBus.Error.*, and the few this module names itself) to PAM
 * codes and to a line a person can act on.
 */
#pragma once

#include <stdbool.h>

#include "client/broker_client.h" /* LK_CLIENT_ERROR_BAD_REPLY */
#include "dbus/broker_wire.h"      /* LK_BUS_ERROR_*: the broker's names, from the XML */
#include "pam_module/options.h"

/* Failures found by the module itself, named like the broker's so they go through the table. */
#define LKP_ERROR_USER_UNKNOWN "org.latchkey.pam.Error.UserUnknown"   /* getpwnam() does not know the user */
#define LKP_ERROR_BAD_ANSWER "org.latchkey.pam.Error.BadAnswer"       /* empty, too long or not UTF-8 */
#define LKP_ERROR_BAD_REPLY LK_CLIENT_ERROR_BAD_REPLY                 /* the broker's reply is unusable */
#define LKP_ERROR_USER_MISMATCH LK_BUS_ERROR_USER_MISMATCH
/* The provider refused the answer: the broker ended that login, another answer needs a new one. */
#define LKP_ERROR_INVALID_GRANT LK_BUS_ERROR_INVALID_GRANT

/* Which broker call failed: the same name can mean different things at BeginLogin. */
enum lkp_call {
        LKP_CALL_BEGIN,
        LKP_CALL_COMPLETE,
        LKP_CALL_OTHER,
};

struct lkp_error_row {
        const char *name;  /* a D-Bus error name; one ending in '.' matches every name under it */
        int pam;           /* the PAM code it means */
        int pam_at_begin;  /* the PAM code when BeginLogin fails with it, where different (else 0) */
        bool retry;        /* a refused answer: the person may paste another one */
        bool own_text;     /* the error's message is written for a person (the broker's, or ours) */
        const char *text;  /* the line shown otherwise */
};

/* The row for a D-Bus error name; never NULL (unknown names get a fail-closed default row). */
const struct lkp_error_row *lkp_error_lookup(const char *name);

/*
 * The PAM code for a failure of call: row->pam, or row->pam_at_begin for
 * BeginLogin, with PAM_USER_UNKNOWN turned into PAM_IGNORE under
 * ignore_unknown_user.
 */
int lkp_error_pam(const struct lkp_error_row *row, enum lkp_call call, const struct options *o);
