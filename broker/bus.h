/* SPDX-License-Identifier: MIT */
/*
 * The broker on the system bus: the connection driven by the event loop, the
 * name, the object and its one method table. Every method call is looked up
 * in the table, its signature checked, its caller identified by the bus
 * (GetConnectionUnixUser, asked asynchronously so the loop never waits), and
 * only then handed to its handler.
 */
#pragma once

#include <dbus/dbus.h>
#include <stdbool.h>
#include <sys/types.h>

#include "base/cleanup_dbus.h"
#include "broker/loop.h"
#include "dbus/broker_wire.h" /* LK_BUS_NAME, _PATH, _INTERFACE, LK_ARG_*_MAX: from the XML */
#include "oidc/error.h"

/*
 * Caps on arguments (SPEC §4), checked on the whole message as it arrives, before anything
 * waits on it (bus.c): each string argument has its cap (struct lk_method's args; ids and user
 * names 256 bytes unless named otherwise), every option name and every string in an option's
 * value, known option or not, LK_ARG_ID_MAX; the whole body LK_ARG_BODY_MAX, each value
 * counted as 8 bytes plus its string.
 */
#define LK_ARG_BODY_MAX (64 * 1024)

/* Who may call a method; lk_call_allowed() is the one place that applies it. */
enum lk_policy {
        LK_POLICY_PUBLIC,          /* anyone; no caller lookup (Introspect, Properties) */
        LK_POLICY_ROOT_OR_SUBJECT, /* root, or the uid the object belongs to */
        LK_POLICY_SAME_UID,        /* only the uid the object belongs to, root included */
};

struct broker;
struct lk_call;

/*
 * Returns 0 when it has replied, LK_CALL_LATER when it kept a reference to
 * call (lk_call_ref) and will reply later, or a negative LK_ERR_* with e set:
 * the bus then replies with the matching error.
 */
#define LK_CALL_LATER 1
typedef int (*lk_method_fn)(struct broker *b, struct lk_call *call, struct lk_error *e);

/* A string argument's name (for error messages) and cap. */
struct lk_arg_cap {
        const char *name;
        size_t max;
};

struct lk_method {
        const char *interface;
        const char *name;
        const char *in_signature;
        enum lk_policy policy;
        lk_method_fn handler;
        /* The top-level string arguments, in order; those not named: LK_ARG_ID_MAX. */
        struct lk_arg_cap args[2];
};

struct lk_call {
        unsigned refs;
        struct lk_bus *bus;
        /* Kept only once the caps are checked, which bounds it (about size bytes). */
        DBusMessage *msg;
        size_t size;
        uid_t uid; /* the caller, from the bus */
        const struct lk_method *method;
        bool replied;
        bool counted; /* in its uid's share of calls (bus.c) */
};

struct lk_bus;

/*
 * Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS honoured), hooks the
 * connection into the loop, registers the object and takes the name; fails
 * when someone else has it. methods ends with a {0} row.
 */
int lk_bus_new(struct lk_loop *loop, struct broker *b, const struct lk_method *methods,
               struct lk_bus **ret, struct lk_error *e);
void lk_bus_free(struct lk_bus *bus);
/* Gives the name up, so that the next call activates a new broker. */
void lk_bus_release_name(struct lk_bus *bus);
/* Calls waiting for their caller's uid, and calls not yet answered. */
unsigned lk_bus_busy(const struct lk_bus *bus);

int lk_bus_emit_session_changed(struct lk_bus *bus, const char *session_id, const char *event);

struct lk_call *lk_call_ref(struct lk_call *c);
void lk_call_unref(struct lk_call *c);
static inline void lk_call_unrefp(struct lk_call **c)
{
        lk_call_unref(*c);
}

/* true when the method's policy lets this caller act on an object of subject_uid. */
bool lk_call_allowed(const struct lk_call *c, uid_t subject_uid);

/* A method return to fill with dbus_message_append_args(); NULL on OOM. */
DBusMessage *lk_call_new_return(struct lk_call *c);
/* Sends reply (taking it over), or an out-of-memory error when reply is NULL. */
void lk_call_reply(struct lk_call *c, DBusMessage *reply);
/* Replies with the org.latchkey.Broker1.Error.* that r and e call for. */
void lk_call_reply_error(struct lk_call *c, int r, const struct lk_error *e);

/*
 * Argument checks: at most max bytes, valid UTF-8, no NUL (the bus
 * guarantees that). what names the argument in the error message.
 */
int lk_arg_check(const char *s, size_t max, const char *what, struct lk_error *e);

/* The standard interfaces, for rows of the method table. */
int lk_bus_method_introspect(struct broker *b, struct lk_call *call, struct lk_error *e);
int lk_bus_method_get_property(struct broker *b, struct lk_call *call, struct lk_error *e);
int lk_bus_method_get_all_properties(struct broker *b, struct lk_call *call, struct lk_error *e);
int lk_bus_method_set_property(struct broker *b, struct lk_call *call, struct lk_error *e);

/* Options a{sv} of GetToken and friends; unknown keys are ignored. */
struct lk_options {
        const char *session_id; /* NULL when absent; points into the message */
        uint32_t min_valid;
        bool end_with_caller;   /* BeginLogin: the login ends when the caller leaves the bus */
};
int lk_options_parse(DBusMessageIter *array, struct lk_options *ret, struct lk_error *e);
