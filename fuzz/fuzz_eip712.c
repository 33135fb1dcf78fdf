/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness: EIP-712 typed data (eip712.h). os_eip712_hash_typed_data takes a whole
 * eth_signTypedData_v4 object, whose type definitions are as untrusted as its values (the CLI and
 * the test tools hash what they are given), so the type parser, the recursion over struct and
 * array types and the value encoders all see arbitrary JSON. The input is parsed as the daemons
 * parse bodies (64 KiB, depth 32). With the first byte odd, the same JSON also goes to
 * os_eip712_hash_struct with its own "types" and "primaryType". A digest must be a pure function
 * of the input: hashing twice gives the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "openseed/eip712.h"
#include "openseed/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t a[32], b[32];
    json_t *j = NULL;
    char err[128];

    if (size < 1 || size > 64 * 1024)
        return 0;
    if (os_json_parse(&j, (const char *)data + 1, size - 1, 64 * 1024, 32, err, sizeof(err)) !=
        OS_OK)
        return 0;
    if (os_eip712_hash_typed_data(a, j) == OS_OK) {
        if (os_eip712_hash_typed_data(b, j) != OS_OK || memcmp(a, b, 32) != 0)
            abort();
    }
    if (data[0] & 1) {
        const json_t *pt = json_object_get(j, "primaryType");
        const char *name = json_is_string(pt) ? json_string_value(pt) : "Mail";
        (void)os_eip712_hash_struct(a, json_object_get(j, "types"), name,
                                    json_object_get(j, "message"));
    }
    json_decref(j);
    return 0;
}
