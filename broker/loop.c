/* SPDX-License-Identifier: MIT */
#include "broker/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "oidc/log.h"

/*
 * A few dozen watches at most (the bus connection, one socket per HTTP
 * exchange), so plain lists and poll(2) are enough. Freed entries are only
 * marked dead while callbacks run and swept afterwards, so a callback may
 * free any watch or timer, its own included.
 *
 * Ready watches are served oldest first, so the bus connection (watched from
 * the start) comes before the HTTP sockets that come and go, and a round of
 * callbacks ends after LOOP_SLICE_NS: a burst of provider answers (each with
 * an id_token to verify) is then spread over several rounds. Between two
 * watches' callbacks the prepare function runs too (the broker's: what the bus
 * socket holds is read and dispatched), so a method call waits for at most one
 * HTTP callback, not for a whole round of them. poll(2) is level-triggered, so
 * a watch left for the next round is not lost.
 */
#define LOOP_SLICE_NS (1000 * 1000)
struct lk_io {
        struct lk_loop *loop;
        int fd;
        short events;
        bool dead;
        lk_io_fn fn;
        void *userdata;
        struct lk_io *next;
};

struct lk_timer {
        struct lk_loop *loop;
        int64_t at_ms; /* -1: disarmed */
        bool dead;
        lk_timer_fn fn;
        void *userdata;
        struct lk_timer *next;
};

struct lk_loop {
        struct lk_io *ios;
        struct lk_timer *timers;
        lk_prepare_fn prepare;
        void *prepare_userdata;
        int signal_fd;
        bool quit;
        int quit_code;
};

int64_t lk_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lk_now_wall(void)
{
        return (int64_t)time(NULL);
}

const struct lk_clock lk_clock_system = {.mono_ms = lk_now_ms, .wall_s = lk_now_wall};

int lk_loop_new(struct lk_loop **ret)
{
        struct lk_loop *l;
        sigset_t mask;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
                free(l);
                return -errno;
        }
        l->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (l->signal_fd < 0) {
                int r = -errno;
                free(l);
                return r;
        }
        *ret = l;
        return 0;
}

void lk_loop_free(struct lk_loop *l)
{
        if (!l)
                return;
        while (l->ios) {
                struct lk_io *n = l->ios->next;
                free(l->ios);
                l->ios = n;
        }
        while (l->timers) {
                struct lk_timer *n = l->timers->next;
                free(l->timers);
                l->timers = n;
        }
        if (l->signal_fd >= 0)
                close(l->signal_fd);
        free(l);
}

struct lk_io *lk_io_new(struct lk_loop *l, int fd, short events, lk_io_fn fn, void *userdata)
{
        struct lk_io *io = calloc(1, sizeof(*io));

        if (!io)
                return NULL;
        *io = (struct lk_io){
            .loop = l, .fd = fd, .events = events, .fn = fn, .userdata = userdata, .next = l->ios};
        l->ios = io;
        return io;
}

void lk_io_set_events(struct lk_io *io, short events)
{
        io->events = events;
}

void lk_io_free(struct lk_io *io)
{
        if (io)
                io->dead = true;
}

struct lk_timer *lk_timer_new(struct lk_loop *l, lk_timer_fn fn, void *userdata)
{
        struct lk_timer *t = calloc(1, sizeof(*t));

        if (!t)
                return NULL;
        *t = (struct lk_timer){
            .loop = l, .at_ms = -1, .fn = fn, .userdata = userdata, .next = l->timers};
        l->timers = t;
        return t;
}

void lk_timer_set(struct lk_timer *t, int64_t at_ms)
{
        t->at_ms = at_ms;
}

void lk_timer_set_in(struct lk_timer *t, int64_t in_ms)
{
        t->at_ms = lk_now_ms() + (in_ms < 0 ? 0 : in_ms);
}

void lk_timer_free(struct lk_timer *t)
{
        if (t) {
                t->dead = true;
                t->at_ms = -1;
        }
}

void lk_loop_set_prepare(struct lk_loop *l, lk_prepare_fn fn, void *userdata)
{
        l->prepare = fn;
        l->prepare_userdata = userdata;
}

void lk_loop_quit(struct lk_loop *l, int code)
{
        if (!l->quit)
                l->quit_code = code;
        l->quit = true;
}

static void sweep(struct lk_loop *l)
{
        for (struct lk_io **p = &l->ios; *p;) {
                if ((*p)->dead) {
                        struct lk_io *d = *p;
                        *p = d->next;
                        free(d);
                } else
                        p = &(*p)->next;
        }
        for (struct lk_timer **p = &l->timers; *p;) {
                if ((*p)->dead) {
                        struct lk_timer *d = *p;
                        *p = d->next;
                        free(d);
                } else
                        p = &(*p)->next;
        }
}

static int run_timers(struct lk_loop *l)
{
        int64_t now = lk_now_ms();

        for (struct lk_timer *t = l->timers; t; t = t->next)
                if (!t->dead && t->at_ms >= 0 && t->at_ms <= now) {
                        t->at_ms = -1;
                        t->fn(t, t->userdata);
                }
        return 0;
}

static int next_timeout(struct lk_loop *l)
{
        int64_t now = lk_now_ms(), next = -1;

        for (struct lk_timer *t = l->timers; t; t = t->next)
                if (!t->dead && t->at_ms >= 0 && (next < 0 || t->at_ms < next))
                        next = t->at_ms;
        if (next < 0)
                return -1;
        if (next <= now)
                return 0;
        return next - now > 60000 ? 60000 : (int)(next - now);
}

int lk_loop_run(struct lk_loop *l)
{
        _cleanup_free_ struct pollfd *fds = NULL;
        _cleanup_free_ struct lk_io **owners = NULL;
        size_t cap = 0;

        while (!l->quit) {
                size_t n = 1, i = 0;
                int r;

                if (l->prepare)
                        l->prepare(l->prepare_userdata);
                sweep(l);
                if (l->quit)
                        break;

                for (struct lk_io *io = l->ios; io; io = io->next)
                        n++;
                if (n > cap) {
                        struct pollfd *nf = realloc(fds, n * sizeof(*fds));
                        if (!nf)
                                return -ENOMEM;
                        fds = nf;
                        struct lk_io **no = realloc(owners, n * sizeof(*owners));
                        if (!no)
                                return -ENOMEM;
                        owners = no;
                        cap = n;
                }
                fds[i] = (struct pollfd){.fd = l->signal_fd, .events = POLLIN};
                owners[i++] = NULL;
                for (struct lk_io *io = l->ios; io; io = io->next) {
                        fds[i] =
                            (struct pollfd){.fd = io->events ? io->fd : -1, .events = io->events};
                        owners[i++] = io;
                }

                r = poll(fds, n, next_timeout(l));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (fds[0].revents) {
                        struct signalfd_siginfo si;
                        if (read(l->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                                log_info("Received signal %u, exiting", si.ssi_signo);
                                lk_loop_quit(l, 0);
                        }
                }
                {
                        struct timespec ts;
                        int64_t start;
                        bool served = false;

                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        start = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
                        for (i = n - 1; i >= 1; i--) {
                                struct lk_io *io = owners[i];
                                if (!fds[i].revents || io->dead || !io->events)
                                        continue;
                                /* Method calls that came meanwhile go before the next watch. */
                                if (served && l->prepare)
                                        l->prepare(l->prepare_userdata);
                                io->fn(io, io->fd, fds[i].revents, io->userdata);
                                served = true;
                                clock_gettime(CLOCK_MONOTONIC, &ts);
                                if ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - start >=
                                    LOOP_SLICE_NS)
                                        break;
                        }
                }
                run_timers(l);
        }
        return l->quit_code;
}
