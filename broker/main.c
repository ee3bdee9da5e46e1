/* SPDX-License-Identifier: MIT */
/*
 * latchkeyd: the latchkey broker on the system bus (SPEC §1, §4).
 *
 * Logging: to syslog (security events to LOG_AUTHPRIV), which under systemd
 * lands in the journal; to stderr when no syslog daemon listens on /dev/log
 * (containers, CI). With --debug it goes to stderr instead and adds
 * detail (still never a secret: tokens appear only as fingerprints), so a
 * person or a test running the broker by hand sees everything in one place.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/manager.h"
#include "broker/session_key.h"
#include "oidc/config.h"
#include "oidc/log.h"

#define DEFAULT_STATE_DIR "/var/lib/latchkey"

static void help(void)
{
        printf("Usage: latchkeyd [OPTION]...\n"
               "The latchkey broker: keeps the single sign-on tokens of login sessions and hands\n"
               "them to the session's applications over D-Bus (org.latchkey.Broker1, system bus).\n"
               "Normally started by D-Bus activation through latchkeyd.service.\n"
               "\n"
               "  --config PATH          configuration file (default %s)\n"
               "  --state-dir DIR        where sessions and the provider's keys are kept\n"
               "                         (default $STATE_DIRECTORY, else %s)\n"
               "  --debug                log to stderr, with detail (never secrets)\n"
               "  --idle-exit SECONDS    exit after that long with nothing to do; 0 = never\n"
               "                         (default: idle_exit of the configuration)\n"
               "  --rotate-key           put a new session key first in the state dir's key\n"
               "                         file and exit; the broker rewrites every session file\n"
               "                         under it at its next start\n"
               "  --version              print the version and exit\n"
               "  --help                 print this help and exit\n",
               LK_CONFIG_PATH, DEFAULT_STATE_DIR);
}

/* 0 and options, 1 when done (--help, --version), < 0 on a usage error. */
static int parse_argv(int argc, char *argv[], struct broker_options *o, bool *ret_rotate_key)
{
        enum {
                ARG_CONFIG = 0x100,
                ARG_STATE_DIR,
                ARG_DEBUG,
                ARG_IDLE_EXIT,
                ARG_ROTATE_KEY,
                ARG_VERSION,
                ARG_HELP
        };
        static const struct option options[] = {
            {"config", required_argument, NULL, ARG_CONFIG},
            {"state-dir", required_argument, NULL, ARG_STATE_DIR},
            {"debug", no_argument, NULL, ARG_DEBUG},
            {"idle-exit", required_argument, NULL, ARG_IDLE_EXIT},
            {"rotate-key", no_argument, NULL, ARG_ROTATE_KEY},
            {"version", no_argument, NULL, ARG_VERSION},
            {"help", no_argument, NULL, ARG_HELP},
            {0},
        };
        const char *env_state = getenv("STATE_DIRECTORY");
        int c;

        *o = (struct broker_options){
            .config_path = LK_CONFIG_PATH,
            /* systemd may give several, separated by ':'; ours is the only one. */
            .state_dir =
                env_state && *env_state && !strchr(env_state, ':') ? env_state : DEFAULT_STATE_DIR,
            .idle_exit = -1,
        };
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case ARG_CONFIG:
                        o->config_path = optarg;
                        break;
                case ARG_STATE_DIR:
                        o->state_dir = optarg;
                        break;
                case ARG_DEBUG:
                        o->debug = true;
                        break;
                case ARG_IDLE_EXIT: {
                        char *end;
                        unsigned long v;
                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno || end == optarg || *end || optarg[0] == '-' || v > 86400 * 365) {
                                fprintf(stderr,
                                        "latchkeyd: --idle-exit: '%s' is not a number of "
                                        "seconds\n",
                                        optarg);
                                return -EINVAL;
                        }
                        o->idle_exit = (long)v;
                        break;
                }
                case ARG_ROTATE_KEY:
                        *ret_rotate_key = true;
                        break;
                case ARG_VERSION:
                        printf("latchkeyd %s\n", LATCHKEY_VERSION);
                        return 1;
                case ARG_HELP:
                        help();
                        return 1;
                default:
                        fprintf(stderr, "Try 'latchkeyd --help'.\n");
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "latchkeyd: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        return 0;
}

/*
 * --rotate-key. Run by root, it becomes the owner of the state dir first (the broker's user):
 * the key file must stay the broker's.
 */
static int rotate_key(const char *state_dir)
{
        char id[LK_SESSION_KEY_ID_HEX];
        struct lk_error e = {0};
        struct stat st;

        if (stat(state_dir, &st) < 0) {
                fprintf(stderr, "latchkeyd: cannot use the state directory %s: %m\n", state_dir);
                return 1;
        }
        if (geteuid() == 0 && st.st_uid != 0 &&
            (setgroups(0, NULL) < 0 || setgid(st.st_gid) < 0 || setuid(st.st_uid) < 0)) {
                fprintf(stderr, "latchkeyd: cannot become uid %u, the owner of %s: %m\n",
                        (unsigned)st.st_uid, state_dir);
                return 1;
        }
        if (lk_session_keys_rotate(state_dir, id, &e) < 0) {
                fprintf(stderr, "latchkeyd: %s\n", e.message);
                return 1;
        }
        printf("New session key %s in %s/%s; latchkeyd rewrites every session file under it at "
               "its next start (systemctl restart latchkeyd), then drops the old key.\n",
               id, state_dir, LK_SESSION_KEY_FILE);
        return 0;
}

static int run(int argc, char *argv[])
{
        struct broker_options o;
        bool rotate = false;
        struct broker *b = NULL;
        struct lk_error e = {0};
        int r;

        r = parse_argv(argc, argv, &o, &rotate);
        if (r != 0)
                return r < 0 ? 2 : 0;

        /* The process holds every token: no core dumps, no ptrace by others of our uid. */
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        umask(077);
        signal(SIGPIPE, SIG_IGN);
        if (rotate)
                return rotate_key(o.state_dir);
        lk_log_open("latchkeyd", o.debug, o.debug);
        /* latchkeyd.service runs us as the user latchkey, sandboxed; root works too (tests,
         * systems without systemd), but the admin should know it is not the intended setup. */
        if (geteuid() == 0)
                log_warning("Running as root, not as the user latchkey of latchkeyd.service: "
                            "everything works, but without the unit's sandbox");

        r = broker_new(&o, &b, &e);
        if (r < 0) {
                /* Also to stderr when logging to syslog: whoever started us should see it. */
                fprintf(stderr, "latchkeyd: %s\n", e.message[0] ? e.message : lk_err_name(r));
                if (!lk_log_to_stderr())
                        log_error("Cannot start: %s", e.message);
                return 1;
        }
        r = broker_run(b);
        broker_free(b);
        if (r < 0) {
                log_error("The event loop failed: %s", strerror(-r));
                return 1;
        }
        return r;
}

int main(int argc, char *argv[])
{
        return run(argc, argv);
}
