// SPDX-License-Identifier: GPL-2.0
/*
 * xts(tresor): AES-128-XTS with the key in the debug registers.
 *
 * Every implementation is registered as an internal skcipher and wrapped by
 * the kernel's simd helper, which defers a request to cryptd when the FPU is
 * unusable (e.g. dm-crypt decrypting in softirq context). The key never
 * comes through setkey: a transform accepts only the all-zero placeholder
 * key that dm-crypt holds.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <crypto/aes.h>
#include <crypto/internal/simd.h>
#include <crypto/internal/skcipher.h>
#include <linux/capability.h>
#include <linux/module.h>
#include <asm/cpufeature.h>
#include <asm/fpu/api.h>

#include "tresor_api.h"
#include "tresor_asm.h"
#include "tresor_cipher.h"
#include "tresor_keystore.h"

#define TRESOR_IMPL(sfx) {					\
	.name = #sfx,						\
	.check_values = tresor_check_values_##sfx,		\
	.encrypt = tresor_xts_encrypt_##sfx,			\
	.decrypt = tresor_xts_decrypt_##sfx,			\
}

enum { TRESOR_AESNI, TRESOR_VAES_AVX2, TRESOR_VAES_AVX512, TRESOR_NR_IMPLS };

static const struct tresor_impl tresor_impls[TRESOR_NR_IMPLS] = {
	[TRESOR_AESNI] = TRESOR_IMPL(aesni),
	[TRESOR_VAES_AVX2] = TRESOR_IMPL(vaes_avx2),
	[TRESOR_VAES_AVX512] = TRESOR_IMPL(vaes_avx512),
};

static bool tresor_impl_supported(int i)
{
	switch (i) {
	case TRESOR_AESNI:
		return boot_cpu_has(X86_FEATURE_AES) &&
		       boot_cpu_has(X86_FEATURE_XMM4_1);
	case TRESOR_VAES_AVX2:
		return tresor_impl_supported(TRESOR_AESNI) &&
		       boot_cpu_has(X86_FEATURE_AVX) &&
		       boot_cpu_has(X86_FEATURE_AVX2) &&
		       boot_cpu_has(X86_FEATURE_VAES) &&
		       cpu_has_xfeatures(XFEATURE_MASK_SSE | XFEATURE_MASK_YMM,
					 NULL);
	case TRESOR_VAES_AVX512:
		return tresor_impl_supported(TRESOR_VAES_AVX2) &&
		       boot_cpu_has(X86_FEATURE_AVX512F) &&
		       boot_cpu_has(X86_FEATURE_AVX512BW) &&
		       boot_cpu_has(X86_FEATURE_AVX512VL) &&
		       boot_cpu_has(X86_FEATURE_VPCLMULQDQ) &&
		       cpu_has_xfeatures(XFEATURE_MASK_SSE | XFEATURE_MASK_YMM |
					 XFEATURE_MASK_AVX512, NULL);
	}
	return false;
}

static int tresor_best = -1;

const struct tresor_impl *tresor_best_impl(void)
{
	return tresor_best >= 0 ? &tresor_impls[tresor_best] : NULL;
}

static const struct tresor_impl *tresor_tfm_impl(struct crypto_skcipher *tfm)
{
	return *(const struct tresor_impl **)crypto_skcipher_ctx(tfm);
}

static int tresor_xts_setkey(struct crypto_skcipher *tfm, const u8 *key,
			     unsigned int keylen)
{
	/* The real key is in the registers; only the placeholder is accepted. */
	if (keylen != 2 * AES_KEYSIZE_128 || memchr_inv(key, 0, keylen))
		return -EINVAL;
	return 0;
}

static int tresor_xts_crypt(struct skcipher_request *req, bool enc)
{
	const struct tresor_impl *impl =
		tresor_tfm_impl(crypto_skcipher_reqtfm(req));
	struct skcipher_walk walk;
	u8 tweak[AES_BLOCK_SIZE];
	int first = 1;
	int err;

	/* No ciphertext stealing: dm-crypt never needs it. */
	if (req->cryptlen < AES_BLOCK_SIZE || req->cryptlen % AES_BLOCK_SIZE)
		return -EINVAL;
	if (!tresor_key_loaded())
		return -ENOKEY;

	err = skcipher_walk_virt(&walk, req, false);
	/* The running tweak stays on this stack, not in req->iv. */
	memcpy(tweak, req->iv, sizeof(tweak));
	while (walk.nbytes) {
		unsigned int nbytes = round_down(walk.nbytes, AES_BLOCK_SIZE);

		kernel_fpu_begin();
		/* Per chunk: preemption between chunks may change the CPU. */
		if (!tresor_local_key_ok(impl)) {
			kernel_fpu_end();
			err = skcipher_walk_done(&walk, -EIO);
			break;
		}
		if (enc)
			impl->encrypt(walk.dst.virt.addr, walk.src.virt.addr,
				      nbytes, tweak, first);
		else
			impl->decrypt(walk.dst.virt.addr, walk.src.virt.addr,
				      nbytes, tweak, first);
		kernel_fpu_end();
		first = 0;
		err = skcipher_walk_done(&walk, walk.nbytes - nbytes);
	}
	memzero_explicit(tweak, sizeof(tweak));
	if (!err)
		tresor_count_request();
	return err;
}

static int tresor_crypt_page(void *dst, const void *src, const u8 iv[16],
			     bool enc)
{
	const struct tresor_impl *impl = tresor_best_impl();
	u8 tweak[AES_BLOCK_SIZE];
	int ret = 0;

	if (!tresor_key_loaded())
		return -ENOKEY;
	memcpy(tweak, iv, sizeof(tweak));
	kernel_fpu_begin();
	if (!tresor_local_key_ok(impl))
		ret = -EIO;
	else if (enc)
		impl->encrypt(dst, src, TRESOR_PAGE_SIZE, tweak, 1);
	else
		impl->decrypt(dst, src, TRESOR_PAGE_SIZE, tweak, 1);
	kernel_fpu_end();
	memzero_explicit(tweak, sizeof(tweak));
	if (!ret)
		tresor_count_request();
	return ret;
}

int tresor_encrypt_page(void *dst, const void *src, const u8 iv[16])
{
	return tresor_crypt_page(dst, src, iv, true);
}
EXPORT_SYMBOL_GPL(tresor_encrypt_page);

int tresor_decrypt_page(void *dst, const void *src, const u8 iv[16])
{
	return tresor_crypt_page(dst, src, iv, false);
}
EXPORT_SYMBOL_GPL(tresor_decrypt_page);

bool tresor_key_available(void)
{
	return tresor_key_loaded();
}
EXPORT_SYMBOL_GPL(tresor_key_available);

static int tresor_xts_encrypt(struct skcipher_request *req)
{
	return tresor_xts_crypt(req, true);
}

static int tresor_xts_decrypt(struct skcipher_request *req)
{
	return tresor_xts_crypt(req, false);
}

static int tresor_xts_init_tfm(struct crypto_skcipher *tfm)
{
	struct skcipher_alg *alg = crypto_skcipher_alg(tfm);
	int i = alg->base.cra_priority % 10;

	/* The host key must be no encryption oracle for local users. */
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	*(const struct tresor_impl **)crypto_skcipher_ctx(tfm) =
		&tresor_impls[i];
	tresor_tfm_get();
	return 0;
}

static void tresor_xts_exit_tfm(struct crypto_skcipher *tfm)
{
	tresor_tfm_put();
}

/* cra_priority's last digit is the index into tresor_impls. */
#define TRESOR_ALG(drv, prio) {						\
	.base = {							\
		.cra_name = "__xts(tresor)",				\
		.cra_driver_name = "__xts-tresor-" drv,			\
		.cra_priority = prio,					\
		.cra_flags = CRYPTO_ALG_INTERNAL,			\
		.cra_blocksize = AES_BLOCK_SIZE,			\
		.cra_ctxsize = sizeof(struct tresor_impl *),		\
		.cra_module = THIS_MODULE,				\
	},								\
	.min_keysize = 2 * AES_KEYSIZE_128,				\
	.max_keysize = 2 * AES_KEYSIZE_128,				\
	.ivsize = AES_BLOCK_SIZE,					\
	.walksize = AES_BLOCK_SIZE,					\
	.setkey = tresor_xts_setkey,					\
	.encrypt = tresor_xts_encrypt,					\
	.decrypt = tresor_xts_decrypt,					\
	.init = tresor_xts_init_tfm,					\
	.exit = tresor_xts_exit_tfm,					\
}

static struct skcipher_alg tresor_algs[TRESOR_NR_IMPLS] = {
	[TRESOR_AESNI] = TRESOR_ALG("aesni", 300 + TRESOR_AESNI),
	[TRESOR_VAES_AVX2] = TRESOR_ALG("vaes-avx2", 400 + TRESOR_VAES_AVX2),
	[TRESOR_VAES_AVX512] = TRESOR_ALG("vaes-avx512",
					  500 + TRESOR_VAES_AVX512),
};

static struct simd_skcipher_alg *tresor_simd_algs[TRESOR_NR_IMPLS];
static bool tresor_registered[TRESOR_NR_IMPLS];

void tresor_cipher_exit(void)
{
	int i;

	for (i = TRESOR_NR_IMPLS - 1; i >= 0; i--) {
		if (!tresor_registered[i])
			continue;
		simd_unregister_skciphers(&tresor_algs[i], 1,
					  &tresor_simd_algs[i]);
		tresor_registered[i] = false;
	}
}

int tresor_cipher_init(void)
{
	u8 cv[32], cv_ref[32];
	int i, ret;

	/* AES-NI is the baseline: without it (or its self-test) no cipher. */
	for (i = 0; i < TRESOR_NR_IMPLS && tresor_impl_supported(i); i++) {
		if (!tresor_impl_selftest(&tresor_impls[i], cv))
			continue;
		if (i == TRESOR_AESNI)
			memcpy(cv_ref, cv, sizeof(cv));
		else if (tresor_best < 0 || memcmp(cv, cv_ref, sizeof(cv)))
			continue;
		ret = simd_register_skciphers_compat(&tresor_algs[i], 1,
						     &tresor_simd_algs[i]);
		if (ret) {
			pr_err("registering %s failed: %d\n",
			       tresor_algs[i].base.cra_driver_name, ret);
			tresor_cipher_exit();
			return ret;
		}
		tresor_registered[i] = true;
		tresor_best = i;
	}
	if (tresor_best < 0) {
		pr_err("no working AES-NI implementation on this CPU (needs AES-NI and SSE4.1)\n");
		return -ENODEV;
	}
	return 0;
}
