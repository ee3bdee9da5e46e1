/* SPDX-License-Identifier: MIT */
#include "broker/login.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "oidc/answer.h"
#include "oidc/log.h"
#include "oidc/secret.h"
#include "oidc/usermap.h"

/* How long an ended login is remembered, so a late caller hears LoginExpired. */
#define LOGIN_TOMBSTONE_MS (120 * 1000)

/* LK_LOGIN_ANSWERS_MAX in a static reason string of login_end(). */
#define STR(x) #x
#define NUMBER(x) STR(x)

int lk_login_check_claims(const struct lk_config *config, uid_t uid_min, const json_t *claims,
                          const char *user, uid_t uid, struct lk_error *e)
{
        _cleanup_free_ char *mapped = NULL;
        int r;

        r = lk_usermap(config, claims, &mapped, e);
        if (r < 0)
                return r;
        if (!streq(mapped, user))
                return lk_error_set(e, LK_ERR_USER_MISMATCH,
                                    "The provider signed in '%s', but this login is for '%s'",
                                    LK_ESCAPED(mapped), user);
        /* BeginLogin checked it already; the rule holds here too, for a refresh as well. */
        return lk_usermap_check_account(config, uid_min, user, uid, e);
}

static void login_wipe(struct lk_login *l)
{
        lk_authorization_free(l->auth);
        l->auth = NULL;
        lk_device_auth_clear(l->device);
        free(l->device);
        l->device = NULL;
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
        free(l->caller);
        free(l);
}

static void login_unlink(struct lk_logins *ls, struct lk_login *l)
{
        for (struct lk_login **p = &ls->list; *p; p = &(*p)->next)
                if (*p == l) {
                        *p = l->next;
                        l->next = NULL;
                        ls->n--;
                        return;
                }
}

/* A request for it is under way: it ends when that answers, not by its time. */
static bool login_busy(const struct lk_login *l)
{
        return l->state == LK_LOGIN_EXCHANGING || l->state == LK_LOGIN_STARTING;
}

/* Not ended: holds secrets or a grant; the broker does not exit while one is. */
static bool login_live(const struct lk_login *l, int64_t now)
{
        return login_busy(l) ||
               (l->state != LK_LOGIN_EXPIRED && now < l->expires_ms);
}

/* Waiting for its answer or exchanging it: what the pending caps count. */
static bool login_pending(const struct lk_login *l, int64_t now)
{
        return login_busy(l) ||
               (l->state == LK_LOGIN_PENDING && now < l->expires_ms);
}

static uid_t account_of(uid_t owner_uid, uid_t user_uid)
{
        return owner_uid == 0 ? user_uid : owner_uid;
}

uid_t lk_login_account(const struct lk_login *l)
{
        return account_of(l->owner_uid, l->user_uid);
}

/* Tells finished() once: done (user), or ended (r, e). */
static void login_report(struct lk_login *l, const char *user, int r, const struct lk_error *e)
{
        struct lk_logins *ls = l->owner;

        if (l->reported)
                return;
        l->reported = true;
        if (ls->finished)
                ls->finished(ls->userdata, l, user, r, e);
}

static int login_ended_error(struct lk_logins *ls, const struct lk_login *l, struct lk_error *e);

/* Ends l: its secrets go, what remains says why (why: a static string, NULL for its time). */
static void login_end(struct lk_login *l, const char *why)
{
        char fp[LK_FINGERPRINT_SIZE];
        struct lk_error e = {0};

        if (l->state == LK_LOGIN_EXPIRED)
                return;
        l->ended = why;
        login_report(l, NULL, login_ended_error(l->owner, l, &e), &e);
        lk_fingerprint(l->id, fp);
        lk_log_auth(LOG_INFO, "Login %s for %s (uid %u) begun by uid %u %s", fp, l->user,
                    (unsigned)l->user_uid, (unsigned)l->owner_uid, why ?: "expired");
        login_wipe(l);
        l->state = LK_LOGIN_EXPIRED;
        l->ended = why;
        l->expires_ms = l->owner->clock->mono_ms();
}

static void login_report_cancelled(struct lk_login *l)
{
        struct lk_error e = {0};

        login_report(l, NULL, lk_error_set(&e, LK_ERR_LOGIN_EXPIRED, "The login was cancelled"),
                     &e);
}

static int login_ended_error(struct lk_logins *ls, const struct lk_login *l, struct lk_error *e)
{
        if (l->ended)
                return lk_error_set(e, LK_ERR_LOGIN_EXPIRED, "This login %s; begin a new one",
                                    l->ended);
        if (l->flow == LK_FLOW_DEVICE)
                return lk_error_set(e, LK_ERR_LOGIN_EXPIRED,
                                    "The login has expired (its device code's lifetime or "
                                    "login_timeout); begin a new one");
        return lk_error_set(e, LK_ERR_LOGIN_EXPIRED,
                            "The login has expired (after %u s); begin a new one",
                            ls->config->login_timeout);
}

int lk_login_admit(struct lk_logins *ls, uid_t owner_uid, uid_t user_uid, struct lk_error *e)
{
        uid_t account = account_of(owner_uid, user_uid);
        int64_t now = ls->clock->mono_ms();
        unsigned mine = 0, all = 0;

        for (const struct lk_login *l = ls->list; l; l = l->next)
                if (login_pending(l, now)) {
                        all++;
                        if (lk_login_account(l) == account)
                                mine++;
                }
        if (mine >= LK_LOGINS_PER_USER_MAX)
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "Too many pending logins for uid %u (at most %d); complete or "
                                    "cancel one first",
                                    (unsigned)account, LK_LOGINS_PER_USER_MAX);
        if (all >= LK_LOGINS_MAX)
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "Too many pending logins (at most %d); try again later",
                                    LK_LOGINS_MAX);
        return 0;
}

/* A new login, not yet in the list: the caps, its id and its lifetime. */
static int login_new(struct lk_logins *ls, uid_t owner_uid, const char *user, uid_t user_uid,
                     const char *caller, struct lk_login **ret, struct lk_error *e)
{
        struct lk_login *l;
        int r;

        r = lk_login_admit(ls, owner_uid, user_uid, e);
        if (r < 0)
                return r;
        lk_logins_bound_ended(ls);

        l = calloc(1, sizeof(*l));
        if (!l)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        l->owner = ls;
        l->owner_uid = owner_uid;
        l->user_uid = user_uid;
        l->state = LK_LOGIN_PENDING;
        l->expires_ms = ls->clock->mono_ms() + (int64_t)ls->config->login_timeout * 1000;
        l->user = strdup(user);
        l->caller = caller ? strdup(caller) : NULL;
        if (!l->user || (caller && !l->caller)) {
                login_free(l);
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        r = lk_random_b64url(18, &l->id);
        if (r < 0) {
                login_free(l);
                return lk_error_set(e, r, "Cannot make a login id");
        }
        *ret = l;
        return 0;
}

static void login_link(struct lk_logins *ls, struct lk_login *l)
{
        char fp[LK_FINGERPRINT_SIZE];

        l->next = ls->list;
        ls->list = l;
        ls->n++;
        lk_fingerprint(l->id, fp);
        lk_log_auth(LOG_INFO, "Login %s begun for %s (uid %u) by uid %u with the %s flow%s", fp,
                    l->user, (unsigned)l->user_uid, (unsigned)l->owner_uid,
                    l->flow == LK_FLOW_DEVICE ? "device" : "code",
                    l->caller ? ", ending with its caller" : "");
}

int lk_login_begin(struct lk_logins *ls, uid_t owner_uid, const char *user, uid_t user_uid,
                   const char *caller, struct lk_login **ret, struct lk_error *e)
{
        const struct lk_endpoints *ep = ls->idp.ops->endpoints(ls->idp.idp);
        struct lk_login *l;
        int r;

        if (!ep)
                return lk_error_set(e, LK_ERR_PROVIDER_UNAVAILABLE,
                                    "The provider's endpoints are not known yet");
        r = login_new(ls, owner_uid, user, user_uid, caller, &l, e);
        if (r < 0)
                return r;
        l->flow = LK_FLOW_CODE;
        r = lk_authorization_new(ls->config, ep, user, &l->auth, e);
        if (r < 0) {
                login_free(l);
                return r;
        }
        login_link(ls, l);
        *ret = l;
        return 0;
}

static void on_device_authorized(void *userdata, struct lk_device_auth *auth,
                                 const struct lk_error *err)
{
        struct lk_login *l = userdata;
        struct lk_logins *ls = l->owner;
        lk_login_started_fn started = l->started;
        void *started_userdata = l->done_userdata;
        int64_t lifetime_ms;
        struct lk_error e = {0};
        char fp[LK_FINGERPRINT_SIZE];

        l->started = NULL;
        l->done_userdata = NULL;
        lk_fingerprint(l->id, fp);
        if (!auth || l->cancelled) {
                if (auth) {
                        lk_device_auth_clear(auth);
                        free(auth);
                        lk_error_set(&e, LK_ERR_LOGIN_EXPIRED, "The login was cancelled");
                } else if (err && err->code)
                        e = *err;
                else
                        lk_error_set(&e, LK_ERR_PROVIDER_UNAVAILABLE,
                                     "The device authorization failed");
                lk_log_auth(LOG_WARNING, "Login %s for %s: no device authorization: %s: %s", fp,
                            l->user, lk_err_name(e.code), e.message);
                /* Nobody knows its id yet: it goes, without a tombstone. */
                l->reported = true;
                lk_login_forget(ls, l);
                started(started_userdata, NULL, -e.code, &e);
                return;
        }
        l->device = auth;
        l->state = LK_LOGIN_PENDING;
        lifetime_ms = (int64_t)(auth->expires_in < ls->config->login_timeout
                                        ? auth->expires_in
                                        : ls->config->login_timeout) *
                      1000;
        l->expires_ms = ls->clock->mono_ms() + lifetime_ms;
        lk_log_auth(LOG_INFO, "Login %s for %s: device code issued, polling every %u s for %lld s",
                    fp, l->user, auth->interval, (long long)(lifetime_ms / 1000));
        started(started_userdata, l, 0, NULL);
}

int lk_login_begin_device(struct lk_logins *ls, uid_t owner_uid, const char *user,
                          uid_t user_uid, const char *caller, lk_login_started_fn started,
                          void *userdata, struct lk_error *e)
{
        const struct lk_endpoints *ep = ls->idp.ops->endpoints(ls->idp.idp);
        struct lk_login *l;
        int r;

        if (!ep)
                return lk_error_set(e, LK_ERR_PROVIDER_UNAVAILABLE,
                                    "The provider's endpoints are not known yet");
        if (!ep->device_authorization_endpoint || !ls->idp.ops->device_authorize)
                /* The admin's to fix; for the PAM stack, SSO is unavailable (fall back). */
                return lk_error_set(e, LK_ERR_PROVIDER_UNAVAILABLE,
                                    "flow = device, but the provider offers no device "
                                    "authorization endpoint (set [provider] "
                                    "device_authorization_endpoint, or flow = code)");
        r = login_new(ls, owner_uid, user, user_uid, caller, &l, e);
        if (r < 0)
                return r;
        l->flow = LK_FLOW_DEVICE;
        l->state = LK_LOGIN_STARTING;
        r = ls->idp.ops->device_authorize(ls->idp.idp, on_device_authorized, l);
        if (r < 0) {
                login_free(l);
                return lk_error_set(e, r, "Cannot start the device authorization");
        }
        l->started = started;
        l->done_userdata = userdata;
        login_link(ls, l);
        return 0;
}

const char *lk_login_url(const struct lk_login *l)
{
        if (l->device)
                return l->device->verification_uri_complete ?: l->device->verification_uri;
        return l->auth ? l->auth->url : NULL;
}

unsigned lk_login_seconds_left(const struct lk_logins *ls, const struct lk_login *l)
{
        int64_t left = l->expires_ms - ls->clock->mono_ms();

        if (l->state == LK_LOGIN_EXPIRED || left <= 0)
                return 0;
        return (unsigned)((left + 999) / 1000);
}

struct lk_login *lk_login_find(struct lk_logins *ls, const char *id)
{
        for (struct lk_login *l = ls->list; l; l = l->next)
                if (!l->cancelled && l->state != LK_LOGIN_STARTING && streq(l->id, id))
                        return l;
        return NULL;
}

struct lk_login *lk_login_find_by_state(struct lk_logins *ls, const char *state)
{
        struct lk_login *found = NULL;

        for (struct lk_login *l = ls->list; l; l = l->next)
                if (!l->cancelled && l->auth && l->auth->state &&
                    lk_secret_equal(l->auth->state, state) && !found)
                        found = l;
        return found;
}

/*
 * The exchange failed without the provider judging the code: it was not reached, answered
 * nothing usable, asked us to wait, or we failed here. Anything else is its refusal.
 */
static bool exchange_may_retry(int code)
{
        return code == LK_ERR_PROVIDER_UNAVAILABLE || code == LK_ERR_PROVIDER_RESPONSE ||
               code == LK_ERR_TOO_MANY_REQUESTS || code == LK_ERR_NOMEM || code == LK_ERR_IO;
}

/* A failed answer (r, e): the login ends when it may take no other, and says so with e. */
static void login_answer_failed(struct lk_login *l, bool may_retry, int r, const struct lk_error *e)
{
        if (!may_retry || l->answers >= LK_LOGIN_ANSWERS_MAX)
                login_report(l, NULL, r, e);
        if (!may_retry)
                login_end(l, "ended after a refused answer");
        else if (l->answers >= LK_LOGIN_ANSWERS_MAX)
                login_end(l, "ended after " NUMBER(LK_LOGIN_ANSWERS_MAX) " answers");
}

int lk_login_finish(struct lk_login *l, struct lk_grant *grant, const struct lk_error *err,
                    struct lk_error *e)
{
        struct lk_logins *ls = l->owner;
        char fp[LK_FINGERPRINT_SIZE], afp[LK_FINGERPRINT_SIZE];
        json_t *sub;
        int r;

        lk_fingerprint(l->id, fp);
        if (!grant) {
                if (err && err->code)
                        *e = *err;
                else
                        lk_error_set(e, LK_ERR_PROVIDER_UNAVAILABLE, "The code exchange failed");
                lk_log_auth(LOG_WARNING, "Login %s for %s: %s failed: %s: %s", fp, l->user,
                            l->flow == LK_FLOW_DEVICE ? "the device grant" : "code exchange",
                            lk_err_name(e->code), e->message);
                /* A refusal ends the login; a provider that could not judge the code does not. */
                login_answer_failed(l, l->flow == LK_FLOW_CODE && exchange_may_retry(e->code),
                                    -e->code, e);
                return -e->code;
        }
        if (!grant->claims)
                r = lk_error_set(e, LK_ERR_INVALID_ID_TOKEN, "The provider sent no id_token");
        else
                r = lk_login_check_claims(ls->config, ls->uid_min, grant->claims, l->user,
                                          l->user_uid, e);
        if (r == 0) /* a provider account is made or brought up to date (issue 20) */
                r = lk_accounts_signed_in(ls->accounts, l->user, l->user_uid, grant->claims, e);
        if (r < 0) {
                lk_grant_free(grant);
                lk_log_auth(LOG_WARNING, "Login %s for %s refused: %s: %s", fp, l->user,
                            lk_err_name(r), e->message);
                login_answer_failed(l, false, r, e);
                return r;
        }

        lk_authorization_free(l->auth);
        l->auth = NULL;
        lk_device_auth_clear(l->device);
        free(l->device);
        l->device = NULL;
        l->grant = grant;
        l->state = LK_LOGIN_DONE;
        l->expires_ms = ls->clock->mono_ms() + (int64_t)ls->config->login_timeout * 1000;
        lk_logins_bound_done(ls, l);
        /* The callers wait for the answer, not for the log line: answer first. */
        login_report(l, l->user, 0, NULL);
        sub = json_object_get(grant->claims, "sub");
        lk_fingerprint(grant->tokens.access_token, afp);
        lk_log_auth(LOG_NOTICE,
                    "Login %s: %s (uid %u) signed in at the provider as sub %s; "
                    "access token %s",
                    fp, l->user, (unsigned)l->user_uid,
                    json_is_string(sub) ? LK_ESCAPED(json_string_value(sub)) : "?", afp);
        return 0;
}

static void on_exchanged(void *userdata, struct lk_grant *grant, const struct lk_error *err)
{
        struct lk_login *l = userdata;
        struct lk_logins *ls = l->owner;
        lk_login_done_fn done = l->done;
        void *done_userdata = l->done_userdata;
        struct lk_error e = {0};
        int r;

        ls->exchanging--;
        l->done = NULL;
        l->done_userdata = NULL;

        if (l->cancelled) {
                lk_grant_free(grant);
                login_unlink(ls, l);
                login_free(l);
                lk_error_set(&e, LK_ERR_NOT_FOUND, "The login was cancelled");
                if (done)
                        done(done_userdata, NULL, -LK_ERR_NOT_FOUND, &e);
                return;
        }
        l->state = LK_LOGIN_PENDING;
        r = lk_login_finish(l, grant, err, &e);
        if (done)
                done(done_userdata, r < 0 ? NULL : l->user, r, r < 0 ? &e : NULL);
}

int lk_login_check_live(struct lk_logins *ls, struct lk_login *l, struct lk_error *e)
{
        if (!login_busy(l) && ls->clock->mono_ms() >= l->expires_ms)
                login_end(l, l->state == LK_LOGIN_DONE ? "expired before its session was opened"
                                                       : NULL);
        if (l->state == LK_LOGIN_EXPIRED)
                return login_ended_error(ls, l, e);
        return 0;
}

int lk_login_check_pending(struct lk_logins *ls, struct lk_login *l, struct lk_error *e)
{
        if (!login_busy(l) && ls->clock->mono_ms() >= l->expires_ms)
                login_end(l, NULL);
        switch (l->state) {
        case LK_LOGIN_EXPIRED:
                return login_ended_error(ls, l, e);
        case LK_LOGIN_EXCHANGING:
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "This login is already being completed");
        case LK_LOGIN_DONE:
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "This login is already complete");
        case LK_LOGIN_STARTING:
        case LK_LOGIN_PENDING:
                break;
        }
        return 0;
}

int lk_login_complete(struct lk_logins *ls, struct lk_login *l, const char *answer,
                      lk_login_done_fn done, void *userdata, struct lk_error *e)
{
        const struct lk_endpoints *ep;
        _cleanup_secret_ char *code = NULL;
        int r;

        r = lk_login_check_pending(ls, l, e);
        if (r < 0)
                return r;

        if (l->flow == LK_FLOW_DEVICE)
                /* Nothing to paste: the broker polls (WaitLogin waits for it). */
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "This login uses the device flow: sign in at the address "
                                    "shown, then just wait (nothing to paste)");
        /* Every answer counts, so that no login makes the provider judge codes without end. */
        l->answers++;
        ep = ls->idp.ops->endpoints(ls->idp.idp);
        r = lk_answer_parse(answer, l->auth->state, ls->config->issuer, ep && ep->iss_parameter,
                            &code, e);
        if (r < 0) {
                /* error= on the callback: the provider (or the person) said no. */
                if (r == -LK_ERR_ACCESS_DENIED_BY_USER) {
                        login_report(l, NULL, r, e);
                        login_end(l, "was refused at the provider");
                } else {
                        login_answer_failed(l, true, r, e);
                }
                return r;
        }
        r = ls->idp.ops->exchange_code(ls->idp.idp, code, l->auth->verifier, l->auth->nonce,
                                      on_exchanged, l);
        if (r < 0) {
                lk_error_set(e, r, "Cannot start the code exchange");
                login_answer_failed(l, true, r, e);
                return r;
        }
        l->state = LK_LOGIN_EXCHANGING;
        l->done = done;
        l->done_userdata = userdata;
        ls->exchanging++;
        return 0;
}

int lk_login_check_done(struct lk_logins *ls, struct lk_login *l, struct lk_error *e)
{
        if (l->state == LK_LOGIN_DONE && ls->clock->mono_ms() >= l->expires_ms)
                login_end(l, "expired before its session was opened");
        switch (l->state) {
        case LK_LOGIN_DONE:
                return 0;
        case LK_LOGIN_EXPIRED:
                return login_ended_error(ls, l, e);
        default:
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "The login is not complete yet (CompleteLogin first)");
        }
}

struct lk_grant *lk_login_take_grant(struct lk_login *l)
{
        return TAKE_PTR(l->grant);
}

void lk_login_forget(struct lk_logins *ls, struct lk_login *l)
{
        login_unlink(ls, l);
        login_free(l);
}

void lk_login_cancel(struct lk_logins *ls, struct lk_login *l)
{
        char fp[LK_FINGERPRINT_SIZE];

        lk_fingerprint(l->id, fp);
        lk_log_auth(LOG_INFO, "Login %s for %s cancelled", fp, l->user);
        login_report_cancelled(l);
        if (l->state == LK_LOGIN_EXCHANGING) {
                /* The exchange still points at it (and its nonce): the callback frees it. */
                l->cancelled = true;
                return;
        }
        login_unlink(ls, l);
        login_free(l);
}

void lk_logins_bound_done(struct lk_logins *ls, struct lk_login *l)
{
        uid_t account = lk_login_account(l);
        struct lk_login *oldest_mine = NULL, *oldest = NULL;
        unsigned mine = 0, all = 0;

        /* Newest first: the last one seen is the oldest. */
        for (struct lk_login *x = ls->list; x; x = x->next)
                if (x != l && x->state == LK_LOGIN_DONE) {
                        all++;
                        oldest = x;
                        if (lk_login_account(x) == account) {
                                mine++;
                                oldest_mine = x;
                        }
                }
        if (mine >= LK_LOGINS_DONE_PER_USER_MAX)
                login_end(oldest_mine, "was dropped for newer completed logins of its user");
        else if (all >= LK_LOGINS_DONE_MAX)
                login_end(oldest, "was dropped for newer completed logins");
}

void lk_logins_bound_ended(struct lk_logins *ls)
{
        unsigned ended = 0;

        /* Newest first: those beyond the cap are the oldest. */
        for (struct lk_login **p = &ls->list; *p;) {
                struct lk_login *l = *p;

                if (l->state == LK_LOGIN_EXPIRED && ++ended > LK_LOGINS_ENDED_MAX) {
                        *p = l->next;
                        ls->n--;
                        login_free(l);
                        continue;
                }
                p = &l->next;
        }
}

void lk_logins_caller_left(struct lk_logins *ls, const char *name)
{
        for (struct lk_login *l = ls->list; l; l = l->next) {
                if (!l->caller || !streq(l->caller, name) || l->cancelled)
                        continue;
                if (l->state == LK_LOGIN_PENDING) {
                        login_report_cancelled(l);
                        login_end(l, "ended when its caller left the bus");
                } else if (login_busy(l)) {
                        char fp[LK_FINGERPRINT_SIZE];

                        /* The exchange frees it, as for CancelLogin; its CompleteLogin hears. */
                        login_report_cancelled(l);
                        l->cancelled = true;
                        lk_fingerprint(l->id, fp);
                        lk_log_auth(LOG_INFO, "Login %s for %s cancelled: its caller left the bus",
                                    fp, l->user);
                }
        }
}

unsigned lk_logins_sweep(struct lk_logins *ls)
{
        int64_t now = ls->clock->mono_ms();
        unsigned live = 0;

        for (struct lk_login **p = &ls->list; *p;) {
                struct lk_login *l = *p;

                if (!login_busy(l) && now >= l->expires_ms)
                        login_end(l, l->state == LK_LOGIN_DONE
                                         ? "expired before its session was opened"
                                         : NULL);
                if (l->state == LK_LOGIN_EXPIRED && now >= l->expires_ms + LOGIN_TOMBSTONE_MS) {
                        *p = l->next;
                        ls->n--;
                        login_free(l);
                        continue;
                }
                if (login_live(l, now))
                        live++;
                p = &l->next;
        }
        lk_logins_bound_ended(ls);
        return live;
}

void lk_logins_free_all(struct lk_logins *ls)
{
        struct lk_error e = {0};

        lk_error_set(&e, LK_ERR_PROVIDER_UNAVAILABLE, "The broker is shutting down");
        while (ls->list) {
                struct lk_login *l = ls->list;
                ls->list = l->next;
                /* An exchange cut short: its caller still gets an answer. */
                if (l->done)
                        l->done(l->done_userdata, NULL, -LK_ERR_PROVIDER_UNAVAILABLE, &e);
                if (l->started)
                        l->started(l->done_userdata, NULL, -LK_ERR_PROVIDER_UNAVAILABLE, &e);
                if (!l->cancelled)
                        login_report(l, NULL, -LK_ERR_PROVIDER_UNAVAILABLE, &e);
                login_free(l);
        }
        ls->n = 0;
}
