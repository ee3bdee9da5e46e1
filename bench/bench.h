/* SPDX-License-Identifier: MIT */
/*
 * latchkey-bench's shared part: the run's stack and counts, statistics, the table's rows, the
 * ending of a run, the broker calls every group makes (on the tests' client, busclient.h) and
 * the local accounts the logins are for. One file per group (group_*.c), main in bench.c.
 *
 * Threads: only the main thread sets a run up, tears it down and prints rows. A worker thread
 * that fails calls die() like the main thread does; that records the first message, asks
 * every worker to stop (bench_stopping()) and ends the worker; the main thread, after joining
 * its workers, ends the run with that message (bench_check()). So a run ends once, with one
 * message, whatever fails where.
 */
#pragma once

#include <curl/curl.h>
#include <dbus/dbus.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/util.h"
#include "tests/harness/busclient.h"
#include "tests/harness/harness.h"

#define CALL_TIMEOUT_MS 30000
#define LOGINS_PER_UID 16 /* SPEC §4; the bench spreads its logins, it does not lift the cap */
#define SESSIONS_PER_UID 1024 /* open sessions per uid, docs/SECURITY.md; the same */
#define MAX_CLIENTS 64
#define DELAY_MS 500
#define PACED_CLIENTS 4

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

extern struct lkh *H;
extern struct params P;
extern bool quick;
extern json_t *results; /* the rows, for --json */
extern int n_met, n_missed, n_failed;

/* ---- ending a run ---- */

/* Ends the run with "latchkey-bench: MESSAGE" (see above): stops the stack, removes the
 * accounts, exit status 1. In a worker thread it ends only that thread. */
void die(const char *fmt, ...) __attribute__((noreturn)) _printf_(1, 2);
/* Whether the run is ending (a worker failed, or SIGINT/SIGTERM/SIGHUP came): workers stop. */
bool bench_stopping(void);
/* When the run is ending: in the main thread (with its workers joined) ends the run with the
 * first worker's message, in a worker ends that worker. */
void bench_check(void);
/* The main thread's part: marks it, and makes SIGINT, SIGTERM and SIGHUP end the run. */
void bench_init(void);
/* Stops the stack, then runs the hook (users.c's: removes the accounts), once; the normal end
 * and die() call it. */
void bench_teardown(void);
void bench_on_teardown(void (*fn)(void));
/* pthread_create() or die(). */
void start_thread(pthread_t *t, void *(*fn)(void *), void *arg);

void *xmalloc(size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) _printf_(1, 2);

/* ---- time and statistics ---- */

int64_t now_ns(void);
double ms(int64_t ns);

/* Latencies in ns. */
struct lat {
        int64_t *v;
        size_t n, cap;
};
void lat_add(struct lat *l, int64_t ns);
void lat_merge(struct lat *into, const struct lat *from);
/* Nearest-rank percentile (q in 0..1) in ms; sorts l. */
double lat_pct(struct lat *l, double q);
/* The median of v[0..n), which it sorts. */
double median(double *v, int n);

long vm_rss_kib(pid_t pid);
/* CPU time a process has used so far, from /proc/PID/schedstat (ns), or -1. */
int64_t cpu_used_ns(pid_t pid);
/* Writes len bytes of text to path, mode 0644, or dies. */
void write_or_die(const char *path, const char *text, size_t len);
long idp_stat(const char *name);
void idp_set(const char *name, const char *value);
/* The IdP's threads at SCHED_IDLE: a provider on another machine (common.c). */
void idp_in_background(void);

/* ---- the table ---- */

enum verdict { V_INFO, V_MET, V_MISSED, V_FAILED };

/* One row: the figure, its value, its reference (may be NAN, then no ratio), the target in
 * words, the verdict; printed and added to the JSON results. */
void row(const char *group, const char *figure, double value, const char *unit,
         double reference, const char *ref_name, const char *target, enum verdict v);
/* A timing against its target: a miss is reported, not a failure. */
enum verdict check(bool ok);
/* A property that is not a timing (counts, successes): a miss is a failure. */
enum verdict must(bool ok);
void heading(const char *s);

/* ---- the broker, through busclient.h ---- */

/* A registered private connection to the run's bus whose bus identity is uid (main thread,
 * no worker running). */
DBusConnection *bus_connect_as(uid_t uid, gid_t gid);
DBusMessage *new_get_token(const char *session_id);
/* Sends m (taking it over) and waits; NULL with "name: message" in errbuf on an error. */
DBusMessage *call(DBusConnection *c, DBusMessage *m, char *errbuf, size_t errsize);
/* A call whose failure ends the run. */
void call_or_die(DBusConnection *c, DBusMessage *m);
/* BeginLogin(user) with no options, or die. */
void begin_login(DBusConnection *c, const char *user, char **ret_id, char **ret_url);
/* One per thread: the browser's kept-alive connection to the IdP. */
struct lkh_conn *browser_new(void);
/* Plays the browser: signs user in with login_hint; the callback URL, or die. */
char *browser(struct lkh_conn *bc, const char *authorize_url, const char *user);
/* A whole login as the broker sees it: BeginLogin, the browser, CompleteLogin (timed, the
 * duration returned), then OpenSession(session_id), or CancelLogin when session_id is NULL. */
int64_t broker_login(DBusConnection *c, struct lkh_conn *bc, const char *user,
                     const char *session_id);
pid_t broker_pid(void);

/* Closed-loop Ping or GetToken clients (groups 1 and 5). */
enum op { OP_PING, OP_GET_TOKEN };
struct run_result {
        struct lat lat;
        long calls, errors;
        double seconds;
        char error[256];
};
/* n clients on conns[0..n), each doing op closed-loop for seconds (or count calls each). */
void run_clients(DBusConnection **conns, int n, enum op op, const char *session_id,
                 double seconds, long count, struct run_result *res);

/* ---- the local accounts logins are for (users.c) ---- */

struct user {
        char *name;
        uid_t uid;
        gid_t gid;
};
extern struct user *users; /* root first, then the accounts the bench made */
extern size_t n_users;
/* Makes n accounts of the bench's own (lkbench-NN) under its lock, or die. */
void users_create(size_t n);
/* Removes them (idempotent); false when one could not be removed. */
bool users_remove(void);
/* [users] for latchkey.conf: the bench's accounts are normal ones; root must be listed. */
#define USERS_CONFIG "[users]\nallow_system_users = root\n"
/* [sessions] for latchkey.conf: the defaults, background refresh included (the harness turns it
 * off unless asked); group 7 restarts the broker with a short refresh_margin. */
#define SESSIONS_CONFIG "[sessions]\nrefresh_ahead = yes\n"

/* ---- the groups ---- */

void bench_lookups(DBusConnection **conns);
void bench_logins(DBusConnection *root);
void bench_burst(DBusConnection **load_conns, const char *const *load_sids);
void bench_storm(DBusConnection *root, DBusConnection **conns);
void bench_memory(DBusConnection **conns);
void bench_start(DBusConnection *root);
void bench_pin(void);
void bench_ahead(DBusConnection *root, DBusConnection **conns);
/* Group 9 (issue 20): the NSS module next to nss_files; it stops the broker. */
void bench_nss(void);
/* The child side of group 9 (--nss-probe SIDE COUNT): prints its p50s on stdout. */
int bench_nss_probe(const char *side, const char *count);
/* Group 10 (issue 19, --only 0): the device flow, on a stack of its own. */
void bench_device(void);
/* Group 11 (issue 15, --only p): pam_latchkey.so ignoring a user who is not an SSO user. */
void bench_pam(void);
