/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Devchain (SDK): a local development chain for examples, tests and simulations. It starts anvil
 * (the npm package's binary) on a free loopback port in its own process group, dying with this
 * process, deploys TestUSDC and OpenSeedChannels from the committed artifacts (contracts/out:
 * the code that ships, not a fresh build) and funds accounts: ether by anvil_setBalance, USDC by
 * TestUSDC's open mint. Never point it at a real chain: it only makes sense on anvil.
 *
 * Lifecycle: os_devchain_start -> use its rpc, chain id, escrow and usdc -> os_devchain_free
 * (kills anvil). Needs os_init(). anvil dies with the *thread* that started it (Linux's
 * PR_SET_PDEATHSIG), so start the chain from one that outlives it, such as main.
 */
#ifndef OPENSEED_DEVCHAIN_H
#define OPENSEED_DEVCHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "openseed/chain.h"
#include "openseed/err.h"
#include "openseed/log.h"

typedef struct os_devchain os_devchain;

typedef struct os_devchain_config {
    const char *anvil;     /* the anvil binary; NULL: $OPENSEED_ANVIL, then the npm package's
                              under the source tree (tools/node_modules/...) */
    const char *contracts; /* the folder of TestUSDC.json and OpenSeedChannels.json; NULL:
                              $OPENSEED_CONTRACTS, then contracts/out under the source tree */
    uint64_t chain_id;     /* 0 = 31337 */
    uint64_t close_grace_s; /* the escrow's close grace; 0 = 900 */
    const os_logger *log;  /* borrowed, must outlive the chain; NULL = stderr at info */
} os_devchain_config;

/*
 * Starts anvil and deploys the contracts; returns once both answer. OS_ERR_NOTFOUND (logged with
 * the paths tried) when anvil or the artifacts are missing, OS_ERR_IO / OS_ERR_NETWORK when anvil
 * does not come up, OS_ERR_TIMEOUT when a deployment is not mined.
 */
OS_WUR os_err os_devchain_start(os_devchain **out, const os_devchain_config *c);
/* Kills anvil and frees. NULL-safe. */
void os_devchain_free(os_devchain *d);

const char *os_devchain_rpc(const os_devchain *d); /* "http://127.0.0.1:PORT" */
uint64_t os_devchain_chain_id(const os_devchain *d);
void os_devchain_escrow(const os_devchain *d, uint8_t out[20]);
void os_devchain_usdc(const os_devchain *d, uint8_t out[20]);
/* A chain client on it (owned by the devchain; valid until os_devchain_free). */
os_chain *os_devchain_chain(os_devchain *d);

/* Sets addr's ether balance to eth_wei (anvil_setBalance; 0 leaves it) and mints usdc micro-USDC
 * to it (0: no mint). Safe from several threads at once. */
OS_WUR os_err os_devchain_fund(os_devchain *d, const uint8_t addr[20], uint64_t eth_wei,
                               uint64_t usdc);
/* A fresh random key (out, 32 bytes: wipe it after use) whose address is funded as above. */
OS_WUR os_err os_devchain_account(os_devchain *d, uint8_t priv[32], uint8_t addr[20],
                                  uint64_t eth_wei, uint64_t usdc);
/* addr's TestUSDC balance. */
OS_WUR os_err os_devchain_usdc_balance(os_devchain *d, uint64_t *out, const uint8_t addr[20]);

#endif
