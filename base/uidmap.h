/* SPDX-License-Identifier: MIT */
/*
 * The uid of a provider account (issue 20): the same on every host, with no coordination,
 * from the local user name and the [accounts] range alone. A 64-bit FNV-1a hash of the name,
 * mixed (splitmix64's finalizer), is reduced into uid_min..uid_max; a deterministic probe
 * skips the candidates that are unusable everywhere (a uid whose low 16 bits are 0xfffe or
 * 0xffff: nobody and (uid_t)-1 in 16-bit tools and user namespaces), so the answer depends on
 * the name and the range only. Two names can still meet on one uid: the broker detects it
 * and refuses the second (never two identities with one uid). The gid of the per-user
 * primary group is the uid.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LK_UIDMAP_RANGE_MIN 1000u /* the smallest range the config allows is uid_max - uid_min */

/* true when uid_min..uid_max is a usable range (uid_min >= 1000, uid_min < uid_max < 2^32-1). */
bool lk_uidmap_range_ok(uint32_t uid_min, uint32_t uid_max);

/* The uid of name[0..len) in the range (which must be lk_uidmap_range_ok). */
uint32_t lk_uidmap_uid(const char *name, size_t len, uint32_t uid_min, uint32_t uid_max);
