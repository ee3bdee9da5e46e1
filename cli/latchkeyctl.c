/* SPDX-License-Identifier: MIT */
/* latchkeyctl: the command table, dispatch, help and the helpers every command shares. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/text.h"
#include "cli/latchkeyctl.h"

const char *program_name = "latchkeyctl";

static const struct command commands[] = {
        { "token", cmd_token,
          "[--session ID] [--min-valid SECONDS] [--scope S] [--audience A] [--format F]",
          "print the session's access token (refreshed when needed)" },
        { "status", cmd_status, "[--session ID] [--json]",
          "show the session, its user and how long its token is valid" },
        { "claims", cmd_claims, "[--session ID] [--json]",
          "show the verified id_token claims of the session" },
        { "sessions", cmd_sessions, "[--json]",
          "list the sessions you may see (root: all)" },
        { "logout", cmd_logout, "[--session ID]",
          "close the session: its tokens are erased (and revoked where configured)" },
        { "login", cmd_login, "[--no-qr] USER | --session [--no-browser]",
          "log USER in at this terminal, without PAM, and open a session" },
        { "pin", cmd_pin, "[--session ID] [--remove]",
          "set (or remove) your offline PIN" },
        { "watch", cmd_watch, "",
          "in a desktop session: one notification when your sign-in expires" },
        { "credential", cmd_credential, "[--map FILE] get|store|erase",
          "a git credential helper: the token for the hosts the admin mapped" },
        { "check-config", cmd_check_config, "[--json] [PATH]",
          "check latchkey.conf and the provider it names" },
        { "users", cmd_users, "",
          "list the cached provider accounts: uid, local groups, last sign-in" },
        { "forget", cmd_forget, "USER",
          "drop USER's provider account from the accounts cache (root)" },
};

static void print_usage(FILE *f)
{
        fprintf(f, "Usage: %s COMMAND [OPTIONS]\n\n", program_name);
        fprintf(f, "Ask the latchkey broker for the tokens of your single sign-on session.\n\n");
        fprintf(f, "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                fprintf(f, "  %-13s %s\n", commands[i].name, commands[i].help);
        fprintf(f, "\nEvery command takes --help. Without --session, a command is about\n"
                   "$LATCHKEY_SESSION, else your most recently opened session.\n\n"
                   "Exit status:\n"
                   "  0  success\n"
                   "  1  failure (check-config: the configuration has problems)\n"
                   "  2  bad command line\n"
                   "  3  the latchkey broker (or the system bus) cannot be reached\n"
                   "  4  no such session, or the session expired: log in again\n");
}

static const struct command *find_command(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

int command_help(const char *cmd, const char *options_text)
{
        const struct command *c = find_command(cmd);

        if (!c)
                return EXIT_ERROR;
        printf("Usage: %s %s %s\n\n%s %s: %s.\n", program_name, c->name, c->synopsis,
               program_name, c->name, c->help);
        if (options_text)
                printf("\n%s", options_text);
        printf("\nExit status: 0 success, 1 failure, 2 bad command line, 3 no broker,\n"
               "4 no such session or session expired.\n");
        return EXIT_OK;
}

int fail(const char *cmd, int code, const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "%s %s: ", program_name, cmd);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return code;
}

int exit_code_of(int error)
{
        switch (error) {
        case LATCHKEY_ERROR_NO_BROKER:
                return EXIT_NO_BROKER;
        case LATCHKEY_ERROR_NOT_FOUND:
        case LATCHKEY_ERROR_TOKEN_EXPIRED:
                return EXIT_NO_SESSION;
        default:
                return EXIT_ERROR;
        }
}

int fail_lk(const char *cmd, const struct latchkey *lk, int error)
{
        const char *msg = latchkey_last_error_message(lk);

        /* The library's message is already cleaned for a person and holds no secret. */
        return fail(cmd, exit_code_of(error), "%s (%s)", isempty(msg) ? "failed" : msg,
                    latchkey_error_name(error));
}

int usage_error(const char *cmd, const char *fmt, ...)
{
        const struct command *c = find_command(cmd);
        va_list ap;

        fprintf(stderr, "%s %s: ", program_name, cmd);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, " (usage: %s %s %s)\n", program_name, cmd, c ? c->synopsis : "");
        return EXIT_USAGE;
}

bool parse_seconds(const char *s, unsigned max, unsigned *ret)
{
        unsigned long long v;
        char *end;

        if (!s || *s < '0' || *s > '9')
                return false;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end != '\0' || v > max)
                return false;
        *ret = (unsigned)v;
        return true;
}

void print_sanitized(FILE *f, const char *s)
{
        size_t size = LK_TEXT_ESCAPED_SIZE(s ? strlen(s) : 0);
        _cleanup_free_ char *buf = malloc(size);
        char small[256];

        /* Out of memory: a copy cut short, escaped all the same. */
        fputs(buf ? lk_text_escape(s, buf, size) : lk_text_escape(s, small, sizeof(small)), f);
}

const char *format_time(int64_t t)
{
        static char buf[64];
        time_t tt = (time_t)t;
        struct tm tm;

        if (t <= 0 || !gmtime_r(&tt, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC",
                                                      &tm) == 0)
                return "-";
        return buf;
}

int main(int argc, char *argv[])
{
        const struct command *c;

        if (argc < 2) {
                print_usage(stderr);
                return EXIT_USAGE;
        }
        if (streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help")) {
                print_usage(stdout);
                return EXIT_OK;
        }
        if (streq(argv[1], "--version")) {
                printf("%s %s\n", program_name, LATCHKEY_VERSION);
                return EXIT_OK;
        }
        c = find_command(argv[1]);
        if (!c) {
                fprintf(stderr, "%s: unknown command '", program_name);
                print_sanitized(stderr, argv[1]);
                fprintf(stderr, "' (see %s --help)\n", program_name);
                return EXIT_USAGE;
        }
        return c->run(argc - 1, argv + 1);
}
