/* SPDX-License-Identifier: MIT */
/*
 * lk-faultshim.so: an LD_PRELOAD shim that brings faults into one process
 * (the broker) without touching the machine. Test code only, never installed.
 *
 * The clock: time(), gettimeofday() and clock_gettime() on
 * CLOCK_REALTIME(_COARSE) return the real time plus the number of seconds
 * written in the file named by $LK_TIMESHIFT_FILE (a decimal integer, may be
 * negative; a missing or unreadable file means 0). The file is read again at
 * most every 20 ms of CLOCK_MONOTONIC, so a test makes the clock jump while
 * the process runs. CLOCK_MONOTONIC and the other clocks are left alone.
 *
 * fsync: while the file named by $LK_FAULT_FSYNC_FILE exists, fsync() and
 * fdatasync() of regular files fail with EIO (a disk going bad, a network
 * filesystem going away); directories are left alone.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Exported, so no prototype elsewhere; -Wmissing-prototypes wants them declared. */
time_t time(time_t *t);
int gettimeofday(struct timeval *restrict tv, void *restrict tz);
int clock_gettime(clockid_t id, struct timespec *ts);
int fsync(int fd);
int fdatasync(int fd);

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static _Atomic long cached_offset;
static _Atomic int64_t cached_at_ms = -1000000;

static int real_clock_gettime(clockid_t id, struct timespec *ts)
{
        static _Atomic(clock_gettime_fn) real;
        clock_gettime_fn fn = atomic_load(&real);

        if (!fn) {
                fn = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
                if (!fn) {
                        errno = ENOSYS;
                        return -1;
                }
                atomic_store(&real, fn);
        }
        return fn(id, ts);
}

static long read_offset(void)
{
        const char *path = getenv("LK_TIMESHIFT_FILE");
        char buf[32];
        ssize_t n;
        long v;
        char *end;
        int fd;

        if (!path)
                return 0;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        errno = 0;
        v = strtol(buf, &end, 10);
        if (errno || end == buf || (*end && *end != '\n'))
                return 0;
        return v;
}

static long offset(void)
{
        struct timespec mono;
        int64_t now_ms;

        if (real_clock_gettime(CLOCK_MONOTONIC, &mono) < 0)
                return atomic_load(&cached_offset);
        now_ms = (int64_t)mono.tv_sec * 1000 + mono.tv_nsec / 1000000;
        if (now_ms - atomic_load(&cached_at_ms) >= 20) {
                atomic_store(&cached_offset, read_offset());
                atomic_store(&cached_at_ms, now_ms);
        }
        return atomic_load(&cached_offset);
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
        int r = real_clock_gettime(id, ts);

        if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
                ts->tv_sec += offset();
        return r;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
        struct timeval *volatile out = tv; /* glibc declares tv nonnull; NULL happens anyway */
        struct timespec ts;

        if (!out)
                return 0;
        if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
                return -1;
        out->tv_sec = ts.tv_sec;
        out->tv_usec = ts.tv_nsec / 1000;
        return 0;
}

time_t time(time_t *t)
{
        struct timespec ts;
        time_t now;

        if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
                return (time_t)-1;
        now = ts.tv_sec;
        if (t)
                *t = now;
        return now;
}

typedef int (*sync_fn)(int);

static int fail_sync(int fd, const char *name)
{
        const char *flag = getenv("LK_FAULT_FSYNC_FILE");
        struct stat st;
        sync_fn real;

        if (flag && access(flag, F_OK) == 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
                errno = EIO;
                return -1;
        }
        real = (sync_fn)dlsym(RTLD_NEXT, name);
        if (!real) {
                errno = ENOSYS;
                return -1;
        }
        return real(fd);
}

int fsync(int fd)
{
        return fail_sync(fd, "fsync");
}

int fdatasync(int fd)
{
        return fail_sync(fd, "fdatasync");
}
