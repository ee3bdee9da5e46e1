/* SPDX-License-Identifier: MIT */
/* The broker as a whole: what every part reaches through struct broker. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "config.h"
#include "error.h"
#include "http.h"
#include "loop.h"
#include "provider.h"

struct lk_login;
struct lk_session;

/* The pending-login limits (SPEC §4). */
#define LK_LOGINS_PER_UID_MAX 16
#define LK_LOGINS_MAX 1024

struct broker {
        struct lk_config *config;
        char *state_dir;
        char *sessions_dir; /* state_dir/sessions: one file per session */
        char boot_id[40];
        unsigned idle_exit; /* seconds, 0 = never */

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

        /* The sessions of the last run, read in slices once the bus name is ours (store.c). */
        struct lk_store_loader *loader;     /* NULL once all are read */
        struct lk_timer *load_timer;
        struct lk_call **wait_sessions;     /* calls that need every session, till then */
        size_t n_wait_sessions;
        unsigned busy_ops;                  /* exchanges, refreshes, revocations under way */

        /* Calls waiting for discovery and keys, re-run from the top when they come. */
        struct lk_call **deferred;
        size_t n_deferred;
        bool preparing;

        struct lk_timer *tick;
        struct lk_timer *http_timer;
        struct http_watch *http_watches;
        int64_t last_activity_ms;
};

/* A method call arrived: resets the idle clock. */
void broker_touch(struct broker *b);

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
int broker_need_sessions(struct broker *b, struct lk_call *call, struct lk_error *e);

/* Realtime seconds, for token lifetimes and opened_at. */
int64_t lk_now_wall(void);
