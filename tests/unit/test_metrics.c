/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The metrics registry against exact exposition text. The expected lines follow the Prometheus
 * text format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/): "# HELP" with
 * backslash and newline escaped, "# TYPE", label values with backslash, double quote and newline
 * escaped, histograms as cumulative _bucket{le=...} lines ending in le="+Inf", then _sum and
 * _count. Also: le is inclusive (an observation equal to a bound lands in that bucket), NaN is
 * ignored, bad names and shapes are refused, and concurrent updates lose nothing.
 */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "openseed/metrics.h"

static void assert_render(os_metrics *m, const char *want)
{
    char *got = NULL;
    size_t len = 0;
    assert_int_equal(os_metrics_render(m, &got, &len), OS_OK);
    assert_non_null(got);
    assert_int_equal(len, strlen(got));
    if (strcmp(got, want) != 0)
        fail_msg("exposition differs\n--- got:\n%s--- want:\n%s", got, want);
    free(got);
}

static void test_empty(void **state)
{
    os_metrics *m;
    (void)state;
    assert_int_equal(os_metrics_new(&m), OS_OK);
    assert_render(m, "");
    os_metrics_free(m);
    os_metrics_free(NULL);
}

static void test_counter_and_gauge(void **state)
{
    static const char *const classes[] = {"2xx", "4xx", NULL};
    os_metrics *m;
    os_metric *req, *temp, *conns;
    (void)state;

    assert_int_equal(os_metrics_new(&m), OS_OK);
    assert_int_equal(os_metrics_counter(m, &req, "req_total", "Requests.", "class", classes),
                     OS_OK);
    assert_int_equal(os_metrics_gauge(m, &temp, "temp", "Line1\nback\\slash \"q\"", NULL, NULL),
                     OS_OK);
    assert_int_equal(os_metrics_gauge(m, &conns, "ns:conns", "", NULL, NULL), OS_OK);
    assert_render(m, "# HELP req_total Requests.\n"
                     "# TYPE req_total counter\n"
                     "req_total{class=\"2xx\"} 0\n"
                     "req_total{class=\"4xx\"} 0\n"
                     "# HELP temp Line1\\nback\\\\slash \"q\"\n"
                     "# TYPE temp gauge\n"
                     "temp 0\n"
                     "# HELP ns:conns \n"
                     "# TYPE ns:conns gauge\n"
                     "ns:conns 0\n");

    os_metric_inc(req, 0);
    os_metric_inc(req, 0);
    os_metric_inc(req, 0);
    os_metric_add(req, 1, 5);
    os_metric_add(req, 1, UINT64_C(18446744073709551610));
    os_metric_set(temp, 0, -7);
    os_metric_gauge_add(conns, 0, 3);
    os_metric_gauge_add(conns, 0, -1);
    assert_int_equal(os_metric_value(req, 0), 3);
    assert_int_equal(os_metric_value(conns, 0), 2);
    assert_int_equal(os_metric_label_index(req, "4xx"), 1);
    assert_int_equal(os_metric_label_index(req, "5xx"), -1);
    assert_int_equal(os_metric_label_index(temp, "x"), -1);
    assert_render(m, "# HELP req_total Requests.\n"
                     "# TYPE req_total counter\n"
                     "req_total{class=\"2xx\"} 3\n"
                     "req_total{class=\"4xx\"} 18446744073709551615\n"
                     "# HELP temp Line1\\nback\\\\slash \"q\"\n"
                     "# TYPE temp gauge\n"
                     "temp -7\n"
                     "# HELP ns:conns \n"
                     "# TYPE ns:conns gauge\n"
                     "ns:conns 2\n");
    os_metrics_free(m);
}

static void test_histograms(void **state)
{
    static const double lat_b[] = {0.005, 0.5, 1, 2.5};
    static const double size_b[] = {100, 1e6};
    static const char *const routes[] = {"/a", "q\"\\\n", NULL};
    os_metrics *m;
    os_metric *lat, *size;
    (void)state;

    assert_int_equal(os_metrics_new(&m), OS_OK);
    assert_int_equal(os_metrics_histogram(m, &lat, "lat_seconds", "Latency.", NULL, NULL, lat_b, 4),
                     OS_OK);
    assert_int_equal(
        os_metrics_histogram(m, &size, "size_bytes", "Sizes.", "route", routes, size_b, 2), OS_OK);
    os_metric_observe(lat, 0, 0.25);
    os_metric_observe(lat, 0, 0.5); /* on a bound: counted in le="0.5" */
    os_metric_observe(lat, 0, 1);
    os_metric_observe(lat, 0, 7); /* above every bound: +Inf only */
    os_metric_observe(lat, 0, NAN);
    os_metric_observe(size, 0, 100);
    os_metric_observe(size, 1, 2e6);
    os_metric_observe(size, 2, 1); /* no such label: ignored */
    assert_int_equal(os_metric_value(lat, 0), 4);
    assert_render(m, "# HELP lat_seconds Latency.\n"
                     "# TYPE lat_seconds histogram\n"
                     "lat_seconds_bucket{le=\"0.005\"} 0\n"
                     "lat_seconds_bucket{le=\"0.5\"} 2\n"
                     "lat_seconds_bucket{le=\"1\"} 3\n"
                     "lat_seconds_bucket{le=\"2.5\"} 3\n"
                     "lat_seconds_bucket{le=\"+Inf\"} 4\n"
                     "lat_seconds_sum 8.75\n"
                     "lat_seconds_count 4\n"
                     "# HELP size_bytes Sizes.\n"
                     "# TYPE size_bytes histogram\n"
                     "size_bytes_bucket{route=\"/a\",le=\"100\"} 1\n"
                     "size_bytes_bucket{route=\"/a\",le=\"1e+06\"} 1\n"
                     "size_bytes_bucket{route=\"/a\",le=\"+Inf\"} 1\n"
                     "size_bytes_sum{route=\"/a\"} 100\n"
                     "size_bytes_count{route=\"/a\"} 1\n"
                     "size_bytes_bucket{route=\"q\\\"\\\\\\n\",le=\"100\"} 0\n"
                     "size_bytes_bucket{route=\"q\\\"\\\\\\n\",le=\"1e+06\"} 0\n"
                     "size_bytes_bucket{route=\"q\\\"\\\\\\n\",le=\"+Inf\"} 1\n"
                     "size_bytes_sum{route=\"q\\\"\\\\\\n\"} 2e+06\n"
                     "size_bytes_count{route=\"q\\\"\\\\\\n\"} 1\n");
    os_metrics_free(m);
}

/* Sums print as the shortest text that reads back exactly. */
static void test_sum_format(void **state)
{
    static const double b[] = {1};
    os_metrics *m;
    os_metric *h;
    (void)state;

    assert_int_equal(os_metrics_new(&m), OS_OK);
    assert_int_equal(os_metrics_histogram(m, &h, "h", "h", NULL, NULL, b, 1), OS_OK);
    os_metric_observe(h, 0, 0.1);
    os_metric_observe(h, 0, 0.2); /* 0.1 + 0.2 is not 0.3 in binary */
    assert_render(m, "# HELP h h\n# TYPE h histogram\n"
                     "h_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 2\n"
                     "h_sum 0.30000000000000004\nh_count 2\n");
    os_metrics_free(m);

    /* the switch to exponent form happens below 1e-4 and from 1e6, as in Go's strconv */
    static const double edges[] = {1e-5, 0.0001, 123456, 1234567};
    assert_int_equal(os_metrics_new(&m), OS_OK);
    assert_int_equal(os_metrics_histogram(m, &h, "e", "e", NULL, NULL, edges, 4), OS_OK);
    os_metric_observe(h, 0, -0.5);
    assert_render(m, "# HELP e e\n# TYPE e histogram\n"
                     "e_bucket{le=\"1e-05\"} 1\ne_bucket{le=\"0.0001\"} 1\n"
                     "e_bucket{le=\"123456\"} 1\ne_bucket{le=\"1.234567e+06\"} 1\n"
                     "e_bucket{le=\"+Inf\"} 1\ne_sum -0.5\ne_count 1\n");
    os_metrics_free(m);
}

static void test_refusals(void **state)
{
    static const char *const ok[] = {"a", NULL};
    static const char *const none[] = {NULL};
    static const char *const dup[] = {"a", "b", "a", NULL};
    static const double inc[] = {1, 2};
    static const double flat[] = {1, 1};
    static const double down[] = {2, 1};
    const double nan_b[] = {NAN};
    const double inf_b[] = {1, INFINITY};
    const char *many[OS_METRICS_MAX_LABELS + 2];
    char names[OS_METRICS_MAX_LABELS + 1][8];
    os_metrics *m;
    os_metric *c = (os_metric *)1;
    (void)state;

    assert_int_equal(os_metrics_new(&m), OS_OK);
    assert_int_equal(os_metrics_counter(m, &c, "1abc", "", NULL, NULL), OS_ERR_INVALID);
    assert_null(c);
    assert_int_equal(os_metrics_counter(m, &c, "a-b", "", NULL, NULL), OS_ERR_INVALID);
    assert_int_equal(os_metrics_counter(m, &c, "", "", NULL, NULL), OS_ERR_INVALID);
    assert_int_equal(os_metrics_counter(m, &c, NULL, "", NULL, NULL), OS_ERR_INVALID);
    assert_int_equal(os_metrics_counter(m, &c, "x", NULL, NULL, NULL), OS_ERR_INVALID);
    assert_int_equal(os_metrics_counter(m, &c, "x", "", "a:b", ok), OS_ERR_INVALID);
    assert_int_equal(os_metrics_counter(m, &c, "x", "", "__a", ok), OS_ERR_INVALID);
    assert_int_equal(os_metrics_counter(m, &c, "x", "", "a", NULL), OS_ERR_INVALID);
    assert_int_equal(os_metrics_counter(m, &c, "x", "", "a", none), OS_ERR_INVALID);
    assert_int_equal(os_metrics_counter(m, &c, "x", "", "a", dup), OS_ERR_INVALID);
    for (int i = 0; i <= OS_METRICS_MAX_LABELS; i++) {
        snprintf(names[i], sizeof(names[i]), "v%d", i);
        many[i] = names[i];
    }
    many[OS_METRICS_MAX_LABELS + 1] = NULL;
    assert_int_equal(os_metrics_counter(m, &c, "x", "", "a", many), OS_ERR_INVALID);
    many[OS_METRICS_MAX_LABELS] = NULL;
    assert_int_equal(os_metrics_counter(m, &c, "x", "", "a", many), OS_OK);
    assert_int_equal(os_metrics_gauge(m, &c, "x", "", NULL, NULL), OS_ERR_EXISTS);

    assert_int_equal(os_metrics_histogram(m, &c, "h", "", "le", ok, inc, 2), OS_ERR_INVALID);
    assert_int_equal(os_metrics_histogram(m, &c, "h", "", NULL, NULL, inc, 0), OS_ERR_INVALID);
    assert_int_equal(os_metrics_histogram(m, &c, "h", "", NULL, NULL, NULL, 2), OS_ERR_INVALID);
    assert_int_equal(os_metrics_histogram(m, &c, "h", "", NULL, NULL, flat, 2), OS_ERR_INVALID);
    assert_int_equal(os_metrics_histogram(m, &c, "h", "", NULL, NULL, down, 2), OS_ERR_INVALID);
    assert_int_equal(os_metrics_histogram(m, &c, "h", "", NULL, NULL, nan_b, 1), OS_ERR_INVALID);
    assert_int_equal(os_metrics_histogram(m, &c, "h", "", NULL, NULL, inf_b, 2), OS_ERR_INVALID);
    assert_int_equal(os_metrics_histogram(m, &c, "h", "", NULL, NULL, inc, 2), OS_OK);
    os_metrics_free(m);
}

/* Updates that do not fit the metric are ignored, not crashes. */
static void test_ignored_updates(void **state)
{
    static const double b[] = {1};
    os_metrics *m;
    os_metric *cnt, *g, *h;
    (void)state;

    assert_int_equal(os_metrics_new(&m), OS_OK);
    assert_int_equal(os_metrics_counter(m, &cnt, "c", "", NULL, NULL), OS_OK);
    assert_int_equal(os_metrics_gauge(m, &g, "g", "", NULL, NULL), OS_OK);
    assert_int_equal(os_metrics_histogram(m, &h, "h", "", NULL, NULL, b, 1), OS_OK);
    os_metric_inc(cnt, 1);    /* out of range */
    os_metric_inc(g, 0);      /* wrong kind */
    os_metric_set(cnt, 0, 5); /* wrong kind */
    os_metric_observe(cnt, 0, 1);
    os_metric_set(h, 0, 1);
    os_metric_inc(NULL, 0);
    os_metric_observe(NULL, 0, 1);
    os_metric_set(NULL, 0, 1);
    assert_int_equal(os_metric_value(cnt, 0), 0);
    assert_int_equal(os_metric_value(g, 0), 0);
    assert_int_equal(os_metric_value(h, 0), 0);
    assert_int_equal(os_metric_value(NULL, 0), 0);
    os_metrics_free(m);
}

typedef struct hammer_arg {
    os_metric *c, *g, *h;
} hammer_arg;

static void *hammer(void *p)
{
    hammer_arg *a = p;
    for (int i = 0; i < 100000; i++) {
        os_metric_inc(a->c, (size_t)(i & 1));
        os_metric_gauge_add(a->g, 0, i & 1 ? 1 : -1);
        os_metric_observe(a->h, 0, 1.0);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    static const char *const lv[] = {"even", "odd", NULL};
    static const double b[] = {0.5, 1};
    os_metrics *m;
    hammer_arg a;
    pthread_t th[4];
    char *text;
    (void)state;

    assert_int_equal(os_metrics_new(&m), OS_OK);
    assert_int_equal(os_metrics_counter(m, &a.c, "c_total", "c", "p", lv), OS_OK);
    assert_int_equal(os_metrics_gauge(m, &a.g, "g", "g", NULL, NULL), OS_OK);
    assert_int_equal(os_metrics_histogram(m, &a.h, "h", "h", NULL, NULL, b, 2), OS_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &a), 0);
    /* a scrape in the middle of the updates must be well-formed */
    assert_int_equal(os_metrics_render(m, &text, NULL), OS_OK);
    assert_non_null(strstr(text, "# TYPE h histogram\n"));
    free(text);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_render(m, "# HELP c_total c\n# TYPE c_total counter\n"
                     "c_total{p=\"even\"} 200000\nc_total{p=\"odd\"} 200000\n"
                     "# HELP g g\n# TYPE g gauge\ng 0\n"
                     "# HELP h h\n# TYPE h histogram\n"
                     "h_bucket{le=\"0.5\"} 0\nh_bucket{le=\"1\"} 400000\n"
                     "h_bucket{le=\"+Inf\"} 400000\nh_sum 400000\nh_count 400000\n");
    os_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),      cmocka_unit_test(test_counter_and_gauge),
        cmocka_unit_test(test_histograms), cmocka_unit_test(test_sum_format),
        cmocka_unit_test(test_refusals),   cmocka_unit_test(test_ignored_updates),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
