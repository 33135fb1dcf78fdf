/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: the x402 payment headers a seller and a buyer read from the network
 * (PAYMENT-SIGNATURE, PAYMENT-REQUIRED, PAYMENT-RESPONSE, x402.h). Each decoder gets the input as a
 * NUL-terminated header value; it must refuse or accept without a crash or a leak. The first byte
 * picks the decoder so one corpus covers all three.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "openseed/x402.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s, err[256];

    if (size < 1 || size > 64 * 1024)
        return 0;
    if ((s = malloc(size)) == NULL)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    switch (data[0] % 3) {
    case 0: {
        os_voucher v;
        os_x402_requirement acc;
        (void)os_x402_payment_decode(&v, &acc, s, err, sizeof(err));
        break;
    }
    case 1: {
        os_x402_requirement r;
        char error[64];
        (void)os_x402_required_decode(&r, error, sizeof(error), s, err, sizeof(err));
        break;
    }
    default: {
        bool ok;
        uint64_t chain, amount;
        uint8_t channel[32];
        (void)os_x402_response_decode(&ok, &chain, &amount, channel, s, err, sizeof(err));
        break;
    }
    }
    free(s);
    return 0;
}
