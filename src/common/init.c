/* SPDX-License-Identifier: Apache-2.0 */
/* One-time start-up of the libraries under libcommon. */
#include "openseed/init.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static os_err init_status = OS_ERR_INTERNAL;

static void init_once(void)
{
    if (sodium_init() < 0)
        return;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return;
    init_status = OS_OK;
}

os_err os_init(void)
{
    if (pthread_once(&once, init_once) != 0)
        return OS_ERR_INTERNAL;
    return init_status;
}
