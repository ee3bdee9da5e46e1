/* SPDX-License-Identifier: MIT */
#include "tests/harness/busclient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

bool bc_autostart = true;

DBusConnection *bc_open_err(const char *address, char **ret_message)
{
        DBusError err = DBUS_ERROR_INIT;
        DBusConnection *c = dbus_connection_open_private(address, &err);

        if (c && !dbus_bus_register(c, &err)) {
                dbus_connection_close(c);
                dbus_connection_unref(c);
                c = NULL;
        }
        if (!c && ret_message)
                *ret_message = strdup(err.message ? err.message : "?");
        dbus_error_free(&err);
        if (c)
                dbus_connection_set_exit_on_disconnect(c, FALSE);
        return c;
}

DBusConnection *bc_open(const char *address)
{
        return bc_open_err(address, NULL);
}

DBusConnection *bc_open_as(const char *address, uid_t uid, gid_t gid, char **ret_message)
{
        uid_t euid = geteuid();
        gid_t egid = getegid();
        bool switched = uid != euid;
        DBusConnection *c;

        if (switched && (setegid(gid) < 0 || seteuid(uid) < 0)) {
                if (ret_message)
                        *ret_message = lkh_xasprintf("cannot take uid %u: %m", (unsigned)uid);
                (void)setegid(egid);
                return NULL;
        }
        c = bc_open_err(address, ret_message);
        if (switched && (seteuid(euid) < 0 || setegid(egid) < 0)) {
                /* Not ours to go on with: every later call would run as the wrong uid. */
                perror("busclient: cannot take back the effective ids");
                abort();
        }
        return c;
}

void bc_close(DBusConnection *c)
{
        if (c) {
                dbus_connection_close(c);
                dbus_connection_unref(c);
        }
}

DBusMessage *bc_new(const char *method)
{
        DBusMessage *m = dbus_message_new_method_call(BC_NAME, BC_PATH, BC_IFACE, method);

        if (!m)
                abort();
        dbus_message_set_auto_start(m, bc_autostart);
        return m;
}

DBusMessage *bc_new_ping(void)
{
        DBusMessage *m = dbus_message_new_method_call(BC_NAME, BC_PATH, DBUS_INTERFACE_PEER,
                                                      "Ping");

        if (!m)
                abort();
        dbus_message_set_auto_start(m, bc_autostart);
        return m;
}

static void append_string_entry(DBusMessageIter *dict, const char *key, const char *value)
{
        DBusMessageIter entry, v;

        dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry);
        dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key);
        dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "s", &v);
        dbus_message_iter_append_basic(&v, DBUS_TYPE_STRING, &value);
        dbus_message_iter_close_container(&entry, &v);
        dbus_message_iter_close_container(dict, &entry);
}

/* An a{sv} of the options given: each left out when NULL (or 0). */
static void append_token_options(DBusMessage *m, const char *session_id, const char *scope,
                                 const char *audience, uint32_t min_valid)
{
        DBusMessageIter it, dict, entry, v;
        const char *k = "min_valid";

        dbus_message_iter_init_append(m, &it);
        dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
        if (session_id)
                append_string_entry(&dict, "session_id", session_id);
        if (scope)
                append_string_entry(&dict, "scope", scope);
        if (audience)
                append_string_entry(&dict, "audience", audience);
        if (min_valid) {
                dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry);
                dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &k);
                dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "u", &v);
                dbus_message_iter_append_basic(&v, DBUS_TYPE_UINT32, &min_valid);
                dbus_message_iter_close_container(&entry, &v);
                dbus_message_iter_close_container(&dict, &entry);
        }
        dbus_message_iter_close_container(&it, &dict);
}

void bc_append_options(DBusMessage *m, const char *session_id, uint32_t min_valid)
{
        append_token_options(m, session_id, NULL, NULL, min_valid);
}

DBusMessage *bc_get_token_message(const char *session_id, const char *scope,
                                  const char *audience, uint32_t min_valid)
{
        DBusMessage *m = bc_new("GetToken");

        append_token_options(m, session_id, scope, audience, min_valid);
        return m;
}

int bc_call(DBusConnection *c, DBusMessage *m, int timeout_ms, struct bc_reply *r)
{
        DBusError err = DBUS_ERROR_INIT;

        *r = (struct bc_reply){0};
        r->msg = dbus_connection_send_with_reply_and_block(c, m, timeout_ms, &err);
        dbus_message_unref(m);
        if (!r->msg) {
                r->error = strdup(err.name ? err.name : "?");
                r->message = strdup(err.message ? err.message : "");
                dbus_error_free(&err);
                return -1;
        }
        return 0;
}

void bc_reply_clear(struct bc_reply *r)
{
        if (r->msg)
                dbus_message_unref(r->msg);
        free(r->error);
        free(r->message);
        *r = (struct bc_reply){0};
}

char *bc_take_error(struct bc_reply *r, char **ret_message)
{
        char *e = TAKE_PTR(r->error);

        if (ret_message)
                *ret_message = TAKE_PTR(r->message);
        bc_reply_clear(r);
        return e;
}

char *bc_begin_login(DBusConnection *c, const char *user, char **ret_id, char **ret_url)
{
        return bc_begin_login_with(c, user, false, ret_id, ret_url);
}

char *bc_begin_login_with(DBusConnection *c, const char *user, bool end_with_caller,
                          char **ret_id, char **ret_url)
{
        DBusMessage *m = bc_new("BeginLogin");
        DBusMessageIter it, dict, entry, v;
        const char *key = "end_with_caller";
        dbus_bool_t yes = TRUE;
        struct bc_reply r;
        const char *id, *url;

        dbus_message_append_args(m, DBUS_TYPE_STRING, &user, DBUS_TYPE_INVALID);
        dbus_message_iter_init_append(m, &it);
        dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
        if (end_with_caller) {
                dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry);
                dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key);
                dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "b", &v);
                dbus_message_iter_append_basic(&v, DBUS_TYPE_BOOLEAN, &yes);
                dbus_message_iter_close_container(&entry, &v);
                dbus_message_iter_close_container(&dict, &entry);
        }
        dbus_message_iter_close_container(&it, &dict);
        if (bc_call(c, m, 30000, &r) < 0)
                return bc_take_error(&r, NULL);
        if (!dbus_message_get_args(r.msg, NULL, DBUS_TYPE_STRING, &id, DBUS_TYPE_STRING, &url,
                                   DBUS_TYPE_INVALID)) {
                bc_reply_clear(&r);
                return strdup(BC_BAD_REPLY);
        }
        if (ret_id)
                *ret_id = strdup(id);
        if (ret_url)
                *ret_url = strdup(url);
        bc_reply_clear(&r);
        return NULL;
}

char *bc_call_s(DBusConnection *c, const char *method, const char *a1, const char *a2,
                char **ret_out, char **ret_message)
{
        DBusMessage *m = bc_new(method);
        struct bc_reply r;
        const char *out;

        if (a2)
                dbus_message_append_args(m, DBUS_TYPE_STRING, &a1, DBUS_TYPE_STRING, &a2,
                                         DBUS_TYPE_INVALID);
        else
                dbus_message_append_args(m, DBUS_TYPE_STRING, &a1, DBUS_TYPE_INVALID);
        if (bc_call(c, m, 60000, &r) < 0)
                return bc_take_error(&r, ret_message);
        if (ret_out) {
                if (!dbus_message_get_args(r.msg, NULL, DBUS_TYPE_STRING, &out,
                                           DBUS_TYPE_INVALID)) {
                        bc_reply_clear(&r);
                        return strdup(BC_BAD_REPLY);
                }
                *ret_out = strdup(out);
        }
        bc_reply_clear(&r);
        return NULL;
}

char *bc_get_token(DBusConnection *c, const char *session_id, uint32_t min_valid,
                   char **ret_token, int64_t *ret_expires, char **ret_message)
{
        return bc_get_token_typed(c, session_id, min_valid, ret_token, ret_expires, NULL,
                                  ret_message);
}

/* Sends the GetToken call m and reads its answer. */
static char *get_token(DBusConnection *c, DBusMessage *m, char **ret_token, int64_t *ret_expires,
                       char **ret_type, char **ret_message)
{
        struct bc_reply r;
        const char *token, *type;
        dbus_int64_t exp;

        if (bc_call(c, m, 60000, &r) < 0)
                return bc_take_error(&r, ret_message);
        if (!dbus_message_get_args(r.msg, NULL, DBUS_TYPE_STRING, &token, DBUS_TYPE_INT64, &exp,
                                   DBUS_TYPE_STRING, &type, DBUS_TYPE_INVALID) ||
            !*token) {
                bc_reply_clear(&r);
                return strdup(BC_BAD_REPLY);
        }
        if (ret_token)
                *ret_token = strdup(token);
        if (ret_expires)
                *ret_expires = exp;
        if (ret_type)
                *ret_type = strdup(type);
        bc_reply_clear(&r);
        return NULL;
}

char *bc_get_token_for(DBusConnection *c, const char *session_id, const char *scope,
                       const char *audience, uint32_t min_valid, char **ret_token,
                       int64_t *ret_expires, char **ret_message)
{
        return get_token(c, bc_get_token_message(session_id, scope, audience, min_valid),
                         ret_token, ret_expires, NULL, ret_message);
}

char *bc_get_token_typed(DBusConnection *c, const char *session_id, uint32_t min_valid,
                         char **ret_token, int64_t *ret_expires, char **ret_type,
                         char **ret_message)
{
        return get_token(c, bc_get_token_message(session_id, NULL, NULL, min_valid), ret_token,
                         ret_expires, ret_type, ret_message);
}

char *bc_get_claims(DBusConnection *c, const char *session_id, char **ret_json,
                    char **ret_message)
{
        DBusMessage *m = bc_new("GetClaims");
        struct bc_reply r;
        const char *json;

        bc_append_options(m, session_id, 0);
        if (bc_call(c, m, 30000, &r) < 0)
                return bc_take_error(&r, ret_message);
        if (!dbus_message_get_args(r.msg, NULL, DBUS_TYPE_STRING, &json, DBUS_TYPE_INVALID)) {
                bc_reply_clear(&r);
                return strdup(BC_BAD_REPLY);
        }
        if (ret_json)
                *ret_json = strdup(json);
        bc_reply_clear(&r);
        return NULL;
}

char **bc_session_ids(DBusMessage *reply)
{
        DBusMessageIter it, arr;
        char **l = calloc(1, sizeof(char *));

        if (!l)
                abort();
        dbus_message_iter_init(reply, &it);
        dbus_message_iter_recurse(&it, &arr);
        while (dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_STRUCT) {
                DBusMessageIter st;
                const char *id;

                dbus_message_iter_recurse(&arr, &st);
                dbus_message_iter_get_basic(&st, &id);
                bc_strv_add(&l, id);
                dbus_message_iter_next(&arr);
        }
        return l;
}

char **bc_list_sessions(DBusConnection *c)
{
        struct bc_reply r;
        char **l;

        if (bc_call(c, bc_new("ListSessions"), 30000, &r) < 0) {
                bc_reply_clear(&r);
                return NULL;
        }
        l = bc_session_ids(r.msg);
        bc_reply_clear(&r);
        return l;
}

char *bc_login(struct lkh *h, DBusConnection *c, const char *user)
{
        _cleanup_free_ char *id = NULL, *url = NULL, *location = NULL, *who = NULL;
        _cleanup_free_ char *e = NULL, *msg = NULL;

        e = bc_begin_login(c, user, &id, &url);
        if (e) {
                fprintf(stderr, "BeginLogin(%s): %s\n", user, e);
                return NULL;
        }
        if (lkh_browser_login(h, url, user, false, &location, NULL) < 0 || !location) {
                fprintf(stderr, "the browser could not sign in %s\n", user);
                return NULL;
        }
        e = bc_call_s(c, "CompleteLogin", id, location, &who, &msg);
        if (e) {
                fprintf(stderr, "CompleteLogin(%s): %s: %s\n", user, e, msg ? msg : "");
                return NULL;
        }
        if (!streq(who, user)) {
                fprintf(stderr, "CompleteLogin signed in %s, not %s\n", who, user);
                return NULL;
        }
        return TAKE_PTR(id);
}

int bc_open_session(struct lkh *h, DBusConnection *c, const char *user, const char *session_id)
{
        _cleanup_free_ char *id = bc_login(h, c, user), *e = NULL, *msg = NULL;

        if (!id)
                return -1;
        e = bc_call_s(c, "OpenSession", id, session_id, NULL, &msg);
        if (e) {
                fprintf(stderr, "OpenSession(%s): %s: %s\n", session_id, e, msg ? msg : "");
                return -1;
        }
        return 0;
}

bool bc_strv_has(char **l, const char *s)
{
        for (size_t i = 0; l && l[i]; i++)
                if (streq(l[i], s))
                        return true;
        return false;
}

void bc_strv_add(char ***l, const char *s)
{
        size_t n = 0;
        char **x;

        if (bc_strv_has(*l, s))
                return;
        while (*l && (*l)[n])
                n++;
        x = realloc(*l, (n + 2) * sizeof(char *));
        if (!x || !(x[n] = strdup(s)))
                abort();
        x[n + 1] = NULL;
        *l = x;
}

void bc_strv_del(char ***l, const char *s)
{
        size_t i, j;

        for (i = 0, j = 0; *l && (*l)[i]; i++) {
                if (streq((*l)[i], s))
                        free((*l)[i]);
                else
                        (*l)[j++] = (*l)[i];
        }
        if (*l)
                (*l)[j] = NULL;
}
