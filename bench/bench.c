/* SPDX-License-Identifier: MIT */
/*
 * latchkey-bench: what latchkey costs, each figure next to its reference in the same run
 * (issue 7). It starts the real latchkeyd, a private dbus-daemon and the test IdP on
 * loopback (tests/harness), then speaks D-Bus through the tests' client (busclient.h) and
 * HTTPS through libcurl, so the measuring tool is not the bottleneck. One file per group:
 *
 *   1. group_gettoken.c: GetToken on a cached token vs Peer.Ping, 1 / 8 / 64 clients.
 *   2. group_login.c: CompleteLogin vs the same token request sent by the bench itself.
 *   3. group_concurrent.c: many logins at once against a slow IdP, and other sessions'
 *      GetToken latency meanwhile.
 *   4. group_refresh.c: refresh storm: 64 clients ask for one near-expiry token at once.
 *   5. group_memory.c: broker RSS with many open sessions, and its growth over many calls.
 *   6. group_startup.c: the first call to a stopped, activatable broker until its reply.
 *   7. group_pin.c: one offline PIN check (Argon2id) beside its configured parameters.
 *   8. group_ahead.c: background refresh: many sessions' refresh times within a few seconds,
 *      GetToken beside Ping meanwhile, and the provider's requests per session.
 *   9. group_nss.c: libnss_latchkey.so.2 with 10,000 cached accounts next to nss_files.
 *  10. group_device.c: the device flow: approval at the provider to WaitLogin's reply, beside
 *      the poll interval (a stack of its own; --only 0).
 *  11. group_pam.c: pam_latchkey.so in sudo's and login's stacks for a user who is not an
 *      SSO user, beside the stacks without it (--only p).
 *
 * Here: the options, the stack, the table's head and summary, the steal line, bench.json.
 * Runs as root: it makes the local accounts the logins are for (users.c), and the logins of
 * (3) come from many uids, each on a connection opened with that effective uid.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench/bench.h"

static const struct params full_params = {0.3, 30, 400, 200, 10000, 100000, 5};
static const struct params quick_params = {0.2, 1, 8, 48, 300, 10000, 2};

static const char *only; /* --only: the groups to run, e.g. "12"; NULL: all */

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
               "  --only LIST   run only these groups, e.g. --only 12 (0 is group 10,\n"
               "                p group 11; 6 runs 5 first; 9 last)\n"
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
        struct utsname un;
        struct lkh_conn *bc;
        json_t *doc;
        size_t n_accounts;
        int c, cores;
        int64_t started = now_ns();
        long long ticks0 = 0, steal0 = 0, ticks1 = 0, steal1 = 0;
        double steal_pct = NAN;

        /* Group 7's child, in the namespace the bench made for it (group_nss.c). */
        if (argc == 4 && streq(argv[1], "--nss-probe"))
                return bench_nss_probe(argv[2], argv[3]);
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case 'q':
                        quick = true;
                        break;
                case 'j':
                        json_path = optarg;
                        break;
                case 'o':
                        if (optarg[strspn(optarg, "1234567890p")] || !*optarg) {
                                fprintf(stderr, "latchkey-bench: --only takes digits 1-9, 0 "
                                                "for group 10 and p for group 11\n");
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
        bench_init();
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !dbus_threads_init_default())
                die("cannot initialise libcurl or libdbus");
        results = json_array();
        if (!results)
                die("out of memory");

        /*
         * The owners of (3)'s logins and of (5)'s sessions, root first: enough that neither
         * group reaches a per-uid cap (root also holds the few sessions of the other groups).
         */
        n_accounts = (size_t)(P.burst + LOGINS_PER_UID - 1) / LOGINS_PER_UID;
        if ((size_t)(P.sessions + 64 + SESSIONS_PER_UID - 1) / SESSIONS_PER_UID > n_accounts)
                n_accounts = (size_t)(P.sessions + 64 + SESSIONS_PER_UID - 1) / SESSIONS_PER_UID;
        users_create(n_accounts - 1);
        if (lkh_new(&H) < 0 || lkh_start_idp(H, NULL) < 0 ||
            lkh_write_config(H, USERS_CONFIG SESSIONS_CONFIG) < 0 || lkh_start_bus(H) < 0 ||
            lkh_start_broker(H, NULL) < 0)
                die("cannot start the IdP, the bus and the broker");
        idp_in_background();
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
        bc = browser_new();
        (void)broker_login(root, bc, "root", "bench-main");
        for (int i = 0; i < PACED_CLIENTS; i++)
                (void)broker_login(root, bc, "root", load_sids[i]);
        lkh_conn_free(bc);

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
                bench_memory(conns);
        if (want('6'))
                bench_start(root);
        if (want('7'))
                bench_pin();
        /* It restarts the broker with another refresh_margin. */
        if (want('8'))
                bench_ahead(root, conns);
        /* A stack of its own: before the NSS group stops the broker (it changes nothing). */
        if (want('0'))
                bench_device();
        /* The PAM module alone: it reaches no broker. */
        if (want('p'))
                bench_pam();
        /* Last: it stops the broker, and asks nothing of it. */
        if (want('9'))
                bench_nss();
        bench_check();

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
                bc_close(conns[i]);
        bc_close(root);
        bench_teardown();
        curl_global_cleanup();
        return n_failed ? 1 : 0;
}
