/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-source rate limiting for the daemons' HTTP servers: one token bucket per key (a client
 * address), kept in a fixed-capacity table so a flood of distinct sources costs bounded memory.
 * When the table is full the least recently used entry is dropped; its source starts again with a
 * full bucket, which only ever makes the limiter more generous, never wrong in the other direction.
 *
 * Time is passed in (`now_ms`, any monotonic millisecond clock) so tests can drive it. Arithmetic
 * is exact integer math: a bucket holds up to `burst` tokens and gains `rate_per_s` tokens per
 * second, accounted in thousandths of a token, so the rate is exactly `rate_per_s` thousandths per
 * millisecond. A clock that goes backwards adds nothing.
 *
 * Safe to call from several threads at once (the table is split into independently locked stripes
 * when it is large).
 */
#ifndef OPENSEED_RATELIMIT_H
#define OPENSEED_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"

/* Longest key, in bytes (an IPv6 address as text is at most 45). */
#define OS_RATELIMIT_KEY_MAX 63

typedef struct os_ratelimit os_ratelimit;

/*
 * The outcome of one request, ready for the response headers:
 *   X-RateLimit-Limit     = limit        (the burst: the most requests allowed at once)
 *   X-RateLimit-Remaining = remaining    (whole tokens left after this request)
 *   X-RateLimit-Reset     = reset_s      (seconds, rounded up, until the bucket is full again;
 *                                         0 when it is full)
 *   Retry-After           = retry_after_s (only when refused: seconds, rounded up and at least 1,
 *                                         until one token is available)
 */
typedef struct os_ratelimit_result {
    bool allowed;
    uint32_t limit;
    uint32_t remaining;
    uint32_t reset_s;
    uint32_t retry_after_s; /* 0 when allowed */
} os_ratelimit_result;

/*
 * Creates a limiter allowing rate_per_s requests per second with bursts of up to `burst`, for at
 * most `capacity` keys at once (0 means 65536). rate_per_s and burst must be >= 1
 * (OS_ERR_INVALID otherwise). Free with os_ratelimit_free.
 */
OS_WUR os_err os_ratelimit_new(os_ratelimit **out, uint32_t rate_per_s, uint32_t burst,
                               size_t capacity);

/* NULL-safe. */
void os_ratelimit_free(os_ratelimit *rl);

/*
 * Takes one token from key's bucket at time now_ms and fills *out (allowed or not). A key not in
 * the table starts with a full bucket. OS_ERR_INVALID for an empty or NULL key, OS_ERR_TOOBIG for
 * one longer than OS_RATELIMIT_KEY_MAX (the caller decides; the HTTP server never passes one).
 */
OS_WUR os_err os_ratelimit_take(os_ratelimit *rl, os_ratelimit_result *out, const char *key,
                                uint64_t now_ms);

/* How many keys the table holds now (never more than its capacity). */
size_t os_ratelimit_size(os_ratelimit *rl);

/* The capacity the table was created with. */
size_t os_ratelimit_capacity(const os_ratelimit *rl);

#endif
