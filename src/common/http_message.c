/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The message half of http.h: what a handler reads and writes. Request accessors over the view the
 * server fills in, os_http_req_json's capped parse with its OpenAI-shaped 400/413, and the response
 * builders, which check header names and values (no header injection) and copy everything into
 * the response's own buffers: the body, and an arena for the header names and values, both capped.
 * Nothing here touches a socket: http_server.c fills the request view and sends the response.
 */
#include "http_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "openseed/json.h"
#include "openseed/money.h"

#define RES_ARENA_MAX ((size_t)64 << 10)
#define RES_BODY_MAX ((size_t)256 << 20)

os_err os_http_grow(char **buf, size_t *cap, size_t need, size_t max)
{
    size_t ncap;
    char *p;

    if (need <= *cap)
        return OS_OK;
    if (need > max)
        return OS_ERR_TOOBIG;
    ncap = *cap < 256 ? 256 : *cap;
    while (ncap < need)
        ncap = ncap > max / 2 ? max : ncap * 2;
    p = realloc(*buf, ncap);
    if (p == NULL)
        return OS_ERR_NOMEM;
    *buf = p;
    *cap = ncap;
    return OS_OK;
}

/* ---- response building ---- */

/* A body replaces a stream the handler set up earlier. */
static void drop_stream(os_http_response *res)
{
    os_http_stream_abandon(res->stream);
    res->stream = NULL;
}

void os_http_res_reset(os_http_response *res)
{
    drop_stream(res);
    res->status = 0;
    res->failed = false;
    res->body_len = 0;
    res->arena_len = 0;
    res->n_h = 0;
    res->ctype = -1;
}

/* Copies s into the arena; its offset, or -1 when the arena is full. */
static int64_t arena_put(os_http_response *res, const char *s)
{
    size_t n = strlen(s) + 1;
    size_t at = res->arena_len;

    if (n > RES_ARENA_MAX ||
        os_http_grow(&res->arena, &res->arena_cap, at + n, RES_ARENA_MAX) != OS_OK)
        return -1;
    memcpy(res->arena + at, s, n);
    res->arena_len += n;
    return (int64_t)at;
}

static bool token_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static bool header_name_ok(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!token_char((unsigned char)*s))
            return false;
    return true;
}

/* Visible characters, spaces, tabs and obs-text; never CR or LF (no header injection). */
static bool header_value_ok(const char *s)
{
    if (s == NULL)
        return false;
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return true;
}

static os_err set_ctype(os_http_response *res, const char *content_type)
{
    if (content_type == NULL) {
        res->ctype = -1;
        return OS_OK;
    }
    if (!header_value_ok(content_type))
        return OS_ERR_INVALID;
    res->ctype = arena_put(res, content_type);
    return res->ctype < 0 ? OS_ERR_TOOBIG : OS_OK;
}

void os_http_res_status(os_http_response *res, unsigned status)
{
    if (res != NULL)
        res->status = status;
}

os_err os_http_res_header(os_http_response *res, const char *name, const char *value)
{
    int64_t n, v;

    if (res == NULL || !header_name_ok(name) || !header_value_ok(value))
        return OS_ERR_INVALID;
    /* MHD frames the body itself */
    if (strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Transfer-Encoding") == 0)
        return OS_ERR_INVALID;
    if (strcasecmp(name, "Content-Type") == 0)
        return set_ctype(res, value);
    if (res->n_h == HTTP_MAX_RES_HEADERS)
        return OS_ERR_TOOBIG;
    n = arena_put(res, name);
    v = n < 0 ? -1 : arena_put(res, value);
    if (v < 0)
        return OS_ERR_TOOBIG;
    res->h[res->n_h].name = (uint32_t)n;
    res->h[res->n_h].value = (uint32_t)v;
    res->n_h++;
    return OS_OK;
}

os_err os_http_res_body(os_http_response *res, const char *content_type, const void *data,
                        size_t len)
{
    os_err err;

    if (res == NULL || (data == NULL && len > 0))
        return OS_ERR_INVALID;
    err = os_http_grow(&res->body, &res->body_cap, len + 1, RES_BODY_MAX);
    if (err == OS_OK)
        err = set_ctype(res, content_type);
    if (err != OS_OK) {
        res->failed = true;
        return err;
    }
    if (len > 0)
        memcpy(res->body, data, len);
    res->body_len = len;
    res->failed = false;
    drop_stream(res);
    return OS_OK;
}

static int dump_cb(const char *buf, size_t size, void *data)
{
    os_http_response *res = data;
    if (os_http_grow(&res->body, &res->body_cap, res->body_len + size + 1, RES_BODY_MAX) != OS_OK)
        return -1;
    memcpy(res->body + res->body_len, buf, size);
    res->body_len += size;
    return 0;
}

os_err os_http_res_json(os_http_response *res, unsigned status, json_t *v)
{
    os_err err = OS_OK;

    if (res == NULL || v == NULL) {
        json_decref(v);
        return OS_ERR_INVALID;
    }
    res->body_len = 0;
    if (json_dump_callback(v, dump_cb, res, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
        err = OS_ERR_NOMEM;
    else
        err = set_ctype(res, "application/json");
    json_decref(v);
    if (err != OS_OK) {
        res->failed = true;
        return err;
    }
    res->status = status;
    res->failed = false;
    drop_stream(res);
    return OS_OK;
}

os_err os_http_res_stream(os_http_response *res, os_http_stream **out, unsigned status,
                          const char *content_type)
{
    os_http_stream *st;
    os_err err;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (res == NULL || res->streams == NULL || status < 100 || status > 599)
        return OS_ERR_INVALID;
    err = set_ctype(res, content_type);
    if (err != OS_OK)
        return err;
    err = os_http_stream_new(res->streams, &st);
    if (err != OS_OK)
        return err;
    drop_stream(res);
    res->stream = st;
    res->status = status;
    res->failed = false;
    res->body_len = 0;
    *out = st;
    return OS_OK;
}

void os_http_res_error(os_http_response *res, unsigned status, const char *type, const char *code,
                       const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    char *body;

    if (res == NULL)
        return;
    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        snprintf(msg, sizeof(msg), "error");
    va_end(ap);
    res->status = status;
    body = os_json_error_body(msg, type != NULL ? type : "server_error", code);
    if (body == NULL || os_http_res_body(res, "application/json", body, strlen(body)) != OS_OK)
        res->failed = true;
    free(body);
}

/* ---- request accessors ---- */

const char *os_http_req_method(const os_http_request *r)
{
    return r != NULL ? r->method : NULL;
}

const char *os_http_req_path(const os_http_request *r)
{
    return r != NULL ? r->path : NULL;
}

const char *os_http_req_path_rest(const os_http_request *r)
{
    return r != NULL ? r->rest : NULL;
}

const char *os_http_req_query(const os_http_request *r, const char *key)
{
    if (r == NULL || key == NULL)
        return NULL;
    return MHD_lookup_connection_value(r->mc, MHD_GET_ARGUMENT_KIND, key);
}

os_err os_http_req_query_uint(const os_http_request *r, const char *key, uint64_t lo, uint64_t hi,
                              uint64_t dflt, uint64_t *out)
{
    const char *v = os_http_req_query(r, key);
    uint64_t n;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = dflt;
    if (v == NULL)
        return OS_OK;
    if (os_money_parse_units(&n, v) != OS_OK || n < lo || n > hi)
        return OS_ERR_INVALID;
    *out = n;
    return OS_OK;
}

const char *os_http_req_header(const os_http_request *r, const char *name)
{
    if (r == NULL || name == NULL)
        return NULL;
    return MHD_lookup_connection_value(r->mc, MHD_HEADER_KIND, name);
}

const char *os_http_req_body(const os_http_request *r, size_t *len)
{
    if (r == NULL) {
        if (len != NULL)
            *len = 0;
        return "";
    }
    if (len != NULL)
        *len = r->body_len;
    return r->body;
}

const char *os_http_req_client(const os_http_request *r)
{
    return r != NULL ? r->client : NULL;
}

os_err os_http_req_json(json_t **out, const os_http_request *req, os_http_response *res,
                        int max_depth)
{
    char err[OS_JSON_ERR_LEN];
    os_err rc;

    if (out == NULL)
        return OS_ERR_INVALID;
    *out = NULL;
    if (req == NULL || res == NULL)
        return OS_ERR_INVALID;
    if (req->body_len == 0) {
        os_http_res_error(res, 400, "invalid_request_error", NULL,
                          "request body must be a JSON object");
        return OS_ERR_INVALID;
    }
    rc = os_json_parse(out, req->body, req->body_len, req->max_body, max_depth, err, sizeof(err));
    if (rc == OS_OK)
        return OS_OK;
    /* TOOBIG from the parser is the depth cap: the body itself already fit under max_body */
    if (req->body_len > req->max_body)
        os_http_res_error(res, 413, "invalid_request_error", NULL, "request body too large: %s",
                          err);
    else
        os_http_res_error(res, 400, "invalid_request_error", NULL, "invalid request body: %s", err);
    return rc;
}
