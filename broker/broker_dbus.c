/* SPDX-License-Identifier: MIT */
/*
 * The D-Bus face of the broker: one row per method with all of its policy (who may call,
 * the object it acts on, what it needs, its argument caps), one dispatcher that applies the
 * rows, and handlers that only act and reply.
 *
 * A call's way (after bus.c checked its size, signature and caps and found its caller's uid):
 *   1. its arguments are read (strings, options);
 *   2. a call that picks among every session (SESSIONS: the caller's newest, ListSessions)
 *      waits, parked, until they are all read;
 *   3. its object is resolved, and the row's "who" applied to the uid it belongs to: "not
 *      found" and "not yours" are one answer, so no uid learns about others' logins and
 *      sessions (a user name is no secret: BeginLogin says "may not" for it);
 *   4. its needs are checked; one not met yet (the provider's endpoints) parks the call in
 *      bus.c's queue, and when it is met the call goes on from here, not from step 1 again;
 *   5. its handler acts and replies; a "once" row then forgets the login it used.
 */
#include "broker/broker_dbus.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/accounts.h"
#include "broker/budget.h"
#include "broker/device_poll.h"
#include "broker/offline.h"
#include "broker/reach.h"
/* lk_interface_xml[]: dbus/org.latchkey.Broker1.xml, embedded at build time */
#include "broker/introspect-xml.h"
#include "broker/login.h"
#include "broker/session.h"
#include "oidc/log.h"
#include "oidc/secret.h"
#include "oidc/usermap.h"

/* Who may call: compared with the uid the object belongs to (its subject). */
enum who {
        ANYONE,          /* no caller lookup */
        ROOT,            /* root alone */
        ROOT_OR_SUBJECT, /* root, or the subject */
        SUBJECT,         /* only the subject, root included */
};

/* The object a method acts on, and so its subject. */
enum object {
        NOTHING,
        USER_ARG,     /* the local user named by the first argument: its uid */
        LOGIN_OWNER,  /* the login of the first argument: the uid that began it */
        LOGIN_USER,   /* the login of the first argument: the uid of the user it is for */
        SESSION_ARG,  /* the session of the first argument: its owner */
        SESSION_OPT,  /* the session of option session_id, else the caller's newest */
        EACH_SESSION, /* every session, each filtered by who */
};

/* What a method needs before its handler runs. */
enum {
        ACCOUNT = 1 << 0,       /* USER_ARG: a user [users] lets log in here (no system account) */
        LOGIN_PENDING = 1 << 1, /* the login waits for its answer */
        LOGIN_DONE = 1 << 2,    /* the login holds a grant */
        ONCE = 1 << 3,          /* the login, once its grant is used, is forgotten */
        PROVIDER = 1 << 4,      /* the provider's endpoints: parks the call until they come */
        SESSIONS = 1 << 5,      /* every session of the last run read, when it picks among them
                                 * (the caller's newest, each session): parks it till then */
        ID_FREE = 1 << 6,       /* the new session id (second argument) is free or already the
                                 * login user's, who has fewer than LK_SESSIONS_PER_UID_MAX */
        BUDGET = 1 << 7,        /* one token-endpoint request from the budget (budget.h) of the
                                 * caller, or when root calls (sshd, login, greeters) of the
                                 * login's user: taken last, given back if none is sent */
};

/* Where a parked call waits (bus.h's needs), and how far its dispatch got. */
#define PARK_PROVIDER LK_BROKER_PARK_PROVIDER
#define PARK_SESSIONS LK_BROKER_PARK_SESSIONS
enum { STEP_START, STEP_PROVIDER };

/* What the dispatcher found for a handler. */
struct target {
        const char *arg[2]; /* the string arguments, in order; they point into the message */
        struct lk_options o;
        uid_t subject;
        const char *user; /* USER_ARG */
        struct lk_login *login;
        struct lk_session *session;
        uid_t budget_uid; /* BUDGET: whose request it is */
};

/*
 * Returns 0 when it has replied, LK_CALL_LATER when it kept a reference to call (lk_call_ref)
 * and will reply later, or a negative LK_ERR_* with e set: the dispatcher then replies with
 * the matching error.
 */
#define LK_CALL_LATER 1
typedef int (*handler_fn)(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                          struct lk_error *e);

struct lk_method {
        struct lk_bus_method bus;
        enum who who;
        enum object object;
        unsigned needs;
        handler_fn handler;
};

static const struct lk_method *method_of(const struct lk_call *c)
{
        return (const struct lk_method *)c->method; /* bus is its first member */
}

static bool may_act(const struct lk_call *c, uid_t subject)
{
        switch (method_of(c)->who) {
        case ANYONE:
                return true;
        case ROOT:
                return c->uid == 0;
        case ROOT_OR_SUBJECT:
                return c->uid == 0 || c->uid == subject;
        case SUBJECT:
                return c->uid == subject;
        }
        return false;
}

int lk_options_parse(DBusMessageIter *array, struct lk_options *ret, struct lk_error *e)
{
        struct lk_options o = {0};
        DBusMessageIter dict;

        if (dbus_message_iter_get_arg_type(array) != DBUS_TYPE_ARRAY)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "options must be a{sv}");
        dbus_message_iter_recurse(array, &dict);
        for (; dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY;
             dbus_message_iter_next(&dict)) {
                DBusMessageIter entry, variant;
                const char *key;
                int type;

                dbus_message_iter_recurse(&dict, &entry);
                dbus_message_iter_get_basic(&entry, &key);
                dbus_message_iter_next(&entry);
                dbus_message_iter_recurse(&entry, &variant);
                type = dbus_message_iter_get_arg_type(&variant);

                if (streq(key, "session_id")) {
                        const char *v;
                        int r;
                        if (type != DBUS_TYPE_STRING)
                                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                                    "option session_id must be a string (s)");
                        dbus_message_iter_get_basic(&variant, &v);
                        r = lk_arg_check(v, LK_ARG_ID_MAX, "option session_id", e);
                        if (r < 0)
                                return r;
                        o.session_id = v;
                } else if (streq(key, "min_valid")) {
                        if (type != DBUS_TYPE_UINT32)
                                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                                    "option min_valid must be a uint32 (u)");
                        dbus_message_iter_get_basic(&variant, &o.min_valid);
                } else if (streq(key, "end_with_caller")) {
                        dbus_bool_t v;
                        if (type != DBUS_TYPE_BOOLEAN)
                                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                                    "option end_with_caller must be a boolean (b)");
                        dbus_message_iter_get_basic(&variant, &v);
                        o.end_with_caller = v;
                } else if (streq(key, "offline") || streq(key, "probe")) {
                        dbus_bool_t v;
                        if (type != DBUS_TYPE_BOOLEAN)
                                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                                    "option %s must be a boolean (b)", key);
                        dbus_message_iter_get_basic(&variant, &v);
                        *(streq(key, "offline") ? &o.offline : &o.probe) = v;
                } else if (streq(key, "scope") || streq(key, "audience")) {
                        const char *v;
                        char what[32];
                        int r;

                        snprintf(what, sizeof(what), "option %s", key);
                        if (type != DBUS_TYPE_STRING)
                                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                                    "%s must be a string (s)", what);
                        dbus_message_iter_get_basic(&variant, &v);
                        r = lk_arg_check(v, LK_ARG_ID_MAX, what, e);
                        if (r < 0)
                                return r;
                        *(key[0] == 's' ? &o.scope : &o.audience) = v;
                }
                /* Unknown options are ignored (SPEC §4). */
        }
        *ret = o;
        return 0;
}

static int reply_args(struct lk_call *call, int first_type, ...)
{
        DBusMessage *reply = lk_call_new_return(call);
        va_list ap;
        bool ok;

        if (!reply)
                return -LK_ERR_NOMEM;
        va_start(ap, first_type);
        ok = first_type == DBUS_TYPE_INVALID ||
             dbus_message_append_args_valist(reply, first_type, ap);
        va_end(ap);
        if (!ok) {
                dbus_message_unref(reply);
                return -LK_ERR_NOMEM;
        }
        lk_call_reply(call, reply);
        return 0;
}

/* ---- the handlers: act and reply ---- */

struct device_begin {
        struct lk_broker_dbus *d;
        struct lk_call *call;
};

static void on_device_started(void *userdata, struct lk_login *l, int r, const struct lk_error *e)
{
        struct device_begin *x = userdata;
        struct lk_broker_dbus *d = x->d;
        _cleanup_(lk_call_unrefp) struct lk_call *call = x->call;
        struct lk_error pe = {0};
        const char *url;

        free(x);
        if (r < 0) {
                lk_call_reply_error(call, r, e);
                return;
        }
        r = lk_device_poll_start(d->polls, l, &pe);
        if (r < 0) {
                lk_login_cancel(d->logins, l);
                lk_call_reply_error(call, r, &pe);
                return;
        }
        url = lk_login_url(l);
        if (reply_args(call, DBUS_TYPE_STRING, &l->id, DBUS_TYPE_STRING, &url,
                       DBUS_TYPE_INVALID) < 0)
                lk_call_reply(call, NULL);
}

/*
 * The device flow: the device authorization first (one request from the budget of the
 * account the login counts against, not given back: it is no sign-in), then the reply.
 */
static int begin_device_login(struct lk_broker_dbus *d, struct lk_call *call,
                              const struct target *t, struct lk_error *e)
{
        uid_t account = call->uid == 0 ? t->subject : call->uid;
        struct device_begin *x;
        int r;

        r = lk_budget_take(d->budget, account, d->clock->mono_ms(), e);
        if (r < 0)
                return r;
        x = calloc(1, sizeof(*x));
        if (!x) {
                lk_budget_refund(d->budget, account);
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        *x = (struct device_begin){.d = d, .call = lk_call_ref(call)};
        r = lk_login_begin_device(d->logins, call->uid, t->user, t->subject,
                                  t->o.end_with_caller ? dbus_message_get_sender(call->msg) : NULL,
                                  on_device_started, x, e);
        if (r < 0) {
                lk_budget_refund(d->budget, account);
                lk_call_unref(x->call);
                free(x);
                return r;
        }
        return LK_CALL_LATER;
}

static int begin_login(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                       struct lk_error *e)
{
        struct lk_login *l;
        int r;

        if (lk_endpoints_flow(d->config, d->idp.ops->endpoints(d->idp.idp)) == LK_FLOW_DEVICE)
                return begin_device_login(d, call, t, e);
        r = lk_login_begin(d->logins, call->uid, t->user, t->subject,
                           t->o.end_with_caller ? dbus_message_get_sender(call->msg) : NULL, &l,
                           e);
        if (r < 0)
                return r;
        return reply_args(call, DBUS_TYPE_STRING, &l->id, DBUS_TYPE_STRING, &l->auth->url,
                          DBUS_TYPE_INVALID);
}

struct login_done {
        struct lk_budget *budget;
        struct lk_offline *offline;
        struct lk_call *call;
        uid_t budget_uid;
        uid_t user_uid;
};

static void on_login_done(void *userdata, const char *user, int r, const struct lk_error *e)
{
        struct login_done *x = userdata;
        _cleanup_(lk_call_unrefp) struct lk_call *call = x->call;

        /* A granted code was a real sign-in: only refused and failed requests spend. */
        if (r >= 0) {
                lk_budget_refund(x->budget, x->budget_uid);
                /* An online sign-in: the offline PIN's window starts again. */
                lk_offline_note_online(x->offline, x->user_uid, user);
        }
        free(x);
        if (r < 0)
                lk_call_reply_error(call, r, e);
        else if (reply_args(call, DBUS_TYPE_STRING, &user, DBUS_TYPE_INVALID) < 0)
                lk_call_reply(call, NULL);
}

static int complete_login(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                          struct lk_error *e)
{
        struct login_done *x;
        int r;

        x = calloc(1, sizeof(*x));
        if (!x)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        *x = (struct login_done){.budget = d->budget, .offline = d->offline, .call = call,
                                 .budget_uid = t->budget_uid, .user_uid = t->login->user_uid};
        r = lk_login_complete(d->logins, t->login, t->arg[1], on_login_done, x, e);
        if (r < 0) {
                /* Nothing was sent: the dispatcher gives the budget back. */
                free(x);
                return r;
        }
        lk_call_ref(call);
        return LK_CALL_LATER;
}

/* a{sv} entries of GetLoginInfo */
static bool info_string(DBusMessageIter *dict, const char *key, const char *value)
{
        DBusMessageIter entry, v;

        return dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry) &&
               dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key) &&
               dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "s", &v) &&
               dbus_message_iter_append_basic(&v, DBUS_TYPE_STRING, &value) &&
               dbus_message_iter_close_container(&entry, &v) &&
               dbus_message_iter_close_container(dict, &entry);
}

static bool info_basic(DBusMessageIter *dict, const char *key, int type, const void *value)
{
        char sig[2] = {(char)type, 0};
        DBusMessageIter entry, v;

        return dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry) &&
               dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key) &&
               dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, sig, &v) &&
               dbus_message_iter_append_basic(&v, type, value) &&
               dbus_message_iter_close_container(&entry, &v) &&
               dbus_message_iter_close_container(dict, &entry);
}

static int get_login_info(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                          struct lk_error *e)
{
        struct lk_login *l = t->login;
        const char *url = lk_login_url(l);
        uint32_t left = lk_login_seconds_left(d->logins, l);
        dbus_bool_t callback = l->flow == LK_FLOW_CODE && d->callback_listener;
        DBusMessageIter it, dict;
        DBusMessage *reply;
        bool ok;
        int r;

        r = lk_login_check_live(d->logins, l, e);
        if (r < 0)
                return r;
        reply = lk_call_new_return(call);
        if (!reply)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        dbus_message_iter_init_append(reply, &it);
        ok = dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict) &&
             info_string(&dict, "flow", l->flow == LK_FLOW_DEVICE ? "device" : "code") &&
             info_string(&dict, "state", l->state == LK_LOGIN_DONE ? "done" : "pending") &&
             info_basic(&dict, "seconds_left", DBUS_TYPE_UINT32, &left) &&
             info_basic(&dict, "callback", DBUS_TYPE_BOOLEAN, &callback) &&
             (!url || info_string(&dict, "url", url));
        if (ok && l->device) {
                uint32_t interval = l->device->interval;

                ok = info_string(&dict, "user_code", l->device->user_code) &&
                     info_basic(&dict, "interval", DBUS_TYPE_UINT32, &interval);
        }
        ok = ok && dbus_message_iter_close_container(&it, &dict);
        if (!ok) {
                dbus_message_unref(reply);
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        lk_call_reply(call, reply);
        return 0;
}

static int wait_login(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                      struct lk_error *e)
{
        struct lk_login *l = t->login;
        int r;

        r = lk_login_check_live(d->logins, l, e);
        if (r < 0)
                return r;
        if (l->state == LK_LOGIN_DONE)
                return reply_args(call, DBUS_TYPE_STRING, &l->user, DBUS_TYPE_INVALID);
        if (l->n_waiting >= LK_LOGIN_WAITERS_MAX)
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "Already %d calls wait for this login", LK_LOGIN_WAITERS_MAX);
        l->waiting[l->n_waiting++] = lk_call_ref(call);
        return LK_CALL_LATER;
}

void lk_broker_login_finished(struct lk_login *l, const char *user, int r,
                              const struct lk_error *e)
{
        unsigned n = l->n_waiting;

        l->n_waiting = 0;
        for (unsigned i = 0; i < n; i++) {
                _cleanup_(lk_call_unrefp) struct lk_call *call = l->waiting[i];

                l->waiting[i] = NULL;
                if (r < 0)
                        lk_call_reply_error(call, r, e);
                else if (reply_args(call, DBUS_TYPE_STRING, &user, DBUS_TYPE_INVALID) < 0)
                        lk_call_reply(call, NULL);
        }
}

static int forget_account(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                          struct lk_error *e)
{
        int r = lk_accounts_forget(d->accounts, t->arg[0], e);

        return r < 0 ? r : reply_args(call, DBUS_TYPE_INVALID);
}

static int cancel_login(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                        struct lk_error *e)
{
        lk_login_cancel(d->logins, t->login);
        return reply_args(call, DBUS_TYPE_INVALID);
}

static int open_session(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                        struct lk_error *e)
{
        struct lk_login *l = t->login;
        int r;

        r = lk_session_open(d->sessions, t->arg[1], l->user, l->user_uid, lk_login_take_grant(l),
                            e);
        if (r < 0)
                return r;
        return reply_args(call, DBUS_TYPE_INVALID);
}

static int close_session(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                         struct lk_error *e)
{
        lk_session_close(d->sessions, t->session);
        return reply_args(call, DBUS_TYPE_INVALID);
}

/*
 * GetToken's answer (s access_token, x expires_at, s token_type), built once per set of
 * tokens and kept in the session: libdbus rewrites the signature header for every
 * argument appended, which cost more than the rest of a GetToken. Each call copies it
 * and addresses the copy.
 */
static DBusMessage *token_reply(struct lk_call *call, struct lk_session *s)
{
        const char *token = s->tokens.access_token;
        const char *type = s->tokens.token_type ?: "Bearer";
        dbus_int64_t expires_at = s->tokens.expires_at;
        const char *sender = dbus_message_get_sender(call->msg);
        DBusMessage *reply;

        if (!s->token_reply) {
                DBusMessage *t = dbus_message_new(DBUS_MESSAGE_TYPE_METHOD_RETURN);
                if (!t || !dbus_message_append_args(t, DBUS_TYPE_STRING, &token, DBUS_TYPE_INT64,
                                                    &expires_at, DBUS_TYPE_STRING, &type,
                                                    DBUS_TYPE_INVALID)) {
                        if (t)
                                dbus_message_unref(t);
                        return NULL;
                }
                s->token_reply = t;
        }
        reply = dbus_message_copy(s->token_reply);
        if (!reply)
                return NULL;
        /* What dbus_message_new_method_return() would have set. */
        dbus_message_set_no_reply(reply, TRUE);
        if (!dbus_message_set_reply_serial(reply, dbus_message_get_serial(call->msg)) ||
            (sender && !dbus_message_set_destination(reply, sender))) {
                dbus_message_unref(reply);
                return NULL;
        }
        return reply;
}

static int reply_token(struct lk_call *call, struct lk_session *s)
{
        const char *token = s->tokens.access_token;
        DBusMessage *reply;

        if (lk_log_debug_enabled()) {
                char fp[LK_FINGERPRINT_SIZE];
                lk_fingerprint(token, fp);
                log_debug("GetToken by uid %u: session %s, access token %s", (unsigned)call->uid,
                          s->id, fp);
        }
        reply = token_reply(call, s);
        if (!reply)
                return -LK_ERR_NOMEM;
        lk_call_reply(call, reply);
        return 0;
}

static void on_token(void *userdata, struct lk_session *s, int r, const struct lk_error *e)
{
        _cleanup_(lk_call_unrefp) struct lk_call *call = userdata;

        if (r < 0)
                lk_call_reply_error(call, r, e);
        else if (reply_token(call, s) < 0)
                lk_call_reply(call, NULL);
}

/* GetToken with scope or audience: the answer is built for each call (no cached reply). */
static int reply_scoped_token(struct lk_call *call, const struct lk_tokens *t)
{
        const char *type = t->token_type ?: "Bearer";
        dbus_int64_t expires_at = t->expires_at;

        if (lk_log_debug_enabled()) {
                char fp[LK_FINGERPRINT_SIZE];
                lk_fingerprint(t->access_token, fp);
                log_debug("GetToken by uid %u: narrower access token %s", (unsigned)call->uid,
                          fp);
        }
        return reply_args(call, DBUS_TYPE_STRING, &t->access_token, DBUS_TYPE_INT64, &expires_at,
                          DBUS_TYPE_STRING, &type, DBUS_TYPE_INVALID);
}

static void on_scoped_token(void *userdata, const struct lk_tokens *t, int r,
                            const struct lk_error *e)
{
        _cleanup_(lk_call_unrefp) struct lk_call *call = userdata;

        if (r < 0)
                lk_call_reply_error(call, r, e);
        else if (reply_scoped_token(call, t) < 0)
                lk_call_reply(call, NULL);
}

static int get_scoped_token(struct lk_broker_dbus *d, struct lk_call *call,
                            const struct target *t, struct lk_error *e)
{
        const struct lk_tokens *tokens = NULL;
        int r;

        r = lk_session_get_token_for(d->sessions, t->session, t->o.scope, t->o.audience,
                                     t->o.min_valid, on_scoped_token, lk_call_ref(call), &tokens,
                                     e);
        if (r == LK_SESSION_LATER)
                return LK_CALL_LATER;
        lk_call_unref(call);
        if (r < 0)
                return r;
        return reply_scoped_token(call, tokens);
}

static int get_token(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                     struct lk_error *e)
{
        int r;

        if (!isempty(t->o.scope) || !isempty(t->o.audience))
                return get_scoped_token(d, call, t, e);

        r = lk_session_get_token(d->sessions, t->session, t->o.min_valid, on_token,
                                 lk_call_ref(call), e);
        if (r == LK_SESSION_LATER)
                return LK_CALL_LATER;
        lk_call_unref(call);
        if (r < 0)
                return r;
        return reply_token(call, t->session);
}

static int get_claims(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                      struct lk_error *e)
{
        const json_t *claims = t->session->claims;
        _cleanup_free_ char *json = NULL;

        json = claims ? json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
        if (!json)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        return reply_args(call, DBUS_TYPE_STRING, &json, DBUS_TYPE_INVALID);
}

static int list_sessions(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                         struct lk_error *e)
{
        DBusMessage *reply;
        DBusMessageIter it, array;
        bool ok;

        reply = lk_call_new_return(call);
        if (!reply)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        dbus_message_iter_init_append(reply, &it);
        ok = dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "(ssuxx)", &array);
        for (struct lk_session *s = d->sessions->list; ok && s; s = s->next) {
                DBusMessageIter st;
                dbus_uint32_t uid = s->uid;
                dbus_int64_t opened = s->opened_at, expires = s->tokens.expires_at;

                if (!may_act(call, s->uid))
                        continue;
                ok = dbus_message_iter_open_container(&array, DBUS_TYPE_STRUCT, NULL, &st) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_STRING, &s->id) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_STRING, &s->user) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_UINT32, &uid) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_INT64, &opened) &&
                     dbus_message_iter_append_basic(&st, DBUS_TYPE_INT64, &expires) &&
                     dbus_message_iter_close_container(&array, &st);
        }
        ok = ok && dbus_message_iter_close_container(&it, &array);
        if (!ok) {
                dbus_message_unref(reply);
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        lk_call_reply(call, reply);
        return 0;
}

/* ---- the offline PIN (offline.c decides, pin_worker.c hashes off the loop) ---- */

struct pin_job {
        struct lk_broker_dbus *d;
        struct lk_call *call;
        uid_t uid;
        char *user;
        int64_t online_at; /* SetPin, ChangePin: the record's online sign-in (0: keep) */
        char *pin;         /* CheckPin: kept while the provider is probed */
};

static void pin_job_free(struct pin_job *x)
{
        lk_call_unref(x->call);
        free(x->user);
        lk_secret_free(x->pin);
        free(x);
}

static struct pin_job *pin_job_new(struct lk_broker_dbus *d, struct lk_call *call, uid_t uid,
                                   const char *user, const char *pin)
{
        struct pin_job *x = calloc(1, sizeof(*x));

        if (!x)
                return NULL;
        *x = (struct pin_job){.d = d, .call = lk_call_ref(call), .uid = uid};
        x->user = strdup(user);
        x->pin = pin ? strdup(pin) : NULL;
        if (!x->user || (pin && !x->pin)) {
                pin_job_free(x);
                return NULL;
        }
        return x;
}

/* libdbus frees a message's buffer without wiping it: the PIN's bytes go once copied. */
static void wipe_arg(const char *s)
{
        if (s)
                explicit_bzero((char *)s, strlen(s));
}

static void reply_void_or_error(struct lk_call *call, int r, const struct lk_error *e)
{
        if (r < 0)
                lk_call_reply_error(call, r, e);
        else if (reply_args(call, DBUS_TYPE_INVALID) < 0)
                lk_call_reply(call, NULL);
}

static void on_pin_hashed(void *userdata, int r, const char *hash)
{
        struct pin_job *x = userdata;
        struct lk_error e = {0};

        if (r == 0)
                r = lk_offline_store_hash(x->d->offline, x->uid, x->user, x->online_at, hash, &e);
        else
                lk_error_set(&e, r, "Cannot hash the PIN");
        reply_void_or_error(x->call, r, &e);
        pin_job_free(x);
}

static int hash_pin(struct lk_broker_dbus *d, struct lk_call *call, uid_t uid, const char *user,
                    int64_t online_at, const char *pin, struct lk_error *e)
{
        struct lk_pin_params p;
        struct pin_job *x;
        int r;

        if (!d->config->offline_pin)
                return lk_error_set(e, LK_ERR_NOT_ALLOWED, "Offline PINs are off here ([offline] "
                                    "pin)");
        r = lk_offline_check_new_pin(d->offline, pin, e);
        if (r < 0)
                return r;
        x = pin_job_new(d, call, uid, user, NULL);
        if (!x)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        x->online_at = online_at;
        lk_offline_params(d->offline, &p);
        r = lk_pin_worker_hash(d->offline->worker, uid, &p, pin, on_pin_hashed, x, e);
        if (r < 0) {
                pin_job_free(x);
                return r;
        }
        return LK_CALL_LATER;
}

static int set_pin(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                   struct lk_error *e)
{
        const struct lk_login *l = t->login;

        int r;

        /* A login done just now is an online sign-in: the window starts now. */
        r = hash_pin(d, call, l->user_uid, l->user, d->clock->wall_s(), t->arg[1], e);
        wipe_arg(t->arg[1]);
        return r;
}

static int change_pin(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                      struct lk_error *e)
{
        const struct lk_session *s = t->session;
        struct lk_pin_record r;
        struct lk_error x = {0};
        int64_t online_at = 0;
        int k;

        if (s->expired) {
                wipe_arg(t->arg[0]);
                return lk_error_set(e, LK_ERR_TOKEN_EXPIRED, "Your sign-in has expired: sign in "
                                    "again (latchkeyctl login --session), then set the PIN");
        }
        if (isempty(t->arg[0])) {
                k = lk_offline_store_hash(d->offline, s->uid, s->user, 0, NULL, e);
                return k < 0 ? k : reply_args(call, DBUS_TYPE_INVALID);
        }
        /* No record yet: the session's sign-in starts the window. */
        if (lk_offline_load(d->offline, s->uid, &r, &x) < 0)
                online_at = s->opened_at;
        explicit_bzero(&r, sizeof(r));
        k = hash_pin(d, call, s->uid, s->user, online_at, t->arg[0], e);
        wipe_arg(t->arg[0]);
        return k;
}

static bool append_entry(DBusMessageIter *dict, const char *key, int type, const void *value)
{
        DBusMessageIter entry, v;
        const char sig[2] = {(char)type, 0};

        return dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry) &&
               dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key) &&
               dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, sig, &v) &&
               dbus_message_iter_append_basic(&v, type, value) &&
               dbus_message_iter_close_container(&entry, &v) &&
               dbus_message_iter_close_container(dict, &entry);
}

/* GetPinState's a{sv}; provider NULL when not probed. */
static int reply_pin_state(struct lk_call *call, const struct lk_offline_state *st,
                           const char *provider)
{
        DBusMessage *reply = lk_call_new_return(call);
        DBusMessageIter it, dict;
        dbus_bool_t enabled = st->enabled, pin = st->pin;
        dbus_int64_t until = st->until, locked = st->locked_until;
        dbus_uint32_t failures = st->failures;
        bool ok;

        if (!reply)
                return -LK_ERR_NOMEM;
        dbus_message_iter_init_append(reply, &it);
        ok = dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict) &&
             append_entry(&dict, "enabled", DBUS_TYPE_BOOLEAN, &enabled) &&
             append_entry(&dict, "pin", DBUS_TYPE_BOOLEAN, &pin) &&
             append_entry(&dict, "state", DBUS_TYPE_STRING, &st->state) &&
             append_entry(&dict, "until", DBUS_TYPE_INT64, &until) &&
             append_entry(&dict, "locked_until", DBUS_TYPE_INT64, &locked) &&
             append_entry(&dict, "failures", DBUS_TYPE_UINT32, &failures) &&
             (!provider || append_entry(&dict, "provider", DBUS_TYPE_STRING, &provider)) &&
             dbus_message_iter_close_container(&it, &dict);
        if (!ok) {
                dbus_message_unref(reply);
                return -LK_ERR_NOMEM;
        }
        lk_call_reply(call, reply);
        return 0;
}

static void on_state_probed(void *userdata, int r, bool reachable, const struct lk_error *e)
{
        struct pin_job *x = userdata;
        struct lk_offline_state st;

        lk_offline_state(x->d->offline, x->uid, &st);
        if (r < 0)
                lk_call_reply_error(x->call, r, e);
        else if (reply_pin_state(x->call, &st, reachable ? "reachable" : "unreachable") < 0)
                lk_call_reply(x->call, NULL);
        pin_job_free(x);
}

static int get_pin_state(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                         struct lk_error *e)
{
        struct lk_offline_state st;
        struct pin_job *x;
        int r;

        lk_offline_state(d->offline, t->subject, &st);
        /* Only a PIN that could be used is worth a request to the provider. */
        if (!t->o.probe || !streq(st.state, "ready"))
                return reply_pin_state(call, &st, NULL);
        x = pin_job_new(d, call, t->subject, t->user, NULL);
        if (!x)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        r = lk_reach_probe(d->http, d->config, on_state_probed, x, e);
        if (r < 0) {
                pin_job_free(x);
                return r;
        }
        return LK_CALL_LATER;
}

static void on_pin_checked(void *userdata, int r, const char *hash)
{
        struct pin_job *x = userdata;
        struct lk_error e = {0};

        if (r >= 0)
                r = lk_offline_checked(x->d->offline, x->uid, r == 0, &e);
        else
                lk_error_set(&e, r, "Cannot check the PIN");
        reply_void_or_error(x->call, r, &e);
        pin_job_free(x);
}

static int verify_pin(struct pin_job *x, struct lk_error *e)
{
        struct lk_pin_record rec;
        int r;

        /* Checked again: a wait may have begun while the provider was probed. */
        r = lk_offline_may_check(x->d->offline, x->uid, &rec, e);
        if (r == 0)
                r = lk_pin_worker_verify(x->d->offline->worker, x->uid, rec.hash, x->pin,
                                         on_pin_checked, x, e);
        explicit_bzero(&rec, sizeof(rec));
        return r;
}

static void on_check_probed(void *userdata, int r, bool reachable, const struct lk_error *err)
{
        struct pin_job *x = userdata;
        struct lk_error e = {0};

        if (r < 0)
                e = *err;
        else if (reachable)
                r = lk_error_set(&e, LK_ERR_NOT_ALLOWED, "The provider can be reached: sign in "
                                 "online (the PIN stands in only while it cannot)");
        else
                r = verify_pin(x, &e);
        if (r < 0) {
                lk_call_reply_error(x->call, r, &e);
                pin_job_free(x);
        }
}

static int check_pin(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                     struct lk_error *e)
{
        struct lk_pin_record rec;
        struct pin_job *x;
        int r;

        /* Refused before any work when it cannot be accepted anyway (a wait, no PIN, ...). */
        r = lk_offline_may_check(d->offline, t->subject, &rec, e);
        explicit_bzero(&rec, sizeof(rec));
        if (r < 0) {
                wipe_arg(t->arg[1]);
                return r;
        }
        x = pin_job_new(d, call, t->subject, t->user, t->arg[1]);
        wipe_arg(t->arg[1]);
        if (!x)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        r = t->o.offline ? lk_reach_probe(d->http, d->config, on_check_probed, x, e)
                         : verify_pin(x, e);
        if (r < 0) {
                pin_job_free(x);
                return r;
        }
        return LK_CALL_LATER;
}

/* ---- Introspectable and Properties ---- */

#define STD_INTERFACES                                                                             \
        "  <interface name=\"org.freedesktop.DBus.Introspectable\">\n"                             \
        "    <method name=\"Introspect\"><arg name=\"xml_data\" type=\"s\" "                       \
        "direction=\"out\"/></method>\n"                                                           \
        "  </interface>\n"                                                                         \
        "  <interface name=\"org.freedesktop.DBus.Peer\">\n"                                       \
        "    <method name=\"Ping\"/>\n"                                                            \
        "    <method name=\"GetMachineId\"><arg name=\"machine_uuid\" type=\"s\" "                 \
        "direction=\"out\"/></method>\n"                                                           \
        "  </interface>\n"                                                                         \
        "  <interface name=\"org.freedesktop.DBus.Properties\">\n"                                 \
        "    <method name=\"Get\"><arg name=\"interface_name\" type=\"s\" "                        \
        "direction=\"in\"/><arg name=\"property_name\" type=\"s\" direction=\"in\"/>"              \
        "<arg name=\"value\" type=\"v\" direction=\"out\"/></method>\n"                            \
        "    <method name=\"GetAll\"><arg name=\"interface_name\" type=\"s\" "                     \
        "direction=\"in\"/><arg name=\"props\" type=\"a{sv}\" direction=\"out\"/>"                 \
        "</method>\n"                                                                              \
        "    <method name=\"Set\"><arg name=\"interface_name\" type=\"s\" "                        \
        "direction=\"in\"/><arg name=\"property_name\" type=\"s\" direction=\"in\"/>"              \
        "<arg name=\"value\" type=\"v\" direction=\"in\"/></method>\n"                             \
        "    <signal name=\"PropertiesChanged\"><arg name=\"interface_name\" type=\"s\"/>"         \
        "<arg name=\"changed_properties\" type=\"a{sv}\"/><arg "                                   \
        "name=\"invalidated_properties\" type=\"as\"/></signal>\n"                                 \
        "  </interface>\n"

static int introspect(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                      struct lk_error *e)
{
        const char *start = strstr(lk_interface_xml, "<interface");
        const char *end = strstr(lk_interface_xml, "</node>");
        _cleanup_free_ char *xml = NULL;
        DBusMessage *reply;

        if (!start || !end || end < start)
                return lk_error_set(e, LK_ERR_IO, "The embedded interface description is broken");
        if (asprintf(&xml, "%s<node>\n%s  %.*s</node>\n", DBUS_INTROSPECT_1_0_XML_DOCTYPE_DECL_NODE,
                     STD_INTERFACES, (int)(end - start), start) < 0)
                return -LK_ERR_NOMEM;
        reply = lk_call_new_return(call);
        if (reply && !dbus_message_append_args(reply, DBUS_TYPE_STRING, &xml, DBUS_TYPE_INVALID)) {
                dbus_message_unref(reply);
                reply = NULL;
        }
        lk_call_reply(call, reply);
        return 0;
}

static bool append_version(DBusMessageIter *it)
{
        DBusMessageIter v;
        const char *version = LATCHKEY_VERSION;

        return dbus_message_iter_open_container(it, DBUS_TYPE_VARIANT, "s", &v) &&
               dbus_message_iter_append_basic(&v, DBUS_TYPE_STRING, &version) &&
               dbus_message_iter_close_container(it, &v);
}

static int get_property(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                      struct lk_error *e)
{
        const char *iface, *name;
        DBusMessageIter it;
        DBusMessage *reply;

        if (!dbus_message_get_args(call->msg, NULL, DBUS_TYPE_STRING, &iface, DBUS_TYPE_STRING,
                                   &name, DBUS_TYPE_INVALID))
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "Bad arguments");
        if ((!isempty(iface) && !streq(iface, LK_BUS_INTERFACE)) || !streq(name, "Version")) {
                lk_call_reply(call,
                              dbus_message_new_error_printf(call->msg, DBUS_ERROR_UNKNOWN_PROPERTY,
                                                            "No property %s.%s", iface, name));
                return 0;
        }
        reply = lk_call_new_return(call);
        if (reply) {
                dbus_message_iter_init_append(reply, &it);
                if (!append_version(&it)) {
                        dbus_message_unref(reply);
                        reply = NULL;
                }
        }
        lk_call_reply(call, reply);
        return 0;
}

static int get_all_props(struct lk_broker_dbus *d, struct lk_call *call,
                              const struct target *t, struct lk_error *e)
{
        const char *iface, *key = "Version";
        DBusMessageIter it, dict, entry;
        DBusMessage *reply;
        bool ok;

        if (!dbus_message_get_args(call->msg, NULL, DBUS_TYPE_STRING, &iface, DBUS_TYPE_INVALID))
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "Bad arguments");
        reply = lk_call_new_return(call);
        if (!reply)
                return -LK_ERR_NOMEM;
        dbus_message_iter_init_append(reply, &it);
        ok = dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
        if (ok && (isempty(iface) || streq(iface, LK_BUS_INTERFACE)))
                ok = dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry) &&
                     dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key) &&
                     append_version(&entry) && dbus_message_iter_close_container(&dict, &entry);
        ok = ok && dbus_message_iter_close_container(&it, &dict);
        if (!ok) {
                dbus_message_unref(reply);
                return -LK_ERR_NOMEM;
        }
        lk_call_reply(call, reply);
        return 0;
}

static int set_property(struct lk_broker_dbus *d, struct lk_call *call, const struct target *t,
                      struct lk_error *e)
{
        lk_call_reply(call, dbus_message_new_error(call->msg, DBUS_ERROR_PROPERTY_READ_ONLY,
                                                   "The properties of the broker are read-only"));
        return 0;
}

/*
 * The whole interface and every method's policy (SPEC §4). Argument caps: each string
 * argument in order (bus.c checks them, with the check named, before anything waits on the
 * call); the rest LK_ARG_ID_MAX, as every option name and string in an option.
 */
#define ID LK_ARG_ID_MAX
#define ROW(iface, name, sig, who, object, needs, handler, ...)                                    \
        {{iface, name, sig, (who) == ANYONE, {__VA_ARGS__}}, who, object, needs, handler}
#define B(...) ROW(LK_BUS_INTERFACE, __VA_ARGS__)
#define P(...) ROW(DBUS_INTERFACE_PROPERTIES, __VA_ARGS__)
#define CAP(name, max, check) {name, max, check}
#define NO_CAPS {0}
static const struct lk_method methods[] = {
  /* name             signature who              object        needs
   *   handler         caps of the string arguments, in order */
  B("BeginLogin",    "sa{sv}", ROOT_OR_SUBJECT, USER_ARG,     ACCOUNT | PROVIDER,
    begin_login,       CAP("user", ID, NULL)),
  B("CompleteLogin", "ss",     SUBJECT,         LOGIN_OWNER,  LOGIN_PENDING | BUDGET,
    complete_login,    CAP("login_id", ID, NULL), CAP("answer", LK_ARG_ANSWER_MAX, NULL)),
  B("GetLoginInfo",  "s",      SUBJECT,         LOGIN_OWNER,  0,
    get_login_info,    CAP("login_id", ID, NULL)),
  B("WaitLogin",     "s",      SUBJECT,         LOGIN_OWNER,  0,
    wait_login,        CAP("login_id", ID, NULL)),
  B("CancelLogin",   "s",      SUBJECT,         LOGIN_OWNER,  0,
    cancel_login,      CAP("login_id", ID, NULL)),
  B("OpenSession",   "ss",     ROOT_OR_SUBJECT, LOGIN_USER,   LOGIN_DONE | ID_FREE | ONCE,
    open_session,      CAP("login_id", ID, NULL), CAP("session_id", ID, lk_session_check_id)),
  B("CloseSession",  "s",      ROOT_OR_SUBJECT, SESSION_ARG,  0,
    close_session,     CAP("session_id", ID, NULL)),
  B("GetToken",      "a{sv}",  ROOT_OR_SUBJECT, SESSION_OPT,  SESSIONS,
    get_token,         NO_CAPS),
  B("GetClaims",     "a{sv}",  ROOT_OR_SUBJECT, SESSION_OPT,  SESSIONS,
    get_claims,        NO_CAPS),
  B("ListSessions",  "",       ROOT_OR_SUBJECT, EACH_SESSION, SESSIONS,
    list_sessions,     NO_CAPS),
  B("SetPin",        "ss",     SUBJECT,         LOGIN_OWNER,  LOGIN_DONE,
    set_pin,           CAP("login_id", ID, NULL), CAP("pin", ID, NULL)),
  B("ChangePin",     "a{sv}s", ROOT_OR_SUBJECT, SESSION_OPT,  SESSIONS,
    change_pin,        CAP("pin", ID, NULL)),
  B("GetPinState",   "sa{sv}", ROOT_OR_SUBJECT, USER_ARG,     ACCOUNT,
    get_pin_state,     CAP("user", ID, NULL)),
  B("CheckPin",      "ssa{sv}", ROOT_OR_SUBJECT, USER_ARG,    ACCOUNT,
    check_pin,         CAP("user", ID, NULL), CAP("pin", ID, NULL)),
  B("ForgetAccount", "s",      ROOT,            NOTHING,      0,
    forget_account,    CAP("user", ID, NULL)),
  ROW(DBUS_INTERFACE_INTROSPECTABLE, "Introspect", "", ANYONE, NOTHING, 0,
    introspect,        NO_CAPS),
  P("Get",           "ss",     ANYONE,          NOTHING,      0,
    get_property,      NO_CAPS),
  P("GetAll",        "s",      ANYONE,          NOTHING,      0,
    get_all_props,     NO_CAPS),
  P("Set",           "ssv",    ANYONE,          NOTHING,      0,
    set_property,      NO_CAPS),
};
#undef NO_CAPS
#undef CAP
#undef P
#undef B
#undef ROW
#undef ID

/* ---- the dispatcher ---- */

static const struct lk_bus_method *find_method(const char *iface, const char *member)
{
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                if (streq(methods[i].bus.name, member) &&
                    (!iface || streq(methods[i].bus.interface, iface)))
                        return &methods[i].bus;
        return NULL;
}

/* The string arguments and the options; the signature is the row's (bus.c checked it). */
static int read_args(struct lk_call *call, struct target *t, struct lk_error *e)
{
        DBusMessageIter it;
        unsigned n = 0;

        if (!dbus_message_iter_init(call->msg, &it))
                return 0;
        do {
                int type = dbus_message_iter_get_arg_type(&it);

                if (type == DBUS_TYPE_STRING && n < ELEMENTSOF(t->arg))
                        dbus_message_iter_get_basic(&it, &t->arg[n++]);
                else if (type == DBUS_TYPE_ARRAY &&
                         dbus_message_iter_get_element_type(&it) == DBUS_TYPE_DICT_ENTRY) {
                        int r = lk_options_parse(&it, &t->o, e);
                        if (r < 0)
                                return r;
                }
        } while (dbus_message_iter_next(&it));
        return 0;
}

static int not_found_login(struct lk_error *e)
{
        return lk_error_set(e, LK_ERR_NOT_FOUND, "No such login (it may have been cancelled)");
}

static int not_found_session(const char *id, struct lk_error *e)
{
        return lk_error_set(e, LK_ERR_NOT_FOUND, "No session '%s'", id);
}

/* Step 3: the object and its subject, and who may act on it. */
static int resolve(struct lk_broker_dbus *d, struct lk_call *call, struct target *t,
                   struct lk_error *e)
{
        const struct lk_method *m = method_of(call);
        const char *id = t->arg[0];
        int r;

        switch (m->object) {
        case NOTHING:
                if (!may_act(call, 0))
                        return lk_error_set(e, LK_ERR_ACCESS_DENIED, "Only root may call %s",
                                            m->bus.name);
                return 0;
        case EACH_SESSION:
                return 0;
        case USER_ARG:
                r = lk_accounts_resolve_user(d->accounts, id, &t->subject, e);
                if (r < 0)
                        return r;
                if (!may_act(call, t->subject))
                        return lk_error_set(e, LK_ERR_ACCESS_DENIED,
                                            "uid %u may not begin a login for %s (only root or %s "
                                            "may)",
                                            (unsigned)call->uid, id, id);
                t->user = id;
                return 0;
        case LOGIN_OWNER:
        case LOGIN_USER:
                t->login = lk_login_find(d->logins, id);
                if (!t->login)
                        return not_found_login(e);
                t->subject = m->object == LOGIN_OWNER ? t->login->owner_uid : t->login->user_uid;
                return may_act(call, t->subject) ? 0 : not_found_login(e);
        case SESSION_OPT:
                if (!t->o.session_id) {
                        t->session = lk_session_latest(d->sessions, call->uid);
                        if (!t->session)
                                return lk_error_set(e, LK_ERR_NOT_FOUND,
                                                    "uid %u has no latchkey session; log in first",
                                                    (unsigned)call->uid);
                        return 0;
                }
                id = t->o.session_id;
                /* fall through */
        case SESSION_ARG:
                t->session = lk_session_find(d->sessions, id);
                if (!t->session || !may_act(call, t->session->uid))
                        return not_found_session(id, e);
                t->subject = t->session->uid;
                return 0;
        }
        return 0;
}

/* Steps 2 to 4; 0 when the handler may run, LK_CALL_LATER when the call is parked. */
static int prepare(struct lk_broker_dbus *d, struct lk_call *call, struct target *t,
                   struct lk_error *e)
{
        const struct lk_method *m = method_of(call);
        bool every_session = (m->needs & SESSIONS) &&
                             (m->object == EACH_SESSION || !t->o.session_id);
        int r;

        if (call->step == STEP_PROVIDER) {
                /* Parked for the provider: resolved and checked already. */
                t->subject = call->subject_uid;
                t->user = t->arg[0];
        } else {
                if (every_session && lk_sessions_loading(d->sessions)) {
                        r = lk_call_park(call, PARK_SESSIONS, "the sessions to be read", e);
                        return r < 0 ? r : LK_CALL_LATER;
                }
                r = resolve(d, call, t, e);
                if (r < 0)
                        return r;
                /* Before any provider request: root and system accounts, unless listed. */
                if (m->needs & ACCOUNT) {
                        r = lk_usermap_check_account(d->config, d->uid_min, t->user, t->subject,
                                                     e);
                        if (r < 0)
                                return r;
                }
                if (m->needs & LOGIN_PENDING) {
                        r = lk_login_check_pending(d->logins, t->login, e);
                        if (r < 0)
                                return r;
                }
                if (m->needs & LOGIN_DONE) {
                        r = lk_login_check_done(d->logins, t->login, e);
                        if (r < 0)
                                return r;
                }
                /* After LOGIN_DONE: a pending login hears the same whether the id is taken. */
                if (m->needs & ID_FREE) {
                        r = lk_session_may_open(d->sessions, t->arg[1], t->login->user_uid, e);
                        if (r < 0)
                                return r;
                }
        }
        if ((m->needs & PROVIDER) && !d->idp.ops->endpoints(d->idp.idp)) {
                r = d->prepare_provider(d->manager, e);
                if (r < 0)
                        return r;
                r = lk_call_park(call, PARK_PROVIDER, "the provider", e);
                if (r < 0)
                        return r;
                call->step = STEP_PROVIDER;
                call->subject_uid = t->subject;
                return LK_CALL_LATER;
        }
        /* Last, so that a call refused for anything else spends nothing. */
        if (m->needs & BUDGET) {
                t->budget_uid = call->uid == 0 ? t->login->user_uid : call->uid;
                return lk_budget_take(d->budget, t->budget_uid, d->clock->mono_ms(), e);
        }
        return 0;
}

static void dispatch(void *userdata, struct lk_call *call)
{
        struct lk_broker_dbus *d = userdata;
        const struct lk_method *m = method_of(call);
        struct target t = {0};
        struct lk_error e = {0};
        int r;

        r = read_args(call, &t, &e);
        if (r == 0)
                r = prepare(d, call, &t, &e);
        if (r == 0) {
                r = m->handler(d, call, &t, &e);
                if (r < 0 && (m->needs & BUDGET)) /* refused before any request was sent */
                        lk_budget_refund(d->budget, t.budget_uid);
                if ((m->needs & ONCE) && !t.login->grant)
                        lk_login_forget(d->logins, t.login);
        }
        if (r < 0)
                lk_call_reply_error(call, r, &e);
}

static void arrived(void *userdata)
{
        struct lk_broker_dbus *d = userdata;

        d->touch(d->manager);
}

static void caller_left(void *userdata, const char *name)
{
        struct lk_broker_dbus *d = userdata;

        lk_logins_caller_left(d->logins, name);
}

const struct lk_bus_ops lk_broker_bus_ops = {
        .find = find_method,
        .arrived = arrived,
        .dispatch = dispatch,
        .caller_left = caller_left,
};

/* ---- signals ---- */

int lk_broker_emit_session_changed(struct lk_bus *bus, const char *session_id, const char *event)
{
        DBusMessage *m;
        bool ok;

        if (!bus)
                return 0;
        m = dbus_message_new_signal(LK_BUS_PATH, LK_BUS_INTERFACE, "SessionChanged");
        if (!m)
                return -LK_ERR_NOMEM;
        ok = dbus_message_append_args(m, DBUS_TYPE_STRING, &session_id, DBUS_TYPE_STRING, &event,
                                      DBUS_TYPE_INVALID) &&
             lk_bus_send(bus, m) == 0;
        dbus_message_unref(m);
        return ok ? 0 : -LK_ERR_NOMEM;
}

