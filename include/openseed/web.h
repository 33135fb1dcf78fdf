/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The dashboards' static files, compiled into the binaries (cmake/embed.cmake turns web/ into
 * os_web_asset tables), and the handler that serves them under /dashboard/. libcommon holds the
 * parts both dashboards share (web/common: the style sheet and the script library); each daemon
 * holds its own page and script.
 *
 * What a served file carries: its content type, a strong ETag (a 304 answers a matching
 * If-None-Match), Cache-Control: no-cache (the browser revalidates, so a new binary's pages show
 * at once), and a Content-Security-Policy that lets a page load scripts, styles and data only from
 * its own origin, with no inline script, no framing and no form posts: the pages show strings that
 * sellers and registries choose, and must never run them.
 */
#ifndef OPENSEED_WEB_H
#define OPENSEED_WEB_H

#include <stddef.h>

#include "openseed/http.h"

typedef struct os_web_asset {
    const char *name; /* base name, e.g. "index.html" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted */
} os_web_asset;

/* web/common, in libcommon. */
extern const os_web_asset os_web_common[];
extern const size_t os_web_common_n;

/* The policy every dashboard file is served with. */
#define OS_WEB_CSP                                                                                \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "             \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/*
 * Serves a GET for "/dashboard" or "/dashboard/<name>" (os_http_req_path_rest() of a
 * "/dashboard/ *" route gives name): "" and "index.html" are own's index.html; other names are
 * looked up in own, then in os_web_common. An unknown name is a 404 in the OpenAI error shape.
 * own may be NULL when n_own is 0.
 */
void os_web_serve(const os_http_request *req, os_http_response *res, const os_web_asset *own,
                  size_t n_own);

#endif
