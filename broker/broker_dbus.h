/* SPDX-License-Identifier: MIT */
/* The D-Bus face of the broker: the one method table, with each method's policy. */
#pragma once

#include "broker/bus.h"

extern const struct lk_method lk_broker_methods[];
