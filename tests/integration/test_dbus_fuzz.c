/* SPDX-License-Identifier: MIT */
/*
 * A D-Bus-level fuzzer against a running latchkeyd (issue 8, part 3): random method calls at
 * org.latchkey.Broker1 on the private test bus -- every method of the interface, of
 * Properties, Introspectable and Peer, and unknown ones; the right signatures with random
 * values and random signatures; ids that exist (a real login and session) mixed with junk --
 * first as nobody, then as root. Afterwards the same broker process must still be there and
 * answer: the Version property, ListSessions, and GetToken for the session opened before.
 *
 * Bounded: LATCHKEY_DBUS_FUZZ_SECONDS (default 20) and at most CALLS_MAX calls. Seeded:
 * LATCHKEY_FUZZ_SEED repeats a run; the seed is printed either way.
 */
#include <dbus/dbus.h>
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/util.h"
#include "tests/harness/busclient.h"
#include "tests/harness/harness.h"

#define NAME BC_NAME
#define PATH BC_PATH
#define IFACE BC_IFACE
#define ERR BC_ERR
#define NOBODY 65534

#define CALLS_MAX 200000
#define BATCH 16             /* calls in flight at once */
#define CALL_TIMEOUT_MS 20000 /* a reply later than this counts as a hang */

/* ---- randomness: xorshift64*, seeded and printed ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 0x2545F4914F6CDD1DULL;
}

static unsigned below(unsigned n)
{
        return n ? (unsigned)(rnd() % n) : 0;
}

static bool chance(unsigned percent)
{
        return below(100) < percent;
}

/* ---- what the fuzzer knows, and what it found ---- */

struct fuzz {
        const char *who;
        const char *bus_address;
        const char *login_id;   /* a pending login of root's, begun before the fuzzing */
        const char *session_id; /* root's open session */
        uint64_t seed;
        int64_t deadline_ms;
        /* results, written by the fuzzing process */
        unsigned calls, returns, errors, refused_by_bus;
        char unexpected[256]; /* the first error that means the broker did not answer */
};

static DBusConnection *bus_open(const char *address)
{
        _cleanup_free_ char *msg = NULL;
        DBusConnection *c = bc_open_err(address, &msg);

        if (!c)
                fprintf(stderr, "cannot connect to the test bus: %s\n", msg);
        return c;
}

/* ---- random values ---- */

static char text_buf[1 << 16];

/* A random string, valid UTF-8 (the bus drops a connection that sends anything else). */
static const char *random_string(const struct fuzz *f)
{
        static const char *const pool[] = {
            "", "root", "nobody", "no-such-user", "0", "-1", "..", "../../etc/passwd",
            "fz-root", "fz-gone", "%00", "a b", "ü", "\xe2\x80\x8b", "\t\n",
            "https://login.latchkey.test/callback?code=abc&state=def",
            "https://login.latchkey.test/callback?error=access_denied&error_description=no",
            "https://login.latchkey.test/callback?code=&state=",
            "https://login.latchkey.test/callback?code=x&code=y&state=z",
            "code=abc&state=def", "?code=%zz&state=%", "https://evil.example/?code=abc",
        };
        size_t len, i;

        switch (below(8)) {
        case 0:
        case 1:
                return pool[below(ELEMENTSOF(pool))];
        case 2:
                return f->login_id;
        case 3:
                return f->session_id;
        case 4: /* printable, around the 256-byte cap */
                len = 240 + below(40);
                break;
        case 5: /* around the 8 KiB answer cap, or much bigger */
                len = chance(80) ? 8180 + below(30) : sizeof(text_buf) - 1 - below(100);
                break;
        default:
                len = below(64);
                break;
        }
        for (i = 0; i < len; i++) {
                unsigned k = below(100);
                if (k < 3 && i + 2 < len) { /* a multi-byte character: U+00E9 or U+20AC */
                        if (k < 2) {
                                text_buf[i++] = (char)0xc3;
                                text_buf[i] = (char)0xa9;
                        } else {
                                text_buf[i++] = (char)0xe2;
                                text_buf[i++] = (char)0x82;
                                text_buf[i] = (char)0xac;
                        }
                } else {
                        text_buf[i] = (char)(k < 5 ? 1 + below(31) : 32 + below(95));
                }
        }
        text_buf[i] = '\0';
        return text_buf;
}

static bool append_random(DBusMessageIter *it, const struct fuzz *f, char type, int depth);

/* a{sv} options: the known keys with right or wrong types, and unknown keys. */
static bool append_options(DBusMessageIter *it, const struct fuzz *f)
{
        static const char *const keys[] = {"session_id", "min_valid", "unknown", "", "Session_Id"};
        static const char types[] = "suxbsu";
        DBusMessageIter dict, entry, v;
        unsigned n = below(5);
        bool ok = dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "{sv}", &dict);

        for (unsigned i = 0; ok && i < n; i++) {
                const char *key = keys[below(ELEMENTSOF(keys))];
                char sig[2] = {types[below(sizeof(types) - 1)], 0};

                ok = dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry) &&
                     dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key) &&
                     dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, sig, &v) &&
                     append_random(&v, f, sig[0], 1) &&
                     dbus_message_iter_close_container(&entry, &v) &&
                     dbus_message_iter_close_container(&dict, &entry);
        }
        return ok && dbus_message_iter_close_container(it, &dict);
}

static bool append_random(DBusMessageIter *it, const struct fuzz *f, char type, int depth)
{
        DBusMessageIter sub;

        switch (type) {
        case 's': {
                const char *s = random_string(f);
                return dbus_message_iter_append_basic(it, DBUS_TYPE_STRING, &s);
        }
        case 'o': {
                static const char *const paths[] = {"/", PATH, "/org/latchkey", "/a/b/c"};
                const char *p = paths[below(ELEMENTSOF(paths))];
                return dbus_message_iter_append_basic(it, DBUS_TYPE_OBJECT_PATH, &p);
        }
        case 'g': {
                static const char *const sigs[] = {"", "s", "a{sv}", "ssuxx"};
                const char *g = sigs[below(ELEMENTSOF(sigs))];
                return dbus_message_iter_append_basic(it, DBUS_TYPE_SIGNATURE, &g);
        }
        case 'u': {
                static const dbus_uint32_t edges[] = {0, 1, 60, 7200, 86400, UINT32_MAX};
                dbus_uint32_t u = chance(50) ? edges[below(ELEMENTSOF(edges))] : (dbus_uint32_t)rnd();
                return dbus_message_iter_append_basic(it, DBUS_TYPE_UINT32, &u);
        }
        case 'i': {
                dbus_int32_t i = (dbus_int32_t)rnd();
                return dbus_message_iter_append_basic(it, DBUS_TYPE_INT32, &i);
        }
        case 'x': {
                dbus_int64_t x = chance(50) ? INT64_MIN + (int64_t)below(2) : (dbus_int64_t)rnd();
                return dbus_message_iter_append_basic(it, DBUS_TYPE_INT64, &x);
        }
        case 'b': {
                dbus_bool_t b = (dbus_bool_t)below(2);
                return dbus_message_iter_append_basic(it, DBUS_TYPE_BOOLEAN, &b);
        }
        case 'y': {
                unsigned char y = (unsigned char)rnd();
                return dbus_message_iter_append_basic(it, DBUS_TYPE_BYTE, &y);
        }
        case 'd': {
                double d = (double)(int64_t)rnd() / 3.0;
                return dbus_message_iter_append_basic(it, DBUS_TYPE_DOUBLE, &d);
        }
        case 'A': /* a{sv} */
                return append_options(it, f);
        case 'a': { /* as */
                unsigned n = depth > 2 ? 0 : below(4);
                bool ok = dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "s", &sub);
                for (unsigned i = 0; ok && i < n; i++)
                        ok = append_random(&sub, f, 's', depth + 1);
                return ok && dbus_message_iter_close_container(it, &sub);
        }
        case 'v': {
                static const char inner[] = "suxbA";
                char t = depth > 2 ? 's' : inner[below(sizeof(inner) - 1)];
                const char *sig = t == 'A' ? "a{sv}" : (char[]){t, 0};
                bool ok = dbus_message_iter_open_container(it, DBUS_TYPE_VARIANT, sig, &sub) &&
                          append_random(&sub, f, t, depth + 1);
                return ok && dbus_message_iter_close_container(it, &sub);
        }
        case '(': { /* (ss) */
                bool ok = dbus_message_iter_open_container(it, DBUS_TYPE_STRUCT, NULL, &sub) &&
                          append_random(&sub, f, 's', depth + 1) &&
                          append_random(&sub, f, 's', depth + 1);
                return ok && dbus_message_iter_close_container(it, &sub);
        }
        default:
                return false;
        }
}

/* ---- random calls ---- */

struct target {
        const char *iface;
        const char *member;
        const char *args; /* the right arguments, in append_random's letters */
};

static const struct target targets[] = {
    {IFACE, "BeginLogin", "sA"},
    {IFACE, "CompleteLogin", "ss"},
    {IFACE, "CancelLogin", "s"},
    {IFACE, "OpenSession", "ss"},
    {IFACE, "CloseSession", "s"},
    {IFACE, "GetToken", "A"},
    {IFACE, "GetClaims", "A"},
    {IFACE, "ListSessions", ""},
    {IFACE, "ForgetAccount", "s"},
    {DBUS_INTERFACE_PROPERTIES, "Get", "ss"},
    {DBUS_INTERFACE_PROPERTIES, "GetAll", "s"},
    {DBUS_INTERFACE_PROPERTIES, "Set", "ssv"},
    {DBUS_INTERFACE_INTROSPECTABLE, "Introspect", ""},
    {DBUS_INTERFACE_PEER, "Ping", ""},
    {DBUS_INTERFACE_PEER, "GetMachineId", ""},
    {IFACE, "Frobnicate", "s"},
    {IFACE, "beginlogin", "sA"},
    {"org.latchkey.Broker2", "GetToken", "A"},
    {NULL, "GetToken", "A"}, /* no interface: the member alone */
    {NULL, "NoSuchMethod", ""},
};

static DBusMessage *random_call(const struct fuzz *f)
{
        static const char letters[] = "soguixbydAav(";
        const struct target *t = &targets[below(ELEMENTSOF(targets))];
        const char *path = chance(90) ? PATH : (chance(50) ? "/" : "/org/latchkey/Broker1/x");
        char args[8];
        DBusMessageIter it;
        DBusMessage *m;

        if (chance(55)) {
                snprintf(args, sizeof(args), "%s", t->args);
                /* For Properties, mostly the broker's interface and property. */
                if (t->iface && streq(t->iface, DBUS_INTERFACE_PROPERTIES) && chance(70))
                        for (size_t i = 0; i < 2 && args[i] == 's'; i++)
                                args[i] = 'P';
        } else {
                size_t n = below(5);
                for (size_t i = 0; i < n; i++)
                        args[i] = letters[below(sizeof(letters) - 1)];
                args[n] = '\0';
        }
        m = dbus_message_new_method_call(NAME, path, t->iface, t->member);
        if (!m)
                return NULL;
        dbus_message_iter_init_append(m, &it);
        for (const char *a = args; *a; a++) {
                bool ok;
                if (*a == 'P') { /* Properties: interface, then property name */
                        const char *s = a == args ? (chance(80) ? IFACE : random_string(f))
                                                  : (chance(80) ? "Version" : random_string(f));
                        ok = dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &s);
                } else {
                        ok = append_random(&it, f, *a, 0);
                }
                if (!ok) {
                        dbus_message_unref(m);
                        return NULL;
                }
        }
        if (chance(3))
                dbus_message_set_no_reply(m, TRUE);
        return m;
}

/* Errors that mean the broker did not answer: gone, hung, or the bus lost it. */
static bool broker_failed(const char *error)
{
        return streq(error, DBUS_ERROR_NO_REPLY) || streq(error, DBUS_ERROR_SERVICE_UNKNOWN) ||
               streq(error, DBUS_ERROR_NAME_HAS_NO_OWNER) || streq(error, DBUS_ERROR_DISCONNECTED) ||
               streq(error, DBUS_ERROR_TIMEOUT) || streq(error, "org.freedesktop.DBus.Error.Spawn.ChildExited");
}

static void report(const struct fuzz *f)
{
        printf("dbus-fuzz as %s: %u calls, %u returns, %u errors (%u refused by the bus)%s%s\n",
               f->who, f->calls, f->returns, f->errors, f->refused_by_bus,
               f->unexpected[0] ? "; FAILED: " : "", f->unexpected);
        fflush(stdout); /* lkh_run_as's child ends with _exit */
}

/*
 * The fuzzing loop, also in a process of another uid (lkh_run_as): no cmocka assertions here.
 * 0 when every call was answered, and enough of them went through to mean something.
 */
static int fuzz_loop(void *userdata)
{
        struct fuzz *f = userdata;
        DBusConnection *c = bus_open(f->bus_address);

        if (!c)
                return 1;
        rng_state = f->seed ? f->seed : 1;
        while (f->calls < CALLS_MAX && lkh_now_ms() < f->deadline_ms && !f->unexpected[0]) {
                DBusPendingCall *pending[BATCH] = {0};
                unsigned n = 0;

                for (; n < BATCH; n++) {
                        DBusMessage *m = random_call(f);
                        bool no_reply;

                        if (!m)
                                break;
                        no_reply = dbus_message_get_no_reply(m);
                        f->calls++;
                        if (no_reply) {
                                dbus_connection_send(c, m, NULL);
                                pending[n] = NULL;
                        } else if (!dbus_connection_send_with_reply(c, m, &pending[n],
                                                                    CALL_TIMEOUT_MS) ||
                                   !pending[n]) {
                                snprintf(f->unexpected, sizeof(f->unexpected),
                                         "cannot send a call: the connection is gone");
                        }
                        dbus_message_unref(m);
                }
                dbus_connection_flush(c);
                for (unsigned i = 0; i < n; i++) {
                        DBusMessage *reply;
                        const char *error;

                        if (!pending[i])
                                continue;
                        dbus_pending_call_block(pending[i]);
                        reply = dbus_pending_call_steal_reply(pending[i]);
                        dbus_pending_call_unref(pending[i]);
                        if (!reply)
                                continue;
                        if (dbus_message_get_type(reply) != DBUS_MESSAGE_TYPE_ERROR) {
                                f->returns++;
                        } else {
                                error = dbus_message_get_error_name(reply);
                                f->errors++;
                                if (streq(error, DBUS_ERROR_ACCESS_DENIED) &&
                                    !strstr(error, "latchkey"))
                                        f->refused_by_bus++;
                                if (broker_failed(error) && !f->unexpected[0])
                                        snprintf(f->unexpected, sizeof(f->unexpected),
                                                 "%s after %u calls", error, f->calls);
                        }
                        dbus_message_unref(reply);
                }
        }
        bc_close(c);
        report(f);
        if (f->unexpected[0])
                return 2;
        return f->calls > 100 && f->returns > 0 && f->errors > 0 ? 0 : 3;
}

/* ---- the test ---- */

static int setup(void **state)
{
        return lkh_setup_broker(state, NULL, "[sessions]\nrefresh_margin = 60\n");
}

/* Calls method with string arguments (NULL-terminated); the first string of the reply. */
static char *call(DBusConnection *c, const char *method, char **ret_error, ...)
{
        DBusError err = DBUS_ERROR_INIT;
        DBusMessage *m = dbus_message_new_method_call(NAME, PATH, IFACE, method), *reply;
        DBusMessageIter it, dict;
        const char *s;
        char *out = NULL;
        va_list ap;

        assert_non_null(m);
        dbus_message_iter_init_append(m, &it);
        va_start(ap, ret_error);
        while ((s = va_arg(ap, const char *)))
                assert_true(dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &s));
        va_end(ap);
        if (streq(method, "BeginLogin")) {
                assert_true(dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict));
                assert_true(dbus_message_iter_close_container(&it, &dict));
        }
        reply = dbus_connection_send_with_reply_and_block(c, m, 30000, &err);
        dbus_message_unref(m);
        if (!reply) {
                fprintf(stderr, "%s: %s: %s\n", method, err.name, err.message);
                if (ret_error)
                        *ret_error = strdup(err.name);
                dbus_error_free(&err);
                return NULL;
        }
        if (dbus_message_iter_init(reply, &it) &&
            dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_STRING) {
                dbus_message_iter_get_basic(&it, &s);
                out = strdup(s);
        } else {
                out = strdup("");
        }
        dbus_message_unref(reply);
        return out;
}

/* BeginLogin(user, {}): the login id and the authorize URL. */
static void begin_login(DBusConnection *c, const char *user, char **ret_id, char **ret_url)
{
        _cleanup_free_ char *e = bc_begin_login(c, user, ret_id, ret_url);

        assert_null(e);
}

static pid_t name_owner_pid(DBusConnection *c)
{
        DBusMessage *m, *reply;
        const char *name = NAME;
        dbus_uint32_t pid = 0;

        m = dbus_message_new_method_call(DBUS_SERVICE_DBUS, DBUS_PATH_DBUS, DBUS_INTERFACE_DBUS,
                                         "GetConnectionUnixProcessID");
        assert_non_null(m);
        assert_true(dbus_message_append_args(m, DBUS_TYPE_STRING, &name, DBUS_TYPE_INVALID));
        reply = dbus_connection_send_with_reply_and_block(c, m, 5000, NULL);
        dbus_message_unref(m);
        if (!reply)
                return 0;
        if (!dbus_message_get_args(reply, NULL, DBUS_TYPE_UINT32, &pid, DBUS_TYPE_INVALID))
                pid = 0;
        dbus_message_unref(reply);
        return (pid_t)pid;
}

static char *get_version(DBusConnection *c)
{
        DBusMessage *m, *reply;
        DBusMessageIter it, v;
        const char *iface = IFACE, *prop = "Version", *s;
        char *out = NULL;

        m = dbus_message_new_method_call(NAME, PATH, DBUS_INTERFACE_PROPERTIES, "Get");
        assert_non_null(m);
        assert_true(dbus_message_append_args(m, DBUS_TYPE_STRING, &iface, DBUS_TYPE_STRING, &prop,
                                             DBUS_TYPE_INVALID));
        reply = dbus_connection_send_with_reply_and_block(c, m, 10000, NULL);
        dbus_message_unref(m);
        if (!reply)
                return NULL;
        if (dbus_message_iter_init(reply, &it) &&
            dbus_message_iter_get_arg_type(&it) == DBUS_TYPE_VARIANT) {
                dbus_message_iter_recurse(&it, &v);
                if (dbus_message_iter_get_arg_type(&v) == DBUS_TYPE_STRING) {
                        dbus_message_iter_get_basic(&v, &s);
                        out = strdup(s);
                }
        }
        dbus_message_unref(reply);
        return out;
}

/* ListSessions: how many sessions the caller sees, or -1 on error. */
static int count_sessions(DBusConnection *c)
{
        DBusMessage *m = dbus_message_new_method_call(NAME, PATH, IFACE, "ListSessions"), *reply;
        DBusMessageIter it, arr;
        int n = 0;

        assert_non_null(m);
        reply = dbus_connection_send_with_reply_and_block(c, m, 10000, NULL);
        dbus_message_unref(m);
        if (!reply)
                return -1;
        if (!dbus_message_has_signature(reply, "a(ssuxx)")) {
                dbus_message_unref(reply);
                return -1;
        }
        dbus_message_iter_init(reply, &it);
        dbus_message_iter_recurse(&it, &arr);
        while (dbus_message_iter_get_arg_type(&arr) == DBUS_TYPE_STRUCT) {
                n++;
                dbus_message_iter_next(&arr);
        }
        dbus_message_unref(reply);
        return n;
}

static uint64_t choose_seed(void)
{
        const char *s = getenv("LATCHKEY_FUZZ_SEED");
        struct timespec ts;

        if (s && *s) {
                char *end;
                unsigned long long v;
                errno = 0;
                v = strtoull(s, &end, 0);
                if (errno == 0 && end != s && !*end && v != 0)
                        return v;
                fprintf(stderr, "LATCHKEY_FUZZ_SEED='%s' is not a non-zero number, ignoring\n", s);
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        return ((uint64_t)ts.tv_sec * 1000000007ULL) ^ (uint64_t)ts.tv_nsec ^
               ((uint64_t)getpid() << 32) ^ 1;
}

static unsigned fuzz_seconds(void)
{
        const char *s = getenv("LATCHKEY_DBUS_FUZZ_SECONDS");
        char *end;
        unsigned long v;

        if (!s || !*s)
                return 20;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v == 0 || v > 300) {
                fprintf(stderr, "LATCHKEY_DBUS_FUZZ_SECONDS='%s' is not 1..300, using 20\n", s);
                return 20;
        }
        return (unsigned)v;
}

static void test_dbus_fuzz(void **state)
{
        struct lkh *h = *state;
        DBusConnection *c = bus_open(h->bus_address);
        _cleanup_free_ char *login_id = NULL, *url = NULL, *location = NULL, *code = NULL;
        _cleanup_free_ char *pending = NULL, *user = NULL, *version = NULL, *open = NULL;
        unsigned seconds = fuzz_seconds();
        struct fuzz f = {0};
        pid_t broker;
        int result = -1, status;

        assert_non_null(c);
        broker = name_owner_pid(c);
        assert_true(broker > 0);
        assert_int_equal(broker, h->broker_pid);

        /* Something real to aim at: an open session and a pending login, both root's. */
        begin_login(c, "root", &login_id, &url);
        assert_int_equal(lkh_browser_login(h, url, "root", false, &location, &code), 0);
        user = call(c, "CompleteLogin", NULL, login_id, location, NULL);
        assert_non_null(user);
        assert_string_equal(user, "root");
        open = call(c, "OpenSession", NULL, login_id, "fz-root", NULL);
        assert_non_null(open);
        free(url);
        begin_login(c, "root", &pending, &url);

        f.bus_address = h->bus_address;
        f.login_id = pending;
        f.session_id = "fz-root";
        f.seed = choose_seed();
        printf("dbus-fuzz: seed %" PRIu64 " (LATCHKEY_FUZZ_SEED=%" PRIu64 " repeats this run), "
               "%u s\n", f.seed, f.seed, seconds);
        fflush(stdout);

        /* A third of the time as nobody, who owns nothing here... */
        f.who = "nobody";
        f.deadline_ms = lkh_now_ms() + seconds * 1000 / 3;
        assert_int_equal(lkh_run_as(NOBODY, NOBODY, fuzz_loop, &f, &result), 0);
        assert_int_equal(result, 0);

        /* ...then as root, who may call everything on everyone's behalf. */
        f.who = "root";
        f.seed += 1;
        f.deadline_ms = lkh_now_ms() + seconds * 1000 * 2 / 3;
        result = fuzz_loop(&f);
        assert_int_equal(result, 0);

        /* The same broker process, alive and answering. */
        assert_int_equal(waitpid(h->broker_pid, &status, WNOHANG), 0);
        assert_int_equal(kill(h->broker_pid, 0), 0);
        assert_int_equal(name_owner_pid(c), h->broker_pid);
        version = get_version(c);
        assert_non_null(version);
        assert_string_equal(version, LATCHKEY_VERSION);
        assert_true(count_sessions(c) >= 0);
        /* The fuzzer may have closed fz-root (root may); if not, its token still comes. */
        {
                DBusMessage *m = dbus_message_new_method_call(NAME, PATH, IFACE, "GetToken");
                DBusMessageIter it, dict, entry, v;
                const char *k = "session_id", *sid = "fz-root", *tok;
                DBusError err = DBUS_ERROR_INIT;
                DBusMessage *reply;
                dbus_int64_t exp;

                dbus_message_iter_init_append(m, &it);
                dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
                dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry);
                dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &k);
                dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "s", &v);
                dbus_message_iter_append_basic(&v, DBUS_TYPE_STRING, &sid);
                dbus_message_iter_close_container(&entry, &v);
                dbus_message_iter_close_container(&dict, &entry);
                dbus_message_iter_close_container(&it, &dict);
                reply = dbus_connection_send_with_reply_and_block(c, m, 30000, &err);
                dbus_message_unref(m);
                if (reply) {
                        assert_true(dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &tok,
                                                          DBUS_TYPE_INT64, &exp, DBUS_TYPE_STRING,
                                                          &sid, DBUS_TYPE_INVALID));
                        assert_true(strlen(tok) > 10);
                        dbus_message_unref(reply);
                } else {
                        fprintf(stderr, "GetToken fz-root after fuzzing: %s\n", err.name);
                        assert_string_equal(err.name, ERR("NotFound"));
                        dbus_error_free(&err);
                }
        }
        /* And a whole new login still works. */
        {
                DBusMessage *m = dbus_message_new_method_call(NAME, PATH, IFACE, "BeginLogin");
                DBusMessageIter it, dict;
                const char *nb = "nobody";
                DBusError err = DBUS_ERROR_INIT;
                DBusMessage *reply;

                dbus_message_iter_init_append(m, &it);
                dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &nb);
                dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
                dbus_message_iter_close_container(&it, &dict);
                reply = dbus_connection_send_with_reply_and_block(c, m, 30000, &err);
                dbus_message_unref(m);
                if (!reply) {
                        /* Root's 16 pending logins may be used up by the fuzzing. */
                        fprintf(stderr, "BeginLogin after fuzzing: %s: %s\n", err.name,
                                err.message);
                        assert_string_equal(err.name, ERR("TooManyRequests"));
                        dbus_error_free(&err);
                } else {
                        dbus_message_unref(reply);
                }
        }
        bc_close(c);

        /* A clean exit on SIGTERM: under ASan or valgrind, also no leak and no bad access. */
        status = lkh_stop_process(&h->broker_pid, 60000);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("the broker's exit after fuzzing: status 0x%x", (unsigned)status);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_dbus_fuzz),
        };

        if (geteuid() != 0) {
                fprintf(stderr, "test-dbus-fuzz needs root (a second uid); skipping\n");
                return 77;
        }
        return cmocka_run_group_tests_name("D-Bus fuzzing", tests, setup, lkh_teardown);
}
