/* SPDX-License-Identifier: MIT */
/*
 * The broker's one event loop: poll(2) over every file descriptor that
 * libdbus and libcurl want watched, plus timers, all in one thread. Nothing
 * in the broker blocks; a slow provider only delays the callers waiting on it.
 */
#pragma once

#include <poll.h>
#include <stdint.h>

struct lk_loop;
struct lk_io;
struct lk_timer;

/* revents: POLLIN / POLLOUT / POLLERR / POLLHUP bits */
typedef void (*lk_io_fn)(struct lk_io *io, int fd, short revents, void *userdata);
typedef void (*lk_timer_fn)(struct lk_timer *t, void *userdata);
/* Runs before each wait (the D-Bus glue dispatches queued messages here). */
typedef void (*lk_prepare_fn)(void *userdata);

int lk_loop_new(struct lk_loop **ret);
/* Frees the loop and every watch and timer still registered. */
void lk_loop_free(struct lk_loop *l);

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t lk_now_ms(void);
/* Realtime seconds, for token lifetimes and opened_at. */
int64_t lk_now_wall(void);

/* The clocks the broker's objects read (login.c, session.c): lk_clock_system, or a test's. */
struct lk_clock {
        int64_t (*mono_ms)(void); /* deadlines: login expiry */
        int64_t (*wall_s)(void);  /* token lifetimes, opened_at, the refresh floor */
};
extern const struct lk_clock lk_clock_system;

/* events 0 means "registered but not watched for now". Returns NULL on OOM. */
struct lk_io *lk_io_new(struct lk_loop *l, int fd, short events, lk_io_fn fn, void *userdata);
void lk_io_set_events(struct lk_io *io, short events);
/* Safe to call from within any callback, the io's own included. NULL is fine. */
void lk_io_free(struct lk_io *io);

struct lk_timer *lk_timer_new(struct lk_loop *l, lk_timer_fn fn, void *userdata);
/* Fires once at the given CLOCK_MONOTONIC millisecond; -1 disarms. */
void lk_timer_set(struct lk_timer *t, int64_t at_ms);
void lk_timer_set_in(struct lk_timer *t, int64_t in_ms);
void lk_timer_free(struct lk_timer *t);

void lk_loop_set_prepare(struct lk_loop *l, lk_prepare_fn fn, void *userdata);

/* Runs until lk_loop_quit(); SIGTERM and SIGINT quit it too. Returns the quit code. */
int lk_loop_run(struct lk_loop *l);
void lk_loop_quit(struct lk_loop *l, int code);
