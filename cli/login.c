/* SPDX-License-Identifier: MIT */
/*
 * latchkeyctl login USER: the whole login flow at a terminal, without PAM,
 * for admins trying a configuration: BeginLogin, the address (and a QR code
 * of it), then the same ways to finish as pam_latchkey: the device flow waits
 * for the approval (WaitLogin, nothing typed), the code flow takes the person's
 * answer (CompleteLogin), or Enter where the broker receives the redirect
 * itself; then OpenSession under a random id.
 * The person-facing text goes to stderr; stdout gets only the session id.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/qr.h"
#include "cli/latchkeyctl.h"

static const char options_help[] =
        "Shows the address to open in a browser (and a QR code of it). With the device\n"
        "flow ([provider] flow in latchkey.conf(5)) it also shows the code to confirm\n"
        "there and waits for the sign-in; with the code flow it asks for the code, or\n"
        "the whole address the browser was sent back to, on stdin (Enter alone where\n"
        "the broker receives the redirect itself).\n"
        "Prints the new session's id on stdout; use it as LATCHKEY_SESSION.\n\n"
        "Options:\n"
        "  --no-qr   do not draw the QR code\n"
        "  --help    show this help\n";

/*
 * Reads one line of at most LATCHKEY_ANSWER_MAX bytes from fd, byte by byte so that no
 * stdio buffer keeps a copy of the secret. Returns 0, -EOF-like -ENODATA on end of input
 * before anything, -E2BIG when longer, -errno on failure.
 */
static int read_answer(int fd, char **ret)
{
        char *buf = calloc(1, LATCHKEY_ANSWER_MAX + 1);
        size_t len = 0;
        bool too_long = false;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                char c;
                ssize_t n = read(fd, &c, 1);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;

                        latchkey_free_secret(buf);
                        return r;
                }
                if (n == 0 || c == '\n')
                        break;
                if (len == LATCHKEY_ANSWER_MAX)
                        too_long = true;
                else
                        buf[len++] = c;
        }
        if (too_long) {
                latchkey_free_secret(buf);
                return -E2BIG;
        }
        /* Strip surrounding white space (a pasted line often has some). */
        while (len > 0 && strchr(" \t\r", buf[len - 1]))
                buf[--len] = '\0';
        {
                size_t skip = strspn(buf, " \t\r");

                memmove(buf, buf + skip, len - skip + 1);
                len -= skip;
        }
        if (len == 0) {
                latchkey_free_secret(buf);
                return -ENODATA;
        }
        *ret = buf;
        return 0;
}

/* "lk-" and 16 random hex digits: within OpenSession's [A-Za-z0-9._-]{1,64}. */
static int random_session_id(char ret[static 20])
{
        unsigned char b[8];
        size_t o = 0;

        if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
                return -errno;
        memcpy(ret, "lk-", 3);
        o = 3;
        for (size_t i = 0; i < sizeof(b); i++) {
                ret[o++] = "0123456789abcdef"[b[i] >> 4];
                ret[o++] = "0123456789abcdef"[b[i] & 15];
        }
        ret[o] = '\0';
        return 0;
}

/* For login, "not found" is about a user or a login, not a session: a plain failure. */
static int login_fail(const struct latchkey *lk, int error)
{
        int code = fail_lk("login", lk, error);

        return code == EXIT_NO_SESSION ? EXIT_ERROR : code;
}

static void latchkey_login_info_freep(struct latchkey_login_info **i)
{
        latchkey_login_info_free(*i);
}

/* WaitLogin: the broker finishes the login (the device approval, the callback). */
static int wait_login(struct latchkey *lk, const char *login_id,
                      const struct latchkey_login_info *info, char **ret_user)
{
        int r = latchkey_wait_login(lk, login_id, info->seconds_left + 10, ret_user);

        if (r < 0) {
                r = login_fail(lk, r);
                (void)latchkey_cancel_login(lk, login_id);
                return r;
        }
        return EXIT_OK;
}

/* OpenSession under a random id, printed on stdout. */
static int open_session(struct latchkey *lk, const char *login_id, const char *who)
{
        char session_id[20];
        int r;

        if (random_session_id(session_id) < 0)
                return fail("login", EXIT_ERROR, "cannot make a session id: %m");
        r = latchkey_open_session(lk, login_id, session_id);
        if (r < 0)
                return login_fail(lk, r);
        fprintf(stderr, "Logged in as %s; session %s.\n", who, session_id);
        printf("%s\n", session_id);
        return EXIT_OK;
}

int cmd_login(int argc, char *argv[])
{
        static const struct option longopts[] = {
                { "no-qr", no_argument, NULL, 'n' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(latchkey_closep) struct latchkey *lk = NULL;
        _cleanup_free_ char *login_id = NULL, *url = NULL, *who = NULL;
        _cleanup_(latchkey_login_info_freep) struct latchkey_login_info *info = NULL;
        _cleanup_secret_ char *answer = NULL;
        const char *user;
        bool qr = true;
        int c, r;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+", longopts, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        return command_help("login", options_help);
                case 'n':
                        qr = false;
                        break;
                default:
                        return usage_error("login", "unknown option '%s'", argv[optind - 1]);
                }
        }
        if (optind != argc - 1)
                return usage_error("login", "needs one USER");
        user = argv[optind];
        if (isempty(user) || strlen(user) > LATCHKEY_ID_MAX)
                return usage_error("login", "USER must be 1 to %d bytes", LATCHKEY_ID_MAX);

        if (latchkey_open(&lk) < 0)
                return fail("login", EXIT_ERROR, "out of memory");
        r = latchkey_begin_login(lk, user, &login_id, &url);
        if (r < 0)
                return login_fail(lk, r);

        /* A broker without GetLoginInfo knows only the code flow: paste, as before. */
        if (latchkey_login_info(lk, login_id, &info) < 0)
                info = NULL;

        /* The address carries the login's state and nonce: for this person's eyes only. */
        fprintf(stderr, "Open this address in a browser and sign in:\n\n%s\n\n", url);
        if (qr) {
                _cleanup_free_ char *drawing = NULL;

                if (lk_qr_render(url, &drawing) == 0)
                        fprintf(stderr, "%s\n\n", drawing);
                else
                        fprintf(stderr, "(the address is too long for a QR code)\n\n");
        }
        if (info && info->device) {
                fprintf(stderr, "Confirm the code %s there. Waiting for the sign-in (%u s "
                                "left)...\n",
                        info->user_code, info->seconds_left);
                r = wait_login(lk, login_id, info, &who);
                return r != EXIT_OK ? r : open_session(lk, login_id, who);
        }
        if (info && info->callback)
                fprintf(stderr, "Press Enter when you have signed in (or paste the code): ");
        else
                fprintf(stderr,
                        "Then paste the code, or the whole address the browser was sent to: ");
        fflush(stderr);

        r = read_answer(STDIN_FILENO, &answer);
        if (r == -ENODATA && info && info->callback) {
                r = wait_login(lk, login_id, info, &who);
                return r != EXIT_OK ? r : open_session(lk, login_id, who);
        }
        if (r < 0) {
                (void)latchkey_cancel_login(lk, login_id);
                if (r == -E2BIG)
                        return fail("login", EXIT_ERROR, "the answer is longer than %d bytes",
                                    LATCHKEY_ANSWER_MAX);
                if (r == -ENODATA)
                        return fail("login", EXIT_ERROR, "no answer given");
                errno = -r;
                return fail("login", EXIT_ERROR, "cannot read the answer: %m");
        }
        r = latchkey_complete_login(lk, login_id, answer, &who);
        if (r < 0) {
                r = login_fail(lk, r);
                (void)latchkey_cancel_login(lk, login_id);
                return r;
        }
        return open_session(lk, login_id, who);
}
