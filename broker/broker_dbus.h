/* SPDX-License-Identifier: MIT */
/*
 * The D-Bus face of the broker: the method table with each method's policy, the dispatcher
 * that applies it, the handlers, Introspect and Properties, the SessionChanged signal,
 * GetToken's options. It works on the objects the manager gives it, never on the manager.
 */
#pragma once

#include <dbus/dbus.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/bus.h"
#include "broker/idp.h"
#include "broker/loop.h"
#include "oidc/config.h"
#include "oidc/error.h"

struct lk_budget;
struct lk_device_polls;
struct lk_login;
struct lk_http;
struct lk_logins;
struct lk_offline;
struct lk_sessions;

/* What the D-Bus face works on; the bus's userdata (lk_broker_bus_ops). */
struct lk_broker_dbus {
        const struct lk_config *config;
        uid_t uid_min;
        const struct lk_clock *clock;
        struct lk_logins *logins;
        struct lk_sessions *sessions;
        struct lk_budget *budget;
        struct lk_device_polls *polls; /* the device flow's pollers */
        bool callback_listener;         /* the manager's: its callback listener ([callback]
                                         * listen) runs, so the code flow's redirect comes here */
        struct lk_offline *offline; /* the offline PINs (offline.c) */
        struct lk_http *http;       /* for CheckPin's probe of the provider (reach.c) */
        struct lk_accounts *accounts; /* provider accounts; NULL: none */
        struct lk_idp idp;
        /* The manager's: start fetching the provider's endpoints, unless under way (0, or an
         * error); a call arrived (the idle clock). */
        int (*prepare_provider)(void *manager, struct lk_error *e);
        void (*touch)(void *manager);
        void *manager;
};

extern const struct lk_bus_ops lk_broker_bus_ops;

/* The needs a call may be parked for: the manager unparks them (lk_bus_unpark). */
#define LK_BROKER_PARK_PROVIDER 0 /* the provider's endpoints: err when they cannot come */
#define LK_BROKER_PARK_SESSIONS 1 /* every session of the last run read */

/*
 * A login has finished (the logins' finished(), from the manager): answers its waiting
 * WaitLogin calls with the user, or with the error that ended it.
 */
void lk_broker_login_finished(struct lk_login *l, const char *user, int r,
                              const struct lk_error *e);

/* SessionChanged(session_id, event); bus may be NULL (nothing to tell). */
int lk_broker_emit_session_changed(struct lk_bus *bus, const char *session_id, const char *event);

/* Options a{sv} of GetToken and friends; unknown keys are ignored. */
struct lk_options {
        const char *session_id; /* NULL when absent; points into the message */
        uint32_t min_valid;
        bool end_with_caller;   /* BeginLogin: the login ends when the caller leaves the bus */
        bool offline;           /* CheckPin: the PIN stands in for a web sign-in */
        bool probe;             /* GetPinState: ask whether the provider can be reached */
        const char *scope;      /* GetToken: a narrower scope; NULL when absent (as audience) */
        const char *audience;   /* GetToken: the token's audience (RFC 8707 resource) */
};
int lk_options_parse(DBusMessageIter *array, struct lk_options *ret, struct lk_error *e);
