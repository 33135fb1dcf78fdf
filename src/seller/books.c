/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seller's books for programs that embed the core (the SDK's SellerNode): its totals read
 * from seller.db through the same revenue view the admin API serves, so the numbers an embedder
 * sees are the ones the dashboard shows, and settle-now through the same call as the admin API's
 * POST /admin/v1/settle. Nothing here changes what the seller does.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "openseed/money.h"

/* A count the views write as a JSON integer, or as a decimal string past INT64_MAX. */
static os_err count_of(uint64_t *out, const json_t *v)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return OS_OK;
    }
    return os_money_parse_json(out, v);
}

os_err sl_seller_totals_get(sl_seller *s, sl_seller_totals *out)
{
    sl_channel *rows = NULL;
    const char *outcome;
    json_t *rev, *n;
    size_t count = 0;
    os_err rc;

    if (s == NULL || out == NULL)
        return OS_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    if ((rev = sl_ledger_revenue_json(s->ledger)) == NULL)
        return OS_ERR_IO;
    if ((rc = os_money_parse_json(&out->consumed, json_object_get(rev, "consumed"))) != OS_OK ||
        (rc = os_money_parse_json(&out->claimed, json_object_get(rev, "claimed"))) != OS_OK ||
        (rc = os_money_parse_json(&out->unclaimed, json_object_get(rev, "unclaimed"))) != OS_OK ||
        (rc = count_of(&out->requests, json_object_get(rev, "requests"))) != OS_OK)
        goto out;
    json_object_foreach(json_object_get(rev, "by_outcome"), outcome, n)
    {
        uint64_t k;
        if ((rc = count_of(&k, n)) != OS_OK)
            goto out;
        if (strcmp(outcome, "ok") == 0)
            continue;
        if (out->errors > UINT64_MAX - k) {
            rc = OS_ERR_RANGE;
            goto out;
        }
        out->errors += k;
    }
    if (s->chans != NULL) {
        /* the cache holds every stored channel from sl_chans_new on */
        sl_chans_stats cs;
        sl_chans_get_stats(s->chans, &cs);
        out->channels = cs.channels;
    } else if ((rc = sl_ledger_channel_list(s->ledger, &rows, &count)) == OS_OK) {
        out->channels = count;
        free(rows);
    }
out:
    json_decref(rev);
    if (rc != OS_OK)
        memset(out, 0, sizeof(*out));
    return rc == OS_ERR_RANGE ? OS_ERR_RANGE : rc != OS_OK ? OS_ERR_IO : OS_OK;
}

os_err sl_seller_settle(sl_seller *s, json_t **report)
{
    if (report != NULL)
        *report = NULL;
    if (s == NULL || s->chans == NULL)
        return OS_ERR_INVALID;
    return sl_chans_settle(s->chans, report, NULL);
}
