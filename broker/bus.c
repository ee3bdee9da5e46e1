/* SPDX-License-Identifier: MIT */
#include "broker/bus.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "base/text.h"
#include "base/utf8.h"
#include "broker/dbus_errors.h"
#include "oidc/log.h"

/*
 * Bounds on the calls the broker holds (waiting for their caller's uid, for the provider's
 * endpoints, for the sessions to be read, for a refresh or an exchange); beyond them a call is
 * refused with TooManyRequests. Each call held is at most LK_ARG_BODY_MAX plus its header.
 * - senders whose uid is being asked for; each sender's calls meanwhile, in count and bytes;
 * - each uid's calls, in count and bytes (root's only by the total: sshd, login and greeters
 *   call as root for everyone, and their logins are bounded per user);
 * - the bytes of all calls held.
 */
#define LK_BUS_LOOKUPS_MAX 1024
#define LK_BUS_CALLS_PER_SENDER_MAX 64
#define LK_BUS_BYTES_PER_SENDER_MAX (1024 * 1024)
#define LK_BUS_CALLS_PER_UID_MAX 256
#define LK_BUS_BYTES_PER_UID_MAX (4 * 1024 * 1024)
#define LK_BUS_BYTES_MAX (32 * 1024 * 1024)
/* What a call's header may add to its body: path, interface, member, sender, signature. */
#define CALL_HEADER_SIZE 1024

/*
 * The connection's own limits (libdbus). A message over max_message_size, or with more file
 * descriptors than max_message_unix_fds, makes libdbus drop the whole connection, and the
 * broker with it: so max_message_size is the protocol's maximum (128 MiB) and the bus's own
 * limit (32 MiB on the system bus by default) decides what reaches us; max_message_unix_fds
 * stays at libdbus's default, above the system bus's 16 (raising it costs memory up front).
 * max_received_size and _unix_fds only make libdbus stop reading while the messages it holds
 * add up to more: a call over the caps is dropped as soon as it is read, and the calls held
 * stay under LK_BUS_BYTES_MAX, so reading never stops for them, even while the largest
 * message a bus may send is being read. No method takes file descriptors.
 */
#define BUS_RECEIVED_SIZE_MAX ((long)LK_BUS_BYTES_MAX + DBUS_MAXIMUM_MESSAGE_LENGTH)
#define BUS_RECEIVED_FDS_MAX 64

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

/* One GetConnectionUnixUser under way, and the calls of that sender waiting for it. */
struct lookup {
        struct lookup *next;
        struct lk_bus *bus;
        DBusPendingCall *pending;
        struct lk_call **calls;
        unsigned n;
        size_t bytes;
        char sender[]; /* ":1.42" */
};

/* The calls held for one uid. */
#define SHARE_BUCKETS 256
struct share {
        struct share *next;
        uid_t uid;
        unsigned calls;
        size_t bytes;
};

struct lk_bus {
        DBusConnection *conn;
        struct lk_loop *loop;
        const struct lk_bus_ops *ops;
        void *userdata;
        /* The one queue of parked calls (lk_call_park), oldest first, through parked_next. */
        struct lk_call *parked, **parked_tail;
        unsigned parked_per_need[LK_BUS_NEEDS];
        struct lookup *lookups; /* GetConnectionUnixUser under way */
        unsigned n_lookups;
        unsigned calls;         /* lk_call objects alive */
        size_t bytes;           /* their size */
        struct share *shares[SHARE_BUCKETS];
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

static struct share **share_slot(struct lk_bus *bus, uid_t uid)
{
        struct share **p = &bus->shares[uid % SHARE_BUCKETS];

        while (*p && (*p)->uid != uid)
                p = &(*p)->next;
        return p;
}

/* Counts c in its uid's share, or says why not (TooManyRequests, NOMEM). */
static int share_add(struct lk_call *c, struct lk_error *e)
{
        struct share **p, *x;

        if (c->uid == 0)
                return 0;
        p = share_slot(c->bus, c->uid);
        x = *p;
        if (!x) {
                x = calloc(1, sizeof(*x));
                if (!x)
                        return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
                x->uid = c->uid;
                *p = x;
        }
        if (x->calls >= LK_BUS_CALLS_PER_UID_MAX || x->bytes + c->size > LK_BUS_BYTES_PER_UID_MAX) {
                if (x->calls == 0) {
                        *p = x->next;
                        free(x);
                }
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "uid %u has too many calls waiting (at most %d, %d KiB); "
                                    "wait for their answers",
                                    (unsigned)c->uid, LK_BUS_CALLS_PER_UID_MAX,
                                    LK_BUS_BYTES_PER_UID_MAX / 1024);
        }
        x->calls++;
        x->bytes += c->size;
        c->counted = true;
        return 0;
}

static void share_drop(struct lk_call *c)
{
        struct share **p, *x;

        if (!c->counted)
                return;
        p = share_slot(c->bus, c->uid);
        x = *p;
        x->calls--;
        x->bytes -= c->size;
        if (x->calls == 0) {
                *p = x->next;
                free(x);
        }
}

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
        share_drop(c);
        c->bus->calls--;
        c->bus->bytes -= c->size;
        dbus_message_unref(c->msg);
        free(c);
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

/* ---- the caps, on the whole message, before anything waits on it ---- */

struct walk {
        size_t bytes; /* the body so far: 8 per value, plus each string */
        struct lk_error *e;
};

/* One value and all it holds: each string within max bytes and valid UTF-8 (what names it). */
static int walk_value(struct walk *w, DBusMessageIter *it, size_t max, const char *what)
{
        DBusMessageIter sub;
        const char *str;
        int r;

        w->bytes += 8;
        if (w->bytes > LK_ARG_BODY_MAX)
                return lk_error_set(w->e, LK_ERR_INVALID_ARGUMENT,
                                    "The call's arguments are larger than %d bytes",
                                    LK_ARG_BODY_MAX);
        switch (dbus_message_iter_get_arg_type(it)) {
        case DBUS_TYPE_STRING:
        case DBUS_TYPE_OBJECT_PATH:
        case DBUS_TYPE_SIGNATURE:
                dbus_message_iter_get_basic(it, &str);
                r = lk_arg_check(str, max, what, w->e);
                if (r < 0)
                        return r;
                w->bytes += strlen(str);
                return 0;
        case DBUS_TYPE_ARRAY:
        case DBUS_TYPE_STRUCT:
        case DBUS_TYPE_DICT_ENTRY:
        case DBUS_TYPE_VARIANT:
                /* The bus allows 64 levels of nesting: the recursion is bounded. */
                for (dbus_message_iter_recurse(it, &sub);
                     dbus_message_iter_get_arg_type(&sub) != DBUS_TYPE_INVALID;
                     dbus_message_iter_next(&sub)) {
                        r = walk_value(w, &sub, max, what);
                        if (r < 0)
                                return r;
                }
                return 0;
        default:
                return 0;
        }
}

/* An a{sv} of options: each name, and each string in each value, known option or not. */
static int walk_options(struct walk *w, DBusMessageIter *array)
{
        DBusMessageIter dict, entry;
        char what[LK_ARG_ID_MAX + 16];
        const char *key;
        int r;

        for (dbus_message_iter_recurse(array, &dict);
             dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY;
             dbus_message_iter_next(&dict)) {
                dbus_message_iter_recurse(&dict, &entry);
                r = walk_value(w, &entry, LK_ARG_ID_MAX, "an option name");
                if (r < 0)
                        return r;
                dbus_message_iter_get_basic(&entry, &key);
                snprintf(what, sizeof(what), "option %s", key);
                dbus_message_iter_next(&entry);
                r = walk_value(w, &entry, LK_ARG_ID_MAX, what);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Every argument of m (whose signature is method's) against its cap; the body's size. */
static int check_args(DBusMessage *m, const struct lk_bus_method *method, size_t *ret_size,
                      struct lk_error *e)
{
        struct walk w = {.e = e};
        DBusMessageIter it;
        unsigned n_str = 0;
        int r;

        if (!dbus_message_iter_init(m, &it)) {
                *ret_size = 0;
                return 0;
        }
        do {
                int type = dbus_message_iter_get_arg_type(&it);

                if (type == DBUS_TYPE_ARRAY &&
                    dbus_message_iter_get_element_type(&it) == DBUS_TYPE_DICT_ENTRY)
                        r = walk_options(&w, &it);
                else if (type == DBUS_TYPE_STRING) {
                        const struct lk_arg_cap *cap =
                                n_str < ELEMENTSOF(method->args) ? &method->args[n_str] : NULL;
                        char what[32];

                        if (!cap || !cap->name)
                                snprintf(what, sizeof(what), "argument %u", n_str + 1);
                        r = walk_value(&w, &it, cap && cap->name ? cap->max : LK_ARG_ID_MAX,
                                       cap && cap->name ? cap->name : what);
                        if (r == 0 && cap && cap->check) {
                                const char *str;

                                dbus_message_iter_get_basic(&it, &str);
                                r = cap->check(str, e);
                        }
                        n_str++;
                } else
                        r = walk_value(&w, &it, LK_ARG_ID_MAX, "an argument");
                if (r < 0)
                        return r;
        } while (dbus_message_iter_next(&it));
        *ret_size = w.bytes;
        return 0;
}

/* ---- parking ---- */

static void run_handler(struct lk_call *c)
{
        c->bus->ops->dispatch(c->bus->userdata, c);
}


int lk_call_park(struct lk_call *c, unsigned need, const char *what, struct lk_error *e)
{
        struct lk_bus *bus = c->bus;

        assert(need < LK_BUS_NEEDS);
        if (bus->parked_per_need[need] >= LK_BUS_PARKED_MAX)
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "Too many calls are waiting for %s", what);
        c->parked_on = need;
        c->parked_next = NULL;
        *bus->parked_tail = lk_call_ref(c);
        bus->parked_tail = &c->parked_next;
        bus->parked_per_need[need]++;
        return 0;
}

void lk_bus_unpark(struct lk_bus *bus, unsigned need, const struct lk_error *err)
{
        struct lk_call *ready = NULL, **ready_tail = &ready, **p = &bus->parked;

        /* Taken out first, oldest first: a call dispatched again may park anew. */
        while (*p) {
                struct lk_call *c = *p;

                if (c->parked_on != need) {
                        p = &c->parked_next;
                        continue;
                }
                *p = c->parked_next;
                c->parked_next = NULL;
                *ready_tail = c;
                ready_tail = &c->parked_next;
        }
        bus->parked_tail = p;
        bus->parked_per_need[need] = 0;
        while (ready) {
                struct lk_call *c = ready;

                ready = c->parked_next;
                if (err && err->code) {
                        struct lk_error x = *err;
                        lk_call_reply_error(c, -err->code, &x);
                } else
                        run_handler(c);
                lk_call_unref(c);
        }
}

/* ---- dispatch ---- */

/* The caller's uid is known: its share, then its handler. */
static void run_with_uid(struct lk_call *c, uid_t uid)
{
        struct lk_error e = {0};
        int r;

        c->uid = uid;
        r = share_add(c, &e);
        if (r < 0) {
                lk_call_reply_error(c, r, &e);
                return;
        }
        run_handler(c);
}

static void lookup_free(struct lookup *l)
{
        for (unsigned i = 0; i < l->n; i++)
                lk_call_unref(l->calls[i]);
        free(l->calls);
        free(l);
}

static void on_uid_reply(DBusPendingCall *pending, void *userdata)
{
        struct lookup *l = userdata;
        struct lk_bus *bus = l->bus;
        DBusMessage *reply = dbus_pending_call_steal_reply(pending);
        DBusError err = DBUS_ERROR_INIT;
        dbus_uint32_t uid;

        for (struct lookup **p = &bus->lookups; *p; p = &(*p)->next)
                if (*p == l) {
                        *p = l->next;
                        break;
                }
        bus->n_lookups--;
        dbus_pending_call_unref(pending);
        if (!reply || dbus_set_error_from_message(&err, reply) ||
            !dbus_message_get_args(reply, &err, DBUS_TYPE_UINT32, &uid, DBUS_TYPE_INVALID)) {
                /* The bus's own words, escaped: they may quote the sender's name. */
                char why[LK_ERROR_MESSAGE_MAX];

                if (!reply)
                        snprintf(why, sizeof(why), "the bus did not answer");
                else
                        snprintf(why, sizeof(why), "the bus answered %s: %s",
                                 LK_ESCAPED(err.name), LK_ESCAPED(err.message));
                log_warning("Cannot tell who sent %u call(s): %s; refusing them", l->n, why);
                dbus_error_free(&err);
                for (unsigned i = 0; i < l->n; i++)
                        lk_call_reply(l->calls[i],
                                      dbus_message_new_error_printf(l->calls[i]->msg,
                                                                    DBUS_ERROR_ACCESS_DENIED,
                                                                    "Cannot identify the caller: "
                                                                    "%s",
                                                                    why));
        } else {
                uid_cache_put(bus, l->sender, uid);
                for (unsigned i = 0; i < l->n; i++)
                        run_with_uid(l->calls[i], uid);
        }
        if (reply)
                dbus_message_unref(reply);
        lookup_free(l);
}

/* Parks c until the bus says who its sender is: one question per sender, however many calls. */
static int wait_for_uid(struct lk_call *c, const char *sender, struct lk_error *e)
{
        _cleanup_(dbus_message_unrefp) DBusMessage *m = NULL;
        struct lk_bus *bus = c->bus;
        DBusPendingCall *pending = NULL;
        struct lk_call **calls;
        struct lookup *l;

        for (l = bus->lookups; l; l = l->next)
                if (streq(l->sender, sender))
                        break;
        if (l && (l->n >= LK_BUS_CALLS_PER_SENDER_MAX ||
                  l->bytes + c->size > LK_BUS_BYTES_PER_SENDER_MAX))
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "Too many calls from %s wait to be identified (at most %d, "
                                    "%d KiB)",
                                    sender, LK_BUS_CALLS_PER_SENDER_MAX,
                                    LK_BUS_BYTES_PER_SENDER_MAX / 1024);
        if (!l) {
                if (bus->n_lookups >= LK_BUS_LOOKUPS_MAX)
                        return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                            "The broker is busy, try again");
                l = calloc(1, sizeof(*l) + strlen(sender) + 1);
                if (!l)
                        return lk_error_set(e, LK_ERR_NOMEM,
                                            "Out of memory waiting to identify the caller");
                l->bus = bus;
                memcpy(l->sender, sender, strlen(sender) + 1);
                m = dbus_message_new_method_call(DBUS_SERVICE_DBUS, DBUS_PATH_DBUS,
                                                 DBUS_INTERFACE_DBUS, "GetConnectionUnixUser");
                if (!m ||
                    !dbus_message_append_args(m, DBUS_TYPE_STRING, &sender, DBUS_TYPE_INVALID) ||
                    !dbus_connection_send_with_reply(bus->conn, m, &pending, 25000)) {
                        free(l);
                        return lk_error_set(e, LK_ERR_NOMEM,
                                            "Out of memory asking the bus who the caller is");
                }
                if (!pending) {
                        free(l);
                        return lk_error_set(e, LK_ERR_IO,
                                            "Cannot ask the bus who the caller is: the broker's "
                                            "connection to the bus is closed");
                }
                if (!dbus_pending_call_set_notify(pending, on_uid_reply, l, NULL)) {
                        dbus_pending_call_cancel(pending);
                        dbus_pending_call_unref(pending);
                        free(l);
                        return lk_error_set(e, LK_ERR_NOMEM,
                                            "Out of memory waiting for the bus to identify the "
                                            "caller");
                }
                l->pending = pending;
                l->next = bus->lookups;
                bus->lookups = l;
                bus->n_lookups++;
        }
        calls = realloc(l->calls, (l->n + 1) * sizeof(*calls));
        if (!calls) /* an empty lookup is answered and freed all the same */
                return lk_error_set(e, LK_ERR_NOMEM,
                                    "Out of memory waiting for the bus to identify the caller");
        l->calls = calls;
        l->calls[l->n++] = lk_call_ref(c);
        l->bytes += c->size;
        return 0;
}

static DBusHandlerResult on_message(DBusConnection *conn, DBusMessage *m, void *userdata)
{
        struct lk_bus *bus = userdata;
        const struct lk_bus_method *method;
        _cleanup_(lk_call_unrefp) struct lk_call *c = NULL;
        const char *sender = dbus_message_get_sender(m);
        struct lk_error e = {0};
        size_t size = 0;
        uid_t uid;
        int r;

        if (dbus_message_get_type(m) != DBUS_MESSAGE_TYPE_METHOD_CALL)
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
        if (!dbus_message_get_member(m))
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
        method = bus->ops->find(dbus_message_get_interface(m), dbus_message_get_member(m));
        if (!method)
                return DBUS_HANDLER_RESULT_NOT_YET_HANDLED; /* libdbus answers UnknownMethod */
        if (bus->ops->arrived)
                bus->ops->arrived(bus->userdata);

        /* Refused at once, before anything waits on them: libdbus frees m on return. */
        if (!dbus_message_has_signature(m, method->in_signature)) {
                DBusMessage *reply = dbus_message_new_error_printf(
                        m, LK_DBUS_ERROR_PREFIX "InvalidArgument",
                        "%s takes arguments of signature '%s', not '%s'", method->name,
                        method->in_signature, dbus_message_get_signature(m));
                if (!reply)
                        return DBUS_HANDLER_RESULT_NEED_MEMORY;
                if (!dbus_message_get_no_reply(m))
                        dbus_connection_send(conn, reply, NULL);
                dbus_message_unref(reply);
                return DBUS_HANDLER_RESULT_HANDLED;
        }
        r = check_args(m, method, &size, &e);
        if (r == 0 && bus->bytes + size + CALL_HEADER_SIZE > LK_BUS_BYTES_MAX)
                r = lk_error_set(&e, LK_ERR_TOO_MANY_REQUESTS, "The broker is busy, try again");

        c = calloc(1, sizeof(*c));
        if (!c)
                return DBUS_HANDLER_RESULT_NEED_MEMORY;
        *c = (struct lk_call){.refs = 1, .bus = bus, .msg = dbus_message_ref(m),
                              .size = size + CALL_HEADER_SIZE, .uid = (uid_t)-1,
                              .method = method};
        bus->calls++;
        bus->bytes += c->size;
        if (r < 0) {
                lk_call_reply_error(c, r, &e);
                return DBUS_HANDLER_RESULT_HANDLED;
        }

        if (method->anyone)
                run_handler(c);
        else if (sender && uid_cache_get(bus, sender, &uid))
                run_with_uid(c, uid);
        else if (!sender)
                lk_call_reply(c, dbus_message_new_error(m, DBUS_ERROR_ACCESS_DENIED,
                                                        "Cannot identify the caller"));
        else {
                r = wait_for_uid(c, sender, &e);
                if (r < 0)
                        lk_call_reply_error(c, r, &e);
        }
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
                        if (bus->ops->caller_left)
                                bus->ops->caller_left(bus->userdata, name);
                }
        }
        return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
}

/* ---- the connection ---- */

int lk_bus_send(struct lk_bus *bus, DBusMessage *m)
{
        return dbus_connection_send(bus->conn, m, NULL) ? 0 : -LK_ERR_NOMEM;
}

unsigned lk_bus_busy(const struct lk_bus *bus)
{
        return bus->calls;
}

int lk_bus_new(struct lk_loop *loop, const struct lk_bus_ops *ops, void *userdata,
               struct lk_bus **ret, struct lk_error *e)
{
        static const DBusObjectPathVTable vtable = {.message_function = on_message};
        _cleanup_free_ struct lk_bus *bus = NULL;
        DBusError err = DBUS_ERROR_INIT;
        int r;

        bus = calloc(1, sizeof(*bus));
        if (!bus)
                return -LK_ERR_NOMEM;
        *bus = (struct lk_bus){.loop = loop, .ops = ops, .userdata = userdata};
        bus->parked_tail = &bus->parked;

        bus->conn = dbus_bus_get_private(DBUS_BUS_SYSTEM, &err);
        if (!bus->conn) {
                r = lk_error_set(e, LK_ERR_IO, "Cannot connect to the system bus: %s", err.message);
                dbus_error_free(&err);
                return r;
        }
        dbus_connection_set_exit_on_disconnect(bus->conn, FALSE);
        dbus_connection_set_max_message_size(bus->conn, DBUS_MAXIMUM_MESSAGE_LENGTH);
        dbus_connection_set_max_received_size(bus->conn, BUS_RECEIVED_SIZE_MAX);
        dbus_connection_set_max_received_unix_fds(bus->conn, BUS_RECEIVED_FDS_MAX);
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
        /* Parked calls: answered while the connection is still there. */
        while (bus->parked) {
                struct lk_call *c = bus->parked;

                bus->parked = c->parked_next;
                lk_call_unref(c);
        }
        /* Calls still waiting for their caller's uid: answered, their questions dropped. */
        while (bus->lookups) {
                struct lookup *l = bus->lookups;

                bus->lookups = l->next;
                dbus_pending_call_cancel(l->pending);
                dbus_pending_call_unref(l->pending);
                lookup_free(l);
        }
        if (bus->conn) {
                lk_loop_set_prepare(bus->loop, NULL, NULL);
                dbus_connection_flush(bus->conn);
                dbus_connection_close(bus->conn);
                dbus_connection_unref(bus->conn);
        }
        uid_cache_clear(bus);
        free(bus);
}
