/* SPDX-License-Identifier: MIT */
/*
 * Death tests for assert()ed preconditions: runs a statement in a child process and checks that
 * it ended by abort() with assert()'s message, not by running on, a crash or an exit. The child
 * writes no core file; its stderr is read back, so the test log stays quiet.
 */
#pragma once

#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define assert_aborts(statement)                                                                   \
        do {                                                                                       \
                char _out[1024] = "";                                                              \
                size_t _len = 0;                                                                   \
                ssize_t _n;                                                                        \
                int _fds[2], _status;                                                              \
                pid_t _pid;                                                                        \
                                                                                                   \
                assert_int_equal(pipe(_fds), 0);                                                   \
                _pid = fork();                                                                     \
                assert_true(_pid >= 0);                                                            \
                if (_pid == 0) {                                                                   \
                        struct rlimit _no_core = {0, 0};                                           \
                                                                                                   \
                        (void)setrlimit(RLIMIT_CORE, &_no_core);                                   \
                        dup2(_fds[1], STDERR_FILENO);                                              \
                        statement;                                                                 \
                        _exit(0);                                                                  \
                }                                                                                  \
                close(_fds[1]);                                                                    \
                while (_len < sizeof(_out) - 1 &&                                                  \
                       (_n = read(_fds[0], _out + _len, sizeof(_out) - 1 - _len)) > 0)             \
                        _len += (size_t)_n;                                                        \
                _out[_len] = '\0';                                                                 \
                close(_fds[0]);                                                                    \
                assert_int_equal(waitpid(_pid, &_status, 0), _pid);                                \
                if (!WIFSIGNALED(_status) || WTERMSIG(_status) != SIGABRT ||                       \
                    !strstr(_out, "Assertion"))                                                    \
                        fail_msg("%s did not fail an assert() (status 0x%x): %s", #statement,      \
                                 (unsigned)_status, _out);                                         \
        } while (0)
