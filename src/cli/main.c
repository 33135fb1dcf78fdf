/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder entry point until the config module lands. */
#include <stdio.h>
int main(void)
{
    puts("openseed");
    return 0;
}
