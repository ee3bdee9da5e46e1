/* SPDX-License-Identifier: MIT */
/*
 * latchkeyctl pin: sets (or removes) the offline PIN of the session's user (ChangePin). At a
 * terminal it asks twice with echo off; otherwise it reads one line from stdin.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/latchkeyctl.h"

static const char options_help[] =
        "Sets the PIN that signs you in while the identity provider cannot be reached\n"
        "(and, where the admin allows it, at sudo and the lock screen). The broker keeps\n"
        "only an Argon2id hash of it. The session must still be signed in.\n\n"
        "Options:\n"
        "  --session ID  the session (default: $LATCHKEY_SESSION, else your newest)\n"
        "  --remove      remove the PIN\n"
        "  --help        show this help\n";

/* One PIN: echo off at a terminal (prompt on stderr), else a line of stdin. */
static int read_pin(const char *prompt, char **ret)
{
        struct termios old, quiet;
        bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
        int r;

        if (tty) {
                fputs(prompt, stderr);
                fflush(stderr);
                quiet = old;
                quiet.c_lflag &= ~(tcflag_t)ECHO;
                (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        }
        r = read_answer(STDIN_FILENO, ret);
        if (tty) {
                (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
                fputc('\n', stderr);
        }
        return r;
}

int cmd_pin(int argc, char *argv[])
{
        static const struct option longopts[] = {
                { "session", required_argument, NULL, 's' },
                { "remove", no_argument, NULL, 'r' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(latchkey_closep) struct latchkey *lk = NULL;
        _cleanup_secret_ char *pin = NULL, *again = NULL;
        const char *session_id = NULL;
        bool remove = false;
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+", longopts, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        return command_help("pin", options_help);
                case 's':
                        if (isempty(optarg) || strlen(optarg) > LATCHKEY_ID_MAX)
                                return usage_error("pin", "--session needs an id of 1 to %d bytes",
                                                   LATCHKEY_ID_MAX);
                        session_id = optarg;
                        break;
                case 'r':
                        remove = true;
                        break;
                default:
                        return usage_error("pin", "unknown or incomplete option '%s'",
                                           argv[optind - 1]);
                }
        }
        if (optind != argc)
                return usage_error("pin", "unexpected argument '%s'", argv[optind]);
        if (latchkey_open(&lk) < 0)
                return fail("pin", EXIT_ERROR, "out of memory");

        if (!remove) {
                r = read_pin("New PIN: ", &pin);
                if (r == 0 && isatty(STDIN_FILENO)) {
                        r = read_pin("The same PIN again: ", &again);
                        if (r == 0 && !streq(pin, again))
                                return fail("pin", EXIT_ERROR, "the PINs differ; nothing changed");
                }
                if (r == -ENODATA)
                        return fail("pin", EXIT_ERROR, "no PIN given; nothing changed");
                if (r == -E2BIG)
                        return fail("pin", EXIT_ERROR, "that is longer than %d bytes",
                                    LATCHKEY_ID_MAX);
                if (r < 0) {
                        errno = -r;
                        return fail("pin", EXIT_ERROR, "cannot read the PIN: %m");
                }
        }
        r = latchkey_change_pin(lk, session_id, remove ? "" : pin);
        if (r < 0)
                return fail_lk("pin", lk, r);
        fprintf(stderr, remove ? "The PIN is removed.\n" : "The PIN is set.\n");
        return EXIT_OK;
}
