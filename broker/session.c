/* SPDX-License-Identifier: MIT */
#include "broker/session.h"

#include <dbus/dbus.h>
#include <stdlib.h>
#include <string.h>

#include "base/text.h"
#include "broker/login.h"
#include "oidc/log.h"
#include "oidc/secret.h"

/*
 * Sessions by id: a chained hash table beside the list (the list keeps the newest-first
 * order). 10,000 sessions made the linear search, and the duplicate check at load, cost.
 */
#define SESSION_BUCKETS_MIN 256

static size_t id_hash(const char *id)
{
        uint64_t h = 14695981039346656037ULL; /* FNV-1a */

        for (; *id; id++)
                h = (h ^ (unsigned char)*id) * 1099511628211ULL;
        return (size_t)h;
}

/*
 * Doubles the table (or makes the first), filling it from the list (the session being added
 * is on it already). False on OOM: the table stays as it was (only fuller), and without any
 * table lookups walk the list.
 */
static bool table_grow(struct lk_sessions *ss)
{
        size_t n = ss->buckets ? ss->buckets * 2 : SESSION_BUCKETS_MIN;
        struct lk_session **t = calloc(n, sizeof(*t));

        if (!t)
                return false;
        for (struct lk_session *s = ss->list; s; s = s->next) {
                size_t k = id_hash(s->id) & (n - 1);

                s->hnext = t[k];
                t[k] = s;
        }
        free(ss->table);
        ss->table = t;
        ss->buckets = n;
        return true;
}

/* s is on ss->list already. */
static void table_add(struct lk_sessions *ss, struct lk_session *s)
{
        size_t k;

        ss->n++;
        if (ss->n > ss->buckets && table_grow(ss))
                return; /* s went in with the rest */
        if (!ss->table) {
                s->hnext = NULL;
                return;
        }
        k = id_hash(s->id) & (ss->buckets - 1);
        s->hnext = ss->table[k];
        ss->table[k] = s;
}

static void table_remove(struct lk_sessions *ss, struct lk_session *s)
{
        ss->n--;
        if (!ss->table)
                return;
        for (struct lk_session **p = &ss->table[id_hash(s->id) & (ss->buckets - 1)];
             *p; p = &(*p)->hnext)
                if (*p == s) {
                        *p = s->hnext;
                        break;
                }
        s->hnext = NULL;
}

struct lk_session *lk_session_find_loaded(struct lk_sessions *ss, const char *id)
{
        if (!ss->table) {
                for (struct lk_session *s = ss->list; s; s = s->next)
                        if (streq(s->id, id))
                                return s;
                return NULL;
        }
        for (struct lk_session *s = ss->table[id_hash(id) & (ss->buckets - 1)]; s;
             s = s->hnext)
                if (streq(s->id, id))
                        return s;
        return NULL;
}

struct lk_session *lk_session_find(struct lk_sessions *ss, const char *id)
{
        struct lk_session *s = lk_session_find_loaded(ss, id);

        if (!s && ss->store && lk_store_loading(ss->store)) {
                lk_store_load_id(ss->store, id);
                s = lk_session_find_loaded(ss, id);
        }
        return s;
}

struct lk_session *lk_session_latest(struct lk_sessions *ss, uid_t uid)
{
        struct lk_session *best = NULL;

        /* The list is newest first, so the first of equal opened_at wins. */
        for (struct lk_session *s = ss->list; s; s = s->next)
                if (s->uid == uid && (!best || s->opened_at > best->opened_at))
                        best = s;
        return best;
}

void lk_session_tokens_changed(struct lk_session *s)
{
        if (s->token_reply) {
                dbus_message_unref(s->token_reply);
                s->token_reply = NULL;
        }
}

void lk_session_free(struct lk_session *s)
{
        if (!s)
                return;
        lk_session_tokens_changed(s);
        lk_tokens_clear(&s->tokens);
        if (s->narrowed.n) {
                struct lk_error e = {0};

                lk_error_set(&e, LK_ERR_NOT_FOUND, "The session was closed");
                lk_token_cache_clear(&s->narrowed, -LK_ERR_NOT_FOUND, &e);
        }
        json_decref(s->claims);
        free(s->refresh_error);
        free(s->waiters);
        free(s->id);
        free(s->user);
        free(s);
}

static void session_unlink(struct lk_session **list, struct lk_session *s)
{
        for (struct lk_session **p = list; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        s->next = NULL;
                        return;
                }
}

void lk_session_adopt(struct lk_sessions *ss, struct lk_session *s)
{
        s->owner = ss;
        s->next = ss->list;
        ss->list = s;
        table_add(ss, s);
}

static void changed(struct lk_sessions *ss, const struct lk_session *s, const char *event)
{
        if (ss->changed)
                ss->changed(ss->userdata, s, event);
}

/* Writes s to its file (a record borrowing s's fields); nothing without a store. */
static int save(struct lk_sessions *ss, const struct lk_session *s, struct lk_error *e)
{
        struct lk_session_record r = {.id = s->id, .user = s->user, .uid = s->uid,
                                      .opened_at = s->opened_at, .expired = s->expired,
                                      .tokens = s->tokens, .claims = s->claims};

        return ss->store ? lk_store_save(ss->store, &r, e) : 0;
}

static void log_tokens(int prio, const char *what, const struct lk_session *s)
{
        char afp[LK_FINGERPRINT_SIZE], rfp[LK_FINGERPRINT_SIZE];

        lk_fingerprint(s->tokens.access_token, afp);
        lk_fingerprint(s->tokens.refresh_token, rfp);
        lk_log_auth(prio,
                    "Session %s of %s (uid %u) %s; access token %s, refresh token %s, "
                    "expires at %lld",
                    s->id, s->user, (unsigned)s->uid, what, afp,
                    s->tokens.refresh_token ? rfp : "none", (long long)s->tokens.expires_at);
}

static void session_close(struct lk_sessions *ss, struct lk_session *s, bool remove_file);

int lk_session_may_open(struct lk_sessions *ss, const char *id, uid_t uid, struct lk_error *e)
{
        struct lk_session *old = lk_session_find(ss, id);

        unsigned n = 0;

        /* One answer whether the holder is root or anyone else; the login stays usable. */
        if (old && old->uid != uid)
                return lk_error_set(e, LK_ERR_ACCESS_DENIED,
                                    "Session id '%s' is taken; open the session under another id",
                                    id);
        if (old)
                return 0; /* replaced: one more it is not */
        for (struct lk_session *s = ss->list; s; s = s->next)
                n += s->uid == uid;
        if (n >= LK_SESSIONS_PER_UID_MAX)
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "uid %u has %u open sessions (at most %d); close one first",
                                    (unsigned)uid, n, LK_SESSIONS_PER_UID_MAX);
        return 0;
}

int lk_session_open(struct lk_sessions *ss, const char *id, const char *user, uid_t uid,
                    struct lk_grant *grant, struct lk_error *e)
{
        struct lk_session *s, *old;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s) {
                lk_grant_free(grant);
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        s->owner = ss;
        s->id = strdup(id);
        s->user = strdup(user);
        s->uid = uid;
        s->opened_at = ss->clock->wall_s();
        s->tokens = grant->tokens;
        grant->tokens = (struct lk_tokens){0};
        s->claims = TAKE_PTR(grant->claims);
        lk_grant_free(grant);
        if (!s->id || !s->user) {
                lk_session_free(s);
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        /* Before the save: a file not read yet must be read as the old session, not the new. */
        old = lk_session_find(ss, id);

        /*
         * The same id again: su inside a session, or a session whose close
         * never came. It is the same uid's (lk_session_may_open), and the new
         * login replaces it. The new one is saved first
         * (the rename replaces the old file), so a failed write leaves the old
         * session as it was, in memory and on disk.
         */
        r = save(ss, s, e);
        if (r < 0) {
                lk_session_free(s);
                return r;
        }
        if (old)
                session_close(ss, old, false);
        lk_session_adopt(ss, s);
        log_tokens(LOG_NOTICE, "opened", s);
        changed(ss, s, "opened");
        return 0;
}

bool lk_session_needs_refresh(struct lk_sessions *ss, const struct lk_session *s,
                              uint32_t min_valid)
{
        /* With refresh_ahead the margin is the background's; a caller waits only for need. */
        int64_t margin = ss->config->refresh_ahead ? 1 : ss->config->refresh_margin;
        int64_t now = ss->clock->wall_s();

        if (s->expired || !s->tokens.refresh_token)
                return false;
        if (min_valid > LK_MIN_VALID_MAX)
                min_valid = LK_MIN_VALID_MAX;
        if (min_valid > margin)
                margin = min_valid;
        if (s->tokens.expires_at == 0) /* no lifetime given: only min_valid can ask for one */
                return false;
        return s->tokens.expires_at - now < margin;
}

static void answer_waiters(struct lk_session *s, int r, const struct lk_error *e)
{
        struct lk_token_waiter *w = TAKE_PTR(s->waiters);
        size_t n = s->n_waiters;
        int64_t now = s->owner->clock->wall_s();

        s->n_waiters = 0;
        for (size_t i = 0; i < n; i++) {
                if (r < 0 && r != -LK_ERR_TOKEN_EXPIRED && r != -LK_ERR_NOT_FOUND &&
                    s->tokens.access_token && s->tokens.expires_at > now)
                        /* The refresh failed, but what we have is still good. */
                        w[i].fn(w[i].userdata, s, 0, NULL);
                else
                        w[i].fn(w[i].userdata, s, r, e);
        }
        free(w);
}

/*
 * The refresh token is dead, or the provider no longer vouches for this user: the
 * session ends here, "expired" is signalled once (s->expired stops every later
 * refresh), and every waiter hears TokenExpired with why.
 */
static void session_expire(struct lk_sessions *ss, struct lk_session *s, const char *why)
{
        struct lk_error x = {0};

        lk_log_auth(LOG_NOTICE, "Session %s of %s (uid %u) has expired: %s", s->id, s->user,
                    (unsigned)s->uid, why);
        s->expired = true;
        lk_session_tokens_changed(s);
        lk_tokens_clear(&s->tokens);
        if (save(ss, s, &x) < 0)
                log_error("Cannot save session %s: %s", s->id, x.message);
        changed(ss, s, "expired");
        lk_error_clear(&x);
        lk_error_set(&x, LK_ERR_TOKEN_EXPIRED, "The session has expired: %s; log in again", why);
        s->narrowing = NULL;
        lk_token_cache_clear(&s->narrowed, -LK_ERR_TOKEN_EXPIRED, &x);
        answer_waiters(s, -LK_ERR_TOKEN_EXPIRED, &x);
}

/* A session closed while a refresh was under way, once it ended: its callers hear so. */
static void release_closed(struct lk_sessions *ss, struct lk_session *s)
{
        struct lk_error e = {0};

        lk_error_set(&e, LK_ERR_NOT_FOUND, "The session was closed");
        answer_waiters(s, -LK_ERR_NOT_FOUND, &e);
        session_unlink(&ss->closed, s);
        lk_session_free(s);
}

/*
 * A new id_token goes through [users] again: a user the provider moved out of allowed_groups,
 * or renamed, gets no more tokens; the session expires and grant is freed. Without one there
 * is nothing new to judge, and the session goes on.
 */
static bool user_refused(struct lk_sessions *ss, struct lk_session *s, struct lk_grant *grant)
{
        struct lk_error e = {0};
        char why[LK_ERROR_MESSAGE_MAX];

        if (!grant || !grant->claims ||
            lk_login_check_claims(ss->config, ss->uid_min, grant->claims, s->user, s->uid,
                                  &e) == 0)
                return false;
        lk_grant_free(grant);
        snprintf(why, sizeof(why), "the provider no longer allows this user here (%.400s)",
                 e.message);
        session_expire(ss, s, why);
        return true;
}

static void refresh_next(struct lk_sessions *ss, struct lk_session *s);

static void on_refreshed_own(void *userdata, struct lk_grant *grant, const struct lk_error *err)
{
        struct lk_session *s = userdata;
        struct lk_sessions *ss = s->owner;
        struct lk_error e = {0};
        int r = 0;

        ss->busy--;
        if (s->ahead)
                ss->ahead_busy--;
        s->ahead = false;
        s->ahead_failures = grant ? 0 : s->ahead_failures + 1;
        s->refreshing = false;
        s->refreshed_at = ss->clock->wall_s();
        free(s->refresh_error);
        s->refresh_error = NULL;

        if (s->closed) {
                lk_grant_free(grant);
                release_closed(ss, s);
                return;
        }

        if (user_refused(ss, s, grant))
                return;

        if (grant) {
                struct lk_tokens *t = &s->tokens, *n = &grant->tokens;

                /* Swap the new in; lk_grant_free() then wipes the old. */
#define SWAP(a, b_)                                                                                \
        do {                                                                                       \
                char *tmp_ = (a);                                                                  \
                (a) = (b_);                                                                        \
                (b_) = tmp_;                                                                       \
        } while (0)
                lk_session_tokens_changed(s);
                SWAP(t->access_token, n->access_token);
                if (n->refresh_token) /* a new refresh token replaces the old one */
                        SWAP(t->refresh_token, n->refresh_token);
                if (n->id_token)
                        SWAP(t->id_token, n->id_token);
                if (n->token_type)
                        SWAP(t->token_type, n->token_type);
                if (n->scope)
                        SWAP(t->scope, n->scope);
#undef SWAP
                t->expires_at = n->expires_at;
                lk_budget_refund(ss->budget, s->uid); /* a live refresh token: no abuse */
                if (grant->claims) {
                        json_decref(s->claims);
                        s->claims = TAKE_PTR(grant->claims);
                }
                lk_grant_free(grant);
                if (save(ss, s, &e) < 0)
                        log_error("Cannot save session %s: %s, keeping it in memory only", s->id,
                                  e.message);
                log_tokens(LOG_INFO, "refreshed", s);
                changed(ss, s, "refreshed");
                answer_waiters(s, 0, NULL);
                return;
        }

        if (err && err->code)
                e = *err;
        else
                lk_error_set(&e, LK_ERR_PROVIDER_UNAVAILABLE, "The refresh failed");
        r = -e.code;
        /* Any refusal of the refresh token (ClientRefused is ours, not the session's). */
        if (r == -LK_ERR_INVALID_GRANT) {
                char why[LK_ERROR_MESSAGE_MAX];

                if (e.provider_error[0])
                        snprintf(why, sizeof(why),
                                 "the provider refused the refresh token (%s%s%s)",
                                 e.provider_error, e.provider_description[0] ? ": " : "",
                                 e.provider_description);
                else
                        snprintf(why, sizeof(why),
                                 "the provider refused the refresh token (%.400s)", e.message);
                session_expire(ss, s, why);
                return;
        }
        log_warning("Refreshing session %s failed: %s: %s", s->id, lk_err_name(r), e.message);
        s->refresh_error = malloc(sizeof(*s->refresh_error));
        if (s->refresh_error)
                *s->refresh_error = e;
        answer_waiters(s, r, &e);
}

static void on_refreshed(void *userdata, struct lk_grant *grant, const struct lk_error *err)
{
        struct lk_session *s = userdata;
        bool closed = s->closed;

        on_refreshed_own(userdata, grant, err);
        if (!closed) /* else s is gone */
                refresh_next(s->owner, s);
}

int lk_session_refresh_begin(struct lk_sessions *ss, struct lk_session *s, bool ahead,
                             struct lk_error *e)
{
        int r = ss->idp.ops->refresh(ss->idp.idp, s->tokens.refresh_token, s->claims,
                                     on_refreshed, s);

        if (r < 0) {
                lk_budget_refund(ss->budget, s->uid);
                return lk_error_set(e, r, "Cannot start the refresh");
        }
        s->refreshing = true;
        s->ahead = ahead;
        ss->busy++;
        ss->ahead_busy += ahead;
        return 0;
}

int lk_session_get_token(struct lk_sessions *ss, struct lk_session *s, uint32_t min_valid,
                         lk_token_fn fn, void *userdata, struct lk_error *e)
{
        struct lk_token_waiter *w;
        int r;

        if (s->expired)
                return lk_error_set(e, LK_ERR_TOKEN_EXPIRED,
                                    "The session has expired; log in again");
        if (!lk_session_needs_refresh(ss, s, min_valid)) {
                if (s->tokens.expires_at != 0 && s->tokens.expires_at <= ss->clock->wall_s())
                        return lk_error_set(e, LK_ERR_TOKEN_EXPIRED,
                                            "The access token has expired and there is no refresh "
                                            "token; log in again");
                return 0;
        }
        if (s->n_waiters >= LK_SESSION_WAITERS_MAX)
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "Too many callers are waiting for this session's refresh");
        if (!s->refreshing) {
                int64_t now = ss->clock->wall_s(), since = now - s->refreshed_at;
                bool valid = s->tokens.expires_at > now;

                /* At most one refresh per interval, whatever min_valid asks: each one is a
                 * request to the provider and a synced write. A clock set back waits not. */
                if (s->refreshed_at != 0 && since >= 0 && since < LK_REFRESH_INTERVAL_MIN) {
                        if (valid)
                                return 0;
                        if (s->refresh_error) {
                                *e = *s->refresh_error;
                                return -e->code;
                        }
                        return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                            "The session was refreshed %lld s ago and its token "
                                            "has expired already; try again in %lld s",
                                            (long long)since,
                                            (long long)(LK_REFRESH_INTERVAL_MIN - since));
                }
                r = lk_budget_take(ss->budget, s->uid, ss->clock->mono_ms(), e);
                if (r < 0) {
                        if (valid)
                                return 0;
                        return r;
                }
                r = lk_session_refresh_begin(ss, s, false, e);
                if (r < 0) {
                        if (valid) {
                                lk_error_clear(e);
                                return 0;
                        }
                        return r;
                }
                log_debug("Session %s: refreshing (min_valid %u)", s->id, min_valid);
        }
        w = realloc(s->waiters, (s->n_waiters + 1) * sizeof(*w));
        if (!w)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        s->waiters = w;
        w[s->n_waiters++] = (struct lk_token_waiter){fn, userdata, min_valid};
        return LK_SESSION_LATER;
}

static void on_revoked(void *userdata, const struct lk_error *err)
{
        struct lk_sessions *ss = userdata;

        ss->busy--;
        if (err && err->code)
                log_warning("Revoking a closed session's token failed: %s, ignoring", err->message);
        else
                log_debug("Revoked a closed session's token");
}

/* remove_file is false when a new session of the same id has just replaced the file. */
static void session_close(struct lk_sessions *ss, struct lk_session *s, bool remove_file)
{
        const char *token = s->tokens.refresh_token ?: s->tokens.access_token;
        const char *hint = s->tokens.refresh_token ? "refresh_token" : "access_token";

        log_tokens(LOG_NOTICE, "closed", s);
        session_unlink(&ss->list, s);
        table_remove(ss, s);
        if (remove_file && ss->store)
                lk_store_remove(ss->store, s->id);
        /* The provider copies the token, so it may go with the session below. */
        if (ss->config->revoke_on_close && token && !s->expired) {
                if (ss->idp.ops->revoke(ss->idp.idp, token, hint, on_revoked, ss) < 0)
                        log_warning("Session %s: cannot start the revocation, ignoring", s->id);
                else
                        ss->busy++;
        }
        changed(ss, s, "closed");
        if (s->narrowed.n) {
                struct lk_error e = {0};

                lk_error_set(&e, LK_ERR_NOT_FOUND, "The session was closed");
                s->narrowing = NULL;
                lk_token_cache_clear(&s->narrowed, -LK_ERR_NOT_FOUND, &e);
        }
        if (s->refreshing) {
                /* on_refreshed() frees it; until then it waits here, for shutdown's sake. */
                s->closed = true;
                lk_session_tokens_changed(s);
                lk_tokens_clear(&s->tokens);
                s->next = ss->closed;
                ss->closed = s;
                return;
        }
        lk_session_free(s);
}

void lk_session_close(struct lk_sessions *ss, struct lk_session *s)
{
        session_close(ss, s, true);
}

void lk_sessions_free_all(struct lk_sessions *ss)
{
        struct lk_session **lists[] = {&ss->list, &ss->closed};
        struct lk_error e = {0};

        lk_error_set(&e, LK_ERR_PROVIDER_UNAVAILABLE, "The broker is shutting down");
        for (size_t i = 0; i < ELEMENTSOF(lists); i++)
                while (*lists[i]) {
                        struct lk_session *s = *lists[i];
                        *lists[i] = s->next;
                        /* A refresh cut short: its callers still get an answer. */
                        answer_waiters(s, -LK_ERR_PROVIDER_UNAVAILABLE, &e);
                        s->narrowing = NULL;
                        lk_token_cache_clear(&s->narrowed, -LK_ERR_PROVIDER_UNAVAILABLE, &e);
                        lk_session_free(s);
                }
        free(ss->table);
        ss->table = NULL;
        ss->buckets = 0;
        ss->n = 0;
}


/* ---- tokens for narrower scopes and other audiences (token_cache.h) ---- */

static void on_refreshed_for(void *userdata, struct lk_grant *grant, const struct lk_error *err);

/* Starts t's refresh; nothing else uses the refresh token now (!s->refreshing). */
static int start_for(struct lk_sessions *ss, struct lk_session *s, struct lk_scoped_token *t,
                     struct lk_error *e)
{
        int r;

        if (!ss->idp.ops->refresh_for)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "This broker cannot ask for tokens of other scopes or "
                                    "audiences");
        r = lk_budget_take(ss->budget, s->uid, ss->clock->mono_ms(), e);
        if (r < 0)
                return r;
        r = ss->idp.ops->refresh_for(ss->idp.idp, s->tokens.refresh_token, s->claims,
                                     *t->scope ? t->scope : NULL,
                                     *t->audience ? t->audience : NULL, on_refreshed_for, s);
        if (r < 0) {
                lk_budget_refund(ss->budget, s->uid);
                return lk_error_set(e, r, "Cannot start the refresh");
        }
        t->wanted = false;
        s->refreshing = true;
        s->narrowing = t;
        ss->busy++;
        log_debug("Session %s: fetching a token for scope '%s', audience '%s'", s->id,
                  *t->scope ? t->scope : "(the grant's)", *t->audience ? t->audience : "(none)");
        return 0;
}

/*
 * A refresh of s ended (its own or a narrower token's) and s is still open: the next one
 * that waits goes, the session's own callers first (they came while a narrower one was
 * fetched, and ask again now).
 */
static void refresh_next(struct lk_sessions *ss, struct lk_session *s)
{
        struct lk_scoped_token *t;

        if (s->refreshing || s->expired)
                return;
        if (s->n_waiters > 0) {
                struct lk_token_waiter *w = TAKE_PTR(s->waiters);
                size_t n = s->n_waiters;

                s->n_waiters = 0;
                for (size_t i = 0; i < n; i++) {
                        struct lk_error e = {0};
                        int r = lk_session_get_token(ss, s, w[i].min_valid, w[i].fn,
                                                     w[i].userdata, &e);

                        if (r == 0)
                                w[i].fn(w[i].userdata, s, 0, NULL);
                        else if (r < 0)
                                w[i].fn(w[i].userdata, s, r, &e);
                }
                free(w);
        }
        while (!s->refreshing && (t = lk_token_cache_next_wanted(&s->narrowed))) {
                struct lk_error e = {0};

                if (start_for(ss, s, t, &e) < 0)
                        lk_scoped_answer(t, -e.code, &e, ss->clock->wall_s());
        }
}

/* The refresh token is dead when the provider says invalid_grant, or refuses without words;
 * invalid_scope, invalid_target and the like refuse only this scope or audience. */
static bool refresh_token_refused(const struct lk_error *e)
{
        return e->code == LK_ERR_INVALID_GRANT &&
               (!e->provider_error[0] || streq(e->provider_error, "invalid_grant"));
}

static void on_refreshed_for(void *userdata, struct lk_grant *grant, const struct lk_error *err)
{
        struct lk_session *s = userdata;
        struct lk_sessions *ss = s->owner;
        struct lk_scoped_token *t = TAKE_PTR(s->narrowing);
        int64_t now = ss->clock->wall_s();
        struct lk_error e = {0};

        ss->busy--;
        s->refreshing = false;
        if (s->closed) {
                lk_grant_free(grant);
                release_closed(ss, s);
                return;
        }
        if (user_refused(ss, s, grant))
                return;
        if (grant)
                lk_budget_refund(ss->budget, s->uid); /* a live refresh token: no abuse */
        if (grant && (grant->tokens.refresh_token || grant->claims)) {
                /* A new refresh token stands for the whole grant (RFC 6749 §6): it replaces
                 * the session's, as after its own refresh; so do newly verified claims. */
                if (grant->tokens.refresh_token) {
                        char *old = s->tokens.refresh_token;

                        s->tokens.refresh_token = TAKE_PTR(grant->tokens.refresh_token);
                        lk_secret_free(old);
                }
                if (grant->claims) {
                        json_decref(s->claims);
                        s->claims = TAKE_PTR(grant->claims);
                }
                if (save(ss, s, &e) < 0)
                        log_error("Cannot save session %s: %s, keeping it in memory only", s->id,
                                  e.message);
                lk_error_clear(&e);
        }
        if (!t) { /* cannot happen: nothing else clears it while s is open */
                lk_grant_free(grant);
                refresh_next(ss, s);
                return;
        }
        t->refreshed_at = now;
        free(t->refresh_error);
        t->refresh_error = NULL;
        if (grant && grant->tokens.scope && *t->scope &&
            !lk_scope_within(grant->tokens.scope, t->scope)) {
                char got[LK_TEXT_QUOTE_SIZE];

                lk_error_set(&e, LK_ERR_PROVIDER_RESPONSE,
                             "The provider granted scope '%s' when asked for '%.200s': wider "
                             "than asked, so the token is not used",
                             lk_text_escape(grant->tokens.scope, got, sizeof(got)), t->scope);
                lk_grant_free(grant);
                grant = NULL;
        } else if (grant) {
                struct lk_tokens *n = &grant->tokens;
                char *old = t->tokens.access_token;

                t->tokens.access_token = TAKE_PTR(n->access_token);
                lk_secret_free(old);
                free(t->tokens.token_type);
                t->tokens.token_type = TAKE_PTR(n->token_type);
                free(t->tokens.scope);
                t->tokens.scope = TAKE_PTR(n->scope);
                t->tokens.expires_at = n->expires_at;
                lk_grant_free(grant);
                if (lk_log_debug_enabled()) {
                        char fp[LK_FINGERPRINT_SIZE];

                        lk_fingerprint(t->tokens.access_token, fp);
                        log_debug("Session %s: token %s for scope '%s', audience '%s', expires "
                                  "at %lld", s->id, fp, t->scope, t->audience,
                                  (long long)t->tokens.expires_at);
                }
                lk_scoped_answer(t, 0, NULL, now);
                refresh_next(ss, s);
                return;
        } else if (err && err->code) {
                e = *err;
        } else {
                lk_error_set(&e, LK_ERR_PROVIDER_UNAVAILABLE, "The refresh failed");
        }
        if (refresh_token_refused(&e)) {
                char why[LK_ERROR_MESSAGE_MAX];

                snprintf(why, sizeof(why), "the provider refused the refresh token (%.400s)",
                         e.provider_error[0] ? e.provider_error : e.message);
                session_expire(ss, s, why);
                return;
        }
        log_warning("Session %s: a token for scope '%s', audience '%s' failed: %s: %s", s->id,
                    t->scope, t->audience, lk_err_name(-e.code), e.message);
        t->refresh_error = malloc(sizeof(*t->refresh_error));
        if (t->refresh_error)
                *t->refresh_error = e;
        lk_scoped_answer(t, -e.code, &e, now);
        refresh_next(ss, s);
}

static bool scoped_needs_refresh(const struct lk_sessions *ss, const struct lk_scoped_token *t,
                                 uint32_t min_valid, int64_t now)
{
        int64_t margin = ss->config->refresh_margin;

        if (!t->tokens.access_token)
                return true;
        if (t->tokens.expires_at == 0)
                return false;
        if (min_valid > LK_MIN_VALID_MAX)
                min_valid = LK_MIN_VALID_MAX;
        if (min_valid > margin)
                margin = min_valid;
        return t->tokens.expires_at - now < margin;
}

/* The asked scope, canonical, when it is within the session's grant. */
static int scope_of_request(struct lk_sessions *ss, const struct lk_session *s,
                            const char *scope, char **ret, struct lk_error *e)
{
        _cleanup_free_ char *canon = NULL, *joined = NULL;
        const char *granted = s->tokens.scope;
        int r;

        r = lk_scope_normalize(scope, &canon, e);
        if (r < 0)
                return r;
        if (!granted) { /* no scope in the answer: the one asked for (RFC 6749 §5.1) */
                joined = lk_scope_join(ss->config->scopes);
                if (!joined)
                        return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
                granted = joined;
        }
        r = lk_scope_check_subset(canon, granted, e);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(canon);
        return 0;
}

int lk_session_get_token_for(struct lk_sessions *ss, struct lk_session *s, const char *scope,
                             const char *audience, uint32_t min_valid, lk_scoped_fn fn,
                             void *userdata, const struct lk_tokens **ret, struct lk_error *e)
{
        _cleanup_free_ char *canon = NULL;
        int64_t now = ss->clock->wall_s();
        struct lk_scoped_token *t;
        bool valid;
        int r;

        if (s->expired)
                return lk_error_set(e, LK_ERR_TOKEN_EXPIRED,
                                    "The session has expired; log in again");
        if (!isempty(scope)) {
                r = scope_of_request(ss, s, scope, &canon, e);
                if (r < 0)
                        return r;
        }
        if (!isempty(audience)) {
                r = lk_audience_check(audience, e);
                if (r < 0)
                        return r;
        }
        if (!s->tokens.refresh_token)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "The session has no refresh token, so no token for another "
                                    "scope or audience can be had; ask without scope and "
                                    "audience");
        t = lk_token_cache_find(&s->narrowed, canon ?: "", audience ?: "");
        if (!t) {
                r = lk_token_cache_add(&s->narrowed, canon ?: "", audience ?: "", s->narrowing,
                                       &t, e);
                if (r < 0)
                        return r;
        }
        t->used_at = now;
        valid = t->tokens.access_token &&
                (t->tokens.expires_at == 0 || t->tokens.expires_at > now);
        if (!scoped_needs_refresh(ss, t, min_valid, now)) {
                *ret = &t->tokens;
                return 0;
        }
        if (t != s->narrowing && !t->wanted && t->refreshed_at != 0 && now >= t->refreshed_at &&
            now - t->refreshed_at < LK_REFRESH_INTERVAL_MIN) {
                /* At most one refresh per interval, as for the session's own token. */
                if (valid) {
                        *ret = &t->tokens;
                        return 0;
                }
                if (t->refresh_error) {
                        *e = *t->refresh_error;
                        return -e->code;
                }
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "This token was fetched %lld s ago and has expired already; "
                                    "try again in %lld s", (long long)(now - t->refreshed_at),
                                    (long long)(LK_REFRESH_INTERVAL_MIN - (now - t->refreshed_at)));
        }
        if (t != s->narrowing && !t->wanted && !s->refreshing) {
                r = start_for(ss, s, t, e);
                if (r < 0) {
                        if (valid) {
                                *ret = &t->tokens;
                                return 0;
                        }
                        return r;
                }
        }
        r = lk_scoped_wait(t, fn, userdata, e);
        if (r < 0)
                return r;
        if (t != s->narrowing)
                t->wanted = true; /* after the refresh under way (refresh_next) */
        return LK_SESSION_LATER;
}

/* ---- the sessions of the last run, from the store ---- */

static bool reader_has(void *userdata, const char *id)
{
        return lk_session_find_loaded(userdata, id) != NULL;
}

static void reader_take(void *userdata, struct lk_session_record *r)
{
        struct lk_sessions *ss = userdata;
        struct lk_session *s = calloc(1, sizeof(*s));

        if (!s) {
                log_error("Out of memory reading session %s; it stays on disk", r->id);
                return;
        }
        s->id = TAKE_PTR(r->id);
        s->user = TAKE_PTR(r->user);
        s->uid = r->uid;
        s->opened_at = r->opened_at;
        s->expired = r->expired;
        s->tokens = r->tokens;
        r->tokens = (struct lk_tokens){0};
        s->claims = TAKE_PTR(r->claims);
        lk_session_adopt(ss, s);
}

static struct lk_store_reader reader_of(struct lk_sessions *ss)
{
        return (struct lk_store_reader){.has = reader_has, .take = reader_take, .userdata = ss};
}

int lk_sessions_load_begin(struct lk_sessions *ss, struct lk_error *e)
{
        struct lk_store_reader r = reader_of(ss);

        return lk_store_load_begin(ss->store, &r, e);
}

int lk_sessions_load_all(struct lk_sessions *ss, struct lk_error *e)
{
        struct lk_store_reader r = reader_of(ss);

        return lk_store_load_all(ss->store, &r, e);
}

bool lk_sessions_loading(const struct lk_sessions *ss)
{
        return ss->store && lk_store_loading(ss->store);
}
