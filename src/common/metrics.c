/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metrics registry behind metrics.h. Each metric owns a flat array of atomic cells, one row
 * per label value: a counter or gauge row is one cell; a histogram row is its buckets (not yet
 * cumulative) followed by the sum, a double kept as its bit pattern and updated with a
 * compare-and-swap loop (C11 has no atomic add for floating types). Updates use relaxed ordering:
 * each cell is exact, and a scrape only needs a recent view. The rendering accumulates buckets
 * into Prometheus's cumulative form.
 */
#include "openseed/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Guards against a runaway scrape, far above any real registry. */
#define RENDER_MAX ((size_t)64 << 20)

typedef enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM } kind;

struct os_metric {
    struct os_metric *next;
    kind kind;
    char *name;
    char *help;
    char *label_name;    /* NULL: no label */
    char **label_values; /* n_labels of them when labelled */
    size_t n_labels;     /* rows; 1 when unlabelled */
    double *bounds;
    size_t n_bounds;
    size_t row;              /* cells per row */
    _Atomic uint64_t *cells; /* counters, histogram buckets and sums */
    _Atomic int64_t *gauges; /* gauges */
};

struct os_metrics {
    pthread_mutex_t mu;
    os_metric *head;
    os_metric *tail;
};

os_err os_metrics_new(os_metrics **out)
{
    os_metrics *m;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return OS_ERR_NOMEM;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return OS_ERR_NOMEM;
    }
    *out = m;
    return OS_OK;
}

static void metric_free(os_metric *c)
{
    if (c == NULL)
        return;
    if (c->label_values != NULL) {
        for (size_t i = 0; i < c->n_labels; i++)
            free(c->label_values[i]);
        free(c->label_values);
    }
    free(c->name);
    free(c->help);
    free(c->label_name);
    free(c->bounds);
    free((void *)c->cells);
    free((void *)c->gauges);
    free(c);
}

void os_metrics_free(os_metrics *m)
{
    if (m == NULL)
        return;
    for (os_metric *c = m->head, *next; c != NULL; c = next) {
        next = c->next;
        metric_free(c);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static bool name_ok(const char *s, bool colon)
{
    if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || (colon && ch == ':')))
            return false;
    }
    return true;
}

static os_err add_metric(os_metrics *m, os_metric **out, kind k, const char *name, const char *help,
                         const char *label_name, const char *const *label_values,
                         const double *bounds, size_t n_bounds)
{
    os_metric *c;
    size_t n_labels = 1;

    if (out != NULL)
        *out = NULL;
    if (m == NULL || out == NULL || help == NULL || !name_ok(name, true))
        return OS_ERR_INVALID;
    if (label_name != NULL) {
        if (!name_ok(label_name, false) || strncmp(label_name, "__", 2) == 0 ||
            (k == K_HISTOGRAM && strcmp(label_name, "le") == 0) || label_values == NULL)
            return OS_ERR_INVALID;
        for (n_labels = 0; label_values[n_labels] != NULL; n_labels++) {
            if (n_labels == OS_METRICS_MAX_LABELS)
                return OS_ERR_INVALID;
            for (size_t j = 0; j < n_labels; j++)
                if (strcmp(label_values[j], label_values[n_labels]) == 0)
                    return OS_ERR_INVALID;
        }
        if (n_labels == 0)
            return OS_ERR_INVALID;
    }
    if (k == K_HISTOGRAM) {
        if (bounds == NULL || n_bounds == 0 || n_bounds > OS_METRICS_MAX_BOUNDS)
            return OS_ERR_INVALID;
        for (size_t i = 0; i < n_bounds; i++)
            if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
                return OS_ERR_INVALID;
    }

    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return OS_ERR_NOMEM;
    c->kind = k;
    c->n_labels = n_labels;
    c->name = strdup(name);
    c->help = strdup(help);
    bool ok = c->name != NULL && c->help != NULL;
    if (ok && label_name != NULL) {
        c->label_name = strdup(label_name);
        c->label_values = calloc(n_labels, sizeof(char *));
        ok = c->label_name != NULL && c->label_values != NULL;
        for (size_t i = 0; ok && i < n_labels; i++) {
            c->label_values[i] = strdup(label_values[i]);
            ok = c->label_values[i] != NULL;
        }
    }
    if (ok && k == K_HISTOGRAM) {
        c->n_bounds = n_bounds;
        c->bounds = malloc(n_bounds * sizeof(double));
        ok = c->bounds != NULL;
        if (ok)
            memcpy(c->bounds, bounds, n_bounds * sizeof(double));
    }
    if (ok && k == K_GAUGE) {
        c->row = 1;
        c->gauges = calloc(n_labels, sizeof(*c->gauges));
        ok = c->gauges != NULL;
    } else if (ok) {
        /* histogram row: n_bounds + 1 buckets (the last is +Inf) and the sum */
        c->row = k == K_HISTOGRAM ? n_bounds + 2 : 1;
        c->cells = calloc(n_labels * c->row, sizeof(*c->cells));
        ok = c->cells != NULL;
    }
    if (!ok) {
        metric_free(c);
        return OS_ERR_NOMEM;
    }
    if (k == K_HISTOGRAM) {
        double zero = 0.0;
        uint64_t bits;
        memcpy(&bits, &zero, sizeof(bits));
        for (size_t i = 0; i < n_labels; i++)
            atomic_init(&c->cells[i * c->row + n_bounds + 1], bits);
    }

    pthread_mutex_lock(&m->mu);
    for (const os_metric *p = m->head; p != NULL; p = p->next) {
        if (strcmp(p->name, name) == 0) {
            pthread_mutex_unlock(&m->mu);
            metric_free(c);
            return OS_ERR_EXISTS;
        }
    }
    if (m->tail != NULL)
        m->tail->next = c;
    else
        m->head = c;
    m->tail = c;
    pthread_mutex_unlock(&m->mu);
    *out = c;
    return OS_OK;
}

os_err os_metrics_counter(os_metrics *m, os_metric **out, const char *name, const char *help,
                          const char *label_name, const char *const *label_values)
{
    return add_metric(m, out, K_COUNTER, name, help, label_name, label_values, NULL, 0);
}

os_err os_metrics_gauge(os_metrics *m, os_metric **out, const char *name, const char *help,
                        const char *label_name, const char *const *label_values)
{
    return add_metric(m, out, K_GAUGE, name, help, label_name, label_values, NULL, 0);
}

os_err os_metrics_histogram(os_metrics *m, os_metric **out, const char *name, const char *help,
                            const char *label_name, const char *const *label_values,
                            const double *bounds, size_t n_bounds)
{
    return add_metric(m, out, K_HISTOGRAM, name, help, label_name, label_values, bounds, n_bounds);
}

int os_metric_label_index(const os_metric *c, const char *value)
{
    if (c == NULL || c->label_values == NULL || value == NULL)
        return -1;
    for (size_t i = 0; i < c->n_labels; i++)
        if (strcmp(c->label_values[i], value) == 0)
            return (int)i;
    return -1;
}

void os_metric_inc(os_metric *c, size_t label)
{
    os_metric_add(c, label, 1);
}

void os_metric_add(os_metric *c, size_t label, uint64_t n)
{
    if (c == NULL || c->kind != K_COUNTER || label >= c->n_labels)
        return;
    atomic_fetch_add_explicit(&c->cells[label], n, memory_order_relaxed);
}

void os_metric_set(os_metric *g, size_t label, int64_t v)
{
    if (g == NULL || g->kind != K_GAUGE || label >= g->n_labels)
        return;
    atomic_store_explicit(&g->gauges[label], v, memory_order_relaxed);
}

void os_metric_gauge_add(os_metric *g, size_t label, int64_t d)
{
    if (g == NULL || g->kind != K_GAUGE || label >= g->n_labels)
        return;
    /* atomic signed arithmetic wraps instead of overflowing (C11 7.17.7.5) */
    atomic_fetch_add_explicit(&g->gauges[label], d, memory_order_relaxed);
}

void os_metric_observe(os_metric *h, size_t label, double v)
{
    if (h == NULL || h->kind != K_HISTOGRAM || label >= h->n_labels || isnan(v))
        return;
    _Atomic uint64_t *row = &h->cells[label * h->row];
    size_t lo = 0, hi = h->n_bounds; /* first bound >= v, or n_bounds for +Inf */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= h->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&row[lo], 1, memory_order_relaxed);

    _Atomic uint64_t *sum = &row[h->n_bounds + 1];
    uint64_t old = atomic_load_explicit(sum, memory_order_relaxed), nbits;
    do {
        double d;
        memcpy(&d, &old, sizeof(d));
        d += v;
        memcpy(&nbits, &d, sizeof(nbits));
    } while (!atomic_compare_exchange_weak_explicit(sum, &old, nbits, memory_order_relaxed,
                                                    memory_order_relaxed));
}

uint64_t os_metric_value(const os_metric *c, size_t label)
{
    uint64_t n = 0;

    if (c == NULL || label >= c->n_labels)
        return 0;
    switch (c->kind) {
    case K_COUNTER:
        return atomic_load_explicit(&c->cells[label], memory_order_relaxed);
    case K_GAUGE:
        return (uint64_t)atomic_load_explicit(&c->gauges[label], memory_order_relaxed);
    case K_HISTOGRAM:
        for (size_t i = 0; i <= c->n_bounds; i++)
            n += atomic_load_explicit(&c->cells[label * c->row + i], memory_order_relaxed);
        return n;
    }
    return 0;
}

/* ---- rendering ---- */

typedef struct out {
    char *p;
    size_t len, cap;
    bool failed;
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (n >= o->cap - o->len) {
        size_t ncap = o->cap < 1024 ? 1024 : o->cap;
        while (n >= ncap - o->len && ncap <= RENDER_MAX)
            ncap *= 2;
        char *np = ncap > RENDER_MAX ? NULL : realloc(o->p, ncap);
        if (np == NULL) {
            o->failed = true;
            return;
        }
        o->p = np;
        o->cap = ncap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void puts_(out *o, const char *s)
{
    put(o, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(out *o, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        o->failed = true;
        return;
    }
    put(o, tmp, (size_t)n);
}

/* HELP text escapes backslash and newline; label values also escape the double quote. */
static void put_escaped(out *o, const char *s, bool quote)
{
    const char *run = s;
    for (; *s != '\0'; s++) {
        const char *esc = NULL;
        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (quote && *s == '"')
            esc = "\\\"";
        if (esc != NULL) {
            put(o, run, (size_t)(s - run));
            puts_(o, esc);
            run = s + 1;
        }
    }
    put(o, run, (size_t)(s - run));
}

/*
 * The shortest decimal that reads back as d, laid out as Go's strconv.FormatFloat(d, 'g', -1, 64)
 * does (what Prometheus's own client writes): exponent form when the decimal exponent is below -4
 * or at least 6 ("1e+06"), plain digits otherwise ("400000", "0.005").
 */
static void put_double(out *o, double d)
{
    char tmp[48];
    int prec = 1, exp;

    if (isinf(d)) {
        puts_(o, d > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (isnan(d)) {
        puts_(o, "NaN");
        return;
    }
    for (; prec < 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
    exp = (int)strtol(strchr(tmp, 'e') + 1, NULL, 10);
    if (exp >= -4 && exp < 6)
        snprintf(tmp, sizeof(tmp), "%.*f", prec - 1 - exp > 0 ? prec - 1 - exp : 0, d);
    puts_(o, tmp);
}

/* `name{label="value"` plus `,` when more follows, or `name` / `name{` as needed. */
static void put_series(out *o, const os_metric *c, const char *suffix, size_t label,
                       bool more_labels)
{
    puts_(o, c->name);
    puts_(o, suffix);
    if (c->label_name == NULL && !more_labels)
        return;
    puts_(o, "{");
    if (c->label_name != NULL) {
        puts_(o, c->label_name);
        puts_(o, "=\"");
        put_escaped(o, c->label_values[label], true);
        puts_(o, more_labels ? "\"," : "\"");
    }
}

static void render_metric(out *o, const os_metric *c)
{
    static const char *const type_name[] = {"counter", "gauge", "histogram"};

    puts_(o, "# HELP ");
    puts_(o, c->name);
    puts_(o, " ");
    put_escaped(o, c->help, false);
    puts_(o, "\n# TYPE ");
    puts_(o, c->name);
    puts_(o, " ");
    puts_(o, type_name[c->kind]);
    puts_(o, "\n");

    for (size_t l = 0; l < c->n_labels; l++) {
        if (c->kind == K_COUNTER) {
            put_series(o, c, "", l, false);
            if (c->label_name != NULL)
                puts_(o, "}");
            putf(o, " %" PRIu64 "\n", atomic_load_explicit(&c->cells[l], memory_order_relaxed));
        } else if (c->kind == K_GAUGE) {
            put_series(o, c, "", l, false);
            if (c->label_name != NULL)
                puts_(o, "}");
            putf(o, " %" PRId64 "\n", atomic_load_explicit(&c->gauges[l], memory_order_relaxed));
        } else {
            const _Atomic uint64_t *row = &c->cells[l * c->row];
            uint64_t cum = 0, sum_bits;
            double sum;
            for (size_t b = 0; b <= c->n_bounds; b++) {
                cum += atomic_load_explicit(&row[b], memory_order_relaxed);
                put_series(o, c, "_bucket", l, true);
                puts_(o, "le=\"");
                put_double(o, b < c->n_bounds ? c->bounds[b] : INFINITY);
                putf(o, "\"} %" PRIu64 "\n", cum);
            }
            sum_bits = atomic_load_explicit(&row[c->n_bounds + 1], memory_order_relaxed);
            memcpy(&sum, &sum_bits, sizeof(sum));
            put_series(o, c, "_sum", l, false);
            if (c->label_name != NULL)
                puts_(o, "}");
            puts_(o, " ");
            put_double(o, sum);
            puts_(o, "\n");
            put_series(o, c, "_count", l, false);
            if (c->label_name != NULL)
                puts_(o, "}");
            putf(o, " %" PRIu64 "\n", cum);
        }
    }
}

os_err os_metrics_render(os_metrics *m, char **outp, size_t *len)
{
    out o = {0};

    if (outp == NULL)
        return OS_ERR_INVALID;
    *outp = NULL;
    if (len != NULL)
        *len = 0;
    if (m == NULL)
        return OS_ERR_INVALID;
    put(&o, "", 0); /* an empty registry renders as "" rather than NULL */
    pthread_mutex_lock(&m->mu);
    for (const os_metric *c = m->head; c != NULL && !o.failed; c = c->next)
        render_metric(&o, c);
    pthread_mutex_unlock(&m->mu);
    if (o.failed) {
        free(o.p);
        return OS_ERR_NOMEM;
    }
    *outp = o.p;
    if (len != NULL)
        *len = o.len;
    return OS_OK;
}
