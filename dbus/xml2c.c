/* SPDX-License-Identifier: MIT */
/*
 * Build helper, two jobs on the interface XML (dbus/org.latchkey.Broker1.xml), its one source:
 *   xml2c INPUT OUTPUT NAME   the XML as a C string, so latchkeyd answers Introspect with it;
 *   xml2c --wire INPUT OUTPUT the wire header every part includes (dbus/broker_wire.h): the bus
 *                             name, object path, interface, error names, method names and
 *                             signatures, and the caps of the org.latchkey.* annotations.
 * The XML is the introspection format: a few elements, attributes in double quotes, comments.
 * This reads only that (it is our own file); anything it does not expect stops the build.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANNOTATION_NS "org.latchkey."

static int embed(FILE *in, FILE *out, const char *input, const char *name)
{
        int c;

        fprintf(out,
                "/* Generated from %s; do not edit. */\n#pragma once\n"
                "static const char %s[] = {\n",
                input, name);
        while ((c = fgetc(in)) != EOF)
                fprintf(out, "0x%02x,%s", c, c == '\n' ? "\n" : "");
        fprintf(out, "0x00};\n");
        return ferror(in) ? 1 : 0;
}

static void die(const char *what, const char *detail)
{
        fprintf(stderr, "xml2c: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
        exit(1);
}

/* The value of attribute attr in the tag text (NUL-terminated, without '<' '>'), malloc'd. */
static char *attribute(const char *tag, const char *attr)
{
        size_t n = strlen(attr);

        for (const char *p = tag; (p = strstr(p, attr)); p += n) {
                const char *end;
                char *v;

                if (p == tag || !isspace((unsigned char)p[-1]) || strncmp(p + n, "=\"", 2) != 0)
                        continue;
                p += n + 2;
                end = strchr(p, '"');
                if (!end)
                        die("unterminated attribute", attr);
                v = strndup(p, (size_t)(end - p));
                if (!v)
                        die("out of memory", NULL);
                return v;
        }
        return NULL;
}

/* "BeginLogin" -> "BEGIN_LOGIN", "login_id" -> "LOGIN_ID", "Broker1" -> "BROKER1". */
static void upper_snake(const char *s, char *buf, size_t size)
{
        size_t o = 0;

        for (size_t i = 0; s[i]; i++) {
                if (o + 3 > size)
                        die("name too long", s);
                if (isupper((unsigned char)s[i]) && i > 0 && islower((unsigned char)s[i - 1]))
                        buf[o++] = '_';
                if (!isalnum((unsigned char)s[i]) && s[i] != '_')
                        die("unexpected character in a name", s);
                buf[o++] = (char)toupper((unsigned char)s[i]);
        }
        buf[o] = '\0';
}

/* Digits only: a cap is a plain number of bytes. */
static const char *number(const char *v)
{
        if (!v || !*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 9)
                die("a cap must be a number of bytes", v);
        return v;
}

struct state {
        FILE *out;
        char *interface;
        char member[128];     /* the method, signal or property we are in; "" outside */
        char kind[16];        /* "METHOD", "SIGNAL", "PROPERTY" */
        char in_sig[256], out_sig[256];
        char arg[128];        /* the argument we are in; "" outside */
        bool arg_open;
};

static void append_sig(char *sig, size_t size, const char *type)
{
        size_t n = strlen(sig), t = strlen(type);

        if (n + t + 1 > size)
                die("signature too long", type);
        memcpy(sig + n, type, t + 1);
}

static void close_member(struct state *s)
{
        char up[128];

        if (!*s->member)
                return;
        upper_snake(s->member, up, sizeof(up));
        fprintf(s->out, "#define LK_BUS_%s_%s \"%s\"\n", s->kind, up, s->member);
        if (strcmp(s->kind, "METHOD") == 0)
                fprintf(s->out, "#define LK_BUS_%s_IN \"%s\"\n#define LK_BUS_%s_OUT \"%s\"\n", up,
                        s->in_sig, up, s->out_sig);
        s->member[0] = s->in_sig[0] = s->out_sig[0] = '\0';
}

/* An org.latchkey.* annotation, on the interface, or on an argument or property. */
static void annotation(struct state *s, const char *name, const char *value)
{
        char up[128];

        if (!name || !value)
                die("an annotation needs a name and a value", name);
        if (strncmp(name, ANNOTATION_NS, strlen(ANNOTATION_NS)) != 0)
                return; /* someone else's */
        name += strlen(ANNOTATION_NS);
        if (strcmp(name, "BusName") == 0 && !*s->member)
                fprintf(s->out, "#define LK_BUS_NAME \"%s\"\n", value);
        else if (strcmp(name, "ObjectPath") == 0 && !*s->member)
                fprintf(s->out, "#define LK_BUS_PATH \"%s\"\n", value);
        else if (strcmp(name, "Errors") == 0 && !*s->member) {
                for (const char *e = value; *(e += strspn(e, " \t\n"));) {
                        size_t n = strcspn(e, " \t\n");
                        char one[128];

                        snprintf(one, sizeof(one), "%.*s", (int)n, e);
                        upper_snake(one, up, sizeof(up));
                        fprintf(s->out, "#define LK_BUS_ERROR_%s LK_BUS_ERROR_PREFIX \"%s\"\n", up,
                                one);
                        e += n;
                }
        } else if (strcmp(name, "MaxBytes") == 0 && !*s->member)
                fprintf(s->out, "#define LK_ARG_ID_MAX %s\n", number(value));
        else if (strcmp(name, "MaxBytes") == 0 && (s->arg_open || strcmp(s->kind, "PROPERTY") == 0)) {
                upper_snake(s->arg_open ? s->arg : s->member, up, sizeof(up));
                /* One name, one cap: C allows the same define twice only with the same value. */
                fprintf(s->out, "#define LK_ARG_%s_MAX %s\n", up, number(value));
        } else
                die("unknown or misplaced annotation", name - strlen(ANNOTATION_NS));
}

static void element(struct state *s, char *tag)
{
        bool closing = tag[0] == '/';
        bool empty = tag[strlen(tag) - 1] == '/';
        char *el = tag + closing, *name, *end;

        end = el + strcspn(el, " \t\r\n/");
        if (empty)
                tag[strlen(tag) - 1] = '\0';
        name = attribute(tag, "name");
        if (strncmp(el, "arg", 3) == 0 && end - el == 3) {
                if (closing) {
                        s->arg_open = false;
                } else {
                        char *type = attribute(tag, "type"), *dir = attribute(tag, "direction");

                        if (!type)
                                die("an argument without a type", name);
                        if (strcmp(s->kind, "METHOD") == 0)
                                append_sig(dir && strcmp(dir, "out") == 0 ? s->out_sig : s->in_sig,
                                           sizeof(s->in_sig), type);
                        snprintf(s->arg, sizeof(s->arg), "%s", name ? name : "");
                        s->arg_open = !empty;
                        free(type);
                        free(dir);
                }
        } else if ((strncmp(el, "method", 6) == 0 && end - el == 6) ||
                   (strncmp(el, "signal", 6) == 0 && end - el == 6) ||
                   (strncmp(el, "property", 8) == 0 && end - el == 8)) {
                if (closing) {
                        close_member(s);
                } else {
                        if (!name)
                                die("a member without a name", tag);
                        snprintf(s->kind, sizeof(s->kind), "%s",
                                 el[0] == 'm' ? "METHOD" : el[0] == 's' ? "SIGNAL" : "PROPERTY");
                        snprintf(s->member, sizeof(s->member), "%s", name);
                        if (empty)
                                close_member(s);
                }
        } else if (strncmp(el, "interface", 9) == 0 && end - el == 9 && !closing) {
                if (s->interface || !name)
                        die("exactly one named interface expected", name);
                s->interface = strdup(name);
                fprintf(s->out, "#define LK_BUS_INTERFACE \"%s\"\n"
                        "#define LK_BUS_ERROR_PREFIX LK_BUS_INTERFACE \".Error.\"\n", name);
        } else if (strncmp(el, "annotation", 10) == 0 && end - el == 10) {
                if (!closing) {
                        char *value = attribute(tag, "value");

                        annotation(s, name, value);
                        free(value);
                }
        }
        free(name);
}

static int wire(FILE *in, FILE *out, const char *input)
{
        struct state s = { .out = out };
        char *text = NULL, *p;
        size_t len = 0;

        if (getdelim(&text, &len, '\0', in) < 0)
                die("cannot read", input);
        fprintf(out, "/* Generated from %s by xml2c --wire; do not edit. */\n#pragma once\n\n",
                input);
        for (p = text; (p = strchr(p, '<'));) {
                char *end;

                if (strncmp(p, "<!--", 4) == 0) {
                        end = strstr(p, "-->");
                        if (!end)
                                die("unterminated comment", NULL);
                        p = end + 3;
                        continue;
                }
                end = strchr(p, '>');
                if (!end)
                        die("unterminated tag", NULL);
                *end = '\0';
                if (p[1] != '!' && p[1] != '?')
                        element(&s, p + 1);
                p = end + 1;
        }
        if (!s.interface)
                die("no interface", input);
        free(s.interface);
        free(text);
        return 0;
}

int main(int argc, char *argv[])
{
        bool wire_mode = argc == 4 && strcmp(argv[1], "--wire") == 0;
        FILE *in, *out;
        int r;

        if (argc != 4) {
                fprintf(stderr, "usage: xml2c INPUT OUTPUT NAME | xml2c --wire INPUT OUTPUT\n");
                return 2;
        }
        in = fopen(argv[wire_mode ? 2 : 1], "rb");
        out = fopen(argv[wire_mode ? 3 : 2], "wb");
        if (!in || !out) {
                perror("xml2c");
                return 1;
        }
        r = wire_mode ? wire(in, out, argv[2]) : embed(in, out, argv[1], argv[3]);
        if (r != 0 || fclose(out) != 0) {
                perror("xml2c");
                return 1;
        }
        fclose(in);
        return 0;
}
