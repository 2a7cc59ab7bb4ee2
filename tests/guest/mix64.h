/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The 64-bit finalizer of MurmurHash3: page patterns of the ramcrypt test
 * programs (rcmem, rcbench). */
#ifndef RAMCRYPT_TEST_MIX64_H
#define RAMCRYPT_TEST_MIX64_H

#include <stdint.h>

static inline uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

#endif
