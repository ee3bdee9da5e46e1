/* SPDX-License-Identifier: MIT */
/*
 * latchkeyctl (SPEC §9): one table of commands (latchkeyctl.c) drives the
 * dispatch and the help; each command lives in its own function. Errors go
 * to stderr as one line naming the command and what went wrong; nothing but
 * `token` ever prints a secret.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/util.h"
#include "lib/latchkey.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct latchkey *, latchkey_close);

/* Exit codes, also listed by `latchkeyctl --help`. */
enum {
        EXIT_OK = 0,
        EXIT_ERROR = 1,      /* anything else; check-config: the configuration has problems */
        EXIT_USAGE = 2,      /* bad command line */
        EXIT_NO_BROKER = 3,  /* the bus or the broker cannot be reached */
        EXIT_NO_SESSION = 4, /* no such session, or it expired: log in again */
};

struct command {
        const char *name;
        int (*run)(int argc, char *argv[]); /* argv[0] is the command's name */
        const char *synopsis;                /* after the name */
        const char *help;                    /* one line */
};

extern const char *program_name;

/* One line on stderr, "latchkeyctl CMD: ...", and returns code. */
int fail(const char *cmd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The exit code that goes with a liblatchkey error. */
int exit_code_of(int error);
/* A liblatchkey failure: its message, and the exit code that goes with error. */
int fail_lk(const char *cmd, const struct latchkey *lk, int error);
/* "Usage: latchkeyctl CMD SYNOPSIS" on stderr, a hint at --help; returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the command's usage and help (for CMD --help); returns EXIT_OK. */
int command_help(const char *cmd, const char *options_text);

/* Parses seconds (0..max) in full; false on anything else. */
bool parse_seconds(const char *s, unsigned max, unsigned *ret);
/* Text from outside (claims, names) for a terminal, whole, through lk_text_escape(). */
void print_sanitized(FILE *f, const char *s);
/* "2026-11-25 22:10:00 UTC" (thread-unsafe static buffer); "-" for 0. */
const char *format_time(int64_t t);

/*
 * Reads one line of at most LATCHKEY_ANSWER_MAX bytes from fd, byte by byte so that no
 * stdio buffer keeps a copy of the secret; white space around it is cut. Returns 0, -ENODATA
 * on an empty line or end of input, -E2BIG when longer, -errno on failure.
 */
int read_answer(int fd, char **ret);

int cmd_token(int argc, char *argv[]);
int cmd_status(int argc, char *argv[]);
int cmd_claims(int argc, char *argv[]);
int cmd_sessions(int argc, char *argv[]);
int cmd_logout(int argc, char *argv[]);
int cmd_login(int argc, char *argv[]);
int cmd_check_config(int argc, char *argv[]);
int cmd_pin(int argc, char *argv[]);
int cmd_watch(int argc, char *argv[]);
int cmd_credential(int argc, char *argv[]);
int cmd_users(int argc, char *argv[]);
int cmd_forget(int argc, char *argv[]);
