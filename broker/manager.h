/* SPDX-License-Identifier: MIT */
/* The manager (manager.c): starting and stopping the broker, for main.c. */
#pragma once

#include "oidc/error.h"

struct broker;

struct broker_options {
        const char *config_path;
        const char *state_dir;
        long idle_exit; /* seconds; -1: take the config's */
        bool debug;
};

int broker_new(const struct broker_options *o, struct broker **ret, struct lk_error *e);
/* Runs until SIGTERM, idle exit or the bus goes away; returns the exit status. */
int broker_run(struct broker *b);
void broker_free(struct broker *b);
