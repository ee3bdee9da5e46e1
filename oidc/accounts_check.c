/* SPDX-License-Identifier: MIT */
#include "oidc/accounts_check.h"

#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/text.h"
#include "oidc/usermap.h"

#define SHOWN_MAX 5 /* names listed in one problem */

static void say(lk_accounts_problem_fn problem, void *userdata, const char *fmt, ...)
        _printf_(3, 4);
static void say(lk_accounts_problem_fn problem, void *userdata, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        problem(userdata, msg);
}

/* The names of the passwd (or group) file's entries in the range, as one problem. */
static unsigned scan(const struct lk_config *c, const char *path, bool groups,
                     lk_accounts_problem_fn problem, void *userdata)
{
        char names[512] = "";
        unsigned n = 0;
        FILE *f = fopen(path, "re");

        if (!f)
                return 0;
        for (;;) {
                const char *name;
                unsigned long id;

                if (groups) {
                        struct group *g = fgetgrent(f);
                        if (!g)
                                break;
                        name = g->gr_name;
                        id = g->gr_gid;
                } else {
                        struct passwd *p = fgetpwent(f);
                        if (!p)
                                break;
                        name = p->pw_name;
                        id = p->pw_uid;
                }
                if (id < c->uid_min || id > c->uid_max)
                        continue;
                if (n < SHOWN_MAX) {
                        size_t len = strlen(names);
                        snprintf(names + len, sizeof(names) - len, "%s%s (%lu)", n ? ", " : "",
                                 LK_ESCAPED(name), id);
                }
                n++;
        }
        fclose(f);
        if (n > 0) {
                say(problem, userdata,
                    "[accounts] uid_min..uid_max (%u..%u) holds %u local %s of %s: %s%s; provider "
                    "accounts could get the same ids: pick another range",
                    c->uid_min, c->uid_max, n, groups ? "group(s)" : "user(s)", path, names,
                    n > SHOWN_MAX ? ", ..." : "");
                return 1;
        }
        return 0;
}

unsigned lk_accounts_check_host(const struct lk_config *c, const char *login_defs,
                                const char *passwd, const char *group,
                                lk_accounts_problem_fn problem, void *userdata)
{
        struct lk_error e = {0};
        uid_t lo = LK_UID_MIN_DEFAULT, hi = LK_UID_MAX_DEFAULT;
        unsigned n = 0;

        if (lk_login_defs_uid(login_defs, "UID_MIN", LK_UID_MIN_DEFAULT, &lo, &e) < 0 ||
            lk_login_defs_uid(login_defs, "UID_MAX", LK_UID_MAX_DEFAULT, &hi, &e) < 0) {
                say(problem, userdata, "%s", e.message);
                n++;
        }
        if (c->uid_min <= hi && lo <= c->uid_max) {
                say(problem, userdata,
                    "[accounts] uid_min..uid_max (%u..%u) meets UID_MIN..UID_MAX (%u..%u) of %s: "
                    "useradd could give a local user a provider account's uid",
                    c->uid_min, c->uid_max, (unsigned)lo, (unsigned)hi, login_defs);
                n++;
        }
        n += scan(c, passwd, false, problem, userdata);
        n += scan(c, group, true, problem, userdata);
        return n;
}
