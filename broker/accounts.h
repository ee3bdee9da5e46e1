/* SPDX-License-Identifier: MIT */
/*
 * Provider accounts (issue 20): the broker's side of the accounts cache that
 * libnss_latchkey.so.2 reads (base/accounts_file.h). Loaded at start, changed
 * when a login completes, a refresh brings new claims or is refused, and when
 * root forgets an account; written whole (temp, fsync, rename) with mode 0644
 * after every change.
 *
 * The uid comes from the name (base/uidmap.h), so that the NSS module can give
 * sshd the same uid before the first login as the account gets after it; the
 * name is bound to the identity that first signed in as it (a fingerprint of
 * issuer and sub), and another identity that maps to the same name later is
 * refused. A uid another account, a local user or a local group already holds
 * is refused too (never two identities with one uid).
 *
 * Local accounts (a name getpwnam() finds that is not in the cache) are never
 * written: files, LDAP and the rest stay the admin's.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "oidc/config.h"
#include "oidc/error.h"

struct lk_accounts;

/* Reads path (a missing file is an empty cache; a broken one is logged and replaced). */
int lk_accounts_new(const struct lk_config *config, const char *path, struct lk_accounts **ret,
                    struct lk_error *e);
void lk_accounts_free(struct lk_accounts *a);

/*
 * BeginLogin's user: a local user (getpwnam) or a cached account gives its uid; with
 * [accounts] nss, a never-seen name that allowed_names or allowed_suffixes admit gives the
 * uid it will get. Else NotFound. a may be NULL (accounts off).
 */
int lk_accounts_resolve_user(const struct lk_accounts *a, const char *user, uid_t *ret_uid,
                             struct lk_error *e);

/*
 * A login of user (uid, as resolve gave it) completed with these verified claims: a
 * provider account is made or brought up to date (GECOS, groups, the time, the refusal
 * cleared) and the cache written. NotAllowed when the name belongs to another identity or
 * the uid is taken. Nothing for a local account, or with a NULL.
 */
int lk_accounts_signed_in(struct lk_accounts *a, const char *user, uid_t uid,
                          const json_t *claims, struct lk_error *e);

/* A refresh brought new claims (or none: claims NULL): groups and the time, for a cached user. */
void lk_accounts_refreshed(struct lk_accounts *a, const char *user, const json_t *claims);

/* The provider refused the user's refresh: the account step refuses it until it signs in. */
void lk_accounts_refused(struct lk_accounts *a, const char *user);

/* ForgetAccount: the account leaves the cache. NotFound when it is not there. */
int lk_accounts_forget(struct lk_accounts *a, const char *user, struct lk_error *e);
