/* SPDX-License-Identifier: MIT */
/*
 * The line reader: inih splits the lines; everything else is ours. We feed
 * inih through our own reader (ini_parse_stream), one line per call, so we
 * always know the line number (Debian's inih is built without
 * INI_HANDLER_LINENO), can refuse over-long lines instead of letting inih cut
 * them in two, and can wipe inih's line buffer at the end, since a line may
 * hold the client secret.
 *
 * Comments: as SPEC §3 says, a comment is a whole line starting with '#' or
 * ';'. Inline comments are off, so "a ; b" is never silently cut to "a"
 * (that would truncate a client secret holding " ;"); conf_set_key() refuses
 * a value that looks like one.
 */
#include <ini.h>
#include <string.h>

#include "base/ini_line.h"
#include "oidc/config_loader.h"

#define CONFIG_LINE_MAX 4096 /* one line, without its newline */

/* Our reader's view of the text being read */
struct reader {
        struct conf_loader *l;
        size_t source;
        const char *pos, *end;
        unsigned line;
        const char *line_start;
        size_t line_len;
        bool line_done; /* inih called the handler for it, or we judged it already */
        char section[64];
        bool have_section; /* a known [section] is open */
        bool skip_keys;    /* after an unknown or broken section header */
};

/*
 * Judges a line inih did not hand to the handler, with the grammar inih reads
 * (lk_ini_line()): a blank line, a comment, a [section] header, or else a
 * syntax error. Called before the next line is read, so a header is taken
 * before the keys under it.
 */
static void finish_line(struct reader *rd)
{
        struct conf_loader *l = rd->l;
        struct lk_ini_line il;

        if (rd->line == 0 || rd->line_done)
                return;
        rd->line_done = true;

        lk_ini_line(rd->line_start, rd->line_len, rd->line == 1, &il);
        switch (il.kind) {
        case LK_INI_NOTHING:
                return;
        case LK_INI_UNCLOSED:
                conf_problem(l, rd->source, rd->line, NULL, NULL,
                             "section header without a closing ']'");
                rd->skip_keys = true;
                rd->have_section = false;
                return;
        case LK_INI_SECTION:
                break;
        default:
                conf_problem(l, rd->source, rd->line, rd->have_section ? rd->section : NULL, NULL,
                             "expected 'key = value', a [section] header or a comment");
                return;
        }

        /* Text after ']' is reported, but the section is still taken: inih does. */
        if (il.trailing)
                conf_problem(l, rd->source, rd->line, NULL, NULL, "unexpected text after ']'");

        rd->have_section = false;
        rd->skip_keys = true;
        if (il.name_len < sizeof(rd->section)) {
                memcpy(rd->section, il.name, il.name_len);
                rd->section[il.name_len] = 0;
                if (conf_section_known(rd->section)) {
                        rd->have_section = true;
                        rd->skip_keys = false;
                }
        }
        if (!rd->have_section) {
                char name[48], shown[64];
                size_t len = il.name_len;

                if (len >= sizeof(name))
                        len = sizeof(name) - 1;
                memcpy(name, il.name, len);
                name[len] = 0;
                lk_text_escape(name, shown, 44);
                conf_problem(l, rd->source, rd->line, shown, NULL,
                             "unknown section " CONF_SECTIONS_HINT);
        }
}

/* inih's ini_reader: one line per call, like fgets, from rd->pos. */
static char *read_line(char *str, int num, void *stream)
{
        struct reader *rd = stream;
        const char *nl;
        size_t len;

        finish_line(rd);

        if (rd->pos >= rd->end) {
                /* inih's line buffer held every line, the client secret's too */
                explicit_bzero(str, (size_t)num);
                return NULL;
        }
        nl = memchr(rd->pos, '\n', (size_t)(rd->end - rd->pos));
        len = nl ? (size_t)(nl - rd->pos) : (size_t)(rd->end - rd->pos);
        rd->line++;
        rd->line_start = rd->pos;
        rd->line_len = len;
        rd->line_done = false;
        rd->pos += len + (nl ? 1 : 0);

        if (len + 3 > (size_t)num || len > CONFIG_LINE_MAX) {
                conf_problem(rd->l, rd->source, rd->line, NULL, NULL,
                             "line is longer than %d bytes",
                             num - 3 < CONFIG_LINE_MAX ? num - 3 : CONFIG_LINE_MAX);
                rd->line_done = true;
                memcpy(str, "#\n", 3); /* inih skips it */
                return str;
        }
        if (memchr(rd->line_start, 0, len)) {
                conf_problem(rd->l, rd->source, rd->line, NULL, NULL, "line holds a NUL byte");
                rd->line_done = true;
                memcpy(str, "#\n", 3);
                return str;
        }
        memcpy(str, rd->line_start, len);
        str[len] = '\n';
        str[len + 1] = 0;
        return str;
}

static int handle_key(void *user, const char *section, const char *name, const char *value)
{
        struct reader *rd = user;

        rd->line_done = true;
        /* Our reader tracks sections itself: inih cuts long names and keeps the old
         * section after a broken header. */
        (void)section;
        if (rd->skip_keys)
                return 1; /* the header was reported */
        conf_set_key(rd->l, rd->source, rd->line, rd->have_section ? rd->section : NULL, name,
                     value);
        return 1;
}

static void ini_setup(void)
{
#if HAVE_INI_RUNTIME_OPTIONS
        /* Debian builds inih with INI_RUNTIME_OPTIONS; these are process-wide, and
         * we are the only user of inih in the process. */
        static char comment_prefixes[] = "#;";

        ini_allow_multiline = false; /* an indented "key = value" is a key, not a continuation */
        ini_allow_bom = true;
        ini_start_comment_prefixes = comment_prefixes;
        ini_allow_inline_comments = false;
        ini_use_stack = true;
        ini_max_line = CONFIG_LINE_MAX + 3; /* line, "\r\n" or "\n", NUL */
        ini_stop_on_first_error = false;
        ini_allow_no_value = false;
#endif
}

int conf_parse_text(struct conf_loader *l, size_t source, const char *text, size_t len)
{
        struct reader rd = {
                .l = l,
                .source = source,
                .pos = text,
                .end = text + len,
                .line_done = true,
        };
        int r;

        ini_setup();
        r = ini_parse_stream(read_line, &rd, handle_key, &rd);
        if (r == -2)
                l->oom = true;
        /* r > 0 is the first line inih disliked; finish_line() reported every one of them. */
        return l->oom ? -LK_ERR_NOMEM : 0;
}
