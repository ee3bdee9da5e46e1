/* SPDX-License-Identifier: MIT */
#include "bus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "broker.h"
#include "errors.h"
#include "introspect-xml.h" /* lk_interface_xml[]: dbus/org.latchkey.Broker1.xml, embedded at build time */
#include "log.h"
#include "base/utf8.h"

/* Method calls waiting for the bus to tell who sent them; more are refused. */
#define LK_BUS_LOOKUPS_MAX 1024

/*
 * Callers' uids, by unique name, so that a caller's second call needs no
 * GetConnectionUnixUser round trip (it doubled a GetToken's cost). Safe: the bus
 * never reuses a unique name and a connection's uid is fixed when it connects.
 * An entry goes when the bus says the name has left (NameOwnerChanged); the
 * cache is emptied when full, so it stays bounded whatever happens.
 */
#define UID_CACHE_MAX 4096
#define UID_CACHE_BUCKETS 1024

struct uid_entry {
        struct uid_entry *next;
        uid_t uid;
        char name[]; /* ":1.42" */
};

struct lk_bus {
        DBusConnection *conn;
        struct lk_loop *loop;
        struct broker *broker;
        const struct lk_method *methods;
        unsigned lookups; /* GetConnectionUnixUser under way */
        unsigned calls;   /* lk_call objects alive */
        struct uid_entry *uids[UID_CACHE_BUCKETS];
        unsigned n_uids;
};

/* ---- the uid cache ---- */

static struct uid_entry **uid_bucket(struct lk_bus *bus, const char *name)
{
        uint32_t h = 2166136261u; /* FNV-1a */

        for (const char *p = name; *p; p++)
                h = (h ^ (unsigned char)*p) * 16777619u;
        return &bus->uids[h % UID_CACHE_BUCKETS];
}

static void uid_cache_clear(struct lk_bus *bus)
{
        for (size_t i = 0; i < UID_CACHE_BUCKETS; i++)
                while (bus->uids[i]) {
                        struct uid_entry *u = bus->uids[i];
                        bus->uids[i] = u->next;
                        free(u);
                }
        bus->n_uids = 0;
}

static bool uid_cache_get(struct lk_bus *bus, const char *name, uid_t *ret)
{
        for (struct uid_entry *u = *uid_bucket(bus, name); u; u = u->next)
                if (streq(u->name, name)) {
                        *ret = u->uid;
                        return true;
                }
        return false;
}

/* Best effort: without memory the next call asks the bus again. */
static void uid_cache_put(struct lk_bus *bus, const char *name, uid_t uid)
{
        struct uid_entry **b, *u;
        size_t len = strlen(name);
        uid_t known;

        if (name[0] != ':' || len > 255 || uid_cache_get(bus, name, &known))
                return;
        if (bus->n_uids >= UID_CACHE_MAX)
                uid_cache_clear(bus);
        u = malloc(sizeof(*u) + len + 1);
        if (!u)
                return;
        u->uid = uid;
        memcpy(u->name, name, len + 1);
        b = uid_bucket(bus, name);
        u->next = *b;
        *b = u;
        bus->n_uids++;
}

static void uid_cache_drop(struct lk_bus *bus, const char *name)
{
        for (struct uid_entry **p = uid_bucket(bus, name); *p; p = &(*p)->next)
                if (streq((*p)->name, name)) {
                        struct uid_entry *u = *p;
                        *p = u->next;
                        free(u);
                        bus->n_uids--;
                        return;
                }
}

/* ---- libdbus watches and timeouts on our loop ---- */

static void on_watch_io(struct lk_io *io, int fd, short revents, void *userdata)
{
        DBusWatch *w = userdata;
        unsigned flags = 0;

        if (revents & POLLIN)
                flags |= DBUS_WATCH_READABLE;
        if (revents & POLLOUT)
                flags |= DBUS_WATCH_WRITABLE;
        if (revents & POLLERR)
                flags |= DBUS_WATCH_ERROR;
        if (revents & POLLHUP)
                flags |= DBUS_WATCH_HANGUP;
        dbus_watch_handle(w, flags);
}

static short watch_events(DBusWatch *w)
{
        unsigned flags = dbus_watch_get_flags(w);
        short ev = 0;

        if (!dbus_watch_get_enabled(w))
                return 0;
        if (flags & DBUS_WATCH_READABLE)
                ev |= POLLIN;
        if (flags & DBUS_WATCH_WRITABLE)
                ev |= POLLOUT;
        return ev;
}

static dbus_bool_t add_watch(DBusWatch *w, void *data)
{
        struct lk_bus *bus = data;
        struct lk_io *io;

        io = lk_io_new(bus->loop, dbus_watch_get_unix_fd(w), watch_events(w), on_watch_io, w);
        if (!io)
                return FALSE;
        dbus_watch_set_data(w, io, NULL);
        return TRUE;
}

static void remove_watch(DBusWatch *w, void *data)
{
        lk_io_free(dbus_watch_get_data(w));
        dbus_watch_set_data(w, NULL, NULL);
}

static void toggle_watch(DBusWatch *w, void *data)
{
        struct lk_io *io = dbus_watch_get_data(w);

        if (io)
                lk_io_set_events(io, watch_events(w));
}

static void arm_timeout(DBusTimeout *t)
{
        struct lk_timer *timer = dbus_timeout_get_data(t);

        if (!timer)
                return;
        if (dbus_timeout_get_enabled(t))
                lk_timer_set_in(timer, dbus_timeout_get_interval(t));
        else
                lk_timer_set(timer, -1);
}

static void on_timeout(struct lk_timer *timer, void *userdata)
{
        DBusTimeout *t = userdata;

        /*
         * libdbus timeouts repeat until removed or disabled. Re-arm first: the
         * handler may remove (and free) t, which then disarms our timer.
         */
        arm_timeout(t);
        dbus_timeout_handle(t);
}

static dbus_bool_t add_timeout(DBusTimeout *t, void *data)
{
        struct lk_bus *bus = data;
        struct lk_timer *timer = lk_timer_new(bus->loop, on_timeout, t);

        if (!timer)
                return FALSE;
        dbus_timeout_set_data(t, timer, NULL);
        arm_timeout(t);
        return TRUE;
}

static void remove_timeout(DBusTimeout *t, void *data)
{
        lk_timer_free(dbus_timeout_get_data(t));
        dbus_timeout_set_data(t, NULL, NULL);
}

static void toggle_timeout(DBusTimeout *t, void *data)
{
        arm_timeout(t);
}

/*
 * libdbus reads about 2 KiB from the socket per watch callback, and the loop serves each
 * watch once per round, so under a burst (200 CompleteLogin calls, each ~300 bytes) calls
 * sat in the socket for dozens of rounds, each as long as the HTTP work in it (TLS
 * handshakes). So before the wait, what the socket holds is read and dispatched too, up to
 * BUS_READS_PER_ROUND reads: bounded, so HTTP still gets its turn.
 */
#define BUS_READS_PER_ROUND 64

static void on_prepare(void *userdata)
{
        struct lk_bus *bus = userdata;
        int fd = -1;

        (void)dbus_connection_get_unix_fd(bus->conn, &fd);
        for (unsigned k = 0;; k++) {
                int pending = 0;

                while (dbus_connection_get_dispatch_status(bus->conn) ==
                       DBUS_DISPATCH_DATA_REMAINS)
                        dbus_connection_dispatch(bus->conn);
                if (k >= BUS_READS_PER_ROUND || fd < 0 || ioctl(fd, FIONREAD, &pending) < 0 ||
                    pending <= 0 || !dbus_connection_get_is_connected(bus->conn))
                        break;
                /* Timeout 0: reads (and writes) what is there, never waits. */
                if (!dbus_connection_read_write(bus->conn, 0))
                        break;
        }
}

/* ---- calls ---- */

struct lk_call *lk_call_ref(struct lk_call *c)
{
        c->refs++;
        return c;
}

void lk_call_unref(struct lk_call *c)
{
        if (!c || --c->refs > 0)
                return;
        if (!c->replied) {
                /* Never leave a caller hanging, even on a path that forgot to answer. */
                struct lk_error e = {0};
                lk_error_set(&e, LK_ERR_IO, "The broker dropped the request");
                lk_call_reply_error(c, -LK_ERR_IO, &e);
        }
        c->bus->calls--;
        dbus_message_unref(c->msg);
        free(c);
}

bool lk_call_allowed(const struct lk_call *c, uid_t subject_uid)
{
        switch (c->method->policy) {
        case LK_POLICY_PUBLIC:
                return true;
        case LK_POLICY_ROOT_OR_SUBJECT:
                return c->uid == 0 || c->uid == subject_uid;
        case LK_POLICY_SAME_UID:
                return c->uid == subject_uid;
        }
        return false;
}

DBusMessage *lk_call_new_return(struct lk_call *c)
{
        return dbus_message_new_method_return(c->msg);
}

static void send_message(struct lk_call *c, DBusMessage *m)
{
        if (!dbus_message_get_no_reply(c->msg))
                dbus_connection_send(c->bus->conn, m, NULL);
        dbus_message_unref(m);
}

void lk_call_reply(struct lk_call *c, DBusMessage *reply)
{
        if (c->replied) {
                if (reply)
                        dbus_message_unref(reply);
                return;
        }
        if (!reply)
                reply = dbus_message_new_error(c->msg, DBUS_ERROR_NO_MEMORY, "Out of memory");
        c->replied = true;
        if (reply)
                send_message(c, reply);
}

void lk_call_reply_error(struct lk_call *c, int r, const struct lk_error *e)
{
        char msg[LK_ERROR_MESSAGE_MAX + 400];

        lk_dbus_error_message(r, e, msg, sizeof(msg));
        if (lk_log_debug_enabled())
                log_debug("%s from uid %d: %s: %s", dbus_message_get_member(c->msg), (int)c->uid,
                          lk_dbus_error_name(r), msg);
        lk_call_reply(c, dbus_message_new_error(c->msg, lk_dbus_error_name(r), msg));
}

/* ---- arguments ---- */

int lk_arg_check(const char *s, size_t max, const char *what, struct lk_error *e)
{
        size_t n = strnlen(s, max + 1);

        if (n > max)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "%s is longer than %zu bytes", what,
                                    max);
        if (!lk_utf8_valid(s, n))
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "%s is not valid UTF-8", what);
        return 0;
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

/* ---- dispatch ---- */

static void run_handler(struct lk_call *c)
{
        struct lk_error e = {0};
        int r;

        r = c->method->handler(c->bus->broker, c, &e);
        if (r < 0)
                lk_call_reply_error(c, r, &e);
}

static void on_uid_reply(DBusPendingCall *pending, void *userdata)
{
        /* The reference ask_uid() gave the pending call is ours to drop. */
        _cleanup_(lk_call_unrefp) struct lk_call *c = userdata;
        DBusMessage *reply = dbus_pending_call_steal_reply(pending);
        DBusError err = DBUS_ERROR_INIT;
        dbus_uint32_t uid;

        c->bus->lookups--;
        dbus_pending_call_unref(pending);
        if (!reply || dbus_set_error_from_message(&err, reply) ||
            !dbus_message_get_args(reply, &err, DBUS_TYPE_UINT32, &uid, DBUS_TYPE_INVALID)) {
                log_warning("Cannot tell who sent %s (%s), refusing it",
                            dbus_message_get_member(c->msg), err.message ?: "no reply");
                dbus_error_free(&err);
                if (reply)
                        dbus_message_unref(reply);
                lk_call_reply(c, dbus_message_new_error(c->msg, DBUS_ERROR_ACCESS_DENIED,
                                                        "Cannot identify the caller"));
                return;
        }
        dbus_message_unref(reply);
        c->uid = uid;
        uid_cache_put(c->bus, dbus_message_get_sender(c->msg), uid);
        run_handler(c);
}

static int ask_uid(struct lk_call *c)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL;
        DBusPendingCall *pending = NULL;
        const char *sender = dbus_message_get_sender(c->msg);

        if (!sender)
                return -EINVAL;
        m = dbus_message_new_method_call(DBUS_SERVICE_DBUS, DBUS_PATH_DBUS, DBUS_INTERFACE_DBUS,
                                         "GetConnectionUnixUser");
        if (!m || !dbus_message_append_args(m, DBUS_TYPE_STRING, &sender, DBUS_TYPE_INVALID))
                return -ENOMEM;
        if (!dbus_connection_send_with_reply(c->bus->conn, m, &pending, 25000) || !pending)
                return -ENOMEM;
        if (!dbus_pending_call_set_notify(pending, on_uid_reply, lk_call_ref(c), NULL)) {
                lk_call_unref(c);
                dbus_pending_call_cancel(pending);
                dbus_pending_call_unref(pending);
                return -ENOMEM;
        }
        c->bus->lookups++;
        return 0;
}

static const struct lk_method *find_method(struct lk_bus *bus, DBusMessage *m)
{
        const char *iface = dbus_message_get_interface(m);
        const char *member = dbus_message_get_member(m);

        if (!member)
                return NULL;
        for (const struct lk_method *x = bus->methods; x->name; x++)
                if (streq(x->name, member) && (!iface || streq(x->interface, iface)))
                        return x;
        return NULL;
}

static DBusHandlerResult on_message(DBusConnection *conn, DBusMessage *m, void *userdata)
{
        struct lk_bus *bus = userdata;
        const struct lk_method *method;
        _cleanup_(lk_call_unrefp) struct lk_call *c = NULL;

        if (dbus_message_get_type(m) != DBUS_MESSAGE_TYPE_METHOD_CALL)
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
        method = find_method(bus, m);
        if (!method)
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED; /* libdbus answers UnknownMethod */

        c = calloc(1, sizeof(*c));
        if (!c)
                return DBUS_HANDLER_RESULT_NEED_MEMORY;
        *c = (struct lk_call){
            .refs = 1, .bus = bus, .msg = dbus_message_ref(m), .uid = (uid_t)-1, .method = method};
        bus->calls++;
        broker_touch(bus->broker);

        if (!dbus_message_has_signature(m, method->in_signature)) {
                lk_call_reply(c, dbus_message_new_error_printf(
                                     m, LK_DBUS_ERROR_PREFIX "InvalidArgument",
                                     "%s takes arguments of signature '%s', not '%s'", method->name,
                                     method->in_signature, dbus_message_get_signature(m)));
                return DBUS_HANDLER_RESULT_HANDLED;
        }
        if (method->policy == LK_POLICY_PUBLIC) {
                run_handler(c);
                return DBUS_HANDLER_RESULT_HANDLED;
        }
        if (dbus_message_get_sender(m) && uid_cache_get(bus, dbus_message_get_sender(m), &c->uid)) {
                run_handler(c);
                return DBUS_HANDLER_RESULT_HANDLED;
        }
        if (bus->lookups >= LK_BUS_LOOKUPS_MAX) {
                struct lk_error e = {0};
                lk_error_set(&e, LK_ERR_TOO_MANY_REQUESTS, "The broker is busy, try again");
                lk_call_reply_error(c, -LK_ERR_TOO_MANY_REQUESTS, &e);
                return DBUS_HANDLER_RESULT_HANDLED;
        }
        if (ask_uid(c) < 0)
                lk_call_reply(c, NULL);
        return DBUS_HANDLER_RESULT_HANDLED;
}

static DBusHandlerResult on_filter(DBusConnection *conn, DBusMessage *m, void *userdata)
{
        struct lk_bus *bus = userdata;

        if (dbus_message_is_signal(m, DBUS_INTERFACE_LOCAL, "Disconnected")) {
                log_error("Lost the connection to the system bus, exiting");
                lk_loop_quit(bus->loop, 1);
                return DBUS_HANDLER_RESULT_HANDLED;
        }
        if (dbus_message_is_signal(m, DBUS_INTERFACE_DBUS, "NameOwnerChanged") &&
            streq_ptr(dbus_message_get_sender(m), DBUS_SERVICE_DBUS)) {
                const char *name, *old_owner, *new_owner;

                if (dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &name, DBUS_TYPE_STRING,
                                          &old_owner, DBUS_TYPE_STRING, &new_owner,
                                          DBUS_TYPE_INVALID) &&
                    name[0] == ':' && isempty(new_owner)) {
                        uid_cache_drop(bus, name);
                        broker_caller_left(bus->broker, name);
                }
        }
        return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
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

int lk_bus_method_introspect(struct broker *b, struct lk_call *call, struct lk_error *e)
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

int lk_bus_method_get_property(struct broker *b, struct lk_call *call, struct lk_error *e)
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

int lk_bus_method_get_all_properties(struct broker *b, struct lk_call *call, struct lk_error *e)
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

int lk_bus_method_set_property(struct broker *b, struct lk_call *call, struct lk_error *e)
{
        lk_call_reply(call, dbus_message_new_error(call->msg, DBUS_ERROR_PROPERTY_READ_ONLY,
                                                   "The properties of the broker are read-only"));
        return 0;
}

/* ---- the connection ---- */

int lk_bus_emit_session_changed(struct lk_bus *bus, const char *session_id, const char *event)
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
             dbus_connection_send(bus->conn, m, NULL);
        dbus_message_unref(m);
        return ok ? 0 : -LK_ERR_NOMEM;
}

unsigned lk_bus_busy(const struct lk_bus *bus)
{
        return bus->calls;
}

int lk_bus_new(struct lk_loop *loop, struct broker *b, const struct lk_method *methods,
               struct lk_bus **ret, struct lk_error *e)
{
        static const DBusObjectPathVTable vtable = {.message_function = on_message};
        _cleanup_free_ struct lk_bus *bus = NULL;
        DBusError err = DBUS_ERROR_INIT;
        int r;

        bus = calloc(1, sizeof(*bus));
        if (!bus)
                return -LK_ERR_NOMEM;
        *bus = (struct lk_bus){.loop = loop, .broker = b, .methods = methods};

        bus->conn = dbus_bus_get_private(DBUS_BUS_SYSTEM, &err);
        if (!bus->conn) {
                r = lk_error_set(e, LK_ERR_IO, "Cannot connect to the system bus: %s", err.message);
                dbus_error_free(&err);
                return r;
        }
        dbus_connection_set_exit_on_disconnect(bus->conn, FALSE);
        if (!dbus_connection_set_watch_functions(bus->conn, add_watch, remove_watch, toggle_watch,
                                                 bus, NULL) ||
            !dbus_connection_set_timeout_functions(bus->conn, add_timeout, remove_timeout,
                                                   toggle_timeout, bus, NULL) ||
            !dbus_connection_add_filter(bus->conn, on_filter, bus, NULL) ||
            !dbus_connection_register_object_path(bus->conn, LK_BUS_PATH, &vtable, bus)) {
                lk_bus_free(TAKE_PTR(bus));
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory setting up the bus");
        }

        /* Blocking, but once at start, before anyone can be waiting on us. */
        r = dbus_bus_request_name(bus->conn, LK_BUS_NAME, DBUS_NAME_FLAG_DO_NOT_QUEUE, &err);
        if (r != DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER) {
                if (r < 0)
                        lk_error_set(e, LK_ERR_IO, "Cannot own %s: %s", LK_BUS_NAME, err.message);
                else
                        lk_error_set(e, LK_ERR_IO, "%s is already owned by another process",
                                     LK_BUS_NAME);
                dbus_error_free(&err);
                lk_bus_free(TAKE_PTR(bus));
                return -LK_ERR_IO;
        }
        /* Callers that leave the bus leave the uid cache. Without the match the cache still
         * stays bounded (emptied when full), so a failure here is no reason not to start. */
        dbus_bus_add_match(bus->conn,
                           "type='signal',sender='" DBUS_SERVICE_DBUS "',interface='"
                           DBUS_INTERFACE_DBUS "',member='NameOwnerChanged',arg2=''",
                           NULL);
        lk_loop_set_prepare(loop, on_prepare, bus);
        *ret = TAKE_PTR(bus);
        return 0;
}

void lk_bus_release_name(struct lk_bus *bus)
{
        if (bus && bus->conn && dbus_connection_get_is_connected(bus->conn)) {
                dbus_bus_release_name(bus->conn, LK_BUS_NAME, NULL);
                dbus_connection_flush(bus->conn);
        }
}

void lk_bus_free(struct lk_bus *bus)
{
        if (!bus)
                return;
        if (bus->conn) {
                lk_loop_set_prepare(bus->loop, NULL, NULL);
                dbus_connection_flush(bus->conn);
                dbus_connection_close(bus->conn);
                dbus_connection_unref(bus->conn);
        }
        uid_cache_clear(bus);
        free(bus);
}
