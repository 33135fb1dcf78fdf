/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Serving the dashboards' compiled-in files (web.h): a lookup by name in the daemon's own table,
 * then the common one, and the headers that make the pages safe to show untrusted strings in.
 */
#include "openseed/web.h"

#include <string.h>

static const os_web_asset *find(const os_web_asset *t, size_t n, const char *name)
{
    for (size_t i = 0; t != NULL && i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

void os_web_serve(const os_http_request *req, os_http_response *res, const os_web_asset *own,
                  size_t n_own)
{
    static const char *const hdr[][2] = {
        {"Content-Security-Policy", OS_WEB_CSP},
        {"X-Content-Type-Options", "nosniff"},
        {"X-Frame-Options", "DENY"},
        {"Referrer-Policy", "no-referrer"},
        {"Cache-Control", "no-cache"},
    };
    const char *path = os_http_req_path(req);
    const char *name = "";
    const char *inm;
    const os_web_asset *a;

    /* "/dashboard" itself, or what follows "/dashboard/" */
    if (strncmp(path, "/dashboard/", 11) == 0)
        name = path + 11;
    if (name[0] == '\0')
        name = "index.html";
    a = find(own, n_own, name);
    if (a == NULL)
        a = find(os_web_common, os_web_common_n, name);
    if (a == NULL) {
        os_http_res_error(res, 404, "invalid_request_error", "not_found",
                          "no such dashboard file; the dashboard is at /dashboard/");
        return;
    }
    for (size_t i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++)
        if (os_http_res_header(res, hdr[i][0], hdr[i][1]) != OS_OK) {
            os_http_res_error(res, 500, "server_error", NULL, "cannot build the answer");
            return;
        }
    if (os_http_res_header(res, "ETag", a->etag) != OS_OK) {
        os_http_res_error(res, 500, "server_error", NULL, "cannot build the answer");
        return;
    }
    inm = os_http_req_header(req, "If-None-Match");
    if (inm != NULL && strstr(inm, a->etag) != NULL) {
        os_http_res_status(res, 304);
        return;
    }
    if (os_http_res_body(res, a->type, a->data, a->len) != OS_OK) {
        os_http_res_error(res, 500, "server_error", NULL, "cannot build the answer");
        return;
    }
    os_http_res_status(res, 200);
}
