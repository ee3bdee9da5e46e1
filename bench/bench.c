/* SPDX-License-Identifier: MIT */
/*
 * latchkey-bench: what latchkey costs, each figure next to its reference in the same run
 * (issue 7). It starts the real latchkeyd, a private dbus-daemon and the test IdP on
 * loopback (tests/harness), then speaks D-Bus through libdbus and HTTPS through libcurl
 * itself, so the measuring tool is not the bottleneck:
 *
 *   1. GetToken on a cached token vs org.freedesktop.DBus.Peer.Ping to the broker,
 *      1 / 8 / 64 concurrent clients (threads, one private connection each), in short
 *      cells that alternate between the two; calls/s is the median over the cells.
 *   2. CompleteLogin vs the same token request sent by the bench with libcurl (same CA
 *      file, same verification, a kept-alive connection like the broker's pool), and the
 *      IdP's counters per login.
 *   3. Many logins at once with the IdP delaying each token response by 500 ms, and the
 *      GetToken latency of other sessions meanwhile (paced clients, latency measured from
 *      the planned send time, so a stalled broker cannot hide).
 *   4. Refresh storm: 64 clients ask for one near-expiry token at once.
 *   5. Broker RSS with many open sessions (made by real logins), and its growth over
 *      100,000 GetToken calls.
 *   6. Start: the first call to a stopped, activatable broker until its reply, with the
 *      state dir of (5), next to the same with an empty sessions dir.
 *
 * Runs as root: the logins of (3) come from many uids (at most 16 pending logins per uid,
 * SPEC §4), each on a connection opened with that effective uid.
 */
#include <curl/curl.h>
#include <dbus/dbus.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "dbus/broker_wire.h"
#include "oidc/b64url.h"
#include "tests/harness/harness.h"

#define BROKER_NAME LK_BUS_NAME
#define BROKER_PATH LK_BUS_PATH
#define BROKER_IFACE LK_BUS_INTERFACE
#define CALL_TIMEOUT_MS 30000
#define LOGINS_PER_UID 16 /* SPEC §4; the bench spreads its logins, it does not lift the cap */
#define MAX_CLIENTS 64
#define DELAY_MS 500

struct params {
        double cell_s;        /* (1) seconds per measurement cell */
        /*
         * (1) Ping/GetToken alternations per client count. One 0.3 s cell of 64 clients is
         * anywhere from 0.65x to 1.13x its Ping neighbour on a 2-vCPU VM: the median of 10
         * cells ranged 0.78x-0.94x from run to run, that of 30 cells 0.82x-0.91x (six runs).
         */
        int rounds;
        int logins;           /* (2) timed logins */
        int burst;            /* (3) logins at once */
        int sessions;         /* (5) open sessions */
        long get_token_calls; /* (5) calls over which RSS growth is measured */
        int starts;           /* (6) cold starts measured */
};

static const struct params full_params = {0.3, 30, 400, 200, 10000, 100000, 5};
static const struct params quick_params = {0.2, 1, 8, 48, 300, 10000, 2};

static struct lkh *H;
static struct params P;
static bool quick;
static const char *only; /* --only: the groups to run, e.g. "12"; NULL: all */
static json_t *results;
static int n_met, n_missed, n_failed;

/* ---- small things ---- */

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double ms(int64_t ns)
{
        return (double)ns / 1e6;
}

static void die(const char *fmt, ...) _printf_(1, 2);
static void die(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        fputs("latchkey-bench: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        lkh_free(H);
        exit(1);
}

static void *xmalloc(size_t n)
{
        void *p = malloc(n ? n : 1);

        if (!p)
                die("out of memory");
        return p;
}

static char *xstrdup(const char *s)
{
        char *d = strdup(s);

        if (!d)
                die("out of memory");
        return d;
}

static char *xasprintf(const char *fmt, ...) _printf_(1, 2);
static char *xasprintf(const char *fmt, ...)
{
        va_list ap;
        char *s;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                die("out of memory");
        return s;
}

/* Latencies in ns. */
struct lat {
        int64_t *v;
        size_t n, cap;
};

static void lat_add(struct lat *l, int64_t ns)
{
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 4096;
                int64_t *v = realloc(l->v, cap * sizeof(*v));
                if (!v)
                        die("out of memory");
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n++] = ns;
}

static void lat_merge(struct lat *into, const struct lat *from)
{
        for (size_t i = 0; i < from->n; i++)
                lat_add(into, from->v[i]);
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

/* The median of v[0..n), which it sorts. */
static double median(double *v, int n)
{
        qsort(v, (size_t)n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

/* Nearest-rank percentile (q in 0..1) in ms; sorts l. */
static double lat_pct(struct lat *l, double q)
{
        size_t i;

        if (l->n == 0)
                return 0;
        qsort(l->v, l->n, sizeof(*l->v), cmp_i64);
        i = (size_t)(q * (double)l->n + 0.999999);
        i = i == 0 ? 0 : i - 1;
        if (i >= l->n)
                i = l->n - 1;
        return ms(l->v[i]);
}

static long vm_rss_kib(pid_t pid)
{
        _cleanup_free_ char *path = xasprintf("/proc/%d/status", (int)pid);
        char line[256];
        long kib = -1;
        FILE *f = fopen(path, "re");

        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "VmRSS:", 6) == 0) {
                        char *end;
                        errno = 0;
                        kib = strtol(line + 6, &end, 10);
                        if (errno || end == line + 6)
                                kib = -1;
                        break;
                }
        fclose(f);
        return kib;
}

/*
 * The whole machine's CPU time so far, from /proc/stat's "cpu" line, in ticks: all of it,
 * and the part a hypervisor gave to other guests (steal). false when unreadable.
 */
static bool machine_cpu_ticks(long long *ret_total, long long *ret_steal)
{
        long long v[8] = {0}, total = 0;
        FILE *f = fopen("/proc/stat", "re");
        int n;

        if (!f)
                return false;
        n = fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
        fclose(f);
        if (n != 8)
                return false;
        for (int i = 0; i < 8; i++)
                total += v[i];
        *ret_total = total;
        *ret_steal = v[7];
        return true;
}

/* CPU time a process has used so far, from /proc/PID/schedstat (ns), or -1. */
static int64_t cpu_used_ns(pid_t pid)
{
        _cleanup_free_ char *path = xasprintf("/proc/%d/schedstat", (int)pid);
        unsigned long long ns;
        FILE *f = fopen(path, "re");
        int n;

        if (!f)
                return -1;
        n = fscanf(f, "%llu", &ns);
        fclose(f);
        return n == 1 ? (int64_t)ns : -1;
}

static long idp_stat(const char *name)
{
        long v = 0;

        if (lkh_idp_stat(H, name, &v) < 0)
                die("cannot read the IdP counter %s", name);
        return v;
}

static void idp_set(const char *name, const char *value)
{
        if (lkh_idp_set(H, name, value) < 0)
                die("cannot set the IdP switch %s", name);
}

/* ---- results ---- */

enum verdict { V_INFO, V_MET, V_MISSED, V_FAILED };

static const char *verdict_name(enum verdict v)
{
        static const char *const names[] = {"", "met", "MISSED", "FAILED"};
        return names[v];
}

/*
 * One row: the figure, its value, its reference (may be NAN), the target in words, the
 * verdict. A row with a reference prints the ratio.
 */
static void row(const char *group, const char *figure, double value, const char *unit,
                double reference, const char *ref_name, const char *target, enum verdict v)
{
        json_t *o = json_object();
        char ratio[32] = "";

        if (reference == reference && reference > 0)
                snprintf(ratio, sizeof(ratio), "%.2fx", value / reference);
        printf("%-4s %-44s %12.3f %-5s", group, figure, value, unit);
        if (reference == reference)
                printf(" %12.3f %-14s %7s", reference, ref_name ? ref_name : "", ratio);
        else
                printf(" %12s %-14s %7s", "", "", "");
        printf("  %-22s %s\n", target ? target : "", verdict_name(v));
        fflush(stdout);

        json_object_set_new(o, "group", json_string(group));
        json_object_set_new(o, "figure", json_string(figure));
        json_object_set_new(o, "value", json_real(value));
        json_object_set_new(o, "unit", json_string(unit));
        if (reference == reference) {
                json_object_set_new(o, "reference", json_real(reference));
                json_object_set_new(o, "reference_name", json_string(ref_name ? ref_name : ""));
                if (reference > 0)
                        json_object_set_new(o, "ratio", json_real(value / reference));
        }
        if (target)
                json_object_set_new(o, "target", json_string(target));
        json_object_set_new(o, "verdict", json_string(v == V_INFO ? "info" : verdict_name(v)));
        json_array_append_new(results, o);
        if (v == V_MET)
                n_met++;
        else if (v == V_MISSED)
                n_missed++;
        else if (v == V_FAILED)
                n_failed++;
}

static enum verdict check(bool ok)
{
        return ok ? V_MET : V_MISSED;
}

/* A property that is not a timing (counts, successes): a miss is a failure. */
static enum verdict must(bool ok)
{
        return ok ? V_MET : V_FAILED;
}

static void heading(const char *s)
{
        printf("\n-- %s\n", s);
        fflush(stdout);
}

/* ---- D-Bus ---- */

/*
 * A private connection whose bus identity is uid: the bus takes the peer credentials at
 * connect time, so the effective ids only need to be uid's while connecting. Called by the
 * main thread while no worker runs (glibc changes the ids of every thread).
 */
static DBusConnection *bus_connect_as(uid_t uid, gid_t gid)
{
        DBusError err = DBUS_ERROR_INIT;
        DBusConnection *c;
        bool switched = uid != geteuid();

        if (switched && (setegid(gid) < 0 || seteuid(uid) < 0))
                die("cannot take uid %u: %m", (unsigned)uid);
        c = dbus_connection_open_private(H->bus_address, &err);
        if (c && !dbus_bus_register(c, &err)) {
                dbus_connection_close(c);
                dbus_connection_unref(c);
                c = NULL;
        }
        if (switched && (seteuid(0) < 0 || setegid(0) < 0))
                die("cannot go back to root: %m");
        if (!c)
                die("cannot connect to the bus as uid %u: %s", (unsigned)uid, err.message);
        dbus_connection_set_exit_on_disconnect(c, FALSE);
        return c;
}

static void bus_close(DBusConnection *c)
{
        if (c) {
                dbus_connection_close(c);
                dbus_connection_unref(c);
        }
}

static DBusMessage *new_call(const char *method)
{
        DBusMessage *m = dbus_message_new_method_call(BROKER_NAME, BROKER_PATH, BROKER_IFACE,
                                                      method);
        if (!m)
                die("out of memory");
        return m;
}

static DBusMessage *new_ping(void)
{
        DBusMessage *m = dbus_message_new_method_call(BROKER_NAME, BROKER_PATH,
                                                      "org.freedesktop.DBus.Peer", "Ping");
        if (!m)
                die("out of memory");
        return m;
}

/* An a{sv} with session_id (when not NULL). */
static void append_options(DBusMessage *m, const char *session_id)
{
        DBusMessageIter it, dict, entry, var;
        const char *key = "session_id";
        bool ok;

        dbus_message_iter_init_append(m, &it);
        ok = dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
        if (ok && session_id)
                ok = dbus_message_iter_open_container(&dict, DBUS_TYPE_DICT_ENTRY, NULL, &entry) &&
                     dbus_message_iter_append_basic(&entry, DBUS_TYPE_STRING, &key) &&
                     dbus_message_iter_open_container(&entry, DBUS_TYPE_VARIANT, "s", &var) &&
                     dbus_message_iter_append_basic(&var, DBUS_TYPE_STRING, &session_id) &&
                     dbus_message_iter_close_container(&entry, &var) &&
                     dbus_message_iter_close_container(&dict, &entry);
        if (!ok || !dbus_message_iter_close_container(&it, &dict))
                die("out of memory");
}

static DBusMessage *new_get_token(const char *session_id)
{
        DBusMessage *m = new_call("GetToken");

        append_options(m, session_id);
        return m;
}

/* Sends m (taking it over) and waits; NULL with *errbuf set on an error reply. */
static DBusMessage *call(DBusConnection *c, DBusMessage *m, char *errbuf, size_t errsize)
{
        DBusError err = DBUS_ERROR_INIT;
        DBusMessage *reply = dbus_connection_send_with_reply_and_block(c, m, CALL_TIMEOUT_MS, &err);

        dbus_message_unref(m);
        if (!reply) {
                if (errbuf)
                        snprintf(errbuf, errsize, "%s: %s", err.name, err.message);
                dbus_error_free(&err);
        }
        return reply;
}

/* A call whose failure ends the bench. */
static DBusMessage *call_or_die(DBusConnection *c, DBusMessage *m)
{
        char err[512];
        const char *member = dbus_message_get_member(m);
        _cleanup_free_ char *what = xstrdup(member ? member : "?");
        DBusMessage *reply = call(c, m, err, sizeof(err));

        if (!reply)
                die("%s failed: %s", what, err);
        return reply;
}

static DBusMessage *new_call_ss(const char *method, const char *a, const char *b)
{
        DBusMessage *m = new_call(method);

        if (!dbus_message_append_args(m, DBUS_TYPE_STRING, &a, DBUS_TYPE_STRING, &b,
                                      DBUS_TYPE_INVALID))
                die("out of memory");
        return m;
}

static void call_ss(DBusConnection *c, const char *method, const char *a, const char *b)
{
        dbus_message_unref(call_or_die(c, new_call_ss(method, a, b)));
}

static void call_s(DBusConnection *c, const char *method, const char *a)
{
        DBusMessage *m = new_call(method);

        if (!dbus_message_append_args(m, DBUS_TYPE_STRING, &a, DBUS_TYPE_INVALID))
                die("out of memory");
        dbus_message_unref(call_or_die(c, m));
}

/* BeginLogin(user) → login id and authorize URL. */
static void begin_login(DBusConnection *c, const char *user, char **ret_id, char **ret_url)
{
        DBusMessage *m = new_call("BeginLogin"), *reply;
        const char *id, *url;

        if (!dbus_message_append_args(m, DBUS_TYPE_STRING, &user, DBUS_TYPE_INVALID))
                die("out of memory");
        append_options(m, NULL);
        reply = call_or_die(c, m);
        if (!dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &id, DBUS_TYPE_STRING, &url,
                                   DBUS_TYPE_INVALID))
                die("BeginLogin answered with the wrong signature");
        *ret_id = xstrdup(id);
        *ret_url = xstrdup(url);
        dbus_message_unref(reply);
}

static pid_t broker_pid(DBusConnection *c)
{
        DBusMessage *m = dbus_message_new_method_call(DBUS_SERVICE_DBUS, DBUS_PATH_DBUS,
                                                      DBUS_INTERFACE_DBUS,
                                                      "GetConnectionUnixProcessID");
        const char *name = BROKER_NAME;
        dbus_uint32_t pid = 0;
        DBusMessage *reply;

        if (!m || !dbus_message_append_args(m, DBUS_TYPE_STRING, &name, DBUS_TYPE_INVALID))
                die("out of memory");
        reply = call_or_die(c, m);
        if (!dbus_message_get_args(reply, NULL, DBUS_TYPE_UINT32, &pid, DBUS_TYPE_INVALID))
                die("GetConnectionUnixProcessID answered with the wrong signature");
        dbus_message_unref(reply);
        return (pid_t)pid;
}

/* ---- HTTPS, as the browser and as a client of the token endpoint ---- */

struct body {
        char *data;
        size_t len;
};

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        struct body *b = userdata;
        size_t n = size * nmemb;
        char *d;

        if (b->len + n > 4 * 1024 * 1024)
                return 0;
        d = realloc(b->data, b->len + n + 1);
        if (!d)
                return 0;
        memcpy(d + b->len, ptr, n);
        b->data = d;
        b->len += n;
        d[b->len] = 0;
        return n;
}

/* One handle per thread, kept alive across requests (as the broker's connection pool). */
static CURL *http_new(void)
{
        CURL *cu = curl_easy_init();

        if (!cu)
                die("cannot make a curl handle");
        curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "https,http");
        curl_easy_setopt(cu, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(cu, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(cu, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(cu, CURLOPT_CAINFO, H->cert_file);
        curl_easy_setopt(cu, CURLOPT_TIMEOUT, 10L);
        curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, body_write);
        return cu;
}

/* Plays the browser: signs user in with login_hint; returns the callback URL. */
static char *browser(CURL *cu, const char *authorize_url, const char *user)
{
        char *hint = curl_easy_escape(cu, user, 0);
        _cleanup_free_ char *url = xasprintf("%s&login_hint=%s", authorize_url, hint);
        struct body b = {0};
        char *location = NULL;
        long status = 0;
        CURLcode cc;

        curl_free(hint);
        curl_easy_setopt(cu, CURLOPT_URL, url);
        curl_easy_setopt(cu, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(cu, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(cu, CURLOPT_WRITEDATA, &b);
        cc = curl_easy_perform(cu);
        free(b.data);
        if (cc != CURLE_OK)
                die("authorize request failed: %s", curl_easy_strerror(cc));
        curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(cu, CURLINFO_REDIRECT_URL, &location);
        if (status != 302 || !location)
                die("the IdP answered authorize for %s with HTTP %ld, not a redirect", user,
                    status);
        return xstrdup(location);
}

static char *random_b64url(size_t bytes)
{
        unsigned char buf[64];
        char *s;

        if (bytes > sizeof(buf) || RAND_bytes(buf, (int)bytes) != 1)
                die("no randomness");
        s = lk_b64url_encode(buf, bytes);
        if (!s)
                die("out of memory");
        return s;
}

/*
 * The token request the broker makes for a login, made by the bench: a fresh code (with
 * PKCE S256, state and nonce, as the broker's), then the timed POST with the same headers,
 * the same client authentication and the same TLS verification. Returns its duration.
 * As for the broker, the code comes over the browser's connection and the POST goes over
 * another kept-alive one, not the connection the IdP has just answered on.
 */
static int64_t direct_token_request(CURL *browser_cu, CURL *cu)
{
        _cleanup_free_ char *verifier = random_b64url(32), *state = random_b64url(16);
        _cleanup_free_ char *nonce = random_b64url(16), *challenge = NULL, *url = NULL;
        _cleanup_free_ char *location = NULL, *code = NULL, *form = NULL, *token_url = NULL;
        unsigned char digest[SHA256_DIGEST_LENGTH];
        struct curl_slist *headers = NULL;
        struct body b = {0};
        char *e_code, *e_ru, *e_cid, *e_sec;
        long status = 0;
        int64_t t0, t1;
        CURLcode cc;

        SHA256((const unsigned char *)verifier, strlen(verifier), digest);
        challenge = lk_b64url_encode(digest, sizeof(digest));
        url = lkh_idp_authorize_url(H, state, nonce, challenge);
        if (!challenge || !url)
                die("out of memory");
        location = browser(browser_cu, url, "root");
        if (lkh_url_param(location, "code", &code) < 0)
                die("the IdP sent no code");

        e_code = curl_easy_escape(cu, code, 0);
        e_ru = curl_easy_escape(cu, H->redirect_uri, 0);
        e_cid = curl_easy_escape(cu, H->client_id, 0);
        e_sec = curl_easy_escape(cu, H->client_secret, 0);
        form = xasprintf("grant_type=authorization_code&code=%s&redirect_uri=%s&code_verifier=%s"
                         "&client_id=%s&client_secret=%s",
                         e_code, e_ru, verifier, e_cid, e_sec);
        curl_free(e_code);
        curl_free(e_ru);
        curl_free(e_cid);
        curl_free(e_sec);
        token_url = xasprintf("%s/token", H->issuer);
        headers = curl_slist_append(headers, "Accept: application/json");
        headers = curl_slist_append(headers, "Content-Type: application/x-www-form-urlencoded");
        headers = curl_slist_append(headers, "Expect:");
        if (!headers)
                die("out of memory");
        curl_easy_setopt(cu, CURLOPT_URL, token_url);
        curl_easy_setopt(cu, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(cu, CURLOPT_USERAGENT, "latchkey/" LATCHKEY_VERSION);
        curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(form));
        curl_easy_setopt(cu, CURLOPT_POSTFIELDS, form);
        curl_easy_setopt(cu, CURLOPT_WRITEDATA, &b);
        t0 = now_ns();
        cc = curl_easy_perform(cu);
        t1 = now_ns();
        curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_setopt(cu, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(cu, CURLOPT_USERAGENT, NULL);
        curl_slist_free_all(headers);
        if (cc != CURLE_OK || status != 200 || !b.data || !strstr(b.data, "\"access_token\""))
                die("the direct token request failed: %s, HTTP %ld", curl_easy_strerror(cc),
                    status);
        explicit_bzero(b.data, b.len);
        free(b.data);
        explicit_bzero(form, strlen(form));
        return t1 - t0;
}

/*
 * A whole login as the broker sees it: BeginLogin, the browser, CompleteLogin (timed),
 * then OpenSession(session_id), or CancelLogin when session_id is NULL.
 */
static int64_t broker_login(DBusConnection *c, CURL *cu, const char *user,
                            const char *session_id)
{
        _cleanup_free_ char *id = NULL, *url = NULL, *location = NULL;
        DBusMessage *m;
        int64_t t0, t1;

        begin_login(c, user, &id, &url);
        location = browser(cu, url, user);
        /* Composed before the clock starts, as the direct request's form is. */
        m = new_call_ss("CompleteLogin", id, location);
        t0 = now_ns();
        dbus_message_unref(call_or_die(c, m));
        t1 = now_ns();
        if (session_id)
                call_ss(c, "OpenSession", id, session_id);
        else
                call_s(c, "CancelLogin", id);
        return t1 - t0;
}

/*
 * The bus's share of a CompleteLogin: a Peer.Ping to the broker at the same point of a
 * login (right after the browser's GET, the broker and the bus idle since BeginLogin).
 */
static int64_t ping_in_login(DBusConnection *c, CURL *cu, const char *user)
{
        _cleanup_free_ char *id = NULL, *url = NULL, *location = NULL;
        DBusMessage *m = new_ping();
        int64_t t0, t1;

        begin_login(c, user, &id, &url);
        location = browser(cu, url, user);
        t0 = now_ns();
        dbus_message_unref(call_or_die(c, m));
        t1 = now_ns();
        call_s(c, "CancelLogin", id);
        return t1 - t0;
}

/* ---- users: the uids logins come from in (3) and the owners of sessions in (5) ---- */

struct user {
        char *name;
        uid_t uid;
        gid_t gid;
};

static struct user *users;
static size_t n_users;

/* root first, then every other local user the IdP can sign in (plain names). */
static void load_users(void)
{
        struct passwd *pw;

        users = xmalloc(sizeof(*users) * 1024);
        users[n_users++] = (struct user){xstrdup("root"), 0, 0};
        setpwent();
        while ((pw = getpwent()) && n_users < 1024) {
                bool dup = false, plain = true;

                if (pw->pw_uid == 0)
                        continue;
                for (size_t i = 0; i < n_users; i++)
                        dup = dup || users[i].uid == pw->pw_uid;
                for (const char *p = pw->pw_name; *p; p++)
                        plain = plain && (strchr("abcdefghijklmnopqrstuvwxyz0123456789_-", *p));
                if (dup || !plain)
                        continue;
                users[n_users++] = (struct user){xstrdup(pw->pw_name), pw->pw_uid, pw->pw_gid};
        }
        endpwent();
}

/*
 * The users are mostly system accounts (root, daemon, ...), which latchkey refuses unless
 * [users] allow_system_users lists them: list them all.
 */
static char *system_users_config(void)
{
        size_t len = sizeof("[users]\nallow_system_users =\n");
        char *text, *p;

        for (size_t i = 0; i < n_users; i++)
                len += strlen(users[i].name) + 1;
        text = xmalloc(len);
        p = text + snprintf(text, len, "[users]\nallow_system_users =");
        for (size_t i = 0; i < n_users; i++)
                p += snprintf(p, len - (size_t)(p - text), " %s", users[i].name);
        snprintf(p, len - (size_t)(p - text), "\n");
        return text;
}

/* ---- (1) GetToken vs Ping ---- */

enum op { OP_PING, OP_GET_TOKEN };

struct worker {
        pthread_t thread;
        DBusConnection *conn;
        enum op op;
        const char *session_id;
        DBusMessage *call; /* the call each round sends a copy of */
        pthread_barrier_t *barrier;
        double seconds; /* closed loop for that long after the barrier, or */
        long count;     /* this many calls */
        int64_t started_ns, ended_ns;
        struct lat lat;
        long errors;
        char error[256];
};

static DBusMessage *new_op(enum op op, const char *session_id)
{
        return op == OP_PING ? new_ping() : new_get_token(session_id);
}

/* A copy of the worker's ready-made call: the bench composes no message in the timed loop. */
static bool one_call(struct worker *w)
{
        DBusMessage *m = dbus_message_copy(w->call);
        DBusMessage *reply;

        if (!m)
                die("out of memory");
        reply = call(w->conn, m, w->error, sizeof(w->error));

        if (!reply)
                return false;
        dbus_message_unref(reply);
        return true;
}

static void *worker_run(void *userdata)
{
        struct worker *w = userdata;

        w->call = new_op(w->op, w->session_id);
        for (int i = 0; i < 20; i++) /* warm-up, not recorded */
                if (!one_call(w))
                        w->errors++;
        pthread_barrier_wait(w->barrier);
        w->started_ns = now_ns();
        for (long i = 0;; i++) {
                int64_t t0, t1;

                if (w->count > 0 ? i >= w->count
                                 : now_ns() - w->started_ns >= (int64_t)(w->seconds * 1e9))
                        break;
                t0 = now_ns();
                if (!one_call(w)) {
                        w->errors++;
                        continue;
                }
                t1 = now_ns();
                lat_add(&w->lat, t1 - t0);
        }
        w->ended_ns = now_ns();
        dbus_message_unref(w->call);
        return NULL;
}

struct run_result {
        struct lat lat;
        long calls, errors;
        double seconds;
        char error[256];
};

/* n clients on conns[0..n), each doing op closed-loop for seconds (or count calls each). */
static void run_clients(DBusConnection **conns, int n, enum op op, const char *session_id,
                        double seconds, long count, struct run_result *res)
{
        struct worker *w = calloc((size_t)n, sizeof(*w));
        pthread_barrier_t barrier;
        int64_t first = INT64_MAX, last = 0;

        if (!w)
                die("out of memory");
        *res = (struct run_result){0};
        pthread_barrier_init(&barrier, NULL, (unsigned)n + 1);
        for (int i = 0; i < n; i++) {
                w[i] = (struct worker){.conn = conns[i], .op = op, .session_id = session_id,
                                       .barrier = &barrier, .seconds = seconds,
                                       .count = count};
                if (pthread_create(&w[i].thread, NULL, worker_run, &w[i]) != 0)
                        die("cannot start a thread");
        }
        /* Every client warmed up, then all start at once. */
        pthread_barrier_wait(&barrier);
        for (int i = 0; i < n; i++) {
                pthread_join(w[i].thread, NULL);
                lat_merge(&res->lat, &w[i].lat);
                res->calls += (long)w[i].lat.n;
                res->errors += w[i].errors;
                if (w[i].errors && !res->error[0])
                        snprintf(res->error, sizeof(res->error), "%s", w[i].error);
                if (w[i].started_ns < first)
                        first = w[i].started_ns;
                if (w[i].ended_ns > last)
                        last = w[i].ended_ns;
                free(w[i].lat.v);
        }
        res->seconds = (double)(last - first) / 1e9;
        pthread_barrier_destroy(&barrier);
        free(w);
}

static void bench_lookups(DBusConnection **conns)
{
        static const int counts[] = {1, 8, 64};
        char fig[96];

        heading("1. GetToken on a cached token vs Peer.Ping to the broker (closed loop)");
        for (size_t k = 0; k < ELEMENTSOF(counts); k++) {
                int n = counts[k];
                struct lat lp = {0}, lg = {0};
                long errors = 0;
                /* calls/s of each cell: their medians are the throughputs */
                double *rp = xmalloc(sizeof(double) * (size_t)P.rounds);
                double *rg = xmalloc(sizeof(double) * (size_t)P.rounds);
                double p50p, p99p, p50g, p99g, tp, tg;
                char err[256] = "";

                for (int r = 0; r < P.rounds; r++) {
                        for (int o = 0; o < 2; o++) {
                                struct run_result res;
                                /* Ping first in even rounds, GetToken first in odd ones. */
                                enum op op = (o + r) % 2 == 0 ? OP_PING : OP_GET_TOKEN;

                                run_clients(conns, n, op, "bench-main", P.cell_s, 0, &res);
                                lat_merge(op == OP_PING ? &lp : &lg, &res.lat);
                                (op == OP_PING ? rp : rg)[r] =
                                        res.seconds > 0 ? (double)res.calls / res.seconds : 0;
                                errors += res.errors;
                                if (res.errors && !err[0])
                                        snprintf(err, sizeof(err), "%s", res.error);
                                free(res.lat.v);
                        }
                }
                p50p = lat_pct(&lp, 0.50);
                p99p = lat_pct(&lp, 0.99);
                p50g = lat_pct(&lg, 0.50);
                p99g = lat_pct(&lg, 0.99);
                tp = median(rp, P.rounds);
                tg = median(rg, P.rounds);
                snprintf(fig, sizeof(fig), "GetToken p50, %d client%s", n, n > 1 ? "s" : "");
                row("1", fig, p50g, "ms", p50p, "Ping p50", "<= 1.30x Ping",
                    check(p50g <= 1.3 * p50p));
                snprintf(fig, sizeof(fig), "GetToken p99, %d client%s", n, n > 1 ? "s" : "");
                row("1", fig, p99g, "ms", p99p, "Ping p99", NULL, V_INFO);
                snprintf(fig, sizeof(fig), "GetToken calls/s, %d client%s", n, n > 1 ? "s" : "");
                row("1", fig, tg, "1/s", tp, "Ping calls/s", ">= 0.80x Ping",
                    check(tg >= 0.8 * tp));
                if (errors) {
                        snprintf(fig, sizeof(fig), "failed calls, %d clients", n);
                        row("1", fig, (double)errors, "", NAN, NULL, "0", V_FAILED);
                        fprintf(stderr, "latchkey-bench: first error: %s\n", err);
                }
                free(lp.v);
                free(lg.v);
                free(rp);
                free(rg);
        }
}

/* ---- (2) CompleteLogin vs the direct token request ---- */

static void bench_logins(DBusConnection *root)
{
        CURL *cu = http_new(), *direct = http_new();
        struct lat lb = {0}, ld = {0}, lp = {0};
        long code0, other0, code1, other1;
        double pb, pd, per_login, other;
        int64_t cpu = 0; /* the broker's, in the logins timed */
        pid_t pid;

        heading("2. CompleteLogin vs the same token request made directly with libcurl");
        /* Warm-up: discovery, keys and the connections are in place on both sides. */
        for (int i = 0; i < 3; i++) {
                (void)broker_login(root, cu, "root", NULL);
                (void)direct_token_request(cu, direct);
        }
        pid = broker_pid(root);
        code0 = idp_stat("token_code");
        other0 = idp_stat("token_refresh") + idp_stat("jwks") + idp_stat("discovery") +
                 idp_stat("userinfo") + idp_stat("revoke");
        for (int i = 0; i < P.logins; i++) {
                int64_t cpu0 = cpu_used_ns(pid), cpu1;

                lat_add(&lb, broker_login(root, cu, "root", NULL));
                cpu1 = cpu_used_ns(pid);
                cpu = cpu0 < 0 || cpu1 < 0 || cpu < 0 ? -1 : cpu + (cpu1 - cpu0);
                lat_add(&ld, direct_token_request(cu, direct));
                lat_add(&lp, ping_in_login(root, cu, "root"));
        }
        code1 = idp_stat("token_code");
        other1 = idp_stat("token_refresh") + idp_stat("jwks") + idp_stat("discovery") +
                 idp_stat("userinfo") + idp_stat("revoke");
        pb = lat_pct(&lb, 0.50);
        pd = lat_pct(&ld, 0.50);
        row("2", "CompleteLogin p50", pb, "ms", pd, "direct p50", "<= 1.25x direct",
            check(pb <= 1.25 * pd));
        row("2", "CompleteLogin p99", lat_pct(&lb, 0.99), "ms", lat_pct(&ld, 0.99),
            "direct p99", NULL, V_INFO);
        row("2", "Ping at that point of a login (the bus's part)", lat_pct(&lp, 0.50), "ms",
            NAN, NULL, NULL, V_INFO);
        if (cpu >= 0)
                row("2", "broker CPU per login (Begin+Complete+Cancel)",
                    ms(cpu) / P.logins, "ms", NAN, NULL, NULL, V_INFO);
        /* The bench's own direct requests are token_code requests too. */
        per_login = (double)(code1 - code0 - P.logins) / P.logins;
        other = (double)(other1 - other0);
        row("2", "token requests at the IdP per login", per_login, "", NAN, NULL, "exactly 1",
            must(code1 - code0 - P.logins == P.logins));
        row("2", "other IdP requests during the logins", other, "", NAN, NULL, "0",
            must(other1 == other0));
        free(lb.v);
        free(ld.v);
        free(lp.v);
        curl_easy_cleanup(cu);
        curl_easy_cleanup(direct);
}

/* ---- paced GetToken load for (3): latency from the planned send time ---- */

struct paced {
        pthread_t thread;
        DBusConnection *conn;
        const char *session_id;
        int64_t period_ns;
        atomic_bool *stop;
        struct lat lat;
        long errors;
        char error[256];
};

static void *paced_run(void *userdata)
{
        struct paced *p = userdata;
        int64_t next = now_ns();

        while (!atomic_load(p->stop)) {
                struct timespec ts = {.tv_sec = next / 1000000000, .tv_nsec = next % 1000000000};
                DBusMessage *reply;

                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                        ;
                reply = call(p->conn, new_get_token(p->session_id), p->error, sizeof(p->error));
                if (reply) {
                        lat_add(&p->lat, now_ns() - next);
                        dbus_message_unref(reply);
                } else
                        p->errors++;
                next += p->period_ns;
        }
        return NULL;
}

#define PACED_CLIENTS 4
#define PACED_PERIOD_NS 2000000 /* each client: one call every 2 ms */

struct paced_load {
        struct paced p[PACED_CLIENTS];
        atomic_bool stop;
};

static void paced_start(struct paced_load *l, DBusConnection **conns, const char *const *sids)
{
        atomic_init(&l->stop, false);
        for (int i = 0; i < PACED_CLIENTS; i++) {
                l->p[i] = (struct paced){.conn = conns[i], .session_id = sids[i],
                                         .period_ns = PACED_PERIOD_NS, .stop = &l->stop};
                if (pthread_create(&l->p[i].thread, NULL, paced_run, &l->p[i]) != 0)
                        die("cannot start a thread");
        }
}

static void paced_stop(struct paced_load *l, struct lat *all, long *errors)
{
        atomic_store(&l->stop, true);
        *errors = 0;
        for (int i = 0; i < PACED_CLIENTS; i++) {
                pthread_join(l->p[i].thread, NULL);
                lat_merge(all, &l->p[i].lat);
                *errors += l->p[i].errors;
                if (l->p[i].errors)
                        fprintf(stderr, "latchkey-bench: paced GetToken: %s\n", l->p[i].error);
                free(l->p[i].lat.v);
        }
}

static void sleep_ms(long n)
{
        struct timespec ts = {.tv_sec = n / 1000, .tv_nsec = (n % 1000) * 1000000};

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* ---- (3) many logins at once ---- */

struct burst_login {
        DBusConnection *conn; /* its owner's */
        const char *user;
        char *id, *location;
        DBusPendingCall *pending;
};

static void bench_burst(DBusConnection **load_conns, const char *const *load_sids)
{
        size_t n_owners = ((size_t)P.burst + LOGINS_PER_UID - 1) / LOGINS_PER_UID;
        DBusConnection **owner_conn;
        struct burst_login *bl;
        CURL *cu = http_new();
        struct paced_load load;
        struct lat idle = {0}, busy = {0};
        long idle_err = 0, busy_err = 0, code0, code1;
        int ok = 0;
        bool told = false;
        int64_t t0, t1;
        double idle_p99, busy_p99, all_ms;
        char fig[96];

        snprintf(fig, sizeof(fig), "3. %d logins at once, IdP delaying each token response %d ms",
                 P.burst, DELAY_MS);
        heading(fig);
        if (n_owners > n_users)
                die("%d logins at once need %zu local users with at most %d pending logins each; "
                    "this machine has %zu",
                    P.burst, n_owners, LOGINS_PER_UID, n_users);
        owner_conn = xmalloc(n_owners * sizeof(*owner_conn));
        for (size_t i = 0; i < n_owners; i++)
                owner_conn[i] = bus_connect_as(users[i].uid, users[i].gid);
        bl = calloc((size_t)P.burst, sizeof(*bl));
        if (!bl)
                die("out of memory");
        /* Begun and signed in at the IdP beforehand: only CompleteLogin is timed. */
        for (int i = 0; i < P.burst; i++) {
                _cleanup_free_ char *url = NULL;
                size_t o = (size_t)i % n_owners;

                bl[i].conn = owner_conn[o];
                bl[i].user = users[o].name;
                begin_login(bl[i].conn, bl[i].user, &bl[i].id, &url);
                bl[i].location = browser(cu, url, bl[i].user);
        }

        /* The idle reference: the same paced load, nothing else going on. */
        paced_start(&load, load_conns, load_sids);
        sleep_ms(quick ? 400 : 1500);
        paced_stop(&load, &idle, &idle_err);

        idp_set("delay_ms", "500");
        code0 = idp_stat("token_code");
        paced_start(&load, load_conns, load_sids);
        sleep_ms(50);
        t0 = now_ns();
        for (int i = 0; i < P.burst; i++) {
                DBusMessage *m = new_call("CompleteLogin");
                if (!dbus_message_append_args(m, DBUS_TYPE_STRING, &bl[i].id, DBUS_TYPE_STRING,
                                              &bl[i].location, DBUS_TYPE_INVALID) ||
                    !dbus_connection_send_with_reply(bl[i].conn, m, &bl[i].pending,
                                                     CALL_TIMEOUT_MS) ||
                    !bl[i].pending)
                        die("cannot send CompleteLogin");
                dbus_message_unref(m);
        }
        for (size_t i = 0; i < n_owners; i++)
                dbus_connection_flush(owner_conn[i]);
        for (int i = 0; i < P.burst; i++) {
                DBusMessage *reply;

                dbus_pending_call_block(bl[i].pending);
                reply = dbus_pending_call_steal_reply(bl[i].pending);
                if (reply && dbus_message_get_type(reply) == DBUS_MESSAGE_TYPE_METHOD_RETURN)
                        ok++;
                else if (!told) {
                        fprintf(stderr, "latchkey-bench: CompleteLogin for %s: %s\n",
                                bl[i].user,
                                reply ? dbus_message_get_error_name(reply) : "no reply");
                        told = true;
                }
                if (reply)
                        dbus_message_unref(reply);
                dbus_pending_call_unref(bl[i].pending);
        }
        t1 = now_ns();
        sleep_ms(50);
        paced_stop(&load, &busy, &busy_err);
        idp_set("delay_ms", "0");
        code1 = idp_stat("token_code");

        for (int i = 0; i < P.burst; i++) {
                call_s(bl[i].conn, "CancelLogin", bl[i].id);
                free(bl[i].id);
                explicit_bzero(bl[i].location, strlen(bl[i].location));
                free(bl[i].location);
        }
        for (size_t i = 0; i < n_owners; i++)
                bus_close(owner_conn[i]);
        free(owner_conn);
        free(bl);
        curl_easy_cleanup(cu);

        all_ms = ms(t1 - t0);
        idle_p99 = lat_pct(&idle, 0.99);
        busy_p99 = lat_pct(&busy, 0.99);
        snprintf(fig, sizeof(fig), "%d CompleteLogin calls, all done", P.burst);
        row("3", fig, all_ms, "ms", DELAY_MS, "IdP delay", "<= 3x delay",
            check(all_ms <= 3.0 * DELAY_MS));
        snprintf(fig, sizeof(fig), "logins that succeeded (from %zu uids)", n_owners);
        row("3", fig, ok, "", NAN, NULL, "all", must(ok == P.burst));
        row("3", "token requests at the IdP", (double)(code1 - code0), "", NAN, NULL,
            "one per login", must(code1 - code0 == P.burst));
        row("3", "other sessions' GetToken p99 meanwhile", busy_p99, "ms", idle_p99,
            "idle p99", "<= 3x idle p99", check(busy_p99 <= 3.0 * idle_p99));
        row("3", "other sessions' GetToken p50 meanwhile", lat_pct(&busy, 0.5), "ms",
            lat_pct(&idle, 0.5), "idle p50", NULL, V_INFO);
        if (idle_err || busy_err)
                row("3", "failed GetToken calls", (double)(idle_err + busy_err), "", NAN, NULL,
                    "0", V_FAILED);
        free(idle.v);
        free(busy.v);
}

/* ---- (4) refresh storm ---- */

struct storm {
        pthread_t thread;
        DBusConnection *conn;
        pthread_barrier_t *barrier;
        int64_t ns;
        char *token;
        char error[256];
};

static void *storm_run(void *userdata)
{
        struct storm *s = userdata;
        DBusMessage *reply;
        const char *token;
        dbus_int64_t expires;
        const char *type;
        int64_t t0;

        pthread_barrier_wait(s->barrier);
        t0 = now_ns();
        reply = call(s->conn, new_get_token("bench-storm"), s->error, sizeof(s->error));
        s->ns = now_ns() - t0;
        if (reply && dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &token, DBUS_TYPE_INT64,
                                           &expires, DBUS_TYPE_STRING, &type, DBUS_TYPE_INVALID))
                s->token = strdup(token);
        if (reply)
                dbus_message_unref(reply);
        return NULL;
}

static void bench_storm(DBusConnection *root, DBusConnection **conns)
{
        struct storm s[MAX_CLIENTS];
        pthread_barrier_t barrier;
        CURL *cu = http_new();
        long r0, r1;
        int ok = 0, same = 0;
        struct lat l = {0};

        heading("4. Refresh storm: 64 clients ask for one near-expiry token at once");
        /* A session whose token has 60 s left, under refresh_margin (120 s). */
        idp_set("expires_in", "60");
        (void)broker_login(root, cu, "root", "bench-storm");
        idp_set("expires_in", "3600");
        /* The refresh takes 200 ms at the IdP, so every caller surely waits on the one. */
        idp_set("delay_ms", "200");
        r0 = idp_stat("token_refresh");
        pthread_barrier_init(&barrier, NULL, MAX_CLIENTS);
        for (int i = 0; i < MAX_CLIENTS; i++) {
                s[i] = (struct storm){.conn = conns[i], .barrier = &barrier};
                if (pthread_create(&s[i].thread, NULL, storm_run, &s[i]) != 0)
                        die("cannot start a thread");
        }
        for (int i = 0; i < MAX_CLIENTS; i++)
                pthread_join(s[i].thread, NULL);
        pthread_barrier_destroy(&barrier);
        r1 = idp_stat("token_refresh");
        idp_set("delay_ms", "0");
        for (int i = 0; i < MAX_CLIENTS; i++) {
                if (s[i].token) {
                        ok++;
                        same += s[0].token && streq(s[i].token, s[0].token);
                        lat_add(&l, s[i].ns);
                } else
                        fprintf(stderr, "latchkey-bench: storm GetToken: %s\n", s[i].error);
        }
        row("4", "refresh requests at the IdP", (double)(r1 - r0), "", NAN, NULL, "exactly 1",
            must(r1 - r0 == 1));
        row("4", "callers answered, all with one token", same, "", ok, "answered", "64 of 64",
            must(ok == MAX_CLIENTS && same == MAX_CLIENTS));
        row("4", "storm GetToken p50 (refresh takes 200 ms)", lat_pct(&l, 0.5), "ms", NAN, NULL,
            NULL, V_INFO);
        for (int i = 0; i < MAX_CLIENTS; i++)
                if (s[i].token) {
                        explicit_bzero(s[i].token, strlen(s[i].token));
                        free(s[i].token);
                }
        free(l.v);
        curl_easy_cleanup(cu);
}

/* ---- (5) memory with many sessions ---- */

struct maker {
        pthread_t thread;
        DBusConnection *conn;
        int first, step, total;
};

static void *maker_run(void *userdata)
{
        struct maker *m = userdata;
        CURL *cu = http_new();

        for (int i = m->first; i < m->total; i += m->step) {
                char sid[32];

                snprintf(sid, sizeof(sid), "b%05d", i);
                (void)broker_login(m->conn, cu, users[(size_t)i % n_users].name, sid);
        }
        curl_easy_cleanup(cu);
        return NULL;
}

static char **session_ids(int n, int spread)
{
        char **ids = xmalloc((size_t)spread * sizeof(*ids));

        for (int i = 0; i < spread; i++)
                ids[i] = xasprintf("b%05d", (int)((long)i * n / spread));
        return ids;
}

/* Closed-loop GetToken over several sessions, count calls per client. */
struct spread_worker {
        pthread_t thread;
        DBusConnection *conn;
        char **ids;
        int n_ids;
        long count;
        long errors;
        char error[256];
};

static void *spread_run(void *userdata)
{
        struct spread_worker *w = userdata;

        for (long i = 0; i < w->count; i++) {
                DBusMessage *reply = call(w->conn, new_get_token(w->ids[i % w->n_ids]), w->error,
                                          sizeof(w->error));
                if (reply)
                        dbus_message_unref(reply);
                else
                        w->errors++;
        }
        return NULL;
}

static long spread_calls(DBusConnection **conns, int clients, long total, char **ids, int n_ids)
{
        struct spread_worker w[8];
        long errors = 0;

        for (int i = 0; i < clients; i++) {
                w[i] = (struct spread_worker){.conn = conns[i], .ids = ids, .n_ids = n_ids,
                                              .count = total / clients};
                if (pthread_create(&w[i].thread, NULL, spread_run, &w[i]) != 0)
                        die("cannot start a thread");
        }
        for (int i = 0; i < clients; i++) {
                pthread_join(w[i].thread, NULL);
                errors += w[i].errors;
                if (w[i].errors)
                        fprintf(stderr, "latchkey-bench: GetToken: %s\n", w[i].error);
        }
        return errors;
}

#define MAKERS 16 /* root's pending logins at once: SPEC §4 allows 16 per uid */

static void bench_memory(DBusConnection *root, DBusConnection **conns)
{
        struct maker mk[MAKERS];
        pid_t pid = broker_pid(root);
        long rss0, rss1, rss_a, rss_b, errors;
        int64_t t0, t1;
        char **ids;
        int n_ids = 64;
        char fig[96];
        struct run_result rp, rg;

        snprintf(fig, sizeof(fig), "5. Broker memory with %d open sessions", P.sessions);
        heading(fig);
        rss0 = vm_rss_kib(pid);
        t0 = now_ns();
        for (int i = 0; i < MAKERS; i++) {
                mk[i] = (struct maker){.conn = conns[i], .first = i, .step = MAKERS,
                                       .total = P.sessions};
                if (pthread_create(&mk[i].thread, NULL, maker_run, &mk[i]) != 0)
                        die("cannot start a thread");
        }
        for (int i = 0; i < MAKERS; i++)
                pthread_join(mk[i].thread, NULL);
        t1 = now_ns();
        rss1 = vm_rss_kib(pid);
        snprintf(fig, sizeof(fig), "time to open %d sessions by full logins", P.sessions);
        row("5", fig, (double)(t1 - t0) / 1e9, "s", NAN, NULL, NULL, V_INFO);
        row("5", "logins per second (16 at once)", P.sessions / ((double)(t1 - t0) / 1e9), "1/s",
            NAN, NULL, NULL, V_INFO);
        snprintf(fig, sizeof(fig), "broker RSS with %d sessions", P.sessions);
        row("5", fig, rss1 / 1024.0, "MiB", rss0 / 1024.0, "RSS before", "<= 64 MiB",
            check(rss1 >= 0 && rss1 <= 64 * 1024));

        ids = session_ids(P.sessions, n_ids);
        errors = spread_calls(conns, 8, 2000, ids, n_ids); /* warm-up */
        rss_a = vm_rss_kib(pid);
        errors += spread_calls(conns, 8, P.get_token_calls, ids, n_ids);
        rss_b = vm_rss_kib(pid);
        snprintf(fig, sizeof(fig), "RSS growth over %ld GetToken calls", P.get_token_calls);
        row("5", fig, (rss_b - rss_a) / 1024.0, "MiB", NAN, NULL, "<= 1 MiB",
            check(rss_b - rss_a <= 1024));
        if (errors)
                row("5", "failed GetToken calls", (double)errors, "", NAN, NULL, "0", V_FAILED);

        /* How a lookup fares among that many sessions, next to Ping. */
        run_clients(conns, 1, OP_PING, NULL, P.cell_s, 0, &rp);
        run_clients(conns, 1, OP_GET_TOKEN, ids[n_ids / 2], P.cell_s, 0, &rg);
        snprintf(fig, sizeof(fig), "GetToken p50 among %d sessions, 1 client", P.sessions);
        row("5", fig, lat_pct(&rg.lat, 0.5), "ms", lat_pct(&rp.lat, 0.5), "Ping p50", NULL,
            V_INFO);
        free(rp.lat.v);
        free(rg.lat.v);
        for (int i = 0; i < n_ids; i++)
                free(ids[i]);
        free(ids);
}

/* ---- (6) start ---- */

/* The first call to a stopped broker, which the bus activates; returns its duration. */
static int64_t cold_call(DBusConnection *root, const char *session_id, bool want_token)
{
        char err[512];
        DBusMessage *reply;
        int64_t t0, t1;

        lkh_stop_broker(H);
        t0 = now_ns();
        reply = call(root, new_get_token(session_id), err, sizeof(err));
        t1 = now_ns();
        if (want_token && !reply)
                die("GetToken to a stopped broker failed: %s", err);
        if (!want_token && !reply && !strstr(err, "NotFound"))
                die("GetToken to a stopped broker with no sessions failed: %s", err);
        if (reply)
                dbus_message_unref(reply);
        return t1 - t0;
}

static void bench_start(DBusConnection *root)
{
        _cleanup_free_ char *dir = xasprintf("%s/sessions", H->state_dir);
        _cleanup_free_ char *aside = xasprintf("%s/sessions.bench", H->state_dir);
        struct lat full = {0}, empty = {0};
        long rss = -1;
        char fig[96];

        snprintf(fig, sizeof(fig), "6. Start: first call to a stopped broker, %d sessions on disk",
                 P.sessions);
        heading(fig);
        if (lkh_stop_process(&H->broker_pid, 5000) < 0)
                die("cannot stop the broker");
        for (int k = 0; k < P.starts; k++) {
                /* The reference: the same, with an empty sessions dir. */
                if (rename(dir, aside) < 0 || mkdir(dir, 0700) < 0)
                        die("cannot set the sessions aside: %m");
                lat_add(&empty, cold_call(root, "b00000", false));
                lkh_stop_broker(H);
                if (rmdir(dir) < 0 || rename(aside, dir) < 0)
                        die("cannot put the sessions back: %m");
                lat_add(&full, cold_call(root, "b00000", true));
        }
        /* The broker answers first and reads the rest of the sessions after; ListSessions
         * waits until it has them all, so the RSS below is that of every session loaded. */
        {
                char err[512];
                DBusMessage *reply = call(root, new_call("ListSessions"), err, sizeof(err));

                if (!reply)
                        die("ListSessions after the start failed: %s", err);
                dbus_message_unref(reply);
        }
        rss = vm_rss_kib(broker_pid(root));
        snprintf(fig, sizeof(fig), "start to first reply, %d sessions (median)", P.sessions);
        row("6", fig, lat_pct(&full, 0.5), "ms", lat_pct(&empty, 0.5), "no sessions",
            "<= 100 ms", check(lat_pct(&full, 0.5) <= 100));
        snprintf(fig, sizeof(fig), "start to first reply, %d sessions (worst)", P.sessions);
        row("6", fig, lat_pct(&full, 1.0), "ms", lat_pct(&empty, 1.0), "no sessions",
            "<= 100 ms", check(lat_pct(&full, 1.0) <= 100));
        snprintf(fig, sizeof(fig), "broker RSS after loading %d sessions", P.sessions);
        row("6", fig, rss / 1024.0, "MiB", NAN, NULL, "<= 64 MiB",
            check(rss >= 0 && rss <= 64 * 1024));
        free(full.v);
        free(empty.v);
}

/* ---- the machine, the table, the JSON ---- */

static char *cpu_model(void)
{
        char line[512];
        FILE *f = fopen("/proc/cpuinfo", "re");
        char *model = NULL;

        while (f && !model && fgets(line, sizeof(line), f))
                if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
                        char *v = strchr(line, ':') + 2;
                        v[strcspn(v, "\n")] = 0;
                        model = xstrdup(v);
                }
        if (f)
                fclose(f);
        return model ? model : xstrdup("unknown");
}

static bool want(char group)
{
        return !only || strchr(only, group);
}

static void help(void)
{
        printf("Usage: latchkey-bench [--quick] [--json PATH]\n"
               "Measures latchkeyd against a private dbus-daemon and the test IdP on loopback,\n"
               "each figure next to its reference, and prints a table (issue 7). Runs as root.\n"
               "\n"
               "  --quick       small counts, for a smoke run (under a minute)\n"
               "  --json PATH   also write the results as JSON to PATH\n"
               "  --only LIST   run only these groups, e.g. --only 12 (6 runs 5 first)\n"
               "  --help        print this help\n");
}

int main(int argc, char *argv[])
{
        static const struct option options[] = {
            {"quick", no_argument, NULL, 'q'},
            {"json", required_argument, NULL, 'j'},
            {"only", required_argument, NULL, 'o'},
            {"help", no_argument, NULL, 'h'},
            {0},
        };
        const char *json_path = NULL;
        DBusConnection *conns[MAX_CLIENTS], *root;
        const char *load_sids[PACED_CLIENTS] = {"bench-o1", "bench-o2", "bench-o3", "bench-o4"};
        _cleanup_free_ char *model = NULL;
        char *extra_config;
        struct utsname un;
        json_t *doc;
        CURL *cu;
        int c, cores;
        int64_t started = now_ns();
        long long ticks0 = 0, steal0 = 0, ticks1 = 0, steal1 = 0;
        double steal_pct = NAN;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case 'q':
                        quick = true;
                        break;
                case 'j':
                        json_path = optarg;
                        break;
                case 'o':
                        if (optarg[strspn(optarg, "123456")] || !*optarg) {
                                fprintf(stderr, "latchkey-bench: --only takes digits 1-6\n");
                                return 2;
                        }
                        only = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        fprintf(stderr, "Try 'latchkey-bench --help'.\n");
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "latchkey-bench: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (geteuid() != 0) {
                /* 77: meson counts the smoke run as skipped, not failed. */
                fprintf(stderr, "latchkey-bench: needs root (logins from many uids), skipping\n");
                return 77;
        }
        P = quick ? quick_params : full_params;
        signal(SIGPIPE, SIG_IGN);
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !dbus_threads_init_default())
                die("cannot initialise libcurl or libdbus");
        results = json_array();
        if (!results)
                die("out of memory");

        load_users();
        extra_config = system_users_config();
        if (lkh_new(&H) < 0 || lkh_start_idp(H, NULL) < 0 ||
            lkh_write_config(H, extra_config) < 0 || lkh_start_bus(H) < 0 ||
            lkh_start_broker(H, NULL) < 0)
                die("cannot start the IdP, the bus and the broker");
        free(extra_config);
        root = bus_connect_as(0, 0);
        for (int i = 0; i < MAX_CLIENTS; i++)
                conns[i] = bus_connect_as(0, 0);

        cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
        model = cpu_model();
        if (uname(&un) < 0)
                memset(&un, 0, sizeof(un));
        printf("latchkey-bench %s (%s run): %d cores, %s, Linux %s, libcurl %s\n",
               LATCHKEY_VERSION, quick ? "quick" : "full", cores, model, un.release,
               curl_version_info(CURLVERSION_NOW)->version);
        printf("%-4s %-44s %12s %-5s %12s %-14s %7s  %-22s %s\n", "", "figure", "value", "",
               "reference", "", "ratio", "target", "");

        /* The sessions the lookups ask for. */
        cu = http_new();
        (void)broker_login(root, cu, "root", "bench-main");
        for (int i = 0; i < PACED_CLIENTS; i++)
                (void)broker_login(root, cu, "root", load_sids[i]);
        curl_easy_cleanup(cu);

        if (!machine_cpu_ticks(&ticks0, &steal0))
                ticks0 = -1;
        if (want('1'))
                bench_lookups(conns);
        if (want('2'))
                bench_logins(root);
        if (want('4'))
                bench_storm(root, conns);
        if (want('3'))
                bench_burst(conns, load_sids);
        /* The start (6) loads the sessions that (5) opens. */
        if (want('5') || want('6'))
                bench_memory(root, conns);
        if (want('6'))
                bench_start(root);

        if (ticks0 >= 0 && machine_cpu_ticks(&ticks1, &steal1) && ticks1 > ticks0)
                steal_pct = 100.0 * (double)(steal1 - steal0) / (double)(ticks1 - ticks0);
        printf("\ntargets: %d met, %d missed; %d checks failed; %.0f s\n", n_met, n_missed,
               n_failed, (double)(now_ns() - started) / 1e9);
        /* A virtual machine whose host is busy: figures swing, ratios less so. */
        if (!isnan(steal_pct))
                printf("CPU time taken by the hypervisor during the run (steal): %.1f%%\n",
                       steal_pct);
        if (json_path) {
                doc = json_pack("{s:s, s:s, s:{s:i, s:s, s:s, s:f}, s:o, s:{s:i, s:i, s:i}}",
                                "benchmark", "latchkey-bench", "mode", quick ? "quick" : "full",
                                "machine", "cores", cores, "cpu", model, "kernel", un.release,
                                "steal_percent", isnan(steal_pct) ? -1.0 : steal_pct,
                                "results", results, "summary", "met", n_met, "missed", n_missed,
                                "failed", n_failed);
                if (!doc || json_dump_file(doc, json_path, JSON_INDENT(2)) < 0)
                        die("cannot write %s", json_path);
                json_decref(doc);
                results = NULL;
        }
        json_decref(results);
        for (int i = 0; i < MAX_CLIENTS; i++)
                bus_close(conns[i]);
        bus_close(root);
        lkh_free(H);
        curl_global_cleanup();
        return n_failed ? 1 : 0;
}
