/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tresor_api.h - in-kernel API of tresor.ko for other modules (ramcrypt.ko)
 *
 * AES-128-XTS of one 4096-byte page with the host key held in DR0-DR3 and a
 * caller-chosen 128-bit tweak (IV). The same assembly and the same per-call
 * key check as xts(tresor). Callable where kernel_fpu_begin() is allowed:
 * process context, or softirq when may_use_simd() is true.
 *
 * Returns 0, -ENOKEY if no key is loaded, or -EIO if this CPU's registers
 * failed the key check (the CPU is then marked invalid and counted). On
 * error nothing is written to dst.
 */
#ifndef TRESOR_API_H
#define TRESOR_API_H

#include <linux/types.h>

#define TRESOR_PAGE_SIZE	4096

int tresor_encrypt_page(void *dst, const void *src, const u8 iv[16]);
int tresor_decrypt_page(void *dst, const void *src, const u8 iv[16]);
bool tresor_key_available(void);

/*
 * A user of the host key (a transform, an encrypted memory region) holds a
 * reference for as long as data encrypted with the key may still need it:
 * TRESOR_IOC_CLEAR_KEY fails with -EBUSY while any reference is held.
 */
void tresor_key_user_get(void);
void tresor_key_user_put(void);

#endif /* TRESOR_API_H */
