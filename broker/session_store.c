/* SPDX-License-Identifier: MIT */
#include "broker/session_store.h"

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker/sealed_file.h"
#include "oidc/fileio.h"
#include "oidc/log.h"

/* The record's own version (the JSON inside the seal; a cleartext file of before is one). */
#define STORE_VERSION 1
/* A session file: tokens plus the id_token claims, sealed. */
#define STORE_FILE_MAX LK_SEALED_FILE_MAX

struct lk_store_loader;

struct lk_session_store {
        char *sessions_dir; /* state_dir/sessions: one file per session */
        struct lk_session_keys keys; /* session_key.h: keys[0] seals, all open */
        char boot_id[40];
        struct lk_store_loader *loader; /* NULL once all are read */
        unsigned n_older_elsewhere;     /* lk_store_hold_older_keys() */
        struct lk_store_reader reader;
};

int lk_session_check_id(const char *id, struct lk_error *e)
{
        size_t n = strlen(id);

        if (n == 0 || n > LK_SESSION_ID_MAX)
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "A session id has 1 to %d characters", LK_SESSION_ID_MAX);
        if (id[0] == '.')
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                    "A session id must not start with '.'");
        for (size_t i = 0; i < n; i++) {
                char c = id[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-'))
                        return lk_error_set(e, LK_ERR_INVALID_ARGUMENT,
                                            "A session id may hold only letters, digits, '.', "
                                            "'_' and '-'");
        }
        return 0;
}

void lk_session_record_clear(struct lk_session_record *r)
{
        lk_tokens_clear(&r->tokens);
        json_decref(r->claims);
        free(r->id);
        free(r->user);
        *r = (struct lk_session_record){0};
}

static const char *const secret_keys[] = {"access_token", "refresh_token", "id_token"};

/* jansson frees its strings without wiping; wipe the secret ones in place first. */
static void json_wipe_decref(json_t *o)
{
        if (!o)
                return;
        for (size_t i = 0; i < ELEMENTSOF(secret_keys); i++) {
                json_t *v = json_object_get(o, secret_keys[i]);
                if (json_is_string(v))
                        explicit_bzero((char *)json_string_value(v), json_string_length(v));
        }
        json_decref(o);
}

static void json_wipe_decrefp(json_t **o)
{
        json_wipe_decref(*o);
}

int lk_store_read_boot_id(char *buf, size_t size, struct lk_error *e)
{
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        int r;

        r = lk_read_file("/proc/sys/kernel/random/boot_id", 128, &s, &len, e);
        if (r < 0)
                return r;
        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' '))
                s[--len] = '\0';
        if (len == 0 || len >= size)
                return lk_error_set(e, LK_ERR_IO, "Unexpected boot id in /proc");
        memcpy(buf, s, len + 1);
        return 0;
}

static int check_dir(const char *dir, bool create, struct lk_error *e)
{
        struct stat st;

        if (lstat(dir, &st) < 0) {
                if (errno != ENOENT || !create)
                        return lk_error_set(e, LK_ERR_IO, "Cannot use state directory %s: %s", dir,
                                            strerror(errno));
                if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                        return lk_error_set(e, LK_ERR_IO, "Cannot create state directory %s: %s",
                                            dir, strerror(errno));
                if (lstat(dir, &st) < 0)
                        return lk_error_set(e, LK_ERR_IO, "Cannot use state directory %s: %s", dir,
                                            strerror(errno));
        }
        return lk_check_private(dir, &st, LK_PRIVATE_DIR | LK_PRIVATE_SECRET | LK_PRIVATE_OURS, e);
}

static void loader_free(struct lk_session_store *st);

void lk_store_free(struct lk_session_store *st)
{
        if (!st)
                return;
        loader_free(st);
        lk_session_keys_clear(&st->keys);
        free(st->sessions_dir);
        free(st);
}

const struct lk_session_keys *lk_store_keys(const struct lk_session_store *st)
{
        return &st->keys;
}

void lk_store_hold_older_keys(struct lk_session_store *st, unsigned n)
{
        st->n_older_elsewhere = n;
}

int lk_store_new(const char *state_dir, const char *boot_id, struct lk_session_store **ret,
                 struct lk_error *e)
{
        struct lk_session_store *st = calloc(1, sizeof(*st));
        int r;

        if (!st)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        if (asprintf(&st->sessions_dir, "%s/sessions", state_dir) < 0) {
                st->sessions_dir = NULL;
                lk_store_free(st);
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        }
        if (strlen(boot_id) >= sizeof(st->boot_id)) {
                lk_store_free(st);
                return lk_error_set(e, LK_ERR_INVALID_ARGUMENT, "The boot id is too long");
        }
        memcpy(st->boot_id, boot_id, strlen(boot_id) + 1);
        r = check_dir(state_dir, true, e);
        if (r == 0)
                r = check_dir(st->sessions_dir, true, e);
        if (r == 0)
                r = lk_session_keys_load(state_dir, &st->keys, e);
        if (r < 0) {
                lk_store_free(st);
                return r;
        }
        *ret = st;
        return 0;
}

static char *session_path(struct lk_session_store *st, const char *id, const char *suffix)
{
        char *p;

        if (asprintf(&p, "%s/%s%s", st->sessions_dir, id, suffix) < 0)
                return NULL;
        return p;
}

static int set_string(json_t *o, const char *key, const char *value)
{
        if (!value)
                return 0;
        return json_object_set_new(o, key, json_string(value));
}

int lk_store_save(struct lk_session_store *st, const struct lk_session_record *s,
                  struct lk_error *e)
{
        _cleanup_(json_wipe_decrefp) json_t *o = NULL;
        _cleanup_free_ char *path = NULL;
        uint8_t *sealed = NULL;
        size_t len, sealed_len = 0;
        char *buf;
        int r = 0;

        path = session_path(st, s->id, ".json");
        o = json_object();
        if (!path || !o)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        r |= json_object_set_new(o, "version", json_integer(STORE_VERSION));
        r |= set_string(o, "session_id", s->id);
        r |= set_string(o, "user", s->user);
        r |= json_object_set_new(o, "uid", json_integer(s->uid));
        r |= json_object_set_new(o, "opened_at", json_integer(s->opened_at));
        r |= set_string(o, "boot_id", st->boot_id);
        r |= json_object_set_new(o, "expired", json_boolean(s->expired));
        r |= set_string(o, "access_token", s->tokens.access_token);
        r |= set_string(o, "refresh_token", s->tokens.refresh_token);
        r |= set_string(o, "id_token", s->tokens.id_token);
        r |= set_string(o, "token_type", s->tokens.token_type);
        r |= set_string(o, "scope", s->tokens.scope);
        r |= json_object_set_new(o, "expires_at", json_integer(s->tokens.expires_at));
        if (s->claims)
                r |= json_object_set(o, "claims", s->claims);
        if (r != 0)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");

        len = json_dumpb(o, NULL, 0, JSON_COMPACT);
        if (len == 0 || len > STORE_FILE_MAX)
                return lk_error_set(e, LK_ERR_IO, "Session %s does not fit in a file", s->id);
        buf = malloc(len);
        if (!buf)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        len = json_dumpb(o, buf, len, JSON_COMPACT);
        r = lk_sealed_seal(&st->keys.keys[0], s->id, buf, len, &sealed, &sealed_len, e);
        explicit_bzero(buf, len);
        free(buf);
        if (r < 0)
                return r;
        r = lk_write_file_atomic(path, sealed, sealed_len, 0600, e);
        free(sealed);
        return r;
}

void lk_store_remove(struct lk_session_store *st, const char *session_id)
{
        _cleanup_free_ char *path = session_path(st, session_id, ".json");

        if (path && unlink(path) < 0 && errno != ENOENT)
                log_error("Cannot remove %s: %s", path, strerror(errno));
}

static int get_string(json_t *o, const char *key, bool required, char **ret)
{
        json_t *v = json_object_get(o, key);

        if (!v || json_is_null(v)) {
                if (required)
                        return -LK_ERR_INVALID_ARGUMENT;
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v))
                return -LK_ERR_INVALID_ARGUMENT;
        *ret = strdup(json_string_value(v));
        return *ret ? 0 : -LK_ERR_NOMEM;
}

static int get_int(json_t *o, const char *key, int64_t min, int64_t *ret)
{
        json_t *v = json_object_get(o, key);

        if (!json_is_integer(v) || json_integer_value(v) < min)
                return -LK_ERR_INVALID_ARGUMENT;
        *ret = json_integer_value(v);
        return 0;
}

/* 0 and a session; 1 when it belongs to another boot; < 0 when the file is unusable. */
static int parse_session(struct lk_session_store *st, const char *id, const char *text, size_t len,
                         struct lk_session_record *s, const char **why)
{
        _cleanup_(json_wipe_decrefp) json_t *o = NULL;
        _cleanup_free_ char *file_id = NULL, *boot_id = NULL;
        json_t *expired, *claims;
        int64_t version, uid = 0;
        int r = 0;

        o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(o))
                return *why = "not a JSON object", -LK_ERR_INVALID_ARGUMENT;
        if (get_int(o, "version", 0, &version) < 0 || version != STORE_VERSION)
                return *why = "unknown version", -LK_ERR_INVALID_ARGUMENT;
        if (get_string(o, "session_id", true, &file_id) < 0 || !streq(file_id, id))
                return *why = "session_id does not match the file name", -LK_ERR_INVALID_ARGUMENT;
        if (get_string(o, "boot_id", true, &boot_id) < 0)
                return *why = "no boot_id", -LK_ERR_INVALID_ARGUMENT;
        if (!streq(boot_id, st->boot_id))
                return 1;

        s->id = TAKE_PTR(file_id);
        expired = json_object_get(o, "expired");
        claims = json_object_get(o, "claims");
        s->expired = json_is_true(expired);
        r |= get_string(o, "user", true, &s->user);
        r |= get_int(o, "uid", 0, &uid);
        r |= get_int(o, "opened_at", 0, &s->opened_at);
        r |= get_string(o, "access_token", !s->expired, &s->tokens.access_token);
        r |= get_string(o, "refresh_token", false, &s->tokens.refresh_token);
        r |= get_string(o, "id_token", false, &s->tokens.id_token);
        r |= get_string(o, "token_type", !s->expired, &s->tokens.token_type);
        r |= get_string(o, "scope", false, &s->tokens.scope);
        r |= get_int(o, "expires_at", 0, &s->tokens.expires_at);
        if (r != 0 || !json_is_boolean(expired) || !json_is_object(claims) || uid > UINT32_MAX) {
                lk_session_record_clear(s);
                return *why = "a field is missing or of the wrong type", -LK_ERR_INVALID_ARGUMENT;
        }
        s->uid = (uid_t)uid;
        s->claims = json_incref(claims);
        return 0;
}

static void set_aside(struct lk_session_store *st, const char *name, const char *why)
{
        _cleanup_free_ char *from = NULL, *to = NULL;

        from = session_path(st, name, "");
        to = session_path(st, name, ".corrupt");
        if (!from || !to)
                return;
        if (rename(from, to) < 0)
                log_error("Session file %s is unusable (%s), and cannot be moved aside: %s", from,
                          why, strerror(errno));
        else
                log_warning("Session file %s is unusable (%s); moved it to %s, carrying on", from,
                            why, to);
}

/*
 * Reading the sessions of the last run. Start only opens the directory: 10,000 files took a
 * second to parse, and the first call should not wait for that. Once the bus name is ours
 * the broker reads them in slices between calls (lk_store_load_some); a call that names a
 * session reads its file at once (lk_store_load_id); calls that need them all wait for the
 * end (parked until lk_store_loading() is false). The files stay the only truth: no index
 * to fall out of step.
 * readdir() returns each entry that stays in the directory once; a session saved or closed
 * meanwhile is in memory or gone already, and a file that has gone is skipped.
 */
struct lk_store_loader {
        DIR *dir;
        unsigned n;
        bool remove_leftovers; /* the bus name is ours: no other broker writes here */
        unsigned n_leftovers;
        unsigned n_sealed;   /* files of before issue 22, in cleartext, sealed now */
        unsigned n_rewritten; /* files under an older key, rewritten under the current one */
        unsigned n_older;     /* files still under an older key (a rewrite failed) */
        unsigned n_unknown;   /* files under a key we do not have, left alone */
        unsigned kill_after;  /* the test hook (LATCHKEY_TEST_KILL_AFTER_REWRITES), or 0 */
};

static int64_t mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * The record of a file's bytes: opened with its key, or read as the cleartext JSON of before
 * issue 22. 0 and *ret (wipe it), with *ret_key the key that sealed it (NULL: cleartext); 1
 * when it is sealed under a key this broker does not have (*why says which); < 0 unusable.
 */
static int unseal(struct lk_session_store *st, const char *id, const char *text, size_t len,
                  char **ret, size_t *ret_len, const struct lk_session_key **ret_key,
                  const char **why)
{
        static char unknown[128];
        const struct lk_session_key *k;
        struct lk_sealed f;
        int r;

        if (!lk_sealed_is_sealed((const uint8_t *)text, len)) {
                size_t i = 0;

                while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t'))
                        i++;
                if (i == len || text[i] != '{')
                        return *why = "neither a sealed session file nor one of before",
                               -LK_ERR_INVALID_ARGUMENT;
                *ret = strndup(text, len);
                if (!*ret)
                        return *why = "out of memory", -LK_ERR_NOMEM;
                *ret_len = len;
                *ret_key = NULL;
                return 0;
        }
        r = lk_sealed_parse((const uint8_t *)text, len, &f, why);
        if (r < 0)
                return r;
        k = lk_session_keys_find(&st->keys, f.key_id);
        if (!k) {
                char id_hex[LK_SESSION_KEY_ID_HEX], cur[LK_SESSION_KEY_ID_HEX];

                lk_session_key_id_hex(f.key_id, id_hex);
                lk_session_key_id_hex(st->keys.keys[0].id, cur);
                snprintf(unknown, sizeof(unknown),
                         "sealed under key %s; this broker has key %s%s", id_hex, cur,
                         st->keys.n > 1 ? " and older ones" : "");
                *why = unknown;
                return 1;
        }
        r = lk_sealed_open(k, id, &f, ret, ret_len, why);
        if (r < 0)
                return r;
        *ret_key = k;
        return 0;
}

/* A record read under an older key, or in cleartext: sealed again under the current key. */
static void reseal(struct lk_session_store *st, const struct lk_session_record *s,
                   const struct lk_session_key *was)
{
        struct lk_store_loader *l = st->loader;
        struct lk_error e = {0};

        if (lk_store_save(st, s, &e) < 0) {
                log_error("Cannot seal session %s under the current key: %s; it stays as it is",
                          s->id, e.message);
                if (l)
                        l->n_older++;
                return;
        }
        if (!l)
                return;
        if (was)
                l->n_rewritten++;
        else
                l->n_sealed++;
        /* The test of an interrupted rotation: the broker dies here, as SIGKILL would find it. */
        if (l->kill_after > 0 && l->n_rewritten + l->n_sealed >= l->kill_after)
                raise(SIGKILL);
}

static void load_one(struct lk_session_store *st, const char *name)
{
        size_t n = strlen(name);
        _cleanup_free_ char *id = NULL, *path = NULL, *text = NULL;
        _cleanup_secret_ char *plain = NULL;
        const struct lk_session_key *key = NULL;
        struct lk_session_record s = {0};
        size_t plain_len = 0;
        struct lk_error e = {0};
        const char *why = NULL;
        size_t len = 0;
        int r;

        if (n <= 5 || !lk_endswith(name, ".json"))
                return; /* temporary files and files set aside */
        id = strndup(name, n - 5);
        path = session_path(st, name, "");
        if (!id || !path)
                return;
        if (lk_session_check_id(id, NULL) < 0) {
                set_aside(st, name, "not a session id");
                return;
        }
        /* Read already (asked for by id), or opened anew since the start: memory is newer. */
        if (st->reader.has(st->reader.userdata, id))
                return;
        r = lk_read_private_file(path, LK_PRIVATE_SECRET | LK_PRIVATE_OURS, STORE_FILE_MAX, &text,
                                 &len, NULL, &e);
        if (r < 0) {
                /* Closed since the directory was listed: nothing to read, nothing to log. */
                if (access(path, F_OK) < 0 && errno == ENOENT)
                        return;
                set_aside(st, name, e.message);
                return;
        }
        r = unseal(st, id, text, len, &plain, &plain_len, &key, &why);
        explicit_bzero(text, len);
        if (r > 0) {
                /* Another key's (a copied state dir, a lost key): useless here, and left as it
                 * is, so that restoring the key brings it back. */
                log_warning("Session file %s is %s; leaving it in place, unread", path, why);
                if (st->loader)
                        st->loader->n_unknown++;
                return;
        }
        if (r < 0) {
                set_aside(st, name, why);
                return;
        }
        r = parse_session(st, id, plain, plain_len, &s, &why);
        explicit_bzero(plain, plain_len);
        if (r < 0) {
                set_aside(st, name, why);
                return;
        }
        if (r > 0) {
                log_info("Dropping session %s of an earlier boot", id);
                lk_store_remove(st, id);
                return;
        }
        log_debug("Loaded session %s of %s (uid %u)", s.id, s.user, (unsigned)s.uid);
        if (key != &st->keys.keys[0])
                reseal(st, &s, key);
        st->reader.take(st->reader.userdata, &s);
        lk_session_record_clear(&s);
}

/*
 * A temporary file of lk_write_file_atomic(): "<id>.json.tmp.XXXXXX", the X's made by
 * mkostemp (letters and digits). Recognised by exactly that form, not by ".json.tmp."
 * anywhere: a session id may hold that text, and its session's file (ending in ".json")
 * would then have been deleted, tokens and all, at the next start.
 */
static bool is_temp_name(const char *name)
{
        static const char mark[] = ".json.tmp.";
        size_t n = strlen(name), m = sizeof(mark) - 1;
        _cleanup_free_ char *id = NULL;

        if (n <= m + 6)
                return false;
        for (size_t i = n - 6; i < n; i++)
                if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
                      (name[i] >= '0' && name[i] <= '9')))
                        return false;
        if (memcmp(name + n - 6 - m, mark, m) != 0)
                return false;
        id = strndup(name, n - 6 - m);
        return id && lk_session_check_id(id, NULL) == 0;
}

void lk_store_remove_leftovers(struct lk_session_store *st)
{
        DIR *d;
        struct dirent *de;
        unsigned n = 0;

        /* The loader does it as it passes: one walk over the directory, not two. */
        if (st->loader) {
                st->loader->remove_leftovers = true;
                return;
        }
        d = opendir(st->sessions_dir);
        if (!d)
                return;
        while ((de = readdir(d)))
                if (is_temp_name(de->d_name) && unlinkat(dirfd(d), de->d_name, 0) == 0)
                        n++;
        closedir(d);
        if (n > 0)
                log_info("Removed %u temporary session file(s) left by an interrupted write", n);
}

int lk_store_load_begin(struct lk_session_store *st, const struct lk_store_reader *reader,
                        struct lk_error *e)
{
        struct lk_store_loader *l;

        l = calloc(1, sizeof(*l));
        if (!l)
                return lk_error_set(e, LK_ERR_NOMEM, "Out of memory");
        l->dir = opendir(st->sessions_dir);
        if (!l->dir) {
                int r = lk_error_set(e, LK_ERR_IO, "Cannot read %s: %s", st->sessions_dir,
                                     strerror(errno));
                free(l);
                return r;
        }
        {
                const char *k = secure_getenv("LATCHKEY_TEST_KILL_AFTER_REWRITES");

                l->kill_after = k ? (unsigned)strtoul(k, NULL, 10) : 0;
        }
        st->loader = l;
        st->reader = *reader;
        return 0;
}

bool lk_store_loading(const struct lk_session_store *st)
{
        return st->loader != NULL;
}

static void loader_free(struct lk_session_store *st)
{
        if (!st->loader)
                return;
        closedir(st->loader->dir);
        free(st->loader);
        st->loader = NULL;
}

/* The load is done: what became of the keys. */
static void loaded_keys(struct lk_session_store *st, const struct lk_store_loader *l)
{
        char cur[LK_SESSION_KEY_ID_HEX];
        struct lk_error e = {0};

        lk_session_key_id_hex(st->keys.keys[0].id, cur);
        if (l->n_sealed > 0)
                lk_log(LOG_NOTICE, "Sealed %u session file(s) of before (cleartext) under key %s",
                       l->n_sealed, cur);
        if (l->n_rewritten > 0)
                lk_log(LOG_NOTICE, "Rewrote %u session file(s) under the new key %s",
                       l->n_rewritten, cur);
        if (l->n_unknown > 0)
                log_warning("%u session file(s) are sealed under keys this broker does not have; "
                            "they are left in place, unread",
                            l->n_unknown);
        if (l->n_older > 0)
                log_warning("%u session file(s) are still under an older key, which is kept",
                            l->n_older);
        else if (st->n_older_elsewhere > 0)
                log_warning("%u offline record(s) are still under an older key, which is kept",
                            st->n_older_elsewhere);
        else if (lk_session_keys_retire(&st->keys, &e) < 0)
                log_error("Cannot drop the older session keys: %s; they are kept", e.message);
}

bool lk_store_load_some(struct lk_session_store *st, int64_t budget_us)
{
        struct lk_store_loader *l = st->loader;
        int64_t end = mono_us() + budget_us;
        struct dirent *de;

        if (!l)
                return true;
        for (unsigned k = 0;; k++) {
                /* The clock every 16 files: one file takes tens of microseconds. */
                if (k % 16 == 15 && mono_us() >= end)
                        return false;
                errno = 0;
                de = readdir(l->dir);
                if (!de)
                        break;
                if (de->d_name[0] == '.')
                        continue;
                if (is_temp_name(de->d_name)) {
                        if (l->remove_leftovers && unlinkat(dirfd(l->dir), de->d_name, 0) == 0)
                                l->n_leftovers++;
                        continue;
                }
                load_one(st, de->d_name);
                l->n++;
        }
        if (l->n_leftovers > 0)
                log_info("Removed %u temporary session file(s) left by an interrupted write",
                         l->n_leftovers);
        if (errno != 0) {
                log_error("Cannot read all of %s: %s; some sessions may be missing",
                          st->sessions_dir, strerror(errno));
                l->n_older++; /* files not seen may be under an older key */
        }
        log_debug("Read %u session file(s)", l->n);
        loaded_keys(st, l);
        loader_free(st);
        return true;
}

int lk_store_load_all(struct lk_session_store *st, const struct lk_store_reader *reader,
                      struct lk_error *e)
{
        int r = lk_store_load_begin(st, reader, e);

        if (r < 0)
                return r;
        while (!lk_store_load_some(st, INT64_MAX / 2))
                ;
        return 0;
}

void lk_store_load_id(struct lk_session_store *st, const char *id)
{
        _cleanup_free_ char *name = NULL;

        if (!st->loader || lk_session_check_id(id, NULL) < 0)
                return;
        if (asprintf(&name, "%s.json", id) < 0)
                return;
        load_one(st, name);
}
