/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A Prometheus metrics registry. Each daemon owns one (no globals) and serves it at /metrics with
 * os_metrics_render, which writes the text exposition format 0.0.4. Metrics are counters, gauges
 * and histograms; each may have one label dimension whose values are fixed when the metric is
 * created (a route, a status class), so updating never allocates, never locks and never fails:
 * updates are C11 atomics and take the label as an index into the values given at creation.
 *
 * Register every metric at start-up, before the threads that update it run; a metric lives as
 * long as its registry. Registration and rendering take the registry's lock; updates do not, and
 * may run on any thread at any time. A render taken during updates may be a few observations
 * behind on some lines (a histogram's _count is the sum of its buckets as read).
 *
 * Number formats: counter and gauge values are integers; histogram bounds (the le label) and sums
 * are the shortest decimal that reads back to the same double, laid out as Prometheus's Go client
 * does ("0.005", "1", "2.5", "400000", "1e+06", "1e-05"), and "+Inf" for the last bucket.
 */
#ifndef OPENSEED_METRICS_H
#define OPENSEED_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "openseed/err.h"

/* At most this many label values per metric, and bucket bounds per histogram. */
#define OS_METRICS_MAX_LABELS 64
#define OS_METRICS_MAX_BOUNDS 64

typedef struct os_metrics os_metrics;
typedef struct os_metric os_metric; /* owned by its registry */

/* Creates an empty registry; free with os_metrics_free (which frees its metrics). */
OS_WUR os_err os_metrics_new(os_metrics **out);

/* NULL-safe. No metric of the registry may be used afterwards. */
void os_metrics_free(os_metrics *m);

/*
 * Registers a metric; *out is owned by m. name must match [a-zA-Z_:][a-zA-Z0-9_:]* and be new in
 * m (OS_ERR_EXISTS otherwise); help is any text (newlines and backslashes are escaped).
 * label_name NULL means no label (use index 0); otherwise it must match [a-zA-Z_][a-zA-Z0-9_]*,
 * not start with "__", and label_values is a NULL-terminated list of 1..OS_METRICS_MAX_LABELS
 * distinct strings (copied), indexed from 0 in the order given. OS_ERR_INVALID for anything else.
 */
OS_WUR os_err os_metrics_counter(os_metrics *m, os_metric **out, const char *name, const char *help,
                                 const char *label_name, const char *const *label_values);
OS_WUR os_err os_metrics_gauge(os_metrics *m, os_metric **out, const char *name, const char *help,
                               const char *label_name, const char *const *label_values);
/*
 * As above, with bucket upper bounds bounds[0..n_bounds): finite, strictly increasing,
 * 1..OS_METRICS_MAX_BOUNDS of them (copied); the +Inf bucket is implicit. The label may not be
 * called "le".
 */
OS_WUR os_err os_metrics_histogram(os_metrics *m, os_metric **out, const char *name,
                                   const char *help, const char *label_name,
                                   const char *const *label_values, const double *bounds,
                                   size_t n_bounds);

/* The index of label value `value` in metric c, or -1 if it has no such value. */
int os_metric_label_index(const os_metric *c, const char *value);

/*
 * Updates. `label` is the index of the label value (0 for an unlabelled metric). An index out of
 * range, a NULL metric, or an update of the wrong kind of metric is ignored, so a metric that
 * failed to register (NULL) can still be "updated".
 */
void os_metric_inc(os_metric *c, size_t label);                  /* counter += 1 */
void os_metric_add(os_metric *c, size_t label, uint64_t n);      /* counter += n */
void os_metric_set(os_metric *g, size_t label, int64_t v);       /* gauge = v */
void os_metric_gauge_add(os_metric *g, size_t label, int64_t d); /* gauge += d (may be < 0) */
void os_metric_observe(os_metric *h, size_t label, double v);    /* histogram; NaN is ignored */

/*
 * Reads back a counter or gauge value (gauges as int64 cast to uint64), or a histogram's count;
 * for tests and for daemons that report their own numbers. 0 for a bad metric or index.
 */
uint64_t os_metric_value(const os_metric *c, size_t label);

/*
 * Renders every metric, in registration order, in the Prometheus text format 0.0.4. *out is
 * NUL-terminated and owned by the caller (free()); *len excludes the NUL (len may be NULL).
 * OS_ERR_NOMEM on allocation failure (*out is then NULL).
 */
OS_WUR os_err os_metrics_render(os_metrics *m, char **out, size_t *len);

/* The Content-Type to serve the rendering with. */
#define OS_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
