/* SPDX-License-Identifier: MIT */
#include "pam_module/account.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <security/pam_ext.h>
#include <security/pam_modutil.h>

#include "base/accounts_conf.h"
#include "base/accounts_file.h"
#include "base/text.h"
#include "base/util.h"

#define DAY 86400

static void warn(void *userdata, const char *path, unsigned line, const char *what)
{
        pam_syslog(userdata, LOG_WARNING, "%s:%u: %s", path, line, what);
}

/* The cached account of user: 1 and its state, 0 when not cached, -1 when the cache is broken. */
static int cached(const char *user, uid_t *ret_uid, bool *ret_refused, int64_t *ret_last)
{
        struct lk_accounts_map m;
        struct lk_account_view v;
        struct stat st;
        void *base;
        int fd, r;

        fd = open(lk_accounts_path(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return errno == ENOENT ? 0 : -1;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 022) ||
            st.st_size <= 0 || (size_t)st.st_size > LK_ACCOUNTS_FILE_MAX) {
                close(fd);
                return -1;
        }
        base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (base == MAP_FAILED)
                return -1;
        r = lk_accounts_map_init(&m, base, (size_t)st.st_size);
        if (r == 0)
                r = lk_accounts_find_name(&m, user, &v);
        if (r == 0) {
                *ret_uid = v.uid;
                *ret_refused = v.refused;
                *ret_last = v.last_signin;
        }
        munmap(base, (size_t)st.st_size);
        return r == 0 ? 1 : r == -ENOENT ? 0 : -1;
}

int lkp_account_check(pam_handle_t *pamh, const char *config, const char *user)
{
        _cleanup_free_ struct lk_accounts_conf *c = NULL;
        char shown[LK_TEXT_QUOTE_SIZE];
        struct passwd *pw;
        bool refused = false;
        uid_t uid = 0;
        int64_t last = 0, now = (int64_t)time(NULL);
        int r;

        c = malloc(sizeof(*c));
        if (!c)
                return PAM_BUF_ERR;
        lk_accounts_conf_read(c, config, warn, pamh);
        lk_text_escape(user, shown, sizeof(shown));
        r = cached(user, &uid, &refused, &last);
        if (!c->enabled) {
                /*
                 * Provider accounts turned off: the broker keeps none any more, but those it
                 * kept still resolve (libnss_latchkey.so.2 answers from the cache), and nothing
                 * here checks them: none may log in, by a key or otherwise. A local account of
                 * that name (another uid) is not one of them.
                 */
                if (r <= 0)
                        return PAM_IGNORE;
                pw = pam_modutil_getpwnam(pamh, user);
                if (!pw || pw->pw_uid != uid)
                        return PAM_IGNORE;
                pam_syslog(pamh, LOG_NOTICE, "provider account %s: [accounts] nss = no "
                           "(provider accounts are off here), refusing", shown);
                pam_error(pamh, "Single sign-on accounts are turned off on this host.");
                return PAM_PERM_DENIED;
        }
        if (r < 0) {
                pam_syslog(pamh, LOG_ERR, "the accounts cache %s is broken; refusing provider "
                           "account %s", lk_accounts_path(), shown);
                pam_error(pamh, "Single sign-on accounts are unavailable on this host.");
                return PAM_AUTHINFO_UNAVAIL;
        }
        if (r == 0) {
                pw = pam_modutil_getpwnam(pamh, user);
                if (!pw || pw->pw_uid < c->uid_min || pw->pw_uid > c->uid_max)
                        return PAM_IGNORE; /* a local account */
                pam_syslog(pamh, LOG_NOTICE, "%s has never completed a single sign-on login "
                           "here, refusing", shown);
                pam_error(pamh, "Sign in with single sign-on first.");
                return PAM_USER_UNKNOWN;
        }
        if (refused) {
                pam_syslog(pamh, LOG_NOTICE, "provider account %s: the provider refused its "
                           "last refresh (disabled or deleted?), refusing", shown);
                pam_error(pamh, "Your organisation's sign-in no longer accepts this account; "
                          "sign in with single sign-on again.");
                return PAM_PERM_DENIED;
        }
        if (now - last > (int64_t)c->max_offline_days * DAY) {
                pam_syslog(pamh, LOG_NOTICE, "provider account %s has not signed in for more "
                           "than %u days (max_offline_days), refusing", shown,
                           c->max_offline_days);
                pam_error(pamh, "You have not signed in with single sign-on for %u days; do so "
                          "again.", c->max_offline_days);
                return PAM_ACCT_EXPIRED;
        }
        return PAM_SUCCESS;
}
