/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: the OHTTP envelope (ohttp.h) on both sides of the wire. A buyer parses the
 * key configuration a seller publishes in its record (os_ohttp_keyconfig_parse); a seller's gateway
 * reads the key id and decapsulates the body of POST /v1/infer with its own key
 * (os_ohttp_request_key_id, os_ohttp_request_decap, as serve.c does); a buyer decapsulates a whole
 * response (os_ohttp_response_decap) or reads a chunked one through a receiver fed in arbitrary
 * pieces (os_ohttp_chunk_receiver_feed, as infer.c does). Keys are fixed so the seeds, real
 * messages made by the library, stay valid: the gateway key is derived from a constant seed and the
 * client context comes from one encapsulation with a fixed ephemeral key, both set up once and only
 * read afterwards. Checked beyond "no crash, no leak": sizes the header promises, a chunk receiver
 * that stays failed after an error, a stream that completes only with its final chunk, and the same
 * result whatever the split points (the whole stream fed at once against the input's split sizes).
 * Input: [mode] then the message; for chunked responses [mode][flags][n] n split sizes, stream.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/hpke.h"
#include "openseed/infer.h"
#include "openseed/init.h"
#include "openseed/ohttp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (64 * 1024)
#define SMALL_CHUNK 64 /* a receiver cap the fuzzer can exceed within MAX_INPUT */

/* The plaintext of the fixed request whose context reads the responses (any JSON body). */
#define FIXED_REQUEST "{\"model\":\"echo-1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"

/* Set up once, then only read. */
typedef struct keys {
    uint8_t sk[OS_HPKE_NSK], pk[OS_HPKE_NPK]; /* the gateway's key pair */
    uint8_t key_id;                           /* as seller.c picks it: pk[0] */
    os_ohttp_ctx client;                      /* the client side of FIXED_REQUEST */
} keys;

static const keys *setup(void)
{
    static keys k;
    static int done;
    uint8_t seed[32], eseed[32], skE[OS_HPKE_NSK], pkE[OS_HPKE_NPK];
    uint8_t req[sizeof(FIXED_REQUEST) + OS_OHTTP_REQUEST_OVERHEAD];
    os_ohttp_keyconfig kc;
    size_t req_len;

    if (done)
        return &k;
    if (os_init() != OS_OK)
        abort();
    for (int i = 0; i < 32; i++) {
        seed[i] = (uint8_t)(0x40 + i);  /* the gateway key seed */
        eseed[i] = (uint8_t)(0x80 + i); /* the client's ephemeral key seed */
    }
    if (os_hpke_derive_keypair(k.sk, k.pk, seed, sizeof(seed)) != OS_OK ||
        os_hpke_derive_keypair(skE, pkE, eseed, sizeof(eseed)) != OS_OK)
        abort();
    k.key_id = k.pk[0];
    kc.key_id = k.key_id;
    memcpy(kc.pk, k.pk, sizeof(kc.pk));
    if (os_ohttp_request_encap_with(&k.client, req, sizeof(req), &req_len, &kc,
                                    (const uint8_t *)FIXED_REQUEST, strlen(FIXED_REQUEST), skE,
                                    pkE) != OS_OK)
        abort();
    done = 1;
    return &k;
}

static void fuzz_keyconfig(const uint8_t *in, size_t len)
{
    os_ohttp_keyconfig kc;

    if (len > OS_OHTTP_KEYCONFIG_MAX)
        return;
    (void)os_ohttp_keyconfig_parse(&kc, in, len);
}

/* As serve.c: the key id first, then a decap into a buffer as long as the body. */
static void fuzz_request(const keys *k, const uint8_t *in, size_t len)
{
    os_ohttp_ctx ctx;
    uint8_t key_id, *pt;
    size_t pt_len = 0;
    os_err e;

    memset(&ctx, 0, sizeof(ctx));
    if (os_ohttp_request_key_id(&key_id, in, len) != OS_OK || key_id != k->key_id)
        return;
    if ((pt = malloc(len)) == NULL)
        return;
    e = os_ohttp_request_decap(&ctx, pt, len, &pt_len, k->key_id, k->sk, k->pk, in, len);
    if (e == OS_OK && (len < OS_OHTTP_REQUEST_OVERHEAD || pt_len != len - OS_OHTTP_REQUEST_OVERHEAD))
        abort();
    os_ohttp_ctx_clear(&ctx);
    free(pt);
}

/* As infer.c's rx_whole: a plaintext buffer as long as the body. */
static void fuzz_response(const keys *k, const uint8_t *in, size_t len)
{
    uint8_t *pt;
    size_t pt_len = 0;

    if (len < OS_OHTTP_RESPONSE_OVERHEAD || (pt = malloc(len)) == NULL)
        return;
    /* the client context is only read by decap: the header takes it non-const for symmetry */
    if (os_ohttp_response_decap((os_ohttp_ctx *)&k->client, pt, len, &pt_len, in, len) == OS_OK &&
        pt_len != len - OS_OHTTP_RESPONSE_OVERHEAD)
        abort();
    free(pt);
}

/* What a receiver produced: a digest of every chunk in order, and how it ended. */
typedef struct outcome {
    uint64_t digest;
    size_t chunks, bytes;
    os_err err;
    int done;
} outcome;

static void digest(uint64_t *h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *h ^= p[i];
        *h *= 0x100000001b3ULL; /* FNV-1a */
    }
    *h ^= 0xff; /* chunk boundary */
    *h *= 0x100000001b3ULL;
}

/* Feeds in[0..len) to r as infer.c's rx_feed does; eos: this piece ends the stream. Returns 0 to
 * go on, 1 once the receiver failed or finished. */
static int feed_piece(os_ohttp_chunk_receiver *r, uint8_t *pt, size_t max_chunk, outcome *o,
                      const uint8_t *in, size_t len, int eos)
{
    for (;;) {
        os_ohttp_chunk_status st;
        size_t pt_len = 0, used = 0;
        os_err e = os_ohttp_chunk_receiver_feed(r, &st, pt, max_chunk, &pt_len, &used, in, len, eos);

        if (e != OS_OK) {
            os_ohttp_chunk_status st2;
            size_t l2, u2;
            /* an error poisons the receiver: the same error again, even for no input */
            if (os_ohttp_chunk_receiver_feed(r, &st2, pt, max_chunk, &l2, &u2, NULL, 0, 1) != e)
                abort();
            o->err = e;
            return 1;
        }
        if (used > len || pt_len > max_chunk)
            abort();
        in += used;
        len -= used;
        if (st == OS_OHTTP_CHUNK_NEED_MORE) {
            /* all input consumed, and a stream that ended is never merely short of data */
            if (len != 0 || eos)
                abort();
            return 0;
        }
        if (st == OS_OHTTP_CHUNK_AVAILABLE && pt_len == 0) /* empty non-final chunks are refused */
            abort();
        digest(&o->digest, pt, pt_len);
        o->chunks++;
        o->bytes += pt_len;
        if (st == OS_OHTTP_CHUNK_DONE) {
            o->done = 1;
            if (len != 0) { /* nothing may follow the final chunk */
                if (os_ohttp_chunk_receiver_feed(r, &st, pt, max_chunk, &pt_len, &used, in, len,
                                                 eos) != OS_ERR_INVALID)
                    abort();
                o->err = OS_ERR_INVALID;
            }
            return 1;
        }
        if (st != OS_OHTTP_CHUNK_AVAILABLE)
            abort();
    }
}

/* Runs one receiver over stream, split at the sizes in splits[0..n) (cycled; n 0: all at once). */
static void run_receiver(const keys *k, outcome *o, size_t max_chunk, uint8_t *pt,
                         const uint8_t *splits, size_t n, const uint8_t *stream, size_t len)
{
    os_ohttp_chunk_receiver *r = NULL;
    size_t off = 0, i = 0, zeros = 0;

    memset(o, 0, sizeof(*o));
    o->digest = 0xcbf29ce484222325ULL;
    if (os_ohttp_chunk_receiver_new(&r, &k->client, max_chunk) != OS_OK)
        abort();
    for (;;) {
        size_t piece = n == 0 ? len - off : splits[i++ % n];
        /* empty pieces are fed too (a read that returned nothing), but never forever */
        zeros = piece == 0 ? zeros + 1 : 0;
        if (piece > len - off || zeros > n)
            piece = len - off;
        int eos = off + piece == len;
        if (feed_piece(r, pt, max_chunk, o, stream + off, piece, eos) || eos)
            break;
        off += piece;
    }
    os_ohttp_chunk_receiver_free(r);
}

static void fuzz_chunked(const keys *k, const uint8_t *in, size_t len)
{
    size_t max_chunk, n;
    const uint8_t *splits;
    outcome whole, split;
    uint8_t *pt;

    if (len < 2)
        return;
    max_chunk = (in[0] & 1) ? SMALL_CHUNK : OS_INFER_MAX_CHUNK; /* infer.c's cap, or a small one */
    n = in[1] % 17;
    in += 2;
    len -= 2;
    if (len < n)
        return;
    splits = in;
    in += n;
    len -= n;
    if ((pt = malloc(max_chunk)) == NULL)
        return;
    run_receiver(k, &whole, max_chunk, pt, NULL, 0, in, len);
    run_receiver(k, &split, max_chunk, pt, splits, n, in, len);
    /* the stream is complete exactly when the final chunk authenticated */
    if (whole.done == 0 && whole.err == OS_OK)
        abort();
    if (whole.digest != split.digest || whole.chunks != split.chunks ||
        whole.bytes != split.bytes || whole.err != split.err || whole.done != split.done)
        abort();
    if (whole.bytes > len)
        abort();
    free(pt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const keys *k;

    if (size < 1 || size > MAX_INPUT)
        return 0;
    k = setup();
    switch (data[0] % 4) {
    case 0:
        fuzz_keyconfig(data + 1, size - 1);
        break;
    case 1:
        fuzz_request(k, data + 1, size - 1);
        break;
    case 2:
        fuzz_response(k, data + 1, size - 1);
        break;
    default:
        fuzz_chunked(k, data + 1, size - 1);
        break;
    }
    return 0;
}
