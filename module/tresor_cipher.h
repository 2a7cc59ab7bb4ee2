/* SPDX-License-Identifier: GPL-2.0 */
#ifndef TRESOR_CIPHER_H
#define TRESOR_CIPHER_H

#include <linux/types.h>

/* One assembly implementation of AES-128-XTS with the key in DR0-DR3. */
struct tresor_impl {
	const char *name;
	void (*check_values)(u8 out[32]);
	/* 0, or TRESOR_KEY_MISMATCH: nothing written (tresor_asm.h) */
	int (*encrypt)(u8 *dst, const u8 *src, unsigned int nbytes,
		       u8 tweak[16], int first, const u8 check[32]);
	int (*decrypt)(u8 *dst, const u8 *src, unsigned int nbytes,
		       u8 tweak[16], int first, const u8 check[32]);
};

/* The fastest implementation this CPU supports; NULL if none. */
const struct tresor_impl *tresor_best_impl(void);

int tresor_cipher_init(void);
void tresor_cipher_exit(void);

/* Known-answer test at load time (tresor_selftest.c). */
bool tresor_impl_selftest(const struct tresor_impl *impl, u8 cv[32]);

/* Assembly in tresor_keyregs.S */
void tresor_write_key_regs(const u8 key[32]);
void tresor_read_key_regs(u8 key[32]);
void tresor_wipe_key_regs(void);

#endif /* TRESOR_CIPHER_H */
