/* SPDX-License-Identifier: MIT */
#include "broker/pin_worker.h"

#include <argon2.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/util.h"
#include "broker/pin_record.h"
#include "oidc/log.h"

struct job {
        struct job *next;
        struct job *all_next, **all_prev; /* every job until handed back (the per-uid cap) */
        uid_t uid;
        bool verify;
        struct lk_pin_params params;
        char *pin;                       /* a secret: wiped when freed */
        char hash[LK_PIN_HASH_MAX + 1];  /* verify: the stored hash; hash: the result */
        int r;
        lk_pin_done_fn done;
        void *userdata;
};

struct lk_pin_worker {
        pthread_mutex_t lock;
        pthread_cond_t more;
        struct job *queue, **queue_tail; /* waiting for a thread */
        struct job *ended;               /* for the loop */
        struct job *all;                 /* queued, running or ended */
        unsigned jobs;                   /* queued, running or ended but not handed back */
        bool stop;
        pthread_t threads[LK_PIN_THREADS];
        unsigned n_threads;
        int pipe[2]; /* a thread writes a byte when a job ends; the loop reads */
        struct lk_io *io;
};

int lk_pin_hash_now(const struct lk_pin_params *p, const char *pin, char *ret_hash, size_t size)
{
        unsigned char salt[LK_PIN_SALT_BYTES];

        if (getrandom(salt, sizeof(salt), 0) != (ssize_t)sizeof(salt))
                return -LK_ERR_IO;
        if (argon2id_hash_encoded(p->time, p->memory_kib, p->lanes, pin, strlen(pin), salt,
                                  sizeof(salt), LK_PIN_HASH_BYTES, ret_hash, size) != ARGON2_OK)
                return -LK_ERR_NOMEM; /* the one failure with sane parameters: memory */
        return 0;
}

int lk_pin_verify_now(const char *hash, const char *pin)
{
        unsigned m, t, p;
        int r;

        /* Never more work than the bounds allow, whatever the file said. */
        if (!lk_pin_hash_params(hash, &m, &t, &p))
                return -LK_ERR_IO;
        r = argon2id_verify(hash, pin, strlen(pin));
        if (r == ARGON2_OK)
                return 0;
        if (r == ARGON2_VERIFY_MISMATCH)
                return 1;
        return r == ARGON2_MEMORY_ALLOCATION_ERROR ? -LK_ERR_NOMEM : -LK_ERR_IO;
}

static void job_free(struct job *j)
{
        if (!j)
                return;
        lk_secret_free(j->pin);
        explicit_bzero(j->hash, sizeof(j->hash));
        free(j);
}

static void *thread_main(void *arg)
{
        struct lk_pin_worker *w = arg;

        pthread_mutex_lock(&w->lock);
        for (;;) {
                struct job *j;
                char byte = 1;

                while (!w->stop && !w->queue)
                        pthread_cond_wait(&w->more, &w->lock);
                if (w->stop)
                        break;
                j = w->queue;
                w->queue = j->next;
                if (!w->queue)
                        w->queue_tail = &w->queue;
                pthread_mutex_unlock(&w->lock);

                if (j->verify)
                        j->r = lk_pin_verify_now(j->hash, j->pin);
                else
                        j->r = lk_pin_hash_now(&j->params, j->pin, j->hash, sizeof(j->hash));
                lk_secret_free(j->pin);
                j->pin = NULL;

                pthread_mutex_lock(&w->lock);
                j->next = w->ended;
                w->ended = j;
                /* A full pipe already holds a wake-up; the loop drains every ended job. */
                (void)!write(w->pipe[1], &byte, 1);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

static void hand_back(struct lk_pin_worker *w)
{
        struct job *ended, *rev = NULL;

        pthread_mutex_lock(&w->lock);
        ended = w->ended;
        w->ended = NULL;
        pthread_mutex_unlock(&w->lock);
        /* In the order they ended. */
        while (ended) {
                struct job *n = ended->next;
                ended->next = rev;
                rev = ended;
                ended = n;
        }
        while (rev) {
                struct job *j = rev;
                rev = j->next;
                pthread_mutex_lock(&w->lock);
                w->jobs--;
                *j->all_prev = j->all_next;
                if (j->all_next)
                        j->all_next->all_prev = j->all_prev;
                pthread_mutex_unlock(&w->lock);
                j->done(j->userdata, j->r, j->r == 0 && !j->verify ? j->hash : NULL);
                job_free(j);
        }
}

static void on_pipe(struct lk_io *io, int fd, short revents, void *userdata)
{
        char buf[64];

        while (read(fd, buf, sizeof(buf)) > 0)
                ;
        hand_back(userdata);
}

int lk_pin_worker_new(struct lk_loop *loop, struct lk_pin_worker **ret)
{
        struct lk_pin_worker *w = calloc(1, sizeof(*w));
        sigset_t all, old;

        if (!w)
                return -LK_ERR_NOMEM;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->more, NULL);
        w->queue_tail = &w->queue;
        if (pipe2(w->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
                w->pipe[0] = w->pipe[1] = -1;
                lk_pin_worker_free(w);
                return -LK_ERR_IO;
        }
        w->io = lk_io_new(loop, w->pipe[0], POLLIN, on_pipe, w);
        if (!w->io) {
                lk_pin_worker_free(w);
                return -LK_ERR_NOMEM;
        }
        /* The threads take no signal: the loop's thread handles them. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        for (; w->n_threads < LK_PIN_THREADS; w->n_threads++)
                if (pthread_create(&w->threads[w->n_threads], NULL, thread_main, w) != 0)
                        break;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (w->n_threads == 0) {
                lk_pin_worker_free(w);
                return -LK_ERR_IO;
        }
        *ret = w;
        return 0;
}

void lk_pin_worker_free(struct lk_pin_worker *w)
{
        if (!w)
                return;
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_broadcast(&w->more);
        pthread_mutex_unlock(&w->lock);
        for (unsigned i = 0; i < w->n_threads; i++)
                pthread_join(w->threads[i], NULL);
        hand_back(w);
        while (w->queue) {
                struct job *j = w->queue;
                w->queue = j->next;
                *j->all_prev = j->all_next;
                if (j->all_next)
                        j->all_next->all_prev = j->all_prev;
                j->done(j->userdata, -LK_ERR_IO, NULL);
                job_free(j);
        }
        lk_io_free(w->io);
        if (w->pipe[0] >= 0) {
                close(w->pipe[0]);
                close(w->pipe[1]);
        }
        pthread_cond_destroy(&w->more);
        pthread_mutex_destroy(&w->lock);
        free(w);
}

static int submit(struct lk_pin_worker *w, struct job *j, struct lk_error *e)
{
        unsigned mine = 0;

        pthread_mutex_lock(&w->lock);
        for (struct job *q = w->all; q; q = q->all_next)
                mine += q->uid == j->uid;
        if (w->jobs >= LK_PIN_JOBS_MAX || mine >= LK_PIN_JOBS_PER_UID) {
                pthread_mutex_unlock(&w->lock);
                job_free(j);
                return lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS,
                                    "Too many PIN checks under way; try again in a moment");
        }
        w->jobs++;
        j->all_next = w->all;
        if (w->all)
                w->all->all_prev = &j->all_next;
        j->all_prev = &w->all;
        w->all = j;
        *w->queue_tail = j;
        w->queue_tail = &j->next;
        pthread_cond_signal(&w->more);
        pthread_mutex_unlock(&w->lock);
        return 0;
}

static struct job *job_new(uid_t uid, const char *pin, lk_pin_done_fn done, void *userdata)
{
        struct job *j = calloc(1, sizeof(*j));

        if (!j)
                return NULL;
        j->pin = strdup(pin);
        if (!j->pin) {
                free(j);
                return NULL;
        }
        j->uid = uid;
        j->done = done;
        j->userdata = userdata;
        return j;
}

int lk_pin_worker_verify(struct lk_pin_worker *w, uid_t uid, const char *hash, const char *pin,
                         lk_pin_done_fn done, void *userdata, struct lk_error *e)
{
        size_t len = strlen(hash);
        struct job *j;

        if (len > LK_PIN_HASH_MAX)
                return lk_error_set(e, LK_ERR_IO, "The stored PIN hash is too long");
        j = job_new(uid, pin, done, userdata);
        if (!j)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        j->verify = true;
        memcpy(j->hash, hash, len + 1);
        return submit(w, j, e);
}

int lk_pin_worker_hash(struct lk_pin_worker *w, uid_t uid, const struct lk_pin_params *p,
                       const char *pin, lk_pin_done_fn done, void *userdata, struct lk_error *e)
{
        struct job *j = job_new(uid, pin, done, userdata);

        if (!j)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        j->params = *p;
        return submit(w, j, e);
}

unsigned lk_pin_worker_busy(const struct lk_pin_worker *w)
{
        unsigned n;

        pthread_mutex_lock((pthread_mutex_t *)&w->lock);
        n = w->jobs;
        pthread_mutex_unlock((pthread_mutex_t *)&w->lock);
        return n;
}
