/* SPDX-License-Identifier: MIT */
/*
 * log.c: where messages go. Syslog only when a daemon listens on /dev/log;
 * otherwise stderr, so that nothing is lost in containers and on CI machines.
 */
#include <fcntl.h>
#include <paths.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "oidc/log.h"

struct dir {
        char path[64];
        char sock[128];
};

static int setup(void **state)
{
        struct dir *d = calloc(1, sizeof(*d));

        if (!d)
                return -1;
        snprintf(d->path, sizeof(d->path), "/tmp/lk-test-log-XXXXXX");
        if (!mkdtemp(d->path)) {
                free(d);
                return -1;
        }
        snprintf(d->sock, sizeof(d->sock), "%s/log", d->path);
        *state = d;
        return 0;
}

static int teardown(void **state)
{
        struct dir *d = *state;

        unlink(d->sock);
        rmdir(d->path);
        free(d);
        return 0;
}

/* A socket of type bound at path; listening when it is a stream socket. */
static int bound_socket(const char *path, int type)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_true(strlen(path) < sizeof(sa.sun_path));
        memcpy(sa.sun_path, path, strlen(path) + 1);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        if (type == SOCK_STREAM)
                assert_int_equal(listen(fd, 1), 0);
        return fd;
}

static void test_nothing_there(void **state)
{
        struct dir *d = *state;

        assert_false(lk_syslog_listening(d->sock));
}

static void test_datagram_daemon(void **state)
{
        struct dir *d = *state;
        int fd = bound_socket(d->sock, SOCK_DGRAM);

        assert_true(lk_syslog_listening(d->sock));
        close(fd);
}

/* Some syslog daemons listen on a stream socket; glibc's syslog() then uses that. */
static void test_stream_daemon(void **state)
{
        struct dir *d = *state;
        int fd = bound_socket(d->sock, SOCK_STREAM);

        assert_true(lk_syslog_listening(d->sock));
        close(fd);
}

/* The daemon has gone and left its socket file behind. */
static void test_stale_socket(void **state)
{
        struct dir *d = *state;

        close(bound_socket(d->sock, SOCK_DGRAM));
        assert_false(lk_syslog_listening(d->sock));
}

static void test_not_a_socket(void **state)
{
        struct dir *d = *state;
        int fd = open(d->sock, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

        assert_true(fd >= 0);
        close(fd);
        assert_false(lk_syslog_listening(d->sock));
}

static void test_path_too_long(void **state)
{
        char path[200];

        memset(path, 'a', sizeof(path) - 1);
        path[0] = '/';
        path[sizeof(path) - 1] = 0;
        assert_false(lk_syslog_listening(path));
}

/*
 * The daemon's choice, on this machine: without a syslog daemon on /dev/log, messages go
 * to stderr (one note first); with one, they go to syslog and stderr stays quiet.
 */
static void test_open_falls_back_to_stderr(void **state)
{
        struct dir *d = *state;
        bool listening = lk_syslog_listening(_PATH_LOG);
        int fd = open(d->sock, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int saved = dup(STDERR_FILENO);
        char text[1024] = "";
        ssize_t n;

        assert_true(fd >= 0 && saved >= 0);
        fflush(stderr);
        assert_true(dup2(fd, STDERR_FILENO) >= 0);
        lk_log_open("test-log", false, false);
        log_info("Login %s begun", "sha256:0123");
        log_debug("not shown without debug");
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        n = pread(fd, text, sizeof(text) - 1, 0);
        close(fd);
        assert_true(n >= 0);
        text[n] = 0;

        assert_int_equal(lk_log_to_stderr(), !listening);
        if (listening) {
                assert_string_equal(text, "");
                return;
        }
        assert_string_equal(text, "test-log: nothing listens on " _PATH_LOG
                                  "; logging to stderr\n"
                                  "Login sha256:0123 begun\n");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_nothing_there, setup, teardown),
            cmocka_unit_test_setup_teardown(test_datagram_daemon, setup, teardown),
            cmocka_unit_test_setup_teardown(test_stream_daemon, setup, teardown),
            cmocka_unit_test_setup_teardown(test_stale_socket, setup, teardown),
            cmocka_unit_test_setup_teardown(test_not_a_socket, setup, teardown),
            cmocka_unit_test(test_path_too_long),
            cmocka_unit_test_setup_teardown(test_open_falls_back_to_stderr, setup, teardown),
        };

        return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
