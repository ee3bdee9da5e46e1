/* SPDX-License-Identifier: MIT */
/* Cleanups for libdbus-1's types; header-only, so the base itself needs no libdbus-1. */
#pragma once

#include <dbus/dbus.h>

#include "base/util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(DBusMessage *, dbus_message_unref);
