/* SPDX-License-Identifier: MIT */
#include "logins.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "broker.h"
#include "log.h"
#include "secret.h"
#include "usermap.h"

/* How long an expired login is remembered, so a late caller hears LoginExpired. */
#define LOGIN_TOMBSTONE_MS (120 * 1000)
/* Logins remembered in all, expired ones included. */
#define LOGINS_REMEMBERED_MAX (4 * LK_LOGINS_MAX)

int lk_login_resolve_user(const char *user, uid_t *ret_uid, struct lk_error *e)
{
        struct passwd pw, *res = NULL;
        char buf[4096];
        int r;

        if (isempty(user))
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "The user name is empty");
        r = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
        if (r != 0 || !res)
                return lk_error_set(e, LK_ERR_NOT_FOUND, "There is no local user '%s'", user);
        *ret_uid = res->pw_uid;
        return 0;
}

static void login_wipe(struct lk_login *l)
{
        lk_authorization_free(l->auth);
        l->auth = NULL;
        lk_grant_free(l->grant);
        l->grant = NULL;
}

static void login_free(struct lk_login *l)
{
        if (!l)
                return;
        login_wipe(l);
        free(l->id);
        free(l->user);
        free(l);
}

static void login_unlink(struct broker *b, struct lk_login *l)
{
        for (struct lk_login **p = &b->logins; *p; p = &(*p)->next)
                if (*p == l) {
                        *p = l->next;
                        l->next = NULL;
                        b->n_logins--;
                        return;
                }
}

static bool login_live(const struct lk_login *l, int64_t now)
{
        return l->state == LK_LOGIN_EXCHANGING ||
               (l->state != LK_LOGIN_EXPIRED && now < l->expires_ms);
}

static void login_expire(struct lk_login *l, const char *why)
{
        char fp[LK_FINGERPRINT_SIZE];

        if (l->state == LK_LOGIN_EXPIRED)
                return;
        lk_fingerprint(l->id, fp);
        lk_log_auth(LOG_INFO, "Login %s for %s (uid %u) %s", fp, l->user, (unsigned)l->owner_uid,
                    why);
        login_wipe(l);
        l->state = LK_LOGIN_EXPIRED;
}

int lk_login_begin(struct broker *b, uid_t owner_uid, const char *user, uid_t user_uid,
                   struct lk_login **ret, struct lk_error *e)
{
        const struct lk_endpoints *ep = lk_provider_endpoints(b->provider);
        int64_t now = lk_now_ms();
        unsigned mine = 0, all = 0;
        struct lk_login *l;
        char fp[LK_FINGERPRINT_SIZE];
        int r;

        if (!ep)
                return lk_error_set(e, LK_ERR_PROVIDER_UNAVAILABLE,
                                    "The provider's endpoints are not known yet");
        for (l = b->logins; l; l = l->next)
                if (login_live(l, now)) {
                        all++;
                        if (l->owner_uid == owner_uid)
                                mine++;
                }
        if (mine >= LK_LOGINS_PER_UID_MAX)
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "Too many pending logins for uid %u (at most %d); complete or "
                                    "cancel one first",
                                    (unsigned)owner_uid, LK_LOGINS_PER_UID_MAX);
        if (all >= LK_LOGINS_MAX || b->n_logins >= LOGINS_REMEMBERED_MAX)
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "Too many pending logins (at most %d); try again later",
                                    LK_LOGINS_MAX);

        l = calloc(1, sizeof(*l));
        if (!l)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        l->broker = b;
        l->owner_uid = owner_uid;
        l->user_uid = user_uid;
        l->state = LK_LOGIN_PENDING;
        l->expires_ms = now + (int64_t)b->config->login_timeout * 1000;
        l->user = strdup(user);
        if (!l->user) {
                login_free(l);
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        r = lk_random_b64url(18, &l->id);
        if (r < 0) {
                login_free(l);
                return lk_error_set(e, r, "Cannot make a login id");
        }
        r = lk_authorization_new(b->config, ep, user, &l->auth, e);
        if (r < 0) {
                login_free(l);
                return r;
        }
        l->next = b->logins;
        b->logins = l;
        b->n_logins++;
        lk_fingerprint(l->id, fp);
        lk_log_auth(LOG_INFO, "Login %s begun for %s (uid %u) by uid %u", fp, user,
                    (unsigned)user_uid, (unsigned)owner_uid);
        *ret = l;
        return 0;
}

struct lk_login *lk_login_find(struct broker *b, const char *id)
{
        for (struct lk_login *l = b->logins; l; l = l->next)
                if (!l->cancelled && streq(l->id, id))
                        return l;
        return NULL;
}

static void on_exchanged(void *userdata, struct lk_grant *grant, const struct lk_error *err)
{
        struct lk_login *l = userdata;
        struct broker *b = l->broker;
        lk_login_done_fn done = l->done;
        void *done_userdata = l->done_userdata;
        _cleanup_free_ char *mapped = NULL;
        struct lk_error e = {0};
        char fp[LK_FINGERPRINT_SIZE], afp[LK_FINGERPRINT_SIZE];
        json_t *sub;
        int r;

        b->busy_ops--;
        l->done = NULL;
        l->done_userdata = NULL;
        lk_fingerprint(l->id, fp);

        if (l->cancelled) {
                lk_grant_free(grant);
                login_unlink(b, l);
                login_free(l);
                lk_error_set(&e, LK_ERR_NOT_FOUND, "The login was cancelled");
                done(done_userdata, NULL, -LK_ERR_NOT_FOUND, &e);
                return;
        }
        /* A failed attempt leaves the login open for another answer, until it expires. */
        l->state = LK_LOGIN_PENDING;
        if (!grant) {
                if (err && err->code)
                        e = *err;
                else
                        lk_error_set(&e, LK_ERR_PROVIDER_UNAVAILABLE, "The code exchange failed");
                lk_log_auth(LOG_WARNING, "Login %s for %s: code exchange failed: %s: %s", fp,
                            l->user, lk_err_name(e.code), e.message);
                done(done_userdata, NULL, -e.code, &e);
                return;
        }
        if (!grant->claims)
                r = lk_error_set(&e, LK_ERR_INVALID_ID_TOKEN, "The provider sent no id_token");
        else
                r = lk_usermap(b->config, grant->claims, &mapped, &e);
        if (r >= 0 && !streq(mapped, l->user))
                r = lk_error_set(&e, LK_ERR_USER_MISMATCH,
                                 "The provider signed in '%s', but this login is for '%s'",
                                 LK_ESCAPED(mapped), l->user);
        if (r < 0) {
                lk_grant_free(grant);
                lk_log_auth(LOG_WARNING, "Login %s for %s refused: %s: %s", fp, l->user,
                            lk_err_name(r), e.message);
                done(done_userdata, NULL, r, &e);
                return;
        }

        lk_authorization_free(l->auth);
        l->auth = NULL;
        l->grant = grant;
        l->state = LK_LOGIN_DONE;
        l->expires_ms = lk_now_ms() + (int64_t)b->config->login_timeout * 1000;
        /* The caller waits for the answer, not for the log line: answer first. */
        done(done_userdata, l->user, 0, NULL);
        sub = json_object_get(grant->claims, "sub");
        lk_fingerprint(grant->tokens.access_token, afp);
        lk_log_auth(LOG_NOTICE,
                    "Login %s: %s (uid %u) signed in at the provider as sub %s; "
                    "access token %s",
                    fp, l->user, (unsigned)l->user_uid,
                    json_is_string(sub) ? LK_ESCAPED(json_string_value(sub)) : "?", afp);
}

int lk_login_complete(struct broker *b, struct lk_login *l, const char *answer,
                      lk_login_done_fn done, void *userdata, struct lk_error *e)
{
        _cleanup_secret_ char *code = NULL;
        int r;

        if (l->state != LK_LOGIN_EXCHANGING && lk_now_ms() >= l->expires_ms)
                login_expire(l, "expired");
        switch (l->state) {
        case LK_LOGIN_EXPIRED:
                return lk_error_set(e, LK_ERR_LOGIN_EXPIRED,
                                    "The login has expired (after %u s); begin a new one",
                                    b->config->login_timeout);
        case LK_LOGIN_EXCHANGING:
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "This login is already being completed");
        case LK_LOGIN_DONE:
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "This login is already complete");
        case LK_LOGIN_PENDING:
                break;
        }

        r = lk_answer_parse(answer, l->auth->state, &code, e);
        if (r < 0)
                return r;
        r = lk_provider_exchange_code(b->provider, code, l->auth->verifier, l->auth->nonce,
                                      on_exchanged, l);
        if (r < 0)
                return lk_error_set(e, r, "Cannot start the code exchange");
        l->state = LK_LOGIN_EXCHANGING;
        l->done = done;
        l->done_userdata = userdata;
        b->busy_ops++;
        return 0;
}

int lk_login_check_done(struct broker *b, struct lk_login *l, struct lk_error *e)
{
        if (l->state == LK_LOGIN_DONE && lk_now_ms() >= l->expires_ms)
                login_expire(l, "expired before its session was opened");
        switch (l->state) {
        case LK_LOGIN_DONE:
                return 0;
        case LK_LOGIN_EXPIRED:
                return lk_error_set(e, LK_ERR_LOGIN_EXPIRED,
                                    "The login has expired; begin a new one");
        default:
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "The login is not complete yet (CompleteLogin first)");
        }
}

struct lk_grant *lk_login_take_grant(struct broker *b, struct lk_login *l)
{
        struct lk_grant *g = TAKE_PTR(l->grant);

        login_unlink(b, l);
        login_free(l);
        return g;
}

void lk_login_cancel(struct broker *b, struct lk_login *l)
{
        char fp[LK_FINGERPRINT_SIZE];

        lk_fingerprint(l->id, fp);
        lk_log_auth(LOG_INFO, "Login %s for %s cancelled", fp, l->user);
        if (l->state == LK_LOGIN_EXCHANGING) {
                /* The exchange still points at it (and its nonce): the callback frees it. */
                l->cancelled = true;
                return;
        }
        login_unlink(b, l);
        login_free(l);
}

unsigned lk_logins_sweep(struct broker *b)
{
        int64_t now = lk_now_ms();
        unsigned live = 0;

        for (struct lk_login **p = &b->logins; *p;) {
                struct lk_login *l = *p;

                if (l->state != LK_LOGIN_EXCHANGING && now >= l->expires_ms)
                        login_expire(l, "expired");
                if (l->state == LK_LOGIN_EXPIRED && now >= l->expires_ms + LOGIN_TOMBSTONE_MS) {
                        *p = l->next;
                        b->n_logins--;
                        login_free(l);
                        continue;
                }
                if (login_live(l, now))
                        live++;
                p = &l->next;
        }
        return live;
}

void lk_logins_free_all(struct broker *b)
{
        struct lk_error e = {0};

        lk_error_set(&e, LK_ERR_PROVIDER_UNAVAILABLE, "The broker is shutting down");
        while (b->logins) {
                struct lk_login *l = b->logins;
                b->logins = l->next;
                /* An exchange cut short: its caller still gets an answer. */
                if (l->done)
                        l->done(l->done_userdata, NULL, -LK_ERR_PROVIDER_UNAVAILABLE, &e);
                login_free(l);
        }
        b->n_logins = 0;
}
