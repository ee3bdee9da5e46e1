/* SPDX-License-Identifier: MIT */
/* latchkey-bench's shared part: see bench.h. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

struct lkh *H;
struct params P;
bool quick;
json_t *results;
int n_met, n_missed, n_failed;

/* ---- ending a run ---- */

static pthread_t main_thread;
static atomic_bool stopping;
static volatile sig_atomic_t got_signal;
static pthread_mutex_t failure_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *failure; /* the first worker's message */

static void on_signal(int sig)
{
        got_signal = sig;
        atomic_store(&stopping, true);
}

void bench_init(void)
{
        /* SA_RESETHAND: a second signal ends the bench at once. */
        struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART | SA_RESETHAND};

        main_thread = pthread_self();
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}

static bool in_main_thread(void)
{
        return pthread_equal(pthread_self(), main_thread);
}

bool bench_stopping(void)
{
        return atomic_load(&stopping);
}

static void (*teardown_hook)(void);

void bench_on_teardown(void (*fn)(void))
{
        teardown_hook = fn;
}

void bench_teardown(void)
{
        static bool done;

        if (done)
                return;
        done = true;
        lkh_free(H);
        H = NULL;
        if (teardown_hook)
                teardown_hook();
}

void die(const char *fmt, ...)
{
        va_list ap;
        char *msg;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        atomic_store(&stopping, true);
        if (!in_main_thread()) {
                /* The main thread ends the run once its workers are joined (bench_check). */
                pthread_mutex_lock(&failure_lock);
                if (!failure)
                        failure = msg ? TAKE_PTR(msg) : "out of memory";
                pthread_mutex_unlock(&failure_lock);
                free(msg);
                pthread_exit(NULL);
        }
        fflush(stdout);
        /* ^C reaches the IdP, the bus and the broker too: what fails then is their going. */
        if (got_signal)
                fprintf(stderr, "latchkey-bench: interrupted by %s\n", strsignal(got_signal));
        else
                fprintf(stderr, "latchkey-bench: %s\n", msg ? msg : "out of memory");
        free(msg);
        bench_teardown();
        /* _exit: no atexit handler (OpenSSL's) runs under a thread still in a call. */
        fflush(NULL);
        _exit(1);
}

void bench_check(void)
{
        if (!bench_stopping())
                return;
        if (!in_main_thread())
                pthread_exit(NULL);
        /* The workers are joined: nobody writes failure any more. */
        die("%s", failure ? failure : "interrupted");
}

void start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
        if (pthread_create(t, NULL, fn, arg) != 0)
                die("cannot start a thread");
}

void *xmalloc(size_t n)
{
        void *p = malloc(n ? n : 1);

        if (!p)
                die("out of memory");
        return p;
}

char *xstrdup(const char *s)
{
        char *d = strdup(s);

        if (!d)
                die("out of memory");
        return d;
}

char *xasprintf(const char *fmt, ...)
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

/* ---- time and statistics ---- */

int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double ms(int64_t ns)
{
        return (double)ns / 1e6;
}

void lat_add(struct lat *l, int64_t ns)
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

void lat_merge(struct lat *into, const struct lat *from)
{
        for (size_t i = 0; i < from->n; i++)
                lat_add(into, from->v[i]);
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

double median(double *v, int n)
{
        qsort(v, (size_t)n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

double lat_pct(struct lat *l, double q)
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

long vm_rss_kib(pid_t pid)
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

int64_t cpu_used_ns(pid_t pid)
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

void write_or_die(const char *path, const char *text, size_t len)
{
        FILE *f = fopen(path, "we");

        if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0)
                die("cannot write %s: %m", path);
        chmod(path, 0644);
}

long idp_stat(const char *name)
{
        long v = 0;

        if (lkh_idp_stat(H, name, &v) < 0)
                die("cannot read the IdP counter %s", name);
        return v;
}

/*
 * The IdP stands for a provider on another machine: its threads (each connection's, its TLS
 * handshakes and its signatures) get only the CPU time the broker, the bus and the bench leave
 * idle (SCHED_IDLE), so that 200 of them woken at once do not take the two cores from the
 * broker as a remote provider never could. Threads it starts later inherit the policy.
 */
void idp_in_background(void)
{
        char path[64];
        struct dirent *d;
        DIR *dir;

        snprintf(path, sizeof(path), "/proc/%d/task", (int)H->idp_pid);
        dir = opendir(path);
        if (!dir)
                die("cannot read %s: %m", path);
        while ((d = readdir(dir))) {
                struct sched_param none = {0};
                char *end;
                long tid = strtol(d->d_name, &end, 10);

                if (*end || tid <= 0 || tid > INT_MAX) /* "." and ".." */
                        continue;
                if (sched_setscheduler((pid_t)tid, SCHED_IDLE, &none) < 0 && errno != ESRCH)
                        die("cannot put the IdP's thread %ld in the background: %m", tid);
        }
        closedir(dir);
}

void idp_set(const char *name, const char *value)
{
        if (lkh_idp_set(H, name, value) < 0)
                die("cannot set the IdP switch %s", name);
}

/* ---- the table ---- */

static const char *verdict_name(enum verdict v)
{
        static const char *const names[] = {"", "met", "MISSED", "FAILED"};
        return names[v];
}

void row(const char *group, const char *figure, double value, const char *unit,
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

enum verdict check(bool ok)
{
        return ok ? V_MET : V_MISSED;
}

enum verdict must(bool ok)
{
        return ok ? V_MET : V_FAILED;
}

void heading(const char *s)
{
        printf("\n-- %s\n", s);
        fflush(stdout);
}

/* ---- the broker ---- */

DBusConnection *bus_connect_as(uid_t uid, gid_t gid)
{
        _cleanup_free_ char *msg = NULL;
        DBusConnection *c = bc_open_as(H->bus_address, uid, gid, &msg);

        if (!c)
                die("cannot connect to the bus as uid %u: %s", (unsigned)uid, msg ? msg : "?");
        return c;
}

DBusMessage *new_get_token(const char *session_id)
{
        DBusMessage *m = bc_new("GetToken");

        bc_append_options(m, session_id, 0);
        return m;
}

DBusMessage *call(DBusConnection *c, DBusMessage *m, char *errbuf, size_t errsize)
{
        struct bc_reply r;

        if (bc_call(c, m, CALL_TIMEOUT_MS, &r) == 0)
                return r.msg;
        if (errbuf)
                snprintf(errbuf, errsize, "%s: %s", r.error ? r.error : "?",
                         r.message ? r.message : "");
        bc_reply_clear(&r);
        return NULL;
}

void call_or_die(DBusConnection *c, DBusMessage *m)
{
        char err[512];
        const char *member = dbus_message_get_member(m);
        _cleanup_free_ char *what = xstrdup(member ? member : "?");
        DBusMessage *reply = call(c, m, err, sizeof(err));

        if (!reply)
                die("%s failed: %s", what, err);
        dbus_message_unref(reply);
}

/* A broker call with string arguments (b may be NULL). */
static DBusMessage *new_call_s(const char *method, const char *a, const char *b)
{
        DBusMessage *m = bc_new(method);

        if (!dbus_message_append_args(m, DBUS_TYPE_STRING, &a, DBUS_TYPE_INVALID) ||
            (b && !dbus_message_append_args(m, DBUS_TYPE_STRING, &b, DBUS_TYPE_INVALID)))
                die("out of memory");
        return m;
}

void begin_login(DBusConnection *c, const char *user, char **ret_id, char **ret_url)
{
        char err[512];
        DBusMessage *m = new_call_s("BeginLogin", user, NULL), *reply;
        const char *id, *url;

        bc_append_options(m, NULL, 0);
        reply = call(c, m, err, sizeof(err));
        if (!reply)
                die("BeginLogin for %s failed: %s", user, err);
        if (!dbus_message_get_args(reply, NULL, DBUS_TYPE_STRING, &id, DBUS_TYPE_STRING, &url,
                                   DBUS_TYPE_INVALID))
                die("BeginLogin answered with the wrong signature");
        *ret_id = xstrdup(id);
        *ret_url = xstrdup(url);
        dbus_message_unref(reply);
}

struct lkh_conn *browser_new(void)
{
        struct lkh_conn *bc = lkh_conn_new();

        if (!bc)
                die("cannot make a curl handle");
        return bc;
}

char *browser(struct lkh_conn *bc, const char *authorize_url, const char *user)
{
        char *location = NULL;

        /* The harness has said what went wrong. */
        if (lkh_browser_login_on(H, bc, authorize_url, user, false, &location, NULL) < 0)
                die("the IdP did not sign %s in", user);
        return location;
}

/* One step of user's login whose failure ends the run. */
static void login_step(DBusConnection *c, DBusMessage *m, const char *user)
{
        char err[512];
        const char *member = dbus_message_get_member(m);
        _cleanup_free_ char *what = xstrdup(member ? member : "?");
        DBusMessage *reply = call(c, m, err, sizeof(err));

        if (!reply)
                die("%s for %s failed: %s", what, user, err);
        dbus_message_unref(reply);
}

int64_t broker_login(DBusConnection *c, struct lkh_conn *bc, const char *user,
                     const char *session_id)
{
        _cleanup_free_ char *id = NULL, *url = NULL, *location = NULL;
        DBusMessage *m;
        int64_t t0, t1;

        bench_check();
        begin_login(c, user, &id, &url);
        location = browser(bc, url, user);
        /* Composed before the clock starts, as the direct request's form is. */
        m = new_call_s("CompleteLogin", id, location);
        t0 = now_ns();
        login_step(c, m, user);
        t1 = now_ns();
        if (session_id)
                login_step(c, new_call_s("OpenSession", id, session_id), user);
        else
                login_step(c, new_call_s("CancelLogin", id, NULL), user);
        return t1 - t0;
}

pid_t broker_pid(void)
{
        pid_t pid = lkh_broker_pid(H);

        if (pid <= 0)
                die("cannot find the broker's pid on the bus");
        return pid;
}

/* ---- closed-loop clients ---- */

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

/* A copy of the worker's ready-made call: the bench composes no message in the timed loop. */
static bool one_call(struct worker *w)
{
        DBusMessage *m = dbus_message_copy(w->call);
        DBusMessage *reply;

        /* Counted as a failed call: a worker that ended before the barrier would hang it. */
        if (!m) {
                snprintf(w->error, sizeof(w->error), "out of memory");
                return false;
        }
        reply = call(w->conn, m, w->error, sizeof(w->error));

        if (!reply)
                return false;
        dbus_message_unref(reply);
        return true;
}

static void *worker_run(void *userdata)
{
        struct worker *w = userdata;

        w->call = w->op == OP_PING ? bc_new_ping() : new_get_token(w->session_id);
        for (int i = 0; i < 20; i++) /* warm-up, not recorded */
                if (!one_call(w))
                        w->errors++;
        pthread_barrier_wait(w->barrier);
        w->started_ns = now_ns();
        for (long i = 0; !bench_stopping(); i++) {
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

void run_clients(DBusConnection **conns, int n, enum op op, const char *session_id,
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
                start_thread(&w[i].thread, worker_run, &w[i]);
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
        bench_check();
        res->seconds = (double)(last - first) / 1e9;
        pthread_barrier_destroy(&barrier);
        free(w);
}
