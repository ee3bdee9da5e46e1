/* SPDX-License-Identifier: MIT */
#include "broker/offline.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/text.h"
#include "base/util.h"
#include "broker/sealed_file.h"
#include "oidc/fileio.h"
#include "oidc/log.h"

#define DAY 86400

static void migrate(struct lk_offline *o);

int lk_offline_init(struct lk_offline *o, const struct lk_config *c, const struct lk_clock *clock,
                    const char *state_dir, const struct lk_session_keys *keys,
                    struct lk_loop *loop, struct lk_error *e)
{
        *o = (struct lk_offline){.config = c, .clock = clock, .keys = keys};
        if (asprintf(&o->dir, "%s/offline", state_dir) < 0) {
                o->dir = NULL;
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        if (mkdir(o->dir, 0700) < 0 && errno != EEXIST)
                return lk_error_from_errno(e, errno, "Cannot create %s", o->dir);
        migrate(o);
        if (lk_pin_worker_new(loop, &o->worker) < 0)
                return lk_error_set(e, LK_ERR_IO, "Cannot start the PIN checks' threads");
        return 0;
}

void lk_offline_done(struct lk_offline *o)
{
        lk_pin_worker_free(o->worker);
        o->worker = NULL;
        free(o->dir);
        o->dir = NULL;
}

static int path_of(const struct lk_offline *o, uid_t uid, char *buf, size_t size)
{
        int n = snprintf(buf, size, "%s/%u", o->dir, (unsigned)uid);
        return n < 0 || (size_t)n >= size ? -LK_ERR_NOMEM : 0;
}

/* The name bound into a record's seal: no session id holds a '/'. */
static void seal_name_of(uid_t uid, char buf[32])
{
        snprintf(buf, 32, "offline/%u", (unsigned)uid);
}

/*
 * The record text of a file's bytes: opened with its key, or the cleartext of before issue 22.
 * 0 and *ret (wipe it), with *ret_key the key that sealed it (NULL: cleartext); 1 when it is sealed under a key
 * this broker does not have (logged); < 0 unusable, with *why (a constant string).
 */
static int unseal(const struct lk_offline *o, uid_t uid, const char *path, const char *data,
                  size_t len, char **ret, size_t *ret_len, const struct lk_session_key **ret_key,
                  const char **why)
{
        const struct lk_session_key *k;
        struct lk_sealed f;
        char name[32];
        int r;

        if (!lk_sealed_is_sealed((const uint8_t *)data, len)) {
                *ret = strndup(data, len);
                if (!*ret)
                        return *why = "out of memory", -LK_ERR_NOMEM;
                *ret_len = len;
                *ret_key = NULL;
                return 0;
        }
        r = lk_sealed_parse((const uint8_t *)data, len, &f, why);
        if (r < 0)
                return r;
        k = lk_session_keys_find(o->keys, f.key_id);
        if (!k) {
                char id_hex[LK_SESSION_KEY_ID_HEX], cur[LK_SESSION_KEY_ID_HEX];

                lk_session_key_id_hex(f.key_id, id_hex);
                lk_session_key_id_hex(o->keys->keys[0].id, cur);
                log_warning("The offline record %s is sealed under key %s; this broker has key "
                            "%s%s; leaving it in place, unread", path, id_hex, cur,
                            o->keys->n > 1 ? " and older ones" : "");
                return 1;
        }
        seal_name_of(uid, name);
        r = lk_sealed_open(k, name, &f, ret, ret_len, why);
        if (r < 0)
                return r;
        *ret_key = k;
        return 0;
}

/* Reads uid's record: 0 (*ret_key as unseal's), 1 (another key's), or < 0. */
static int read_record(struct lk_offline *o, uid_t uid, struct lk_pin_record *ret,
                       const struct lk_session_key **ret_key, struct lk_error *e)
{
        char path[4096];
        _cleanup_free_ char *text = NULL;
        _cleanup_secret_ char *plain = NULL;
        size_t len = 0, plain_len = 0;
        struct lk_error x = {0};
        const char *why = NULL;
        int r;

        if (path_of(o, uid, path, sizeof(path)) < 0)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        r = lk_read_private_file(path, LK_PRIVATE_SECRET | LK_PRIVATE_OURS,
                                 LK_PIN_RECORD_MAX + LK_SEALED_OVERHEAD, &text, &len, NULL, &x);
        if (r == -LK_ERR_NOT_FOUND)
                return lk_error_set(e, LK_ERR_NOT_FOUND, "No PIN record");
        if (r < 0) {
                log_error("Cannot read the offline record %s: %s", path, x.message);
                return lk_error_set(e, r, "Cannot read the offline record of uid %u",
                                    (unsigned)uid);
        }
        r = unseal(o, uid, path, text, len, &plain, &plain_len, ret_key, &why);
        explicit_bzero(text, len);
        if (r > 0) {
                lk_error_set(e, LK_ERR_IO, "The offline record of uid %u is sealed under a key "
                             "this broker does not have; sign in online and set the PIN again",
                             (unsigned)uid);
                return 1;
        }
        if (r < 0)
                r = lk_error_set(&x, LK_ERR_IO, "%s", why);
        else
                r = lk_pin_record_parse(plain, plain_len, ret, &x);
        if (plain)
                explicit_bzero(plain, plain_len);
        if (r == 0 && ret->uid != uid)
                r = lk_error_set(&x, LK_ERR_IO, "it is for uid %u", (unsigned)ret->uid);
        if (r < 0) {
                log_error("Ignoring the offline record %s: %s", path, x.message);
                return lk_error_set(e, LK_ERR_IO, "The offline record of uid %u is broken; sign "
                                    "in online and set the PIN again", (unsigned)uid);
        }
        return 0;
}

int lk_offline_load(struct lk_offline *o, uid_t uid, struct lk_pin_record *ret,
                    struct lk_error *e)
{
        const struct lk_session_key *key = NULL;
        struct lk_error x = {0};
        int r = read_record(o, uid, ret, &key, e);

        if (r > 0)
                return -LK_ERR_IO;
        /* In cleartext (of before) or under an older key: sealed under the current one now. */
        if (r == 0 && key != &o->keys->keys[0] && lk_offline_save(o, ret, &x) < 0)
                log_error("Cannot seal the offline record of uid %u under the current key: %s; "
                          "it stays as it is", (unsigned)uid, x.message);
        return r;
}

int lk_offline_save(struct lk_offline *o, const struct lk_pin_record *r, struct lk_error *e)
{
        char path[4096], text[LK_PIN_RECORD_MAX], name[32];
        _cleanup_free_ uint8_t *sealed = NULL;
        size_t sealed_len = 0;
        int n, k;

        if (path_of(o, r->uid, path, sizeof(path)) < 0)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        n = lk_pin_record_format(r, text, sizeof(text));
        if (n < 0)
                return lk_error_set(e, LK_ERR_IO, "The offline record does not fit");
        seal_name_of(r->uid, name);
        k = lk_sealed_seal(&o->keys->keys[0], name, text, (size_t)n, &sealed, &sealed_len, e);
        explicit_bzero(text, sizeof(text));
        if (k < 0)
                return k;
        return lk_write_file_atomic(path, sealed, sealed_len, 0600, e);
}

/* A file name of the offline dir that is a uid ("1000"), not a temporary file or another. */
static bool uid_of_name(const char *name, uid_t *ret)
{
        uint64_t v = 0;

        if (!name[0] || strlen(name) > 10)
                return false;
        for (const char *p = name; *p; p++) {
                if (*p < '0' || *p > '9')
                        return false;
                v = v * 10 + (uint64_t)(*p - '0');
        }
        if ((name[0] == '0' && name[1]) || v > UINT32_MAX - 1)
                return false;
        *ret = (uid_t)v;
        return true;
}

/* Every record in cleartext (of before) or under an older key: sealed under keys[0]. */
static void migrate(struct lk_offline *o)
{
        unsigned n_sealed = 0, n_rewritten = 0, n_unknown = 0;
        char cur[LK_SESSION_KEY_ID_HEX];
        struct dirent *de;
        DIR *d = opendir(o->dir);

        o->n_older = 0;
        if (!d) {
                log_error("Cannot read %s: %s; the older session keys are kept", o->dir,
                          strerror(errno));
                o->n_older = 1;
                return;
        }
        while ((errno = 0, de = readdir(d))) {
                struct lk_pin_record r;
                const struct lk_session_key *key = NULL;
                struct lk_error e = {0};
                uid_t uid;
                int k;

                if (!uid_of_name(de->d_name, &uid))
                        continue;
                k = read_record(o, uid, &r, &key, &e);
                if (k > 0)
                        n_unknown++;
                if (k != 0 || key == &o->keys->keys[0])
                        continue;
                if (lk_offline_save(o, &r, &e) < 0) {
                        log_error("Cannot seal the offline record of uid %u under the current "
                                  "key: %s; it stays as it is", (unsigned)uid, e.message);
                        o->n_older++;
                } else if (key)
                        n_rewritten++;
                else
                        n_sealed++;
                explicit_bzero(&r, sizeof(r));
        }
        if (errno != 0) {
                log_error("Cannot read all of %s: %s; the older session keys are kept", o->dir,
                          strerror(errno));
                o->n_older++;
        }
        closedir(d);
        lk_session_key_id_hex(o->keys->keys[0].id, cur);
        if (n_sealed > 0)
                lk_log(LOG_NOTICE, "Sealed %u offline record(s) of before (cleartext) under key %s",
                       n_sealed, cur);
        if (n_rewritten > 0)
                lk_log(LOG_NOTICE, "Rewrote %u offline record(s) under the new key %s",
                       n_rewritten, cur);
        if (n_unknown > 0)
                log_warning("%u offline record(s) are sealed under keys this broker does not "
                            "have; they are left in place, unread", n_unknown);
}

void lk_offline_note_online(struct lk_offline *o, uid_t uid, const char *user)
{
        struct lk_pin_record r;
        struct lk_error e = {0};

        if (lk_offline_load(o, uid, &r, &e) < 0)
                return;
        r.online_at = o->clock->wall_s();
        r.failures = 0;
        r.locked_until = 0;
        r.disabled = false;
        snprintf(r.user, sizeof(r.user), "%s", user);
        if (lk_offline_save(o, &r, &e) < 0)
                log_error("Cannot renew the offline record of uid %u: %s", (unsigned)uid,
                          e.message);
        explicit_bzero(&r, sizeof(r));
}

void lk_offline_note_refused(struct lk_offline *o, uid_t uid)
{
        struct lk_pin_record r;
        struct lk_error e = {0};

        if (lk_offline_load(o, uid, &r, &e) < 0 || r.disabled)
                return;
        r.disabled = true;
        if (lk_offline_save(o, &r, &e) < 0)
                log_error("Cannot mark the offline record of uid %u disabled: %s",
                          (unsigned)uid, e.message);
        else
                lk_log_auth(LOG_NOTICE, "The provider refused uid %u's refresh: no offline PIN "
                            "until the next online sign-in", (unsigned)uid);
        explicit_bzero(&r, sizeof(r));
}

static int64_t until_of(const struct lk_offline *o, const struct lk_pin_record *r)
{
        return r->online_at + (int64_t)o->config->max_offline_days * DAY;
}

void lk_offline_state(struct lk_offline *o, uid_t uid, struct lk_offline_state *ret)
{
        struct lk_offline_state s = {.enabled = o->config->offline_pin, .state = "off"};
        struct lk_pin_record r;
        struct lk_error e = {0};
        int64_t now = o->clock->wall_s();

        if (s.enabled && lk_offline_load(o, uid, &r, &e) == 0 && r.hash[0]) {
                s.pin = true;
                s.until = until_of(o, &r);
                s.failures = r.failures;
                s.locked_until = r.locked_until > now ? r.locked_until : 0;
                if (r.disabled)
                        s.state = "disabled";
                else if (now > s.until)
                        s.state = "expired";
                else if (r.failures >= o->config->max_failures)
                        s.state = "spent";
                else if (s.locked_until)
                        s.state = "locked";
                else
                        s.state = "ready";
                explicit_bzero(&r, sizeof(r));
        } else if (s.enabled)
                s.state = "none";
        *ret = s;
}

int lk_offline_may_check(struct lk_offline *o, uid_t uid, struct lk_pin_record *ret,
                         struct lk_error *e)
{
        struct lk_pin_record r;
        int64_t now = o->clock->wall_s();
        char date[64];
        int k;

        if (!o->config->offline_pin)
                return lk_error_set(e, LK_ERR_NOT_ALLOWED, "Offline PINs are off here ([offline] "
                                    "pin)");
        k = lk_offline_load(o, uid, &r, e);
        if (k == -LK_ERR_NOT_FOUND || (k == 0 && !r.hash[0])) {
                lk_error_clear(e);
                return lk_error_set(e, LK_ERR_NOT_ALLOWED, "No PIN is set for this account; "
                                    "sign in online and set one");
        }
        if (k < 0)
                return k;
        if (r.disabled)
                k = lk_error_set(e, LK_ERR_ACCOUNT_DISABLED, "Account disabled at the provider "
                                 "(it refused the last refresh): sign in online");
        else if (now > until_of(o, &r))
                k = lk_error_set(e, LK_ERR_TOKEN_EXPIRED, "Your sign-in has expired: sign in "
                                 "again (the PIN worked until %s)",
                                 lk_text_utc_date(until_of(o, &r), date, sizeof(date)));
        else if (r.failures >= o->config->max_failures)
                k = lk_error_set(e, LK_ERR_TOKEN_EXPIRED, "Too many wrong PINs: your sign-in has "
                                 "expired: sign in again");
        else if (r.locked_until > now)
                k = lk_error_set(e, LK_ERR_TOO_MANY_REQUESTS, "Too many wrong PINs: try again "
                                 "in %lld s", (long long)(r.locked_until - now));
        if (k == 0)
                *ret = r;
        explicit_bzero(&r, sizeof(r));
        return k;
}

int lk_offline_checked(struct lk_offline *o, uid_t uid, bool right, struct lk_error *e)
{
        struct lk_pin_record r;
        struct lk_error x = {0};
        int64_t now = o->clock->wall_s();
        unsigned after = o->config->lockout_after, left;
        int k;

        /* Read again: the record may have changed while Argon2id ran. */
        k = lk_offline_load(o, uid, &r, e);
        if (k < 0)
                return k;
        if (right) {
                r.failures = 0;
                r.locked_until = 0;
        } else {
                r.failures++;
                if (r.failures >= after) {
                        unsigned shift = r.failures - after;
                        int64_t delay = shift >= 20 ? LK_PIN_DELAY_MAX
                                                    : (int64_t)o->config->lockout_delay << shift;
                        r.locked_until = now + (delay > LK_PIN_DELAY_MAX ? LK_PIN_DELAY_MAX
                                                                         : delay);
                }
        }
        if (lk_offline_save(o, &r, &x) < 0) {
                /* A wrong PIN that cannot be counted is not answered as one that was. */
                log_error("Cannot save the offline record of uid %u: %s", (unsigned)uid,
                          x.message);
                explicit_bzero(&r, sizeof(r));
                return lk_error_set(e, LK_ERR_IO, "Cannot record the PIN check");
        }
        if (right) {
                lk_log_auth(LOG_INFO, "Offline PIN accepted for uid %u", (unsigned)uid);
                explicit_bzero(&r, sizeof(r));
                return 0;
        }
        lk_log_auth(LOG_NOTICE, "Wrong offline PIN for uid %u (%u in a row)", (unsigned)uid,
                    r.failures);
        left = r.failures < o->config->max_failures ? o->config->max_failures - r.failures : 0;
        if (left == 0)
                k = lk_error_set(e, LK_ERR_ACCESS_DENIED, "Wrong PIN; no tries left: sign in "
                                 "online");
        else if (r.locked_until > now)
                k = lk_error_set(e, LK_ERR_ACCESS_DENIED, "Wrong PIN; next try in %lld s",
                                 (long long)(r.locked_until - now));
        else
                k = lk_error_set(e, LK_ERR_ACCESS_DENIED, "Wrong PIN");
        explicit_bzero(&r, sizeof(r));
        return k;
}

int lk_offline_check_new_pin(const struct lk_offline *o, const char *pin, struct lk_error *e)
{
        size_t n = strlen(pin);

        if (n < o->config->pin_min_length)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "The PIN must be at least %u "
                                    "characters long", o->config->pin_min_length);
        return 0;
}

int lk_offline_store_hash(struct lk_offline *o, uid_t uid, const char *user, int64_t online_at,
                          const char *hash, struct lk_error *e)
{
        struct lk_pin_record r = {0};
        struct lk_error x = {0};
        int k;

        k = lk_offline_load(o, uid, &r, &x);
        if (k < 0) {
                if (online_at == 0)
                        return lk_error_set(e, LK_ERR_NOT_ALLOWED, "No online sign-in of this "
                                            "account is known; sign in online first");
                r = (struct lk_pin_record){.uid = uid};
        }
        if (online_at) {
                r.online_at = online_at;
                r.disabled = false;
        }
        r.failures = 0;
        r.locked_until = 0;
        snprintf(r.user, sizeof(r.user), "%s", user);
        if (hash)
                snprintf(r.hash, sizeof(r.hash), "%s", hash);
        else
                r.hash[0] = 0;
        k = lk_offline_save(o, &r, e);
        explicit_bzero(&r, sizeof(r));
        if (k == 0)
                lk_log_auth(LOG_INFO, "Offline PIN of uid %u %s", (unsigned)uid,
                            hash ? "set" : "removed");
        return k;
}

void lk_offline_params(const struct lk_offline *o, struct lk_pin_params *ret)
{
        *ret = (struct lk_pin_params){.memory_kib = o->config->argon2_memory,
                                      .time = o->config->argon2_time,
                                      .lanes = o->config->argon2_parallelism};
}
