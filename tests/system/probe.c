/* SPDX-License-Identifier: MIT */
/*
 * lk-sandbox-probe: tries, one by one, what each sandbox directive of latchkeyd.service
 * forbids, and prints one line per directive:
 *
 *     probe: NAME held|open: what it saw
 *
 * tests/system/run runs it twice inside the booted container: as an ExecStartPre= of
 * latchkeyd.service (a test-only drop-in that adds nothing else, so it runs in the unit's
 * sandbox: the same user, namespaces, seccomp filters and credentials as latchkeyd), where
 * every line must say "held"; and as the user latchkey outside any sandbox, where a line that
 * says "open" shows that the check can tell the two apart on this machine. Each try is
 * harmless where it is allowed (undone at once, or in a child that exits).
 *
 * Usage: lk-sandbox-probe [--leave-ipc]
 *
 * Always exits 0: it reports, the test decides.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ipc.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <linux/netlink.h>

#define STATE_DIR "/var/lib/latchkey"
#define MARKER "lk-system-test-marker" /* tests/system/inside puts it in /tmp and /var/tmp */
#define TUN_NODE STATE_DIR "/lk-probe-tun" /* and a node of /dev/net/tun (10:200), mode 0666 */

#define ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static int open_count;

static void report(const char *name, bool held, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void report(const char *name, bool held, const char *fmt, ...)
{
        char what[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        printf("probe: %s %s: %s\n", name, held ? "held" : "open", what);
        if (!held)
                open_count++;
}

/* errno of a call that returned -1, or 0 when it succeeded. */
#define ERRNO_OF(call) ((call) < 0 ? errno : 0)

static const char *err_name(int e)
{
        return e == 0 ? "allowed" : strerrorname_np(e) ? strerrorname_np(e) : "?";
}

/* Creates path for writing; the errno, 0 when it could (and the file is removed again). */
static int try_create(const char *path)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

        if (fd < 0)
                return errno;
        close(fd);
        unlink(path);
        return 0;
}

/* In a child: fn's result as its exit code, or 128 + the signal that killed it. */
static int in_child(int (*fn)(void))
{
        pid_t pid;
        int status;

        fflush(NULL);
        pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0)
                _exit(fn());
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

static int traceme(void)
{
        return ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0 ? errno : 0;
}

#if defined(__x86_64__)
/* getpid through the 32-bit system call gate: 0 when it answered. */
static int compat_getpid(void)
{
        long r;

        __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
        return r == (long)getpid() ? 0 : 1;
}
#endif

static bool only_single_mappings(const char *file)
{
        FILE *f = fopen(file, "re");
        unsigned long inside, outside, count;
        bool ok = f != NULL;

        while (ok && fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3)
                if (count != 1)
                        ok = false;
        if (f)
                fclose(f);
        return ok;
}

/* Whether the mount at path (the last one there, which is what is seen) is read-only. */
static bool mounted_read_only(const char *path)
{
        FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[4096], point[1024], opts[1024];
        bool ro = false;

        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "%*s %*s %*s %*s %1023s %1023s", point, opts) == 2 &&
                    strcmp(point, path) == 0)
                        ro = strncmp(opts, "ro", 2) == 0 && (opts[2] == ',' || opts[2] == '\0');
        if (f)
                fclose(f);
        return ro;
}

/* The test user's home (tests/system/inside makes it): ProtectHome= hides all of /home. */
static bool home_hidden(void)
{
        return access("/home/lk-system-test", F_OK) < 0;
}

int main(int argc, char *argv[])
{
        struct passwd *pw = getpwnam("latchkey");
        const char *creds = getenv("CREDENTIALS_DIRECTORY");
        char path[512], ns[64];
        struct rlimit rl;
        struct timex tx = {0};
        mode_t old_umask;
        ssize_t n;
        void *p;
        int e, fd, last_cap = 40, held_caps = 0, amb = 0, shm, prio;
        FILE *f;

        setvbuf(stdout, NULL, _IOLBF, 0);
        report("User", pw && getuid() == pw->pw_uid && getgid() == pw->pw_gid,
               "uid %u gid %u", (unsigned)getuid(), (unsigned)getgid());

        report("NoNewPrivileges", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1,
               "PR_GET_NO_NEW_PRIVS %d", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));

        f = fopen("/proc/sys/kernel/cap_last_cap", "re");
        if (f) {
                if (fscanf(f, "%d", &last_cap) != 1)
                        last_cap = 40;
                fclose(f);
        }
        for (int c = 0; c <= last_cap; c++) {
                if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
                        held_caps++;
                if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1)
                        amb++;
        }
        report("CapabilityBoundingSet", held_caps == 0, "%d capabilities in the bounding set",
               held_caps);
        report("AmbientCapabilities", amb == 0, "%d ambient capabilities", amb);

        report("PrivateUsers", only_single_mappings("/proc/self/uid_map") &&
                                       only_single_mappings("/proc/self/gid_map"),
               "uid_map and gid_map map single ids only");

        e = try_create("/usr/lk-probe");
        {
                int e_etc = try_create("/etc/lk-probe"), e_var = try_create("/var/lk-probe");

                report("ProtectSystem", e == EROFS && e_etc == EROFS && e_var == EROFS,
                       "creating in /usr: %s, /etc: %s, /var: %s", err_name(e),
                       err_name(e_etc), err_name(e_var));
        }

        old_umask = umask(0077);
        report("UMask", old_umask == 0077, "umask %04o", (unsigned)old_umask);

        snprintf(path, sizeof(path), STATE_DIR "/lk-probe");
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        {
                struct stat st;
                bool ok = fd >= 0 && stat(STATE_DIR, &st) == 0 && st.st_uid == getuid() &&
                          (st.st_mode & 07777) == 0700;

                report("StateDirectory", ok, STATE_DIR " writable, 0700, ours: %s",
                       ok ? "yes" : "no");
        }
        if (fd >= 0) {
                e = ERRNO_OF(fchmod(fd, 04700));
                report("RestrictSUIDSGID", e == EPERM, "chmod u+s on our own file: %s",
                       err_name(e));
                close(fd);
                unlink(path);
        }

        e = stat("/root/lk", &(struct stat){0}) < 0 ? errno : 0;
        report("ProtectHome", e != 0 && home_hidden(),
               "/root/lk: %s; the test user's home in /home: %s", err_name(e),
               home_hidden() ? "hidden" : "seen");

        e = ERRNO_OF(access("/tmp/" MARKER, F_OK));
        {
                int e_var = ERRNO_OF(access("/var/tmp/" MARKER, F_OK));

                report("PrivateTmp", e == ENOENT && e_var == ENOENT,
                       "the system's marker in /tmp: %s, in /var/tmp: %s",
                       e ? "not seen" : "seen", e_var ? "not seen" : "seen");
        }

        e = ERRNO_OF(access("/dev/console", F_OK));
        report("PrivateDevices", e == ENOENT && access("/dev/null", F_OK) == 0,
               "/dev/console: %s", e ? "absent" : "present");

        /* A device "closed" does not allow, reached outside /dev (PrivateDevices= hides /dev's). */
        fd = open(TUN_NODE, O_RDONLY | O_CLOEXEC);
        e = fd < 0 ? errno : 0;
        if (fd >= 0)
                close(fd);
        report("DevicePolicy", e == EPERM, "opening a node of /dev/net/tun: %s", err_name(e));

        fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        e = fd < 0 ? errno : 0;
        if (fd >= 0)
                close(fd);
        {
                int inet = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                int unx = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

                report("RestrictAddressFamilies", e == EAFNOSUPPORT && inet >= 0 && unx >= 0,
                       "AF_NETLINK: %s, AF_INET and AF_UNIX: %s", err_name(e),
                       inet >= 0 && unx >= 0 ? "allowed" : "refused");
                if (inet >= 0)
                        close(inet);
                if (unx >= 0)
                        close(unx);
        }

        e = ERRNO_OF(unshare(CLONE_NEWUSER));
        report("RestrictNamespaces", e != 0, "unshare(CLONE_NEWUSER): %s", err_name(e));

        e = ERRNO_OF(sched_setscheduler(0, SCHED_FIFO, &(struct sched_param){.sched_priority = 1}));
        if (e == 0)
                sched_setscheduler(0, SCHED_OTHER, &(struct sched_param){0});
        report("RestrictRealtime", e != 0, "SCHED_FIFO: %s", err_name(e));

        e = ERRNO_OF(personality(PER_LINUX32));
        if (e == 0)
                personality(PER_LINUX);
        report("LockPersonality", e != 0, "personality(PER_LINUX32): %s", err_name(e));

        p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
        e = p == MAP_FAILED ? errno : 0;
        if (p != MAP_FAILED)
                munmap(p, 4096);
        report("MemoryDenyWriteExecute", e == EPERM, "a writable and executable mapping: %s",
               err_name(e));

        /* Opening /proc/sys for writing fails with EACCES before the mount is looked at. */
        report("ProtectKernelTunables", mounted_read_only("/proc/sys") && mounted_read_only("/sys"),
               "/proc/sys and /sys mounted read-only: %s",
               mounted_read_only("/proc/sys") && mounted_read_only("/sys") ? "yes" : "no");

        e = ERRNO_OF(syscall(SYS_init_module, NULL, 0UL, ""));
        report("ProtectKernelModules", e == EPERM, "init_module: %s", err_name(e));

        e = ERRNO_OF(klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0));
        report("ProtectKernelLogs", e == EPERM && access("/dev/kmsg", F_OK) < 0,
               "syslog(SIZE_BUFFER): %s, /dev/kmsg: %s", err_name(e),
               access("/dev/kmsg", F_OK) < 0 ? "absent" : "present");

        e = ERRNO_OF(mkdir("/sys/fs/cgroup/lk-probe", 0700));
        if (e == 0)
                rmdir("/sys/fs/cgroup/lk-probe");
        report("ProtectControlGroups", e == EROFS, "mkdir in /sys/fs/cgroup: %s", err_name(e));

        e = ERRNO_OF(adjtimex(&tx));
        report("ProtectClock", e == EPERM, "adjtimex (only reading): %s", err_name(e));

        n = readlink("/proc/self/ns/uts", ns, sizeof(ns) - 1);
        ns[n > 0 ? n : 0] = '\0';
        e = ERRNO_OF(sethostname("lk-probe", 8));
        report("ProtectHostname", e != 0, "sethostname: %s; %s", err_name(e), ns);

        e = ERRNO_OF(access("/proc/1", F_OK));
        report("ProtectProc", e == ENOENT, "/proc/1: %s", e ? "invisible" : "visible");

        e = in_child(traceme);
        report("SystemCallFilter=@system-service", e == EPERM, "ptrace(PTRACE_TRACEME): %s",
               e > 128 ? "killed" : err_name(e));

        e = ERRNO_OF(setuid(getuid()));
        report("SystemCallFilter=~@privileged", e == EPERM, "setuid to our own uid: %s",
               err_name(e));
        report("SystemCallErrorNumber", e == EPERM,
               "a filtered call (setuid) failed with %s and the process lives on", err_name(e));

        /*
         * The setrlimit system call itself: glibc's setrlimit() uses prlimit64, which
         * @system-service allows and @resources does not name.
         */
        e = getrlimit(RLIMIT_NOFILE, &rl) < 0 ? errno
                                               : ERRNO_OF(syscall(SYS_setrlimit, RLIMIT_NOFILE, &rl));
        {
                int e_nice;

                errno = 0;
                prio = getpriority(PRIO_PROCESS, 0);
                e_nice = errno ? errno : ERRNO_OF(setpriority(PRIO_PROCESS, 0, prio));
                report("SystemCallFilter=~@resources", e == EPERM && e_nice == EPERM,
                       "setrlimit and setpriority to the same value: %s, %s", err_name(e),
                       err_name(e_nice));
        }

#if defined(__x86_64__)
        e = in_child(compat_getpid);
        report("SystemCallArchitectures", e != 0, "a 32-bit system call: %s",
               e == 0 ? "answered" : e > 128 ? "killed" : "refused");
#endif

        if (creds) {
                snprintf(path, sizeof(path), "%s/client_secret", creds);
                fd = open(path, O_RDONLY | O_CLOEXEC);
        } else
                fd = -1;
        e = ERRNO_OF(open("/etc/latchkey/client_secret", O_RDONLY | O_CLOEXEC));
        report("LoadCredential", fd >= 0 && e == EACCES,
               "the credential: %s; /etc/latchkey/client_secret: %s",
               fd >= 0 ? "readable" : "missing", err_name(e));
        if (fd >= 0)
                close(fd);

        /* KeyringMode=private: a session keyring of its own, the user's keyring not linked in. */
        {
                long ses = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
                long usr = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0);
                int32_t links[256];
                long len = ses > 0 ? syscall(SYS_keyctl, KEYCTL_READ, ses, links, sizeof(links)) : -1;
                bool linked = false;

                for (long i = 0; len > 0 && i < len / (long)sizeof(links[0]) &&
                                 i < (long)ELEMENTS(links); i++)
                        if (links[i] == usr)
                                linked = true;
                e = ses < 0 ? errno : 0;
                report("KeyringMode", ses > 0 && !linked,
                       "session keyring %ld (%s), the user keyring %s", ses, err_name(e),
                       linked ? "linked in" : "not in it");
                printf("probe: keyring %ld\n", ses);
        }

        /* RemoveIPC=: with --leave-ipc this segment stays, and must be gone once the unit
         * stops (the test looks); the run outside the sandbox removes its own. */
        shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
        if (shm >= 0 && !(argc > 1 && strcmp(argv[1], "--leave-ipc") == 0))
                shmctl(shm, IPC_RMID, NULL);
        else
                printf("probe: shm %d left\n", shm);
        /* So that the test can see it shared latchkeyd's namespaces. */
        for (size_t i = 0; i < 3; i++) {
                static const char *const names[] = {"mnt", "user", "uts"};

                snprintf(path, sizeof(path), "/proc/self/ns/%s", names[i]);
                n = readlink(path, ns, sizeof(ns) - 1);
                ns[n > 0 ? n : 0] = '\0';
                printf("probe: ns %s %s\n", names[i], ns);
        }
        printf("probe: done, %d open\n", open_count);
        return 0;
}
