/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bindings for the OpenSeedChannels escrow (contracts/README.md) and the few ERC-20 calls around
 * it, for the seller and buyer daemons: SpendingAuth vouchers (digest, sign, verify), channel ids
 * and the EIP-3009 authorization that opens a channel in one transaction, calldata for every
 * state-changing function, reads of a channel and of token balances over eth_call, decoding of the
 * escrow's events, and a custom-error table so reverts read as "WrongSigner(0x…)".
 *
 * Money is uint64_t micro-USDC at this API; the contract's uint128 and uint256 amounts that do not
 * fit are OS_ERR_RANGE, never truncated. Everything writes into caller-owned memory and keeps no
 * reference to its inputs; private keys stay the caller's and no copy outlives a call.
 */
#ifndef OPENSEED_ESCROW_H
#define OPENSEED_ESCROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openseed/buf.h"
#include "openseed/chain.h"
#include "openseed/err.h"

/* EIP-712 domain of Base USDC (FiatToken v2.2) and of TestUSDC. */
#define OS_USDC_EIP712_NAME "USD Coin"
#define OS_USDC_EIP712_VERSION "2"

/* Waits for one confirmation up to this long in the os_escrow_* / os_erc20_* senders. */
#define OS_ESCROW_TX_TIMEOUT_MS 120000L

/* ---- vouchers ---------------------------------------------------------------------------- */

/* A SpendingAuth voucher and its 65-byte r || s || v signature (v 27/28). */
typedef struct os_voucher {
    uint8_t channel_id[32];
    uint64_t cumulative_amount; /* micro-USDC, cumulative over the channel's life */
    uint64_t nonce;
    uint8_t metadata_hash[32];
    uint8_t sig[65];
} os_voucher;

/* The EIP-712 digest of v (its sig ignored) in the escrow's domain {"OpenSeedChannels", "1",
 * chain_id, escrow}. */
void os_voucher_digest(uint8_t out[32], const os_voucher *v, uint64_t chain_id,
                       const uint8_t escrow[20]);

/* As os_voucher_digest with a domain separator from os_eip712_channels_domain, which hot paths
 * compute once per escrow. */
void os_voucher_digest_ds(uint8_t out[32], const os_voucher *v, const uint8_t domain[32]);

/* Signs v (fills v->sig, low-s, RFC 6979) with the channel signer's key priv. */
OS_WUR os_err os_voucher_sign(os_voucher *v, const uint8_t priv[32], uint64_t chain_id,
                              const uint8_t escrow[20]);
OS_WUR os_err os_voucher_sign_ds(os_voucher *v, const uint8_t priv[32], const uint8_t domain[32]);

/* OS_OK when v->sig over v's digest recovers to expected_signer; OS_ERR_CRYPTO otherwise,
 * including for high-s signatures and v other than 27/28 (the contract refuses those too). */
OS_WUR os_err os_voucher_verify(const os_voucher *v, const uint8_t expected_signer[20],
                                uint64_t chain_id, const uint8_t escrow[20]);
OS_WUR os_err os_voucher_verify_ds(const os_voucher *v, const uint8_t expected_signer[20],
                                   const uint8_t domain[32]);

/* ---- channel ids and opening -------------------------------------------------------------- */

/* keccak256(abi.encode(chain_id, escrow, payer, seller, salt)): the id open() will give. */
void os_escrow_channel_id(uint8_t out[32], uint64_t chain_id, const uint8_t escrow[20],
                          const uint8_t payer[20], const uint8_t seller[20],
                          const uint8_t salt[32]);

/* keccak256(abi.encode(channel_id, signer, commitment)): the EIP-3009 nonce openWithAuthorization
 * requires, binding the authorization to exactly this channel. */
void os_escrow_open_auth_nonce(uint8_t out[32], const uint8_t channel_id[32],
                               const uint8_t signer[20], const uint8_t commitment[32]);

/* The parameters of open() and openWithAuthorization(). */
typedef struct os_escrow_open_args {
    uint8_t seller[20];
    uint8_t signer[20]; /* the channel signer's address */
    uint8_t commitment[32];
    uint64_t amount; /* micro-USDC */
    uint8_t salt[32];
} os_escrow_open_args;

/* An EIP-3009 authorization (FiatToken's field names). */
typedef struct os_eip3009_auth {
    uint8_t from[20];
    uint8_t to[20];
    uint64_t value;
    uint64_t valid_after; /* Unix seconds; valid when valid_after < now < valid_before */
    uint64_t valid_before;
    uint8_t nonce[32];
} os_eip3009_auth;

/* The EIP-712 domain separator of a token: {name, version, chain_id, token}. For USDC use
 * OS_USDC_EIP712_NAME and OS_USDC_EIP712_VERSION. */
void os_token_domain(uint8_t out[32], const char *name, const char *version, uint64_t chain_id,
                     const uint8_t token[20]);

/* The digest of ReceiveWithAuthorization(from, to, value, validAfter, validBefore, nonce) in the
 * token domain token_domain. */
void os_eip3009_receive_digest(uint8_t out[32], const os_eip3009_auth *a,
                               const uint8_t token_domain[32]);

/* The payer's side of openWithAuthorization. */
typedef struct os_escrow_open_auth {
    uint8_t from[20]; /* the payer */
    uint64_t valid_after;
    uint64_t valid_before;
    uint8_t sig[65];
} os_escrow_open_auth;

/*
 * Signs, with the payer's key payer_priv, the ReceiveWithAuthorization that lets escrow pull
 * o->amount for the channel o describes (nonce os_escrow_open_auth_nonce of its id), and fills
 * out for os_escrow_encode_open_with_auth. Anyone may relay the result. channel_id (may be NULL)
 * receives the id the channel will have. OS_ERR_INVALID for a bad key or valid_after >=
 * valid_before.
 */
OS_WUR os_err os_escrow_sign_open_auth(os_escrow_open_auth *out, uint8_t channel_id[32],
                                       const os_escrow_open_args *o, const uint8_t payer_priv[32],
                                       uint64_t chain_id, const uint8_t escrow[20],
                                       const uint8_t token_domain[32], uint64_t valid_after,
                                       uint64_t valid_before);

/* ---- calldata: each appends selector || arguments to out ---------------------------------- */

OS_WUR os_err os_escrow_encode_open(os_buf *out, const os_escrow_open_args *o);
OS_WUR os_err os_escrow_encode_open_with_auth(os_buf *out, const os_escrow_open_args *o,
                                              const os_escrow_open_auth *a);
OS_WUR os_err os_escrow_encode_top_up(os_buf *out, const uint8_t channel_id[32], uint64_t amount);
OS_WUR os_err os_escrow_encode_claim(os_buf *out, const os_voucher *v);
/* close with a final voucher. */
OS_WUR os_err os_escrow_encode_close(os_buf *out, const os_voucher *v);
/* close(channel_id, 0, 0, 0x0, ""): close without redeeming anything more. */
OS_WUR os_err os_escrow_encode_close_empty(os_buf *out, const uint8_t channel_id[32]);
OS_WUR os_err os_escrow_encode_request_close(os_buf *out, const uint8_t channel_id[32]);
OS_WUR os_err os_escrow_encode_withdraw(os_buf *out, const uint8_t channel_id[32]);
/* The views daemons cross-check their encoders with. */
OS_WUR os_err os_escrow_encode_get_channel(os_buf *out, const uint8_t channel_id[32]);
OS_WUR os_err os_escrow_encode_last_nonce(os_buf *out, const uint8_t channel_id[32]);
OS_WUR os_err os_escrow_encode_hash_spending_auth(os_buf *out, const os_voucher *v);

OS_WUR os_err os_erc20_encode_approve(os_buf *out, const uint8_t spender[20], uint64_t amount);
OS_WUR os_err os_erc20_encode_transfer(os_buf *out, const uint8_t to[20], uint64_t amount);
OS_WUR os_err os_erc20_encode_balance_of(os_buf *out, const uint8_t owner[20]);
/* TestUSDC's open mint(address,uint256): devnets only. */
OS_WUR os_err os_erc20_encode_mint(os_buf *out, const uint8_t to[20], uint64_t amount);

/* ---- reads ------------------------------------------------------------------------------- */

/* getChannel() and lastNonce() of one channel, read at the same block. */
typedef struct os_channel_state {
    uint8_t payer[20];
    uint8_t seller[20];
    uint8_t signer[20];
    uint8_t commitment[32];
    uint64_t deposit;  /* micro-USDC */
    uint64_t claimed;  /* micro-USDC paid to the seller so far */
    uint64_t close_at; /* 0 until requestClose */
    bool closed;
    uint64_t last_nonce; /* nonce of the last voucher redeemed, 0 before the first */
    uint64_t block;      /* the block the state was read at */
} os_channel_state;

/*
 * Reads channel_id from the escrow at the latest block. OS_ERR_NOTFOUND (out zeroed but for
 * block) for an id never opened; OS_ERR_RANGE when an amount does not fit uint64; OS_ERR_INVALID
 * when escrow has no code or answers malformed data; chain errors as os_chain_call.
 */
OS_WUR os_err os_escrow_get_channel(os_chain *ch, os_channel_state *out, os_chain_error *err,
                                    const uint8_t escrow[20], const uint8_t channel_id[32]);

/* balanceOf(owner) on token at the latest block; OS_ERR_RANGE above uint64. */
OS_WUR os_err os_erc20_balance(os_chain *ch, uint64_t *out, os_chain_error *err,
                               const uint8_t token[20], const uint8_t owner[20]);

/* ---- events ------------------------------------------------------------------------------ */

typedef enum os_escrow_event_kind {
    OS_ESCROW_EV_OPENED = 1,      /* ChannelOpened */
    OS_ESCROW_EV_TOPPED_UP,       /* ToppedUp */
    OS_ESCROW_EV_CLAIMED,         /* Claimed */
    OS_ESCROW_EV_CLOSE_REQUESTED, /* CloseRequested */
    OS_ESCROW_EV_CLOSED,          /* Closed (the seller's close) */
    OS_ESCROW_EV_WITHDRAWN,       /* Withdrawn (the payer's withdraw) */
} os_escrow_event_kind;

/* One decoded event; the fields its kind does not carry are zero. */
typedef struct os_escrow_event {
    os_escrow_event_kind kind;
    uint8_t channel_id[32];
    uint8_t payer[20];          /* OPENED */
    uint8_t seller[20];         /* OPENED */
    uint8_t signer[20];         /* OPENED */
    uint8_t commitment[32];     /* OPENED */
    uint64_t deposit;           /* OPENED: initial deposit; TOPPED_UP: new total */
    uint64_t amount;            /* TOPPED_UP: added; CLAIMED: paid now */
    uint64_t cumulative_amount; /* CLAIMED: the voucher's */
    uint64_t nonce;             /* CLAIMED */
    uint8_t metadata_hash[32];  /* CLAIMED */
    uint64_t claimed;           /* CLAIMED: new total; CLOSED, WITHDRAWN: final total */
    uint64_t refund;            /* CLOSED, WITHDRAWN: refunded to the payer */
    uint64_t close_at;          /* CLOSE_REQUESTED */
    /* where the log came from */
    uint64_t block_number;
    uint64_t log_index;
    uint8_t tx_hash[32];
    bool removed;
} os_escrow_event;

/*
 * Decodes a log of the escrow at address escrow. OS_ERR_NOTFOUND for a log of another contract
 * or with a topic0 that is none of the six events (callers filtering mixed logs skip those);
 * OS_ERR_INVALID for a known event whose topics or data are malformed; OS_ERR_RANGE for an amount
 * above uint64. ev is zeroed on error.
 */
OS_WUR os_err os_escrow_decode_event(os_escrow_event *ev, const os_chain_log *log,
                                     const uint8_t escrow[20]);

/* ---- revert reasons ---------------------------------------------------------------------- */

/* Indices into os_escrow_errors(): compare with err->revert.custom_index when err->revert.kind is
 * OS_ABI_REVERT_CUSTOM and the client was configured with os_escrow_chain_config. */
typedef enum os_escrow_error {
    OS_ESCROW_E_ZERO_ADDRESS = 0,
    OS_ESCROW_E_ZERO_AMOUNT,
    OS_ESCROW_E_INVALID_CLOSE_GRACE,
    OS_ESCROW_E_CHANNEL_EXISTS,
    OS_ESCROW_E_CHANNEL_NOT_FOUND,
    OS_ESCROW_E_CHANNEL_IS_CLOSED,
    OS_ESCROW_E_NOT_PAYER,
    OS_ESCROW_E_NOT_SELLER,
    OS_ESCROW_E_CLOSE_ALREADY_REQUESTED,
    OS_ESCROW_E_CLOSE_NOT_REQUESTED,
    OS_ESCROW_E_GRACE_PERIOD_NOT_OVER,
    OS_ESCROW_E_GRACE_PERIOD_OVER,
    OS_ESCROW_E_INVALID_SIGNATURE,
    OS_ESCROW_E_WRONG_SIGNER,
    OS_ESCROW_E_STALE_NONCE,
    OS_ESCROW_E_NOTHING_TO_CLAIM,
    OS_ESCROW_E_TRANSFER_AMOUNT_MISMATCH,
    /* OpenZeppelin 5 */
    OS_ESCROW_E_REENTRANT_CALL,
    OS_ESCROW_E_SAFE_ERC20_FAILED,
    OS_ESCROW_E_ECDSA_INVALID_SIGNATURE,
    OS_ESCROW_E_ECDSA_INVALID_LENGTH,
    OS_ESCROW_E_ECDSA_INVALID_S,
    OS_ESCROW_E_ERC20_INSUFFICIENT_BALANCE,
    OS_ESCROW_E_ERC20_INVALID_SENDER,
    OS_ESCROW_E_ERC20_INVALID_RECEIVER,
    OS_ESCROW_E_ERC20_INSUFFICIENT_ALLOWANCE,
    OS_ESCROW_E_ERC20_INVALID_APPROVER,
    OS_ESCROW_E_ERC20_INVALID_SPENDER,
    /* TestUSDC (FiatToken's EIP-2612 / EIP-3009 checks) */
    OS_ESCROW_E_PERMIT_EXPIRED,
    OS_ESCROW_E_INVALID_SIGNER,
    OS_ESCROW_E_AUTH_NOT_YET_VALID,
    OS_ESCROW_E_AUTH_EXPIRED,
    OS_ESCROW_E_AUTH_USED_OR_CANCELED,
    OS_ESCROW_E_CALLER_MUST_BE_PAYEE,
    OS_ESCROW_E__COUNT
} os_escrow_error;

/* The canonical signatures of the errors above, in that order; a static immutable table of
 * OS_ESCROW_E__COUNT entries. */
const char *const *os_escrow_errors(void);

/* Points cfg's custom-error table at os_escrow_errors(), so the client decodes escrow, token and
 * OpenZeppelin reverts by name. */
void os_escrow_chain_config(os_chain_config *cfg);

/* 1 when err is the revert of custom error e (decoded with the table above), else 0. */
int os_escrow_is_error(const os_chain_error *err, os_escrow_error e);

/* ---- sending ----------------------------------------------------------------------------- */

/*
 * Sends data to `to` from s and waits for one confirmation (OS_ESCROW_TX_TIMEOUT_MS). gas_limit 0
 * estimates first, so a call that would revert fails before it costs a nonce, with the reason
 * decoded in err (OS_ERR_INVALID, kind OS_CHAIN_FAIL_REVERT). A transaction mined with status 0
 * gives OS_ERR_INVALID with kind OS_CHAIN_FAIL_RECEIPT. rc may be NULL; otherwise *rc is the
 * caller's (os_chain_receipt_free) whenever the transaction was mined, success or not.
 */
OS_WUR os_err os_escrow_send(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                             const uint8_t to[20], const os_buf *data, uint64_t gas_limit);

/* Encode + os_escrow_send (gas estimated) for each state-changing call. */
OS_WUR os_err os_escrow_open(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                             const uint8_t escrow[20], const os_escrow_open_args *o);
OS_WUR os_err os_escrow_open_with_auth(os_chain_signer *s, os_chain_receipt **rc,
                                       os_chain_error *err, const uint8_t escrow[20],
                                       const os_escrow_open_args *o, const os_escrow_open_auth *a);
OS_WUR os_err os_escrow_top_up(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                               const uint8_t escrow[20], const uint8_t channel_id[32],
                               uint64_t amount);
OS_WUR os_err os_escrow_claim(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                              const uint8_t escrow[20], const os_voucher *v);
/* v NULL: the no-voucher close of channel_id; otherwise v->channel_id must equal channel_id. */
OS_WUR os_err os_escrow_close(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                              const uint8_t escrow[20], const uint8_t channel_id[32],
                              const os_voucher *v);
OS_WUR os_err os_escrow_request_close(os_chain_signer *s, os_chain_receipt **rc,
                                      os_chain_error *err, const uint8_t escrow[20],
                                      const uint8_t channel_id[32]);
OS_WUR os_err os_escrow_withdraw(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                                 const uint8_t escrow[20], const uint8_t channel_id[32]);
OS_WUR os_err os_erc20_approve(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                               const uint8_t token[20], const uint8_t spender[20], uint64_t amount);

#endif
