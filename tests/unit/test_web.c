/* SPDX-License-Identifier: Apache-2.0 */
/*
 * os_web_serve (src/common/web.c) through a real server on loopback: the index under /dashboard
 * and /dashboard/, a daemon's own file before a common one of the same name, the common files
 * (the real web/common, compiled in), the security headers on every file, ETag revalidation
 * answered 304, and an unknown name answered 404 in the OpenAI error shape. Also checks the
 * embedded common files are the bytes of web/common (OPENSEED_SOURCE_DIR) and carry no URL of
 * another origin.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/http.h"
#include "openseed/http_client.h"
#include "openseed/web.h"

static const unsigned char INDEX[] = "<!doctype html><title>own</title>";
static const unsigned char OWN_CSS[] = "body{}";
static const os_web_asset OWN[] = {
    {"index.html", "text/html; charset=utf-8", INDEX, sizeof(INDEX) - 1, "\"idx1\""},
    {"dash.css", "text/css; charset=utf-8", OWN_CSS, sizeof(OWN_CSS) - 1, "\"own-css\""},
};

static void h_dash(void *ctx, const os_http_request *req, os_http_response *res)
{
    (void)ctx;
    os_web_serve(req, res, OWN, sizeof(OWN) / sizeof(OWN[0]));
}

static const os_http_route ROUTES[] = {
    {"GET", "/dashboard", h_dash, 0},
    {"GET", "/dashboard/*", h_dash, 0},
};

typedef struct fx {
    os_http_server *srv;
    os_http_client *cli;
    char base[64];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    os_http_config cfg = {.listen = "127.0.0.1:0"};

    assert_non_null(f);
    assert_int_equal(os_http_server_new(&f->srv, &cfg, ROUTES, 2, NULL), OS_OK);
    assert_int_equal(os_http_server_start(f->srv), OS_OK);
    assert_int_equal(os_http_client_new(&f->cli, NULL), OS_OK);
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%u", os_http_server_port(f->srv));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    os_http_client_free(f->cli);
    os_http_server_free(f->srv);
    free(f);
    return 0;
}

static void get(fx *f, os_http_client_res *res, const char *path, const char *inm)
{
    char url[256];
    os_http_header h = {"If-None-Match", inm};
    os_http_client_req req = {.url = url, .headers = &h, .n_headers = inm != NULL};

    snprintf(url, sizeof(url), "%s%s", f->base, path);
    os_http_client_res_init(res);
    assert_int_equal(os_http_client_do(f->cli, res, NULL, &req), OS_OK);
}

static void assert_secured(const os_http_client_res *res)
{
    assert_string_equal(os_http_client_res_header(res, "Content-Security-Policy"), OS_WEB_CSP);
    assert_string_equal(os_http_client_res_header(res, "X-Content-Type-Options"), "nosniff");
    assert_string_equal(os_http_client_res_header(res, "X-Frame-Options"), "DENY");
    assert_string_equal(os_http_client_res_header(res, "Cache-Control"), "no-cache");
}

static void test_index(void **state)
{
    fx *f = *state;
    const char *paths[] = {"/dashboard", "/dashboard/", "/dashboard/index.html"};

    for (size_t i = 0; i < 3; i++) {
        os_http_client_res res;
        get(f, &res, paths[i], NULL);
        assert_int_equal(res.status, 200);
        assert_int_equal(res.body.len, sizeof(INDEX) - 1);
        assert_memory_equal(res.body.data, INDEX, sizeof(INDEX) - 1);
        assert_string_equal(os_http_client_res_header(&res, "Content-Type"),
                            "text/html; charset=utf-8");
        assert_string_equal(os_http_client_res_header(&res, "ETag"), "\"idx1\"");
        assert_secured(&res);
        os_http_client_res_free(&res);
    }
}

static void test_own_before_common(void **state)
{
    fx *f = *state;
    os_http_client_res res;

    get(f, &res, "/dashboard/dash.css", NULL);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.body.len, sizeof(OWN_CSS) - 1);
    assert_memory_equal(res.body.data, OWN_CSS, sizeof(OWN_CSS) - 1);
    os_http_client_res_free(&res);
}

/* The compiled-in web/common/dash.js is the file in the source tree, byte for byte. */
static void test_common_is_source(void **state)
{
    fx *f = *state;
    const char *src = getenv("OPENSEED_SOURCE_DIR");
    char path[1024];
    os_http_client_res res;
    FILE *fp;
    long n;
    char *want;

    get(f, &res, "/dashboard/dash.js", NULL);
    assert_int_equal(res.status, 200);
    assert_string_equal(os_http_client_res_header(&res, "Content-Type"),
                        "text/javascript; charset=utf-8");
    assert_secured(&res);
    assert_non_null(src);
    snprintf(path, sizeof(path), "%s/web/common/dash.js", src);
    fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_true(n > 0);
    rewind(fp);
    want = malloc((size_t)n);
    assert_non_null(want);
    assert_int_equal(fread(want, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    assert_int_equal(res.body.len, (size_t)n);
    assert_memory_equal(res.body.data, want, (size_t)n);
    free(want);
    os_http_client_res_free(&res);
}

static void test_etag_304(void **state)
{
    fx *f = *state;
    os_http_client_res res;
    char etag[64];

    get(f, &res, "/dashboard/dash.js", NULL);
    assert_int_equal(res.status, 200);
    snprintf(etag, sizeof(etag), "%s", os_http_client_res_header(&res, "ETag"));
    assert_true(strlen(etag) == 22 && etag[0] == '"' && etag[21] == '"');
    os_http_client_res_free(&res);

    get(f, &res, "/dashboard/dash.js", etag);
    assert_int_equal(res.status, 304);
    assert_int_equal(res.body.len, 0);
    os_http_client_res_free(&res);

    get(f, &res, "/dashboard/dash.js", "\"something-else\"");
    assert_int_equal(res.status, 200);
    assert_true(res.body.len > 0);
    os_http_client_res_free(&res);
}

static void test_unknown_404(void **state)
{
    fx *f = *state;
    const char *paths[] = {"/dashboard/nope.js", "/dashboard/..%2fCMakeLists.txt",
                           "/dashboard/web/common/dash.js", "/dashboard/dash.js/"};

    for (size_t i = 0; i < 4; i++) {
        os_http_client_res res;
        get(f, &res, paths[i], NULL);
        assert_int_equal(res.status, 404);
        assert_non_null(strstr((const char *)res.body.data, "\"not_found\""));
        os_http_client_res_free(&res);
    }
}

/* No embedded common file names another origin: no fonts, scripts or styles from elsewhere. */
static void test_no_foreign_urls(void **state)
{
    (void)state;
    assert_true(os_web_common_n >= 2);
    for (size_t i = 0; i < os_web_common_n; i++) {
        const char *d = (const char *)os_web_common[i].data;
        assert_int_equal(d[os_web_common[i].len], '\0');
        assert_null(strstr(d, "https://"));
        /* the SVG namespace is a name, not a request */
        for (const char *p = strstr(d, "http://"); p != NULL; p = strstr(p + 1, "http://"))
            assert_int_equal(strncmp(p, "http://www.w3.org/2000/svg", 26), 0);
        assert_null(strstr(d, "@import"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_before_common, setup, teardown),
        cmocka_unit_test_setup_teardown(test_common_is_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_etag_304, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_404, setup, teardown),
        cmocka_unit_test(test_no_foreign_urls),
    };
    return cmocka_run_group_tests(tests, tu_init, NULL);
}
