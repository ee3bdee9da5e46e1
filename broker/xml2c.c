/* SPDX-License-Identifier: MIT */
/* Build helper: turns the interface XML into a C string, so latchkeyd answers Introspect with it.
 */
#include <stdio.h>

int main(int argc, char *argv[])
{
        FILE *in, *out;
        int c;

        if (argc != 4) {
                fprintf(stderr, "usage: xml2c INPUT OUTPUT NAME\n");
                return 2;
        }
        in = fopen(argv[1], "rb");
        out = fopen(argv[2], "wb");
        if (!in || !out) {
                perror("xml2c");
                return 1;
        }
        fprintf(out,
                "/* Generated from %s; do not edit. */\n#pragma once\n"
                "static const char %s[] = {\n",
                argv[1], argv[3]);
        while ((c = fgetc(in)) != EOF)
                fprintf(out, "0x%02x,%s", c, c == '\n' ? "\n" : "");
        fprintf(out, "0x00};\n");
        if (ferror(in) || fclose(out) != 0) {
                perror("xml2c");
                return 1;
        }
        fclose(in);
        return 0;
}
