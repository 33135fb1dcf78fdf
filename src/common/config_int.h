/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the config module (config.c, config_value.c, config_print.c), never installed or
 * included by programs: how a table entry reaches its field in the program's struct, and the two
 * field operations the loader in config.c needs from config_value.c. They are external only
 * because they cross files, hence their os_ names; nothing outside the module may call them.
 */
#ifndef OPENSEED_CONFIG_INT_H
#define OPENSEED_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "openseed/config.h"

/* Longest key name, NUL included; flags and file keys longer than this are unknown. */
#define CFG_MAX_NAME_LEN 64

/* The field entry e describes in the program's struct cfg, as a T *. */
#define CFG_FIELD(cfg, e, T) ((T *)(void *)((char *)(cfg) + (e)->offset))

/* A repeatable key, stored as an os_cfg_list. */
static inline bool cfg_is_list(const os_cfg_entry *e)
{
    return (e->flags & OS_CFG_REPEATABLE) != 0;
}

/* A key stored as an owned char * (or a list of them). */
static inline bool cfg_is_text(const os_cfg_entry *e)
{
    return e->type == OS_CFG_STRING || e->type == OS_CFG_PATH || e->type == OS_CFG_URL;
}

/*
 * Parses value (borrowed) for entry e and stores it in cfg: a copy for text keys (replacing the old
 * one, or appended for a repeatable key), the parsed value otherwise. OS_ERR_NOMEM when memory ran
 * out; any other error with a reason in err that does not repeat the value.
 */
OS_WUR os_err os_cfg_field_set(const os_cfg_entry *e, void *cfg, const char *value, char *err,
                               size_t errcap);

/* Zeroes e's field in cfg; with release, first frees the strings and list it owns. */
void os_cfg_field_clear(const os_cfg_entry *e, void *cfg, bool release);

#endif
