/* SPDX-License-Identifier: MIT */
/*
 * The accounts cache as the NSS module sees it: mapped once per process and kept while the
 * file is the same (device, inode, size, mtime: a stat() per lookup); the broker replaces it
 * with rename(), and the old mapping stays valid until the next lookup swaps it. One lock
 * over it all: a lookup holds it while it copies its answer out.
 */
#pragma once

#include "base/accounts_file.h"

/* Takes the lock; 0 and the current map, -ENOENT (no cache), -EINVAL (a broken file). */
int lk_nss_cache_lock(const struct lk_accounts_map **ret);
void lk_nss_cache_unlock(void);

/* A map of its own for an enumeration (setpwent .. endpwent): 0, -ENOENT, -EINVAL, -ENOMEM. */
int lk_nss_cache_open(struct lk_accounts_map *ret);
void lk_nss_cache_close(struct lk_accounts_map *m);
