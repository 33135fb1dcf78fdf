/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto_bench: the unit cost of every cryptographic step on the path of one paid request
 * (issue #8, item 5), in operations per second, measured with libcommon's own functions called
 * the way the daemons call them: vouchers signed and verified against a domain separator computed
 * once per escrow, the OHTTP request sealed with a fresh ephemeral key as os_infer_call_new does
 * and opened as the seller's /v1/infer does, the credential header made and checked as the
 * buyer's wallet and the seller's handler do, response keying and one SSE-sized chunk. Rows that
 * are not on today's hot path (the full digest, HPKE seal/open alone, the precomputed-nonce prover,
 * X25519 keygen) are there to show where each cost comes from. Before any timing, every path is
 * run once and checked, including that a tampered input fails, so a broken path cannot be timed.
 * Single-threaded; prints numbers and never passes or fails on them.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "openseed/credential.h"
#include "openseed/ct.h"
#include "openseed/eip712.h"
#include "openseed/err.h"
#include "openseed/escrow.h"
#include "openseed/hex.h"
#include "openseed/hpke.h"
#include "openseed/infer.h"
#include "openseed/init.h"
#include "openseed/keccak.h"
#include "openseed/ohttp.h"
#include "openseed/secp.h"

#define BATCHES 5
#define REQ_LEN 1024  /* the request plaintext: a typical chat request */
#define CHUNK_LEN 200 /* one SSE event of a streamed answer */
#define KEY_ID 1
#define CHAIN_ID 8453
#define OUT_CAP 2048

/* Which side makes a row's call once per paid request (summed in the per-request rows). */
enum { PR_NONE = 0, PR_BUYER = 1, PR_SELLER = 2, PR_BOTH = 3 };

/* Everything the operations read and write, set up and checked before any timing. */
typedef struct fixture {
    /* vouchers: the channel signer's key and the escrow's domain, as wallet.c and chans.c keep */
    uint8_t priv[OS_SECP_PRIVKEY_LEN];
    uint8_t signer[OS_ADDRESS_LEN];
    uint8_t escrow[20];
    uint8_t domain[32];
    os_voucher v_sign;   /* re-signed by the sign row, its nonce moving on */
    os_voucher v_signed; /* a valid voucher, verified by the verify row */
    /* the seller's gateway key and the key config the buyer parsed from its record */
    uint8_t gw_sk[OS_HPKE_NSK], gw_pk[OS_HPKE_NPK];
    os_ohttp_keyconfig kc;
    uint8_t req_pt[REQ_LEN];
    uint8_t env[REQ_LEN + OS_OHTTP_REQUEST_OVERHEAD];
    size_t env_len;
    os_ohttp_ctx cli, gw; /* both ends of the exchange env belongs to */
    uint8_t resp_nonce[OS_OHTTP_NONCE_LEN];
    os_ohttp_chunk_sender cs; /* keyed from gw: the chunk-seal row */
    os_ohttp_ctx cli2, gw2;   /* a second exchange for the seal + open pair */
    os_ohttp_chunk_sender ps;
    os_ohttp_chunk_receiver *pr;
    uint8_t chunk[CHUNK_LEN];
    uint8_t *chunk_pt;  /* OS_INFER_MAX_CHUNK bytes, as os_infer_call_send gives the receiver */
    os_hpke_ctx hs, hr; /* an established HPKE pair for seal/open alone */
    uint8_t hct[REQ_LEN + OS_HPKE_NT];
    size_t hct_len;
    /* the buyer's identity credential for this channel and voucher */
    os_cred_secret *cred;
    uint8_t commit[OS_CRED_COMMITMENT_LEN], nf[OS_CRED_NULLIFIER_LEN], proof[OS_CRED_PROOF_LEN];
    os_cred_nonce nonce_tpl;
    char hdr[OS_CRED_HEADER_LEN + 1];
    /* outputs the timed calls write */
    uint8_t in32[32];
    uint8_t sink[64];
    uint8_t sk_out[OS_HPKE_NSK], pk_out[OS_HPKE_NPK];
    uint8_t proof_out[OS_CRED_PROOF_LEN];
    char hdr_out[OS_CRED_HEADER_LEN + 1];
    uint8_t out[OUT_CAP];
} fixture;

/* ------------------------------------------------------------------ checks */

static void die(const char *what)
{
    fprintf(stderr, "crypto_bench: %s\n", what);
    exit(1);
}

static void must(os_err e, const char *what)
{
    if (e != OS_OK) {
        fprintf(stderr, "crypto_bench: %s failed: %s\n", what, os_strerror(e));
        exit(1);
    }
}

/* A tampered input must be refused, or the bench would be timing a check that checks nothing. */
static void must_fail(os_err e, const char *what)
{
    if (e == OS_OK) {
        fprintf(stderr, "crypto_bench: %s was accepted\n", what);
        exit(1);
    }
}

/* ------------------------------------------------------------------ operations */

static void op_keccak_32(fixture *f)
{
    os_keccak256(f->sink, f->in32, sizeof(f->in32));
}

static void op_keccak_1k(fixture *f)
{
    os_keccak256(f->sink, f->req_pt, REQ_LEN);
}

static void op_digest_ds(fixture *f)
{
    os_voucher_digest_ds(f->sink, &f->v_signed, f->domain);
}

static void op_digest_full(fixture *f)
{
    os_voucher_digest(f->sink, &f->v_signed, CHAIN_ID, f->escrow);
}

static void op_voucher_sign(fixture *f)
{
    f->v_sign.nonce++;
    f->v_sign.cumulative_amount += 250;
    must(os_voucher_sign_ds(&f->v_sign, f->priv, f->domain), "os_voucher_sign_ds");
}

static void op_voucher_verify(fixture *f)
{
    must(os_voucher_verify_ds(&f->v_signed, f->signer, f->domain), "os_voucher_verify_ds");
}

static void op_x25519_keygen(fixture *f)
{
    must(os_hpke_keypair(f->sk_out, f->pk_out), "os_hpke_keypair");
}

static void op_ohttp_encap(fixture *f)
{
    os_ohttp_ctx c;
    size_t n;

    memset(&c, 0, sizeof(c));
    must(os_ohttp_request_encap(&c, f->out, sizeof(f->out), &n, &f->kc, f->req_pt, REQ_LEN),
         "os_ohttp_request_encap");
    os_ohttp_ctx_clear(&c);
}

static void op_ohttp_decap(fixture *f)
{
    os_ohttp_ctx c;
    uint8_t key_id;
    size_t n;

    memset(&c, 0, sizeof(c));
    must(os_ohttp_request_key_id(&key_id, f->env, f->env_len), "os_ohttp_request_key_id");
    must(os_ohttp_request_decap(&c, f->out, sizeof(f->out), &n, key_id, f->gw_sk, f->gw_pk, f->env,
                                f->env_len),
         "os_ohttp_request_decap");
    if (n != REQ_LEN)
        die("os_ohttp_request_decap gave the wrong length");
    os_ohttp_ctx_clear(&c);
}

static void op_hpke_seal(fixture *f)
{
    size_t n;
    must(os_hpke_seal(&f->hs, f->out, sizeof(f->out), &n, NULL, 0, f->req_pt, REQ_LEN),
         "os_hpke_seal");
}

/* The receiver's sequence number (a public field) is rewound so the one sealed message opens
 * every time; the work of an open does not depend on it. */
static void op_hpke_open(fixture *f)
{
    size_t n;
    f->hr.seq = 0;
    must(os_hpke_open(&f->hr, f->out, sizeof(f->out), &n, NULL, 0, f->hct, f->hct_len),
         "os_hpke_open");
}

/* The gateway keys one response per request; `responded` (public, for tests) is reset so the same
 * decapsulated request can be keyed again. Each keying draws a fresh response nonce, as
 * answer.c's os_ohttp_chunk_sender_init does. */
static void op_keying_seller(fixture *f)
{
    os_ohttp_chunk_sender s;
    uint8_t nonce[OS_OHTTP_NONCE_LEN];

    f->gw.responded = 0;
    must(os_ohttp_chunk_sender_init(&s, nonce, &f->gw), "os_ohttp_chunk_sender_init");
    os_ohttp_chunk_sender_clear(&s);
}

/* What os_infer_call_send does for a streamed answer: a receiver with the infer module's chunk cap,
 * keyed when the response nonce arrives, freed (and its buffer wiped) at the end. */
static void op_keying_buyer(fixture *f)
{
    os_ohttp_chunk_receiver *r;
    os_ohttp_chunk_status st;
    size_t n, used;

    must(os_ohttp_chunk_receiver_new(&r, &f->cli, OS_INFER_MAX_CHUNK),
         "os_ohttp_chunk_receiver_new");
    must(os_ohttp_chunk_receiver_feed(r, &st, f->chunk_pt, OS_INFER_MAX_CHUNK, &n, &used,
                                      f->resp_nonce, sizeof(f->resp_nonce), 0),
         "os_ohttp_chunk_receiver_feed (nonce)");
    if (st != OS_OHTTP_CHUNK_NEED_MORE || used != sizeof(f->resp_nonce))
        die("the chunk receiver did not take the response nonce");
    os_ohttp_chunk_receiver_free(r);
}

static void op_chunk_seal(fixture *f)
{
    size_t n;
    must(os_ohttp_chunk_seal(&f->cs, f->out, sizeof(f->out), &n, f->chunk, CHUNK_LEN),
         "os_ohttp_chunk_seal");
}

static void op_chunk_seal_open(fixture *f)
{
    os_ohttp_chunk_status st;
    size_t n, m, used;

    must(os_ohttp_chunk_seal(&f->ps, f->out, sizeof(f->out), &n, f->chunk, CHUNK_LEN),
         "os_ohttp_chunk_seal");
    must(os_ohttp_chunk_receiver_feed(f->pr, &st, f->chunk_pt, OS_INFER_MAX_CHUNK, &m, &used,
                                      f->out, n, 0),
         "os_ohttp_chunk_receiver_feed");
    if (st != OS_OHTTP_CHUNK_AVAILABLE || used != n || m != CHUNK_LEN)
        die("the chunk receiver did not open the chunk");
}

static void op_cred_precompute(fixture *f)
{
    os_cred_nonce n;
    (void)f;
    must(os_cred_precompute(&n), "os_cred_precompute");
    os_cred_nonce_wipe(&n);
}

/* Each proof takes a copy of one precomputed nonce, so the precomputation (the previous row) is
 * not timed here. Reusing a nonce would leak the secret of a real buyer; here the secret is a
 * throwaway and every proof is over the same statement, so the proofs are identical anyway. */
static void op_cred_prove_with(fixture *f)
{
    os_cred_nonce n = f->nonce_tpl;
    must(os_cred_prove_with(f->proof_out, &n, f->cred, f->nf, f->v_signed.channel_id,
                            f->v_signed.metadata_hash),
         "os_cred_prove_with");
}

static void op_cred_prove(fixture *f)
{
    must(os_cred_prove(f->proof_out, f->cred, f->nf, f->v_signed.channel_id,
                       f->v_signed.metadata_hash),
         "os_cred_prove");
}

static void op_cred_header_make(fixture *f)
{
    must(os_cred_header_make(f->hdr_out, sizeof(f->hdr_out), NULL, f->cred, f->v_signed.channel_id,
                             f->v_signed.nonce, f->v_signed.metadata_hash),
         "os_cred_header_make");
}

/* The buyer's call: a nonce from its os_cred_pool (made on the pool's thread, so not timed here;
 * a copy of one template, as op_cred_prove_with explains). */
static void op_cred_header_make_pooled(fixture *f)
{
    os_cred_nonce n = f->nonce_tpl;
    must(os_cred_header_make(f->hdr_out, sizeof(f->hdr_out), &n, f->cred, f->v_signed.channel_id,
                             f->v_signed.nonce, f->v_signed.metadata_hash),
         "os_cred_header_make");
}

static void op_cred_header_decode(fixture *f)
{
    uint8_t c[OS_CRED_COMMITMENT_LEN], nf[OS_CRED_NULLIFIER_LEN], proof[OS_CRED_PROOF_LEN];
    must(os_cred_header_decode(c, nf, proof, f->hdr, OS_CRED_HEADER_LEN), "os_cred_header_decode");
}

static void op_cred_verify(fixture *f)
{
    must(os_cred_verify(f->commit, f->nf, f->proof, f->v_signed.channel_id,
                        f->v_signed.metadata_hash),
         "os_cred_verify");
}

typedef struct op {
    const char *name;
    void (*fn)(fixture *f);
    int per_request; /* PR_*: which side makes this call once per paid request */
    const char *note;
} op;

/*
 * The per-request sums follow the code, not the design:
 *   buyer  (os_infer_call_new, by_wallet_pay's sign_and_store, os_infer_call_send):
 *          ohttp request encap, keccak256 of the envelope, voucher sign, cred header make
 *          with a nonce from the wallet's os_cred_pool (made off the request path; when the
 *          pool runs dry the nonce is made on the spot: the "cred header make" row), response
 *          keying;
 *   seller (serve.c's admit and check_credential, chans.c's sl_chans_pay, answer.c's job_main):
 *          keccak256 of the body, cred header decode, cred verify, ohttp request decap,
 *          voucher verify, response keying.
 * Per-chunk costs grow with the answer and are left out, as are JSON, base64 of the x402
 * headers, HTTP and SQLite. The envelope is 1,079 bytes: 8 Keccak blocks, as for 1 KiB.
 */
static const op ops[] = {
    {"keccak256 32 B", op_keccak_32, PR_NONE, "os_keccak256, one block"},
    {"keccak256 1 KiB", op_keccak_1k, PR_BOTH,
     "metadataHash of the 1079 B envelope (same 8 blocks)"},
    {"eip712 voucher digest (ds)", op_digest_ds, PR_NONE,
     "os_voucher_digest_ds: struct hash + 0x1901 digest, domain cached"},
    {"eip712 voucher digest (full)", op_digest_full, PR_NONE,
     "os_voucher_digest: also recomputes the domain separator"},
    {"voucher sign", op_voucher_sign, PR_BUYER,
     "os_voucher_sign_ds: digest + secp256k1 RFC 6979 sign"},
    {"voucher verify", op_voucher_verify, PR_SELLER,
     "os_voucher_verify_ds: digest + recover + compare"},
    {"x25519 keygen", op_x25519_keygen, PR_NONE, "os_hpke_keypair (reference)"},
    {"ohttp request encap 1 KiB", op_ohttp_encap, PR_BUYER,
     "os_ohttp_request_encap: fresh X25519 key, DH, key schedule, seal"},
    {"ohttp request decap 1 KiB", op_ohttp_decap, PR_SELLER,
     "key_id + os_ohttp_request_decap: DH, key schedule, open"},
    {"hpke seal 1 KiB", op_hpke_seal, PR_NONE, "os_hpke_seal on an established context"},
    {"hpke open 1 KiB", op_hpke_open, PR_NONE, "os_hpke_open on an established context"},
    {"response keying (seller)", op_keying_seller, PR_SELLER,
     "os_ohttp_chunk_sender_init + clear: export, HKDF, AES key"},
    {"response keying (buyer)", op_keying_buyer, PR_BUYER,
     "chunk_receiver_new(256 KiB cap) + nonce + free (wipes what was written)"},
    {"chunk seal 200 B", op_chunk_seal, PR_NONE, "os_ohttp_chunk_seal: per SSE event, seller"},
    {"chunk seal+open 200 B", op_chunk_seal_open, PR_NONE,
     "seal + receiver feed; the buyer's open is this minus seal"},
    {"cred precompute", op_cred_precompute, PR_NONE,
     "os_cred_precompute: one nonce, 2 scalar mults"},
    {"cred prove_with", op_cred_prove_with, PR_NONE,
     "os_cred_prove_with, precomputed nonce: hash + scalar ops"},
    {"cred prove", op_cred_prove, PR_NONE, "os_cred_prove: nonce made on the spot + proof"},
    {"cred header make", op_cred_header_make, PR_NONE,
     "os_cred_header_make(NULL nonce): nullifier + nonce + prove + base64"},
    {"cred header make (pooled nonce)", op_cred_header_make_pooled, PR_BUYER,
     "os_cred_header_make with a nonce from os_cred_pool: nullifier + prove + base64"},
    {"cred header decode", op_cred_header_decode, PR_SELLER,
     "os_cred_header_decode: base64 + split"},
    {"cred verify", op_cred_verify, PR_SELLER,
     "os_cred_verify: 1 fixed-base + 2 variable-base mults"},
};
#define N_OPS (sizeof(ops) / sizeof(ops[0]))

/* ------------------------------------------------------------------ set-up and self-check */

/* Writes head || filler words || tail, exactly len bytes. */
static void fill_text(uint8_t *out, size_t len, const char *head, const char *tail)
{
    static const char words[] = "Summarise these notes in three short bullet points please. ";
    size_t hl = strlen(head), tl = strlen(tail), wl = sizeof(words) - 1;

    if (hl + tl > len)
        die("fill_text: head and tail do not fit");
    memcpy(out, head, hl);
    for (size_t i = 0; i < len - hl - tl; i++)
        out[hl + i] = (uint8_t)words[i % wl];
    memcpy(out + len - tl, tail, tl);
}

static void check_keccak(void)
{
    /* Keccak-256 of "" and "abc" (the Keccak team's vectors; NOTES.md) */
    static const char *const want[2] = {
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
        "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"};
    uint8_t h[32], w[32];

    for (int i = 0; i < 2; i++) {
        os_keccak256(h, "abc", i == 0 ? 0 : 3);
        must(os_hex_decode_exact(w, sizeof(w), want[i]), "os_hex_decode_exact");
        if (!os_ct_eq(h, w, sizeof(h)))
            die("keccak256 does not match its known answer");
    }
}

static void setup_vouchers(fixture *f)
{
    uint8_t d1[32], d2[32], other[OS_ADDRESS_LEN];
    os_voucher bad;

    must(os_secp_keygen(f->priv), "os_secp_keygen");
    must(os_secp_address(f->signer, f->priv), "os_secp_address");
    memset(f->escrow, 0x11, sizeof(f->escrow));
    os_eip712_channels_domain(f->domain, CHAIN_ID, f->escrow);

    memset(&f->v_signed, 0, sizeof(f->v_signed));
    randombytes_buf(f->v_signed.channel_id, sizeof(f->v_signed.channel_id));
    f->v_signed.cumulative_amount = 1234567;
    f->v_signed.nonce = 42;
    os_keccak256(f->v_signed.metadata_hash, f->env, f->env_len);
    must(os_voucher_sign_ds(&f->v_signed, f->priv, f->domain), "os_voucher_sign_ds");
    f->v_sign = f->v_signed;

    os_voucher_digest_ds(d1, &f->v_signed, f->domain);
    os_voucher_digest(d2, &f->v_signed, CHAIN_ID, f->escrow);
    if (!os_ct_eq(d1, d2, sizeof(d1)))
        die("os_voucher_digest_ds and os_voucher_digest disagree");
    must(os_voucher_verify_ds(&f->v_signed, f->signer, f->domain), "os_voucher_verify_ds");
    must(os_voucher_verify(&f->v_signed, f->signer, CHAIN_ID, f->escrow), "os_voucher_verify");

    bad = f->v_signed;
    bad.cumulative_amount++;
    must_fail(os_voucher_verify_ds(&bad, f->signer, f->domain), "a voucher with a changed amount");
    bad = f->v_signed;
    bad.sig[40] ^= 0x01;
    must_fail(os_voucher_verify_ds(&bad, f->signer, f->domain), "a voucher with a changed sig");
    memcpy(other, f->signer, sizeof(other));
    other[0] ^= 0x80;
    must_fail(os_voucher_verify_ds(&f->v_signed, other, f->domain),
              "a voucher checked against another signer");
}

/* A request/response exchange: the buyer's encap of req_pt and the seller's decap of it. */
static void exchange(fixture *f, os_ohttp_ctx *cli, os_ohttp_ctx *gw, uint8_t *env, size_t cap,
                     size_t *env_len)
{
    uint8_t pt[REQ_LEN];
    size_t n;

    memset(cli, 0, sizeof(*cli));
    memset(gw, 0, sizeof(*gw));
    must(os_ohttp_request_encap(cli, env, cap, env_len, &f->kc, f->req_pt, REQ_LEN),
         "os_ohttp_request_encap");
    must(os_ohttp_request_decap(gw, pt, sizeof(pt), &n, KEY_ID, f->gw_sk, f->gw_pk, env, *env_len),
         "os_ohttp_request_decap");
    if (n != REQ_LEN || !os_ct_eq(pt, f->req_pt, REQ_LEN))
        die("the decapsulated request is not the one sent");
}

static void check_chunk_tamper(fixture *f)
{
    os_ohttp_ctx cli, gw;
    os_ohttp_chunk_sender s;
    os_ohttp_chunk_receiver *r;
    os_ohttp_chunk_status st;
    uint8_t nonce[OS_OHTTP_NONCE_LEN], env[sizeof(f->env)];
    size_t n, m, used, env_len;

    exchange(f, &cli, &gw, env, sizeof(env), &env_len);
    must(os_ohttp_chunk_sender_init(&s, nonce, &gw), "os_ohttp_chunk_sender_init");
    must(os_ohttp_chunk_receiver_new(&r, &cli, OS_INFER_MAX_CHUNK), "os_ohttp_chunk_receiver_new");
    must(os_ohttp_chunk_receiver_feed(r, &st, f->chunk_pt, OS_INFER_MAX_CHUNK, &m, &used, nonce,
                                      sizeof(nonce), 0),
         "os_ohttp_chunk_receiver_feed (nonce)");
    must(os_ohttp_chunk_seal(&s, f->out, sizeof(f->out), &n, f->chunk, CHUNK_LEN),
         "os_ohttp_chunk_seal");
    f->out[n / 2] ^= 0x01;
    must_fail(os_ohttp_chunk_receiver_feed(r, &st, f->chunk_pt, OS_INFER_MAX_CHUNK, &m, &used,
                                           f->out, n, 0),
              "a tampered response chunk");
    os_ohttp_chunk_receiver_free(r);
    os_ohttp_chunk_sender_clear(&s);
    os_ohttp_ctx_clear(&cli);
    os_ohttp_ctx_clear(&gw);
}

static void setup_ohttp(fixture *f)
{
    static const char req_head[] =
        "{\"api\":\"openai.chat\",\"service\":\"llama3.1-8b\",\"body\":{\"model\":\"llama3.1-8b\","
        "\"stream\":true,\"max_tokens\":512,\"messages\":[{\"role\":\"user\",\"content\":\"";
    static const char chunk_head[] =
        "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"choices\":"
        "[{\"index\":0,\"delta\":{\"content\":\"";
    uint8_t keys[OS_OHTTP_KEYCONFIG_LEN], pt[REQ_LEN], bad[sizeof(f->env)], info[] = "bench";
    uint8_t enc[OS_HPKE_NENC], other_sk[OS_HPKE_NSK], other_pk[OS_HPKE_NPK];
    os_ohttp_chunk_status st;
    os_ohttp_ctx c;
    size_t n, used, env2_len;

    fill_text(f->req_pt, REQ_LEN, req_head, "\"}]}}");
    fill_text(f->chunk, CHUNK_LEN, chunk_head, "\"}}]}\n\n");
    if ((f->chunk_pt = malloc(OS_INFER_MAX_CHUNK + 1)) == NULL)
        die("out of memory");

    /* the seller's key config (seller.c), parsed as the buyer's peers_check.c does */
    must(os_hpke_keypair(f->gw_sk, f->gw_pk), "os_hpke_keypair");
    must(os_ohttp_keyconfig_encode(keys, sizeof(keys), &n, KEY_ID, f->gw_pk, NULL, 0),
         "os_ohttp_keyconfig_encode");
    must(os_ohttp_keyconfig_parse(&f->kc, keys, n), "os_ohttp_keyconfig_parse");

    exchange(f, &f->cli, &f->gw, f->env, sizeof(f->env), &f->env_len);
    if (f->env_len != REQ_LEN + OS_OHTTP_REQUEST_OVERHEAD)
        die("the envelope has an unexpected length");
    memcpy(bad, f->env, f->env_len);
    bad[f->env_len - 1] ^= 0x01;
    memset(&c, 0, sizeof(c));
    must_fail(
        os_ohttp_request_decap(&c, pt, sizeof(pt), &n, KEY_ID, f->gw_sk, f->gw_pk, bad, f->env_len),
        "a tampered request envelope");
    must(os_hpke_keypair(other_sk, other_pk), "os_hpke_keypair");
    must_fail(os_ohttp_request_decap(&c, pt, sizeof(pt), &n, KEY_ID, other_sk, other_pk, f->env,
                                     f->env_len),
              "a request opened with another gateway key");
    os_wipe(other_sk, sizeof(other_sk));

    /* the chunk-seal row's sender, and the nonce the buyer-keying row feeds */
    must(os_ohttp_chunk_sender_init(&f->cs, f->resp_nonce, &f->gw), "os_ohttp_chunk_sender_init");

    /* the seal + open pair, checked once for the right plaintext */
    exchange(f, &f->cli2, &f->gw2, bad, sizeof(bad), &env2_len);
    {
        uint8_t nonce[OS_OHTTP_NONCE_LEN];
        size_t m;
        must(os_ohttp_chunk_sender_init(&f->ps, nonce, &f->gw2), "os_ohttp_chunk_sender_init");
        must(os_ohttp_chunk_receiver_new(&f->pr, &f->cli2, OS_INFER_MAX_CHUNK),
             "os_ohttp_chunk_receiver_new");
        must(os_ohttp_chunk_receiver_feed(f->pr, &st, f->chunk_pt, OS_INFER_MAX_CHUNK, &m, &used,
                                          nonce, sizeof(nonce), 0),
             "os_ohttp_chunk_receiver_feed (nonce)");
        must(os_ohttp_chunk_seal(&f->ps, f->out, sizeof(f->out), &n, f->chunk, CHUNK_LEN),
             "os_ohttp_chunk_seal");
        must(os_ohttp_chunk_receiver_feed(f->pr, &st, f->chunk_pt, OS_INFER_MAX_CHUNK, &m, &used,
                                          f->out, n, 0),
             "os_ohttp_chunk_receiver_feed");
        if (st != OS_OHTTP_CHUNK_AVAILABLE || m != CHUNK_LEN ||
            !os_ct_eq(f->chunk_pt, f->chunk, CHUNK_LEN))
            die("the response chunk did not open to what was sealed");
    }
    check_chunk_tamper(f);

    /* an established HPKE pair; hct is message 0, which the open row opens again and again */
    memset(&f->hs, 0, sizeof(f->hs));
    memset(&f->hr, 0, sizeof(f->hr));
    must(os_hpke_setup_base_s(&f->hs, enc, f->gw_pk, info, sizeof(info) - 1),
         "os_hpke_setup_base_s");
    must(os_hpke_setup_base_r(&f->hr, enc, f->gw_sk, f->gw_pk, info, sizeof(info) - 1),
         "os_hpke_setup_base_r");
    must(os_hpke_seal(&f->hs, f->hct, sizeof(f->hct), &f->hct_len, NULL, 0, f->req_pt, REQ_LEN),
         "os_hpke_seal");
    memcpy(bad, f->hct, f->hct_len);
    bad[3] ^= 0x01;
    must_fail(os_hpke_open(&f->hr, pt, sizeof(pt), &n, NULL, 0, bad, f->hct_len),
              "a tampered HPKE message");
    must(os_hpke_open(&f->hr, pt, sizeof(pt), &n, NULL, 0, f->hct, f->hct_len), "os_hpke_open");
    if (n != REQ_LEN || !os_ct_eq(pt, f->req_pt, REQ_LEN))
        die("the HPKE message did not open to what was sealed");
}

static void setup_credential(fixture *f)
{
    const uint8_t *chid = f->v_signed.channel_id, *mh = f->v_signed.metadata_hash;
    uint8_t c[OS_CRED_COMMITMENT_LEN], nf[OS_CRED_NULLIFIER_LEN], proof[OS_CRED_PROOF_LEN];
    uint8_t other[32];
    os_cred_nonce n;

    must(os_cred_keygen(&f->cred), "os_cred_keygen");
    os_cred_commit(f->commit, f->cred);
    must(os_cred_nullifier(f->nf, f->cred, chid, f->v_signed.nonce), "os_cred_nullifier");
    must(os_cred_prove(f->proof, f->cred, f->nf, chid, mh), "os_cred_prove");
    must(os_cred_verify(f->commit, f->nf, f->proof, chid, mh), "os_cred_verify");

    must(os_cred_precompute(&f->nonce_tpl), "os_cred_precompute");
    n = f->nonce_tpl;
    must(os_cred_prove_with(proof, &n, f->cred, f->nf, chid, mh), "os_cred_prove_with");
    must(os_cred_verify(f->commit, f->nf, proof, chid, mh), "os_cred_verify (prove_with)");

    must(os_cred_header_make(f->hdr, sizeof(f->hdr), NULL, f->cred, chid, f->v_signed.nonce, mh),
         "os_cred_header_make");
    must(os_cred_header_decode(c, nf, proof, f->hdr, strlen(f->hdr)), "os_cred_header_decode");
    if (!os_ct_eq(c, f->commit, sizeof(c)) || !os_ct_eq(nf, f->nf, sizeof(nf)))
        die("the credential header does not carry the commitment and nullifier");
    must(os_cred_verify(c, nf, proof, chid, mh), "os_cred_verify (header)");

    memcpy(other, mh, sizeof(other));
    other[0] ^= 0x01;
    must_fail(os_cred_verify(f->commit, f->nf, f->proof, chid, other),
              "a credential for another request body");
    memcpy(proof, f->proof, sizeof(proof));
    proof[OS_CRED_POINT_LEN] ^= 0x01; /* s1 */
    must_fail(os_cred_verify(f->commit, f->nf, proof, chid, mh), "a tampered credential proof");
    memcpy(other, f->nf, sizeof(other));
    other[5] ^= 0x01;
    must_fail(os_cred_verify(f->commit, other, f->proof, chid, mh),
              "a credential with another nullifier");
}

static void fixture_free(fixture *f)
{
    os_ohttp_chunk_receiver_free(f->pr);
    os_ohttp_chunk_sender_clear(&f->ps);
    os_ohttp_chunk_sender_clear(&f->cs);
    os_ohttp_ctx_clear(&f->cli);
    os_ohttp_ctx_clear(&f->gw);
    os_ohttp_ctx_clear(&f->cli2);
    os_ohttp_ctx_clear(&f->gw2);
    os_hpke_ctx_clear(&f->hs);
    os_hpke_ctx_clear(&f->hr);
    os_cred_nonce_wipe(&f->nonce_tpl);
    os_cred_secret_free(f->cred);
    free(f->chunk_pt);
    os_wipe(f, sizeof(*f));
    free(f);
}

/* ------------------------------------------------------------------ timing */

typedef struct result {
    double ops_s[BATCHES];
    double median;  /* ops/s */
    uint64_t iters; /* over the timed batches */
    double spread;  /* (max - min) / median of the batches, in % */
} result;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs o in rounds of `round` calls until `seconds` have passed; the clock is read between rounds
 * only, so it costs nothing per call. */
static uint64_t run_for(const op *o, fixture *f, double seconds, uint64_t round, double *elapsed)
{
    double t0 = mono_s(), t;
    uint64_t n = 0;

    do {
        for (uint64_t i = 0; i < round; i++)
            o->fn(f);
        n += round;
        t = mono_s() - t0;
    } while (t < seconds);
    *elapsed = t;
    return n;
}

static void measure(result *r, const op *o, fixture *f, double seconds)
{
    double warm = seconds / 5, el, per_call, sorted[BATCHES];
    uint64_t n, round;

    if (warm < 0.01)
        warm = 0.01;
    if (warm > 0.2)
        warm = 0.2;
    n = run_for(o, f, warm, 1, &el);
    /* rounds of about 1/50 of a batch (at most 2 ms): the overshoot past a batch stays small */
    per_call = el / (double)n;
    round = (uint64_t)((seconds / 50 < 0.002 ? seconds / 50 : 0.002) / per_call);
    if (round < 1)
        round = 1;
    memset(r, 0, sizeof(*r));
    for (int b = 0; b < BATCHES; b++) {
        n = run_for(o, f, seconds, round, &el);
        r->ops_s[b] = (double)n / el;
        r->iters += n;
    }
    memcpy(sorted, r->ops_s, sizeof(sorted));
    for (int i = 1; i < BATCHES; i++)
        for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            double t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    r->median = sorted[BATCHES / 2];
    r->spread = (sorted[BATCHES - 1] - sorted[0]) / r->median * 100;
}

/* ------------------------------------------------------------------ output */

static const char *side_name(int pr)
{
    return pr == PR_BOTH ? "both" : pr == PR_BUYER ? "buyer" : pr == PR_SELLER ? "seller" : "";
}

static void print_header(void)
{
    printf("%-29s %-6s %12s %10s %11s %7s  %s\n", "operation", "per rq", "ops/s", "us/op",
           "iterations", "spread", "includes");
}

static void print_row(const op *o, const result *r)
{
    char spread[16];
    snprintf(spread, sizeof(spread), "%.0f%%", r->spread);
    printf("%-29s %-6s %12.0f %10.2f %11" PRIu64 " %7s  %s\n", o->name, side_name(o->per_request),
           r->median, 1e6 / r->median, r->iters, spread, o->note);
}

static void print_sum(const char *name, double us, const char *rows)
{
    printf("%-29s %-6s %12.0f %10.2f %11s %7s  %s\n", name, "", 1e6 / us, us, "-", "-", rows);
}

static void cpu_model(char *out, size_t cap)
{
    char line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");

    snprintf(out, cap, "unknown");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *p = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || p == NULL)
            continue;
        p += 1 + (p[1] == ' ');
        p[strcspn(p, "\n")] = '\0';
        snprintf(out, cap, "%s", p);
        break;
    }
    fclose(f);
}

/* Row names of one side's per-request sum, joined with " + ". */
static void side_rows(char *out, size_t cap, int side)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < N_OPS; i++)
        if ((ops[i].per_request & side) != 0 && used < cap) {
            int w = snprintf(out + used, cap - used, "%s%s", used ? " + " : "", ops[i].name);
            if (w > 0)
                used += (size_t)w;
        }
}

static bool add(json_t *obj, const char *key, json_t *v)
{
    return v != NULL && json_object_set_new(obj, key, v) == 0;
}

static bool write_json(FILE *out, const char *cpu, long cores, double seconds, const result *res,
                       double buyer_us, double seller_us, const char *brows, const char *srows)
{
    json_t *root = json_object(), *machine = json_object(), *arr = json_array();
    json_t *per = json_object();
    bool ok = root != NULL && machine != NULL && arr != NULL && per != NULL;

    ok = ok && add(machine, "cpu", json_string(cpu)) && add(machine, "cores", json_integer(cores));
    for (size_t i = 0; ok && i < N_OPS; i++) {
        json_t *o = json_object();
        ok = o != NULL && add(o, "name", json_string(ops[i].name)) &&
             add(o, "ops_per_s", json_real(res[i].median)) &&
             add(o, "us_per_op", json_real(1e6 / res[i].median)) &&
             add(o, "iterations", json_integer((json_int_t)res[i].iters)) &&
             add(o, "spread_pct", json_real(res[i].spread)) &&
             add(o, "per_request", json_string(side_name(ops[i].per_request))) &&
             add(o, "note", json_string(ops[i].note));
        if (o != NULL && json_array_append_new(arr, o) != 0)
            ok = false;
    }
    ok = ok && add(per, "buyer_us", json_real(buyer_us)) &&
         add(per, "seller_us", json_real(seller_us)) &&
         add(per, "buyer_rows", json_string(brows)) && add(per, "seller_rows", json_string(srows));
    if (ok) { /* json_object_set_new takes each reference, even when it fails */
        ok = add(root, "machine", machine);
        ok = add(root, "seconds_per_batch", json_real(seconds)) && ok;
        ok = add(root, "ops", arr) && ok;
        ok = add(root, "per_request", per) && ok;
        machine = arr = per = NULL;
    }
    ok = ok && json_dumpf(root, out, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) == 0 &&
         fputc('\n', out) != EOF;
    json_decref(root);
    json_decref(machine);
    json_decref(arr);
    json_decref(per);
    return ok;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fprintf(f, "usage: crypto_bench [--seconds S] [--json FILE] [--help]\n"
               "  --seconds S   length of each of the 5 timed batches per operation [1.0]\n"
               "  --json FILE   also write the results as JSON to FILE\n");
}

static bool parse_options(double *seconds, const char **json_path, int argc, char **argv)
{
    static const struct option lo[] = {{"seconds", required_argument, NULL, 's'},
                                       {"json", required_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    char *end;
    int c;

    *seconds = 1.0;
    *json_path = NULL;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 's':
            errno = 0;
            *seconds = strtod(optarg, &end);
            if (errno != 0 || end == optarg || *end != '\0' || !(*seconds >= 0.001) ||
                *seconds > 600) {
                fprintf(stderr, "crypto_bench: --seconds wants a number from 0.001 to 600\n");
                return false;
            }
            break;
        case 'j':
            if (optarg[0] == '\0') {
                fprintf(stderr, "crypto_bench: --json wants a file name\n");
                return false;
            }
            *json_path = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return false;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "crypto_bench: unexpected argument '%s'\n", argv[optind]);
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    const char *json_path;
    char cpu[256], brows[512], srows[512];
    double seconds, buyer_us = 0, seller_us = 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    result res[N_OPS];
    FILE *jf = NULL;
    fixture *f;

    if (!parse_options(&seconds, &json_path, argc, argv)) {
        usage(stderr);
        return 2;
    }
    /* opened first so a bad path fails before the run, not after it */
    if (json_path != NULL && (jf = fopen(json_path, "w")) == NULL) {
        fprintf(stderr, "crypto_bench: cannot write %s: %s\n", json_path, strerror(errno));
        return 1;
    }
    must(os_init(), "os_init");
    if ((f = calloc(1, sizeof(*f))) == NULL)
        die("out of memory");
    check_keccak();
    setup_ohttp(f); /* first: the voucher's metadataHash is the envelope's keccak256 */
    setup_vouchers(f);
    setup_credential(f);

    cpu_model(cpu, sizeof(cpu));
    printf("crypto_bench: %zu operations, each a warm-up then %d batches of >= %.3g s; the median "
           "batch is shown (spread = (max - min) / median), one thread\n",
           N_OPS, BATCHES, seconds);
    printf("machine: %ld online CPUs (%s)\n\n", cores, cpu);
    print_header();
    fflush(stdout);
    for (size_t i = 0; i < N_OPS; i++) {
        measure(&res[i], &ops[i], f, seconds);
        print_row(&ops[i], &res[i]);
        fflush(stdout);
        if (ops[i].per_request & PR_BUYER)
            buyer_us += 1e6 / res[i].median;
        if (ops[i].per_request & PR_SELLER)
            seller_us += 1e6 / res[i].median;
    }
    side_rows(brows, sizeof(brows), PR_BUYER);
    side_rows(srows, sizeof(srows), PR_SELLER);
    printf("\n");
    print_sum("buyer per request", buyer_us, brows);
    print_sum("seller per request", seller_us, srows);
    printf("(per-request sums: the calls each side makes once per paid request in today's code; "
           "per-chunk seal/open, JSON, base64 of the x402 headers, HTTP and SQLite excluded)\n");

    if (jf != NULL) {
        bool ok = write_json(jf, cpu, cores, seconds, res, buyer_us, seller_us, brows, srows);
        if (fclose(jf) != 0 || !ok) {
            fprintf(stderr, "crypto_bench: cannot write %s\n", json_path);
            fixture_free(f);
            return 1;
        }
    }
    fixture_free(f);
    return 0;
}
