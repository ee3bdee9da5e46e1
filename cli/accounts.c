/* SPDX-License-Identifier: MIT */
/*
 * latchkeyctl users and forget (issue 20): the accounts cache read directly (it is
 * world-readable, base/accounts_file.h), and ForgetAccount through the broker (root).
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/accounts_file.h"
#include "cli/latchkeyctl.h"
#include "client/broker_client.h"
#include "oidc/error.h"
#include "oidc/fileio.h"

#define FORGET_TIMEOUT_MS 25000

/* --help, or no option at all: true when the command must end now, with *ret_exit. */
static bool options_end(int argc, char *argv[], const char *cmd, int *ret_exit)
{
        static const struct option longopts[] = {
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                *ret_exit = c == 'h' ? command_help(cmd, NULL) : usage_error(cmd, "unknown option");
                return true;
        }
        return false;
}

static void print_view(const struct lk_account_view *v, const struct lk_accounts_map *m)
{
        char name[LK_ACCOUNTS_NAME_MAX + 1];

        snprintf(name, sizeof(name), "%.*s", (int)v->name_len, v->name);
        print_sanitized(stdout, name);
        printf("\t%u\t", (unsigned)v->uid);
        if (v->n_gids == 0)
                printf("-");
        for (unsigned k = 0; k < v->n_gids; k++) {
                struct lk_group_view g;
                char gname[LK_ACCOUNTS_NAME_MAX + 1];

                if (lk_accounts_find_gid(m, v->gids[k], &g) == 0) {
                        snprintf(gname, sizeof(gname), "%.*s", (int)g.name_len, g.name);
                        printf("%s", k ? "," : "");
                        print_sanitized(stdout, gname);
                } else
                        printf("%s%u", k ? "," : "", (unsigned)v->gids[k]);
        }
        printf("\t%s\t%s\n", format_time(v->last_signin), v->refused ? "refused" : "ok");
}

int cmd_users(int argc, char *argv[])
{
        _cleanup_free_ char *text = NULL;
        struct lk_accounts_map m;
        struct lk_account_view v;
        struct lk_error e = {0};
        size_t len = 0, pos = 0;
        int r;

        if (options_end(argc, argv, "users", &r))
                return r;
        if (optind < argc)
                return usage_error("users", "takes no arguments");
        if (access(lk_accounts_path(), F_OK) < 0 && errno == ENOENT) {
                printf("No cached provider accounts (%s does not exist).\n", lk_accounts_path());
                return EXIT_OK;
        }
        r = lk_read_file(lk_accounts_path(), LK_ACCOUNTS_FILE_MAX, &text, &len, &e);
        if (r < 0)
                return fail("users", EXIT_ERROR, "%s", e.message);
        if (lk_accounts_map_init(&m, text, len) < 0 || lk_accounts_validate(&m) < 0)
                return fail("users", EXIT_ERROR, "%s is not an accounts cache latchkeyctl can "
                            "read", lk_accounts_path());
        printf("USER\tUID\tGROUPS\tLAST SIGN-IN\tPROVIDER\n");
        while ((r = lk_accounts_next(&m, &pos, &v)) > 0)
                print_view(&v, &m);
        return EXIT_OK;
}

int cmd_forget(int argc, char *argv[])
{
        struct lk_client_error e = {0};
        int r;

        if (options_end(argc, argv, "forget", &r))
                return r;
        if (argc - optind != 1)
                return usage_error("forget", "needs exactly one USER");
        r = lk_client_forget_account(NULL, FORGET_TIMEOUT_MS, argv[optind], &e);
        if (r < 0) {
                fprintf(stderr, "%s forget: ", program_name);
                print_sanitized(stderr, *e.message ? e.message : "failed");
                fprintf(stderr, " (%s)\n", e.name);
                return strstr(e.name, "NoReply") || strstr(e.name, "ServiceUnknown") ||
                                       strstr(e.name, "NoServer")
                               ? EXIT_NO_BROKER
                               : EXIT_ERROR;
        }
        printf("Forgot the provider account ");
        print_sanitized(stdout, argv[optind]);
        printf(".\n");
        return EXIT_OK;
}
