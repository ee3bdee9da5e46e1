/* SPDX-License-Identifier: MIT */
/*
 * The D-Bus face of the broker: the method table with each method's policy, the handlers,
 * Introspect and Properties, the SessionChanged signal, GetToken's options.
 */
#pragma once

#include <dbus/dbus.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/bus.h"
#include "oidc/error.h"

struct broker;

/* What the bus (bus.c) asks of the broker; userdata is the struct broker. */
extern const struct lk_bus_ops lk_broker_bus_ops;

/* Runs a parked call's handler again (for now). */
void lk_broker_run(struct broker *b, struct lk_call *call);

/* SessionChanged(session_id, event); bus may be NULL (nothing to tell). */
int lk_broker_emit_session_changed(struct lk_bus *bus, const char *session_id, const char *event);

/* Options a{sv} of GetToken and friends; unknown keys are ignored. */
struct lk_options {
        const char *session_id; /* NULL when absent; points into the message */
        uint32_t min_valid;
        bool end_with_caller;   /* BeginLogin: the login ends when the caller leaves the bus */
};
int lk_options_parse(DBusMessageIter *array, struct lk_options *ret, struct lk_error *e);
