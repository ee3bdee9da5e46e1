/* SPDX-License-Identifier: MIT */
/* The broker as a whole: what every part reaches through struct broker. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "broker/bus.h"
#include "broker/loop.h"
#include "oidc/config.h"
#include "oidc/error.h"
#include "oidc/http.h"
#include "oidc/provider.h"

struct lk_login;
struct lk_session;

/*
 * Login limits (SPEC §4; docs/SECURITY.md). A login counts against the user it is for when root
 * began it (sshd, login and greeters begin everyone's), else against the uid that began it.
 * Pending logins (waiting for an answer, or exchanging its code) are refused beyond the caps;
 * completed ones (waiting for OpenSession) never block a new login: beyond their caps the
 * oldest is dropped. Ended logins are remembered, the oldest forgotten first.
 */
#define LK_LOGINS_PER_USER_MAX 16      /* pending, per user */
#define LK_LOGINS_MAX 1024             /* pending, host-wide */
#define LK_LOGINS_DONE_PER_USER_MAX 16 /* completed, per user */
#define LK_LOGINS_DONE_MAX 1024        /* completed, host-wide */
#define LK_LOGINS_ENDED_MAX 1024       /* ended, remembered to say LoginExpired */
#define LK_LOGIN_ANSWERS_MAX 3         /* CompleteLogin answers per login (the module's tries) */

struct broker {
        struct lk_config *config;
        char *state_dir;
        char *sessions_dir; /* state_dir/sessions: one file per session */
        char boot_id[40];
        unsigned idle_exit; /* seconds, 0 = never */
        uid_t uid_min;      /* UID_MIN of login.defs: below it, system accounts */

        struct lk_loop *loop;
        struct lk_http *http;
        struct lk_provider *provider;
        struct lk_bus *bus;
        struct lk_budget *budget; /* token-endpoint requests per uid (budget.h) */

        struct lk_login *logins;
        unsigned n_logins;                  /* including expired ones still remembered */
        struct lk_session *sessions;        /* newest first */
        struct lk_session **session_table;  /* by id, chained through hnext */
        size_t session_buckets;             /* a power of two, or 0 before the first */
        size_t n_sessions;
        struct lk_session *closed_sessions; /* closed while a refresh was under way */

        /* The sessions of the last run, read in slices once the bus name is ours (session_store.c). */
        struct lk_store_loader *loader;     /* NULL once all are read */
        struct lk_timer *load_timer;
        unsigned busy_ops;                  /* exchanges, refreshes, revocations under way */

        bool preparing; /* discovery and keys being fetched, calls parked for them */

        struct lk_timer *tick;
        struct lk_timer *http_timer;
        struct http_watch *http_watches;
        int64_t last_activity_ms;
};

/* A method call arrived: resets the idle clock. */
void broker_touch(struct broker *b);

/* The bus says that unique name (":1.42") has left: logins begun with end_with_caller end. */
void broker_caller_left(struct broker *b, const char *name);

/*
 * Discovery and keys: 0 when the provider's endpoints are known, else the
 * call is parked (one lk_provider_prepare() for all) and re-run from its
 * handler's top when they come; returns LK_CALL_LATER then.
 */
int broker_need_provider(struct broker *b, struct lk_call *call, struct lk_error *e);

/*
 * Every session read from disk: 0 when they are, else the call is parked and re-run from
 * its handler's top once they are (ListSessions, GetToken without a session id); returns
 * LK_CALL_LATER then.
 */
/* What a call may wait for (bus.h's parking). */
enum { LK_NEED_PROVIDER, LK_NEED_SESSIONS };
#define LK_CALL_LATER 1
int broker_need_sessions(struct broker *b, struct lk_call *call, struct lk_error *e);

/* Realtime seconds, for token lifetimes and opened_at. */
int64_t lk_now_wall(void);
