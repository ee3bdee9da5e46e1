/* SPDX-License-Identifier: MIT */
/*
 * Bus glue for login.c and session.c. Each handler reads: parse, validate,
 * authorise (lk_call_allowed() with the row's policy), act, reply. "Not
 * found" and "not yours" are one error, so no uid learns about others.
 */
#include "broker/broker_dbus.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/introspect-xml.h" /* lk_interface_xml[]: dbus/org.latchkey.Broker1.xml, embedded at build time */
#include "broker/manager.h"
#include "broker/budget.h"
#include "broker/login.h"
#include "broker/session.h"
#include "oidc/log.h"
#include "oidc/secret.h"
#include "oidc/usermap.h"

/* Who may call a method; lk_call_allowed() is the one place that applies it. */
enum lk_policy {
        LK_POLICY_PUBLIC,          /* anyone; no caller lookup (Introspect, Properties) */
        LK_POLICY_ROOT_OR_SUBJECT, /* root, or the uid the object belongs to */
        LK_POLICY_SAME_UID,        /* only the uid the object belongs to, root included */
};

/*
 * Returns 0 when it has replied, LK_CALL_LATER when it kept a reference to
 * call (lk_call_ref) and will reply later, or a negative LK_ERR_* with e set:
 * the bus then replies with the matching error.
 */
typedef int (*lk_method_fn)(struct broker *b, struct lk_call *call, struct lk_error *e);

struct lk_method {
        struct lk_bus_method bus;
        enum lk_policy policy;
        lk_method_fn handler;
};

static const struct lk_method *method_of(const struct lk_call *c)
{
        return (const struct lk_method *)c->method;
}

/* true when the method's policy lets this caller act on an object of subject_uid. */
static bool lk_call_allowed(const struct lk_call *c, uid_t subject_uid)
{
        switch (method_of(c)->policy) {
        case LK_POLICY_PUBLIC:
                return true;
        case LK_POLICY_ROOT_OR_SUBJECT:
                return c->uid == 0 || c->uid == subject_uid;
        case LK_POLICY_SAME_UID:
                return c->uid == subject_uid;
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

static int not_found_login(struct lk_error *e)
{
        return lk_error_set(e, LK_ERR_NOT_FOUND, "No such login (it may have been cancelled)");
}

static int not_found_session(const char *id, struct lk_error *e)
{
        return lk_error_set(e, LK_ERR_NOT_FOUND, "No session '%s'", id);
}

/*
 * The session options name, or the caller's newest; the same error for absent and not ours.
 * LK_CALL_LATER when the newest cannot be known yet (the sessions are still being read).
 */
static int find_session(struct broker *b, struct lk_call *call, const struct lk_options *o,
                        struct lk_session **ret, struct lk_error *e)
{
        struct lk_session *s;
        int r;

        if (o->session_id) {
                s = lk_session_find(b, o->session_id);
                if (!s || !lk_call_allowed(call, s->uid))
                        return not_found_session(o->session_id, e);
        } else {
                r = broker_need_sessions(b, call, e);
                if (r != 0)
                        return r;
                s = lk_session_latest(b, call->uid);
                if (!s)
                        return lk_error_set(e, LK_ERR_NOT_FOUND,
                                            "uid %u has no latchkey session; log in first",
                                            (unsigned)call->uid);
        }
        *ret = s;
        return 0;
}

static int method_begin_login(struct broker *b, struct lk_call *call, struct lk_error *e)
{
        DBusMessageIter it;
        struct lk_options o;
        struct lk_login *l;
        const char *user;
        uid_t user_uid;
        int r;

        dbus_message_iter_init(call->msg, &it);
        dbus_message_iter_get_basic(&it, &user);
        dbus_message_iter_next(&it);
        r = lk_options_parse(&it, &o, e);
        if (r < 0)
                return r;

        r = lk_login_resolve_user(user, &user_uid, e);
        if (r < 0)
                return r;
        if (!lk_call_allowed(call, user_uid))
                return lk_error_set(e, LK_ERR_ACCESS_DENIED,
                                    "uid %u may not begin a login for %s (only root or %s may)",
                                    (unsigned)call->uid, user, user);
        /* Before any provider request: root and system accounts, unless the admin lists them. */
        r = lk_usermap_check_account(b->config, b->uid_min, user, user_uid, e);
        if (r < 0)
                return r;

        r = broker_need_provider(b, call, e);
        if (r != 0)
                return r;
        r = lk_login_begin(b, call->uid, user, user_uid,
                           o.end_with_caller ? dbus_message_get_sender(call->msg) : NULL, &l, e);
        if (r < 0)
                return r;
        return reply_args(call, DBUS_TYPE_STRING, &l->id, DBUS_TYPE_STRING, &l->auth->url,
                          DBUS_TYPE_INVALID);
}

/* Who a code exchange is budgeted to: the caller, or for root (sshd, login, greeters, which
 * run as root for everyone) the user the login is for. */
static uid_t budget_uid(const struct lk_call *call, const struct lk_login *l)
{
        return call->uid == 0 ? l->user_uid : call->uid;
}

struct login_done {
        struct broker *broker;
        struct lk_call *call;
        uid_t budget_uid;
};

static void on_login_done(void *userdata, const char *user, int r, const struct lk_error *e)
{
        struct login_done *d = userdata;
        _cleanup_(lk_call_unrefp) struct lk_call *call = d->call;

        /* A granted code was a real sign-in: only refused and failed requests spend. */
        if (r >= 0)
                lk_budget_refund(d->broker->budget, d->budget_uid);
        free(d);
        if (r < 0)
                lk_call_reply_error(call, r, e);
        else if (reply_args(call, DBUS_TYPE_STRING, &user, DBUS_TYPE_INVALID) < 0)
                lk_call_reply(call, NULL);
}

static int method_complete_login(struct broker *b, struct lk_call *call, struct lk_error *e)
{
        const char *id, *answer;
        struct login_done *d;
        struct lk_login *l;
        int r;

        if (!dbus_message_get_args(call->msg, NULL, DBUS_TYPE_STRING, &id, DBUS_TYPE_STRING,
                                   &answer, DBUS_TYPE_INVALID))
                return -LK_ERR_NOMEM;
        r = lk_arg_check(id, LK_ARG_ID_MAX, "login_id", e);
        if (r < 0)
                return r;
        r = lk_arg_check(answer, LK_ARG_ANSWER_MAX, "answer", e);
        if (r < 0)
                return r;

        l = lk_login_find(b, id);
        if (!l || !lk_call_allowed(call, l->owner_uid))
                return not_found_login(e);

        d = calloc(1, sizeof(*d));
        if (!d)
                return -LK_ERR_NOMEM;
        *d = (struct login_done){.broker = b, .call = call, .budget_uid = budget_uid(call, l)};
        r = lk_budget_take(b->budget, d->budget_uid, lk_now_ms(), e);
        if (r < 0) {
                free(d);
                return r;
        }
        r = lk_login_complete(b, l, answer, on_login_done, d, e);
        if (r < 0) {
                /* Nothing was sent. */
                lk_budget_refund(b->budget, d->budget_uid);
                free(d);
                return r;
        }
        lk_call_ref(call);
        return LK_CALL_LATER;
}

static int method_cancel_login(struct broker *b, struct lk_call *call, struct lk_error *e)
{
        struct lk_login *l;
        const char *id;
        int r;

        if (!dbus_message_get_args(call->msg, NULL, DBUS_TYPE_STRING, &id, DBUS_TYPE_INVALID))
                return -LK_ERR_NOMEM;
        r = lk_arg_check(id, LK_ARG_ID_MAX, "login_id", e);
        if (r < 0)
                return r;
        l = lk_login_find(b, id);
        if (!l || !lk_call_allowed(call, l->owner_uid))
                return not_found_login(e);
        lk_login_cancel(b, l);
        return reply_args(call, DBUS_TYPE_INVALID);
}

static int method_open_session(struct broker *b, struct lk_call *call, struct lk_error *e)
{
        const char *login_id, *session_id;
        _cleanup_free_ char *user = NULL;
        struct lk_login *l;
        uid_t uid;
        int r;

        if (!dbus_message_get_args(call->msg, NULL, DBUS_TYPE_STRING, &login_id, DBUS_TYPE_STRING,
                                   &session_id, DBUS_TYPE_INVALID))
                return -LK_ERR_NOMEM;
        r = lk_arg_check(login_id, LK_ARG_ID_MAX, "login_id", e);
        if (r < 0)
                return r;
        r = lk_arg_check(session_id, LK_ARG_ID_MAX, "session_id", e);
        if (r < 0)
                return r;
        r = lk_session_check_id(session_id, e);
        if (r < 0)
                return r;

        l = lk_login_find(b, login_id);
        if (!l || !lk_call_allowed(call, l->user_uid))
                return not_found_login(e);
        /* Done first: a pending login hears the same whether the id is taken or not. */
        r = lk_login_check_done(b, l, e);
        if (r < 0)
                return r;
        r = lk_session_may_open(b, session_id, l->user_uid, e);
        if (r < 0)
                return r;

        user = strdup(l->user);
        if (!user)
                return -LK_ERR_NOMEM;
        uid = l->user_uid;
        r = lk_session_open(b, session_id, user, uid, lk_login_take_grant(b, l), e);
        if (r < 0)
                return r;
        return reply_args(call, DBUS_TYPE_INVALID);
}

static int method_close_session(struct broker *b, struct lk_call *call, struct lk_error *e)
{
        struct lk_session *s;
        const char *id;
        int r;

        if (!dbus_message_get_args(call->msg, NULL, DBUS_TYPE_STRING, &id, DBUS_TYPE_INVALID))
                return -LK_ERR_NOMEM;
        r = lk_arg_check(id, LK_ARG_ID_MAX, "session_id", e);
        if (r < 0)
                return r;
        s = lk_session_find(b, id);
        if (!s || !lk_call_allowed(call, s->uid))
                return not_found_session(id, e);
        lk_session_close(b, s);
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

static int method_get_token(struct broker *b, struct lk_call *call, struct lk_error *e)
{
        DBusMessageIter it;
        struct lk_options o;
        struct lk_session *s = NULL;
        int r;

        dbus_message_iter_init(call->msg, &it);
        r = lk_options_parse(&it, &o, e);
        if (r < 0)
                return r;
        r = find_session(b, call, &o, &s, e);
        if (r != 0)
                return r;

        r = lk_session_get_token(b, s, o.min_valid, on_token, lk_call_ref(call), e);
        if (r == LK_SESSION_LATER)
                return LK_CALL_LATER;
        lk_call_unref(call);
        if (r < 0)
                return r;
        return reply_token(call, s);
}

static int method_get_claims(struct broker *b, struct lk_call *call, struct lk_error *e)
{
        _cleanup_free_ char *json = NULL;
        DBusMessageIter it;
        struct lk_options o;
        struct lk_session *s = NULL;
        int r;

        dbus_message_iter_init(call->msg, &it);
        r = lk_options_parse(&it, &o, e);
        if (r < 0)
                return r;
        r = find_session(b, call, &o, &s, e);
        if (r != 0)
                return r;
        json = s->claims ? json_dumps(s->claims, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
        if (!json)
                return -LK_ERR_NOMEM;
        return reply_args(call, DBUS_TYPE_STRING, &json, DBUS_TYPE_INVALID);
}

static int method_list_sessions(struct broker *b, struct lk_call *call, struct lk_error *e)
{
        DBusMessage *reply;
        DBusMessageIter it, array;
        bool ok;
        int r;

        r = broker_need_sessions(b, call, e);
        if (r != 0)
                return r;
        reply = lk_call_new_return(call);
        if (!reply)
                return -LK_ERR_NOMEM;
        dbus_message_iter_init_append(reply, &it);
        ok = dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "(ssuxx)", &array);
        for (struct lk_session *s = b->sessions; ok && s; s = s->next) {
                DBusMessageIter st;
                dbus_uint32_t uid = s->uid;
                dbus_int64_t opened = s->opened_at, expires = s->tokens.expires_at;

                if (!lk_call_allowed(call, s->uid))
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
                return -LK_ERR_NOMEM;
        }
        lk_call_reply(call, reply);
        return 0;
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

static int method_introspect(struct broker *b, struct lk_call *call, struct lk_error *e)
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

static int method_get_property(struct broker *b, struct lk_call *call, struct lk_error *e)
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

static int method_get_all_properties(struct broker *b, struct lk_call *call, struct lk_error *e)
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

static int method_set_property(struct broker *b, struct lk_call *call, struct lk_error *e)
{
        lk_call_reply(call, dbus_message_new_error(call->msg, DBUS_ERROR_PROPERTY_READ_ONLY,
                                                   "The properties of the broker are read-only"));
        return 0;
}

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

/*
 * The whole interface and who may call what (SPEC §4). The subject a policy
 * compares the caller with: BeginLogin the user's uid; CompleteLogin and
 * CancelLogin the uid that began the login; OpenSession the login's user;
 * the session methods the session's owner.
 */
#define I LK_BUS_INTERFACE
static const struct lk_method methods[] = {
    {{I, "BeginLogin", "sa{sv}", false, {{"user", LK_ARG_ID_MAX}}}, LK_POLICY_ROOT_OR_SUBJECT,
     method_begin_login},
    {{I, "CompleteLogin", "ss", false, {{"login_id", LK_ARG_ID_MAX}, {"answer", LK_ARG_ANSWER_MAX}}},
     LK_POLICY_SAME_UID, method_complete_login},
    {{I, "CancelLogin", "s", false, {{"login_id", LK_ARG_ID_MAX}}}, LK_POLICY_SAME_UID,
     method_cancel_login},
    {{I, "OpenSession", "ss", false, {{"login_id", LK_ARG_ID_MAX}, {"session_id", LK_ARG_ID_MAX}}},
     LK_POLICY_ROOT_OR_SUBJECT, method_open_session},
    {{I, "CloseSession", "s", false, {{"session_id", LK_ARG_ID_MAX}}}, LK_POLICY_ROOT_OR_SUBJECT,
     method_close_session},
    {{I, "GetToken", "a{sv}", false, {{0}}}, LK_POLICY_ROOT_OR_SUBJECT, method_get_token},
    {{I, "GetClaims", "a{sv}", false, {{0}}}, LK_POLICY_ROOT_OR_SUBJECT, method_get_claims},
    {{I, "ListSessions", "", false, {{0}}}, LK_POLICY_ROOT_OR_SUBJECT, method_list_sessions},
    {{DBUS_INTERFACE_INTROSPECTABLE, "Introspect", "", true, {{0}}}, LK_POLICY_PUBLIC,
     method_introspect},
    {{DBUS_INTERFACE_PROPERTIES, "Get", "ss", true, {{0}}}, LK_POLICY_PUBLIC, method_get_property},
    {{DBUS_INTERFACE_PROPERTIES, "GetAll", "s", true, {{0}}}, LK_POLICY_PUBLIC,
     method_get_all_properties},
    {{DBUS_INTERFACE_PROPERTIES, "Set", "ssv", true, {{0}}}, LK_POLICY_PUBLIC, method_set_property},
};
#undef I

static const struct lk_bus_method *find_method(const char *iface, const char *member)
{
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                if (streq(methods[i].bus.name, member) &&
                    (!iface || streq(methods[i].bus.interface, iface)))
                        return &methods[i].bus;
        return NULL;
}

void lk_broker_run(struct broker *b, struct lk_call *call)
{
        struct lk_error e = {0};
        int r = method_of(call)->handler(b, call, &e);

        if (r < 0)
                lk_call_reply_error(call, r, &e);
}

static void dispatch(void *userdata, struct lk_call *call)
{
        lk_broker_run(userdata, call);
}

static void arrived(void *userdata)
{
        broker_touch(userdata);
}

static void caller_left(void *userdata, const char *name)
{
        broker_caller_left(userdata, name);
}

const struct lk_bus_ops lk_broker_bus_ops = {
        .find = find_method,
        .arrived = arrived,
        .dispatch = dispatch,
        .caller_left = caller_left,
};
