/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The chain client: Ethereum JSON-RPC over libcurl, and a signer that sends EIP-1559 transactions
 * from one key without nonce gaps.
 *
 * An os_chain holds its configuration, a small pool of curl handles (so connections are reused)
 * and nothing else; it is safe to use from many threads at once. Every response is capped in size
 * and JSON nesting, must be a well-formed JSON-RPC 2.0 answer to the request's id, and every field
 * used is checked for shape: quantities are strict "0x" hex without leading zeros, parsed into
 * uint64 or uint256 with overflow checks; byte strings must have their exact length.
 *
 * Transport errors, HTTP 5xx and 429 are retried with exponential backoff and jitter up to the
 * configured count; JSON-RPC errors (reverts, "nonce too low", …) are answers and never retried.
 * Each call may take an os_chain_error (or NULL) that says what went wrong in detail; its message
 * never contains the URL, which may carry an API key.
 *
 * Return codes: OS_ERR_NETWORK when the node cannot be reached, answers with an HTTP error, or
 * answers with something that is not valid JSON-RPC; OS_ERR_TIMEOUT when the last attempt timed
 * out; OS_ERR_TOOBIG when a response exceeds the cap; OS_ERR_INVALID when the node answers with a
 * JSON-RPC error, including execution reverts (err->kind then tells which, and err->revert holds
 * the decoded reason); OS_ERR_RANGE when a quantity does not fit its type.
 */
#ifndef OPENSEED_CHAIN_H
#define OPENSEED_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openseed/abi.h"
#include "openseed/buf.h"
#include "openseed/err.h"

typedef struct os_chain os_chain;
typedef struct os_chain_signer os_chain_signer;

typedef struct os_chain_config {
    const char *url;                  /* http:// or https:// JSON-RPC endpoint; copied */
    uint64_t chain_id;                /* the chain the node must be on; 0 = whatever it says */
    long connect_timeout_ms;          /* TCP/TLS connect, per attempt */
    long request_timeout_ms;          /* whole request, per attempt */
    unsigned max_retries;             /* extra attempts after transport errors, HTTP 5xx and 429 */
    long retry_base_ms;               /* first backoff; doubled for each further retry */
    long retry_max_ms;                /* backoff ceiling */
    size_t max_response;              /* response body cap in bytes */
    unsigned max_json_depth;          /* nesting cap for response JSON */
    const char *const *custom_errors; /* canonical custom error signatures for revert messages,
                                         e.g. "ChannelClosed(bytes32)"; borrowed, must outlive
                                         the client; may be NULL */
    size_t n_custom_errors;
} os_chain_config;

/* Defaults: 5 s connect, 30 s request, 3 retries from 250 ms up to 4 s, 16 MiB, depth 32. */
void os_chain_config_default(os_chain_config *cfg, const char *url);

/* Creates a client; *out is the caller's, freed with os_chain_free. OS_ERR_INVALID for a bad
 * URL or bounds. Needs os_init() first (curl's global state). Makes no request. */
OS_WUR os_err os_chain_new(os_chain **out, const os_chain_config *cfg);
void os_chain_free(os_chain *ch);

/* ---- errors ------------------------------------------------------------------------------ */

#define OS_CHAIN_MSG_LEN 256
#define OS_CHAIN_REVERT_MAX 4096 /* revert data kept for the caller's own decoding */

typedef enum os_chain_fail {
    OS_CHAIN_FAIL_NONE = 0,
    OS_CHAIN_FAIL_TRANSPORT, /* no HTTP answer: refused, reset, DNS, TLS, timeout */
    OS_CHAIN_FAIL_HTTP,      /* an HTTP status other than 200 */
    OS_CHAIN_FAIL_RESPONSE,  /* an answer that is too big, too deep, not JSON-RPC, or misshapen */
    OS_CHAIN_FAIL_RPC,       /* a JSON-RPC error object */
    OS_CHAIN_FAIL_REVERT,    /* a JSON-RPC error that is an execution revert */
    OS_CHAIN_FAIL_CHAIN_ID,  /* the node is on another chain than configured */
    OS_CHAIN_FAIL_RECEIPT,   /* a mined transaction that reverted (receipt status 0) */
} os_chain_fail;

typedef struct os_chain_error {
    os_chain_fail kind;
    unsigned attempts;              /* HTTP attempts made */
    long http_status;               /* last HTTP status, 0 if none */
    long long rpc_code;             /* JSON-RPC error code */
    char message[OS_CHAIN_MSG_LEN]; /* one printable ASCII line */
    os_abi_revert revert;           /* OS_CHAIN_FAIL_REVERT: decoded revert data */
    uint8_t revert_data[OS_CHAIN_REVERT_MAX];
    size_t revert_len; /* 0 when there was none, or more than OS_CHAIN_REVERT_MAX */
} os_chain_error;

/* ---- quantities -------------------------------------------------------------------------- */

/* Empties e (non-NULL). */
void os_chain_err_reset(os_chain_error *e);

/* Sets e's kind and message (printf-style, cut to one printable ASCII line); e non-NULL. Modules
 * built on the chain client (escrow) report their own failures through it. */
__attribute__((format(printf, 3, 4))) void os_chain_err_set(os_chain_error *e, os_chain_fail kind,
                                                            const char *fmt, ...);

#define OS_CHAIN_QUANTITY_LEN 19 /* "0x" + 16 digits + NUL */

/* Parses a JSON-RPC quantity: "0x" then 1-16 hex digits, no leading zeros ("0x0" for zero). */
OS_WUR os_err os_chain_quantity_u64(uint64_t *v, const char *s);
/* As os_chain_quantity_u64, up to 64 digits. */
OS_WUR os_err os_chain_quantity_u256(os_u256 *v, const char *s);
/* Writes v as a quantity. */
void os_chain_quantity_format(char out[OS_CHAIN_QUANTITY_LEN], uint64_t v);

/* ---- plain calls ------------------------------------------------------------------------- */

/*
 * Generic call: sends method with params (stolen: freed here, even on error; NULL means []) and
 * gives the "result" member in *result (a new reference the caller json_decref's). A JSON null
 * result is returned as json_null().
 */
OS_WUR os_err os_chain_rpc(os_chain *ch, json_t **result, os_chain_error *err, const char *method,
                           json_t *params);

/* eth_chainId. */
OS_WUR os_err os_chain_chain_id(os_chain *ch, uint64_t *id, os_chain_error *err);
/* eth_blockNumber. */
OS_WUR os_err os_chain_block_number(os_chain *ch, uint64_t *n, os_chain_error *err);
/* eth_getTransactionCount(addr, "pending"): the next nonce counting the node's pool. */
OS_WUR os_err os_chain_nonce(os_chain *ch, uint64_t *nonce, os_chain_error *err,
                             const uint8_t addr[20]);
/* eth_getBalance(addr, "latest") in wei. */
OS_WUR os_err os_chain_balance(os_chain *ch, os_u256 *wei, os_chain_error *err,
                               const uint8_t addr[20]);
/* eth_getCode(addr, "latest"), appended to code (empty for an account without code). */
OS_WUR os_err os_chain_code(os_chain *ch, os_buf *code, os_chain_error *err,
                            const uint8_t addr[20]);

/* EIP-1559 fee suggestion, in wei per gas. */
typedef struct os_chain_fees {
    uint64_t base_fee; /* the next block's base fee (eth_feeHistory) */
    uint64_t tip;      /* eth_maxPriorityFeePerGas */
    uint64_t max_fee;  /* 2 * base_fee + tip: stays valid through six full blocks of +12.5% */
} os_chain_fees;

OS_WUR os_err os_chain_suggest_fees(os_chain *ch, os_chain_fees *fees, os_chain_error *err);

/* A message call, for eth_call and eth_estimateGas. */
typedef struct os_chain_msg {
    bool has_from;
    uint8_t from[20];
    bool has_to; /* false: contract creation */
    uint8_t to[20];
    os_u256 value;
    const uint8_t *data; /* borrowed */
    size_t data_len;
} os_chain_msg;

/* eth_estimateGas. A revert gives OS_ERR_INVALID with err->kind OS_CHAIN_FAIL_REVERT. */
OS_WUR os_err os_chain_estimate_gas(os_chain *ch, uint64_t *gas, os_chain_error *err,
                                    const os_chain_msg *msg);

/* eth_call at block ("latest" when NULL; "pending", or a quantity); the return data is appended
 * to out. A revert gives OS_ERR_INVALID with the reason decoded in err. */
OS_WUR os_err os_chain_call(os_chain *ch, os_buf *out, os_chain_error *err, const os_chain_msg *msg,
                            const char *block);

/* eth_sendRawTransaction; hash receives the hash the node reports, which must be keccak256(raw). */
OS_WUR os_err os_chain_send_raw(os_chain *ch, uint8_t hash[32], os_chain_error *err,
                                const uint8_t *raw, size_t raw_len);

/* Whether the node has a transaction with this hash, pending or mined (eth_getTransactionByHash).
 */
OS_WUR os_err os_chain_tx_known(os_chain *ch, bool *known, os_chain_error *err,
                                const uint8_t hash[32]);

/* The chain id the client was configured to insist on (0: none). */
uint64_t os_chain_configured_chain_id(const os_chain *ch);

/* ---- receipts and logs ------------------------------------------------------------------- */

#define OS_CHAIN_MAX_LOGS 10000 /* per receipt or eth_getLogs answer */

typedef struct os_chain_log {
    uint8_t address[20];
    uint8_t topics[4][32];
    size_t n_topics;
    uint8_t *data; /* owned by the log's array; NULL when data_len is 0 */
    size_t data_len;
    uint64_t block_number;
    uint8_t tx_hash[32];
    uint64_t log_index;
    bool removed; /* reorganised away */
} os_chain_log;

typedef struct os_chain_receipt {
    uint8_t tx_hash[32];
    bool status; /* true: success; false: reverted */
    uint64_t block_number;
    uint8_t block_hash[32];
    uint64_t gas_used;
    uint64_t effective_gas_price;
    uint8_t from[20];
    bool has_to;
    uint8_t to[20];
    bool has_contract; /* a creation: contract_address is set */
    uint8_t contract_address[20];
    uint64_t confirmations; /* head - block_number + 1 when fetched */
    os_chain_log *logs;
    size_t n_logs;
} os_chain_receipt;

/* eth_getTransactionReceipt plus eth_blockNumber for the confirmation count. OS_ERR_NOTFOUND
 * while the transaction is not mined. *rc is the caller's (os_chain_receipt_free). */
OS_WUR os_err os_chain_receipt_get(os_chain *ch, os_chain_receipt **rc, os_chain_error *err,
                                   const uint8_t hash[32]);
void os_chain_receipt_free(os_chain_receipt *rc);

/* Polls until the transaction has `confirmations` confirmations (1 = mined), first after 10 ms and
 * then at doubling intervals up to poll_ms; OS_ERR_TIMEOUT after timeout_ms. Transport errors while polling are retried until the deadline.
 */
OS_WUR os_err os_chain_wait_receipt(os_chain *ch, os_chain_receipt **rc, os_chain_error *err,
                                    const uint8_t hash[32], uint64_t confirmations, long timeout_ms,
                                    long poll_ms);

typedef struct os_chain_filter {
    bool has_address;
    uint8_t address[20];
    size_t n_topics; /* positions given, at most 4 */
    struct {
        bool any; /* a wildcard at this position */
        uint8_t value[32];
    } topics[4];
    uint64_t from_block;
    bool to_latest; /* true: up to "latest"; false: up to to_block */
    uint64_t to_block;
} os_chain_filter;

/* eth_getLogs. *logs (an array of *n) is the caller's: os_chain_logs_free. */
OS_WUR os_err os_chain_get_logs(os_chain *ch, os_chain_log **logs, size_t *n, os_chain_error *err,
                                const os_chain_filter *f);
void os_chain_logs_free(os_chain_log *logs, size_t n);

/* ---- sending from a key ------------------------------------------------------------------ */

#define OS_CHAIN_GAS_MARGIN_PCT 20 /* added to eth_estimateGas when the caller gives no limit */

/*
 * A key that sends transactions. The private key is copied into sodium_malloc'd (guarded, locked)
 * memory, wiped when the signer is freed; the caller may wipe its copy at once. The signer asks
 * the node for the chain id (which must match the client's configured one, if any). Nonces come
 * from a mutex-protected counter started from eth_getTransactionCount(pending), so many threads
 * may send at once with consecutive nonces. When a send is refused the nonce is handed back if
 * it was the last one taken, and otherwise the counter is re-read from the node once in-flight
 * sends finish, so a failure leaves no gap; "nonce too low" and kin cause a re-read and a retry.
 * ch must outlive the signer.
 */
OS_WUR os_err os_chain_signer_new(os_chain_signer **out, os_chain *ch, os_chain_error *err,
                                  const uint8_t priv[32]);
void os_chain_signer_free(os_chain_signer *s);
void os_chain_signer_address(const os_chain_signer *s, uint8_t addr[20]);

/*
 * Signs and sends a transaction: to NULL creates a contract; value NULL is 0; gas_limit 0 means
 * eth_estimateGas plus OS_CHAIN_GAS_MARGIN_PCT percent, estimated before a nonce is taken so a
 * failing estimate (a revert, decoded into err) costs no nonce. Fees from os_chain_suggest_fees.
 * hash receives the transaction hash. When the error is a transport one (err->kind
 * OS_CHAIN_FAIL_TRANSPORT or _HTTP) the node may still have the transaction: hash then names it,
 * and the caller should look for its receipt rather than send again.
 */
OS_WUR os_err os_chain_send_tx(os_chain_signer *s, uint8_t hash[32], os_chain_error *err,
                               const uint8_t *to, const os_u256 *value, const uint8_t *data,
                               size_t data_len, uint64_t gas_limit);

/*
 * os_chain_send_tx, then waits (polling every 200 ms, up to timeout_ms) for `confirmations`
 * confirmations. A transaction mined with status 0 still gives OS_OK and its receipt: check
 * (*rc)->status. *rc is the caller's.
 */
OS_WUR os_err os_chain_send_and_wait(os_chain_signer *s, os_chain_receipt **rc, os_chain_error *err,
                                     const uint8_t *to, const os_u256 *value, const uint8_t *data,
                                     size_t data_len, uint64_t gas_limit, uint64_t confirmations,
                                     long timeout_ms);

/*
 * Deploys bytecode || args (constructor arguments, ABI-encoded) and waits for one confirmation.
 * addr receives the new contract's address; OS_ERR_INVALID (kind OS_CHAIN_FAIL_RECEIPT) when the
 * creation reverted on chain. rc may be NULL; otherwise *rc is the caller's.
 */
OS_WUR os_err os_chain_deploy(os_chain_signer *s, uint8_t addr[20], os_chain_receipt **rc,
                              os_chain_error *err, const uint8_t *bytecode, size_t len,
                              const uint8_t *args, size_t args_len, uint64_t gas_limit,
                              long timeout_ms);

#endif
