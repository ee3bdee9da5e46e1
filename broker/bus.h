/* SPDX-License-Identifier: MIT */
/*
 * The broker on the system bus: the connection driven by the event loop, the
 * name and the object, knowing nothing of the broker behind it (struct lk_bus_ops).
 * Every method call is looked up through ops->find, its size, signature and argument
 * caps checked, its caller identified by the bus (GetConnectionUnixUser, asked
 * asynchronously so the loop never waits, then cached), and only then handed to
 * ops->dispatch; calls that must wait for something are parked here, in one queue.
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

struct lk_call;

/* A string argument's name (for error messages), cap, and a check of its form (may be NULL). */
struct lk_arg_cap {
        const char *name;
        size_t max;
        int (*check)(const char *s, struct lk_error *e);
};

/* What the bus checks of a method before its owner sees a call (the owner's table embeds it). */
struct lk_bus_method {
        const char *interface;
        const char *name;
        const char *in_signature;
        bool anyone; /* no caller lookup: Introspect, Properties */
        /* The top-level string arguments, in order; those not named: LK_ARG_ID_MAX. */
        struct lk_arg_cap args[2];
};

/* What the bus asks of its owner. */
struct lk_bus_ops {
        /* The method iface.member (iface may be NULL), or NULL: libdbus answers UnknownMethod. */
        const struct lk_bus_method *(*find)(const char *iface, const char *member);
        /* A call of a known method arrived (before any check): the idle clock. */
        void (*arrived)(void *userdata);
        /* A call passed size, signature and caps, its caller's uid known (unless anyone). */
        void (*dispatch)(void *userdata, struct lk_call *call);
        /* That unique name (":1.42") has left the bus. */
        void (*caller_left)(void *userdata, const char *name);
};

struct lk_call {
        unsigned refs;
        struct lk_bus *bus;
        /* Kept only once the caps are checked, which bounds it (about size bytes). */
        DBusMessage *msg;
        size_t size;
        uid_t uid; /* the caller, from the bus */
        const struct lk_bus_method *method;
        bool replied;
        bool counted; /* in its uid's share of calls (bus.c) */
        /* The owner's, kept while the call is parked: how far its dispatch got, and the uid of
         * the object it resolved. */
        unsigned step;
        uid_t subject_uid;
        unsigned parked_on;           /* while parked: the need it waits for */
        struct lk_call *parked_next; /* and the next call in the queue */
};

struct lk_bus;

/*
 * Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS honoured), hooks the
 * connection into the loop, registers the object and takes the name; fails
 * when someone else has it.
 */
int lk_bus_new(struct lk_loop *loop, const struct lk_bus_ops *ops, void *userdata,
               struct lk_bus **ret, struct lk_error *e);
void lk_bus_free(struct lk_bus *bus);
/* Gives the name up, so that the next call activates a new broker. */
void lk_bus_release_name(struct lk_bus *bus);
/* Calls waiting for their caller's uid, and calls not yet answered. */
unsigned lk_bus_busy(const struct lk_bus *bus);

/* Sends m (a signal), keeping no reference: 0, or -LK_ERR_NOMEM. */
int lk_bus_send(struct lk_bus *bus, DBusMessage *m);

struct lk_call *lk_call_ref(struct lk_call *c);
void lk_call_unref(struct lk_call *c);
static inline void lk_call_unrefp(struct lk_call **c)
{
        lk_call_unref(*c);
}

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


/*
 * Parking: a call that needs what is not there yet (need: a number below LK_BUS_NEEDS that the
 * owner gives its meaning) waits in the bus's one queue, at most LK_BUS_PARKED_MAX calls per
 * need (what names it in the refusal), until lk_bus_unpark(need): then, without err, the owner's
 * dispatch sees the call again, with what it stored in the call (step, subject_uid) intact, and
 * goes on from there; with err, the call is answered with it.
 */
#define LK_BUS_NEEDS 4
#define LK_BUS_PARKED_MAX 4096
int lk_call_park(struct lk_call *c, unsigned need, const char *what, struct lk_error *e);
void lk_bus_unpark(struct lk_bus *bus, unsigned need, const struct lk_error *err);
