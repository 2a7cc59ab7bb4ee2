/* SPDX-License-Identifier: GPL-2.0 */
/*
 * tresor_api.h - in-kernel API of tresor.ko for other modules (ramcrypt.ko)
 *
 * AES-128-XTS of one 4096-byte page with the host key held in DR0-DR3 and a
 * caller-chosen 128-bit tweak (IV). The same assembly and the same per-call
 * key check as xts(tresor). Callable where kernel_fpu_begin() is allowed:
 * process context, or softirq when may_use_simd() is true.
 *
 * The cipher runs on this CPU if it is a valid key holder, else it is
 * forwarded to a valid holder (may sleep: process context only).
 *
 * Returns 0, -ENOKEY if no key is loaded, or -EIO if no valid key holder
 * could run it (a CPU failing the key check is marked invalid and
 * counted). On error nothing is written to dst.
 *
 * The _on variants run the cipher on @cpu and nowhere else (@cpu < 0: as
 * the plain ones): here if this is @cpu, else forwarded to it. -EXDEV if
 * @cpu is no valid key holder (offline, not a holder, failed its check):
 * a caller confining a region's plaintext to @cpu never sees its data
 * handled by another CPU.
 */
#ifndef TRESOR_API_H
#define TRESOR_API_H

#include <linux/types.h>

#define TRESOR_PAGE_SIZE	4096

int tresor_encrypt_page(void *dst, const void *src, const u8 iv[16]);
int tresor_decrypt_page(void *dst, const void *src, const u8 iv[16]);
int tresor_encrypt_page_on(void *dst, const void *src, const u8 iv[16],
			   int cpu);
int tresor_decrypt_page_on(void *dst, const void *src, const u8 iv[16],
			   int cpu);
bool tresor_key_available(void);

/*
 * A user of the host key (a transform, an encrypted memory region) holds a
 * reference for as long as data encrypted with the key may still need it:
 * TRESOR_IOC_CLEAR_KEY fails with -EBUSY while any reference is held.
 */
void tresor_key_user_get(void);
void tresor_key_user_put(void);

#endif /* TRESOR_API_H */
