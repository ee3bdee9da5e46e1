/* SPDX-License-Identifier: MIT */
/*
 * The parts of the latchkey.conf loader, shared by oidc/config*.c and by no
 * one else (users include oidc/config.h). In the manner of systemd's
 * conf-parser: a table of keys (config.c) names for each key the function
 * that parses its value (config_values.c) and where the value goes; the
 * reader (config_reader.c) hands it each line of a text, config_files.c the
 * texts of the main file and its drop-ins; once all are read, the client
 * secret is fetched (config_secret.c) and the keys are checked against each
 * other (config_check.c). Every problem goes to one list (config_problems.c).
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base/text.h"
#include "base/util.h"
#include "oidc/config.h"

#define CONF_QUOTE_MAX 80 /* how much of a bad value a message quotes */
#define CONF_QUOTE_SIZE (CONF_QUOTE_MAX + 4)

/* Text from a file, for a message: escaped, cut near CONF_QUOTE_MAX bytes with "...". */
static inline const char *conf_quote(const char *in, char out[static CONF_QUOTE_SIZE])
{
        return lk_text_escape(in, out, CONF_QUOTE_SIZE);
}

/* A buffer read from a file, wiped whole (it may hold NUL bytes before its end), then freed. */
static inline void conf_wipe_free(char *buf, size_t len)
{
        if (!buf)
                return;
        explicit_bzero(buf, len);
        free(buf);
}

/* ---- the table ---- */

#define CONF_SECRET (1u << 0) /* never quoted, never checked for comments, wiped when replaced */

struct conf_key;

/* A type of value: how to parse one, and what frees the field (NULL: nothing to free). */
struct conf_type {
        /*
         * Parses value for key k and stores it at dst (freeing what was there),
         * or writes why it is refused into why (without the file, line and key:
         * the caller adds those). Returns 0, -LK_ERR_CONFIG or -LK_ERR_NOMEM.
         */
        int (*parse)(const struct conf_key *k, const char *value, void *dst, char *why,
                     size_t why_size);
        void (*free)(void *dst);
};

/* One name an enum key takes, and the value it stores (as an int). */
struct conf_enum {
        const char *name;
        int value;
};

struct conf_key {
        const char *section;
        const char *name;
        const struct conf_type *type;
        size_t offset;     /* of the field in struct lk_config */
        const char *def;   /* the default, parsed like a value; NULL: zero / NULL */
        unsigned flags;    /* CONF_* */
        unsigned min, max; /* uint: the range */
        const struct conf_enum *names; /* enum: the names, ended by { NULL } */
};

/* config_values.c: the types; "empty = unset" means an empty value stores NULL. */
extern const struct conf_type
        conf_type_string,     /* char *; empty = unset */
        conf_type_claim,      /* char *, a claim name; empty = unset */
        conf_type_path,       /* char *, an absolute path; empty = unset */
        conf_type_secret,     /* char *, taken verbatim, wiped when freed; empty = unset */
        conf_type_url,        /* char *, lk_url_check(); empty = unset */
        conf_type_issuer,     /* url, and no ?query (OpenID Connect Discovery §2) */
        conf_type_bool,       /* bool: yes/no, true/false, on/off, 1/0 */
        conf_type_uint,       /* unsigned, decimal digits, k->min..k->max */
        conf_type_words,      /* char **, words (lk_strv_split()); empty = NULL */
        conf_type_scopes,     /* char **, scope tokens, "openid" first, no repeats */
        conf_type_algorithms, /* unsigned, LK_ALG_* bits; never "none" */
        conf_type_enum,       /* int (an enum), one of k->names */
        conf_type_listen;     /* char *, ADDRESS:PORT (lk_listen_address_parse()); empty = unset */

/* config_keys.c: the table, its rows by name, and the sections latchkey.conf may hold. */
extern const struct conf_key conf_keys[];
extern const size_t conf_n_keys;
const struct conf_key *conf_key_by_name(const char *name);
bool conf_section_known(const char *name);
#define CONF_SECTIONS_HINT "(known: [provider], [users], [sessions], [callback], [pam])"

/* ---- the loader ---- */

/* One file read (or the text given to lk_config_load_string). */
struct conf_source {
        char *name;
        bool is_file; /* mode and uid are known */
        mode_t mode;
        uid_t uid;
};

/* Where a key was set last. */
struct conf_origin {
        size_t source; /* index into loader.sources; SIZE_MAX: never set */
        unsigned line;
        bool bad;      /* the last line setting it was refused */
};

struct conf_loader {
        struct lk_config *c;
        struct lk_config_problems problems;
        bool oom;

        struct conf_source *sources;
        size_t n_sources;

        struct conf_origin *origins; /* one per conf_keys[] row */
};

/* config_keys.c: one "key = value" line of source (line), in section (NULL: outside any). */
void conf_set_key(struct conf_loader *l, size_t source, unsigned line, const char *section,
                  const char *name, const char *value);

/* config_keys.c: where key name was set last. */
struct conf_origin *conf_origin_of(struct conf_loader *l, const char *name);

/* config_problems.c */
int conf_add_source(struct conf_loader *l, const char *name, size_t *ret);
void conf_problem(struct conf_loader *l, size_t source, unsigned line, const char *section,
                  const char *key, const char *fmt, ...) _printf_(6, 7);
void conf_vproblem(struct conf_loader *l, size_t source, unsigned line, const char *section,
                   const char *key, const char *fmt, va_list ap) _printf_(6, 0);

/* config_keys.c: a problem about a key as a whole: at the line that set it last, else the main file. */
void conf_key_problem(struct conf_loader *l, const char *name, const char *fmt, ...)
        _printf_(3, 4);

/* config_reader.c: parses one text (source), through inih; problems land in l. */
int conf_parse_text(struct conf_loader *l, size_t source, const char *text, size_t len);

/* config_files.c: path, then path.d/ *.conf. */
int conf_parse_file(struct conf_loader *l, const char *path);
int conf_parse_dropins(struct conf_loader *l, const char *path);

/* config_secret.c: fills c->client_secret from one of its three sources. */
void conf_load_secret(struct conf_loader *l);

/* config_check.c: the checks between keys, once every file is read. */
void conf_check_keys(struct conf_loader *l);
