// SPDX-License-Identifier: GPL-2.0
/*
 * xts(tresor): AES-128-XTS with the key in the debug registers.
 *
 * A request runs where it arrives if that CPU is a valid key holder and may
 * use the FPU; otherwise it is queued to a valid holder's bound worker and
 * completes asynchronously (dm-crypt and AF_ALG handle that). If that
 * holder fails its check meanwhile, the worker runs the request on the
 * other valid holders in turn, each once at most, until one takes it: the
 * whole mask, not a fixed number of tries, so a request fails (EIO) only
 * when no valid holder is left. Those synchronous calls, and the page
 * calls forwarded to a holder, go through tresor's own reclaim-safe
 * workqueue and a completion (tresor_call_on()), never smp_call_on_cpu():
 * that one waits on system_wq, which has no rescuer, so with swap on
 * dm-crypt a forwarded request could wait under memory pressure for a
 * worker that cannot be created. The key never
 * comes through setkey: a transform accepts only the all-zero placeholder
 * key that dm-crypt holds.
 *
 * Every assembly call checks the key it reads against the check values
 * before it writes anything (tresor_asm.h), chunk by chunk. A call that
 * fails leaves the CPU an invalid holder; a request that had done some
 * chunks already continues where it stopped on the next holder (in place,
 * starting over would encrypt the done chunks twice).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <crypto/aes.h>
#include <crypto/internal/simd.h>
#include <crypto/scatterwalk.h>
#include <linux/workqueue.h>
#include <crypto/internal/skcipher.h>
#include <linux/capability.h>
#include <linux/completion.h>
#include <linux/module.h>
#include <asm/cpufeature.h>
#include <asm/simd.h>
#include <asm/fpu/api.h>

#include "tresor_api.h"
#include "tresor_asm.h"
#include "tresor_cipher.h"
#include "tresor_keystore.h"
#include "tresor_poll.h"

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

/* Forwarded requests run on a valid key holder, from this bound queue. */
static struct workqueue_struct *tresor_wq;
/*
 * Synchronous calls on a key holder (tresor_call_on()). A queue of its own,
 * with its own rescuer: a tresor_wq item waits for these, and items of one
 * reclaim-safe queue must not wait for each other (its single rescuer
 * could be the one waiting). Items on it never wait for anything.
 */
static struct workqueue_struct *tresor_call_wq;

struct tresor_call {
	struct work_struct work;
	struct completion done;
	int (*fn)(void *arg);
	void *arg;
	int ret;
};

/*
 * A forwarded page call goes to the key holder's polling thread if it is
 * a polling crypto CPU (tresor_poll.c), else by IPI
 * (smp_call_function_single(), waiting) when the key holder can use the FPU where the IPI interrupts it: a
 * crypto core that is idle, or running a task in user mode or outside an
 * FPU section. One page's cipher runs there with interrupts off. Else, and
 * for whole requests (unbounded, they may sleep between chunks), its
 * worker on tresor_call_wq runs it.
 */
static bool tresor_ipi_forward = true;
module_param_named(ipi_forward, tresor_ipi_forward, bool, 0644);
MODULE_PARM_DESC(ipi_forward,
		 "Forward page ciphers to a key holder by IPI when it can use the FPU there (default: yes)");

static void tresor_call_ipi(void *arg)
{
	struct tresor_call *call = arg;

	/* Interrupted in an FPU section or with softirqs off: no */
	call->ret = irq_fpu_usable() ? call->fn(call->arg) : -EBUSY;
}

static void tresor_call_work(struct work_struct *work)
{
	struct tresor_call *call = container_of(work, struct tresor_call, work);

	call->ret = call->fn(call->arg);
	/* The caller's stack frame: nothing touches *call after this */
	complete(&call->done);
}

/*
 * fn(arg) on @cpu, waiting for it: by IPI if @ipi (fn is bounded and
 * runs with interrupts off) and @cpu can use the FPU there, else on its
 * worker of tresor_call_wq, in process context. -ENXIO: @cpu is offline.
 * As with smp_call_on_cpu(), @cpu going offline meanwhile can run it
 * elsewhere: fn checks where it runs.
 */
static int tresor_call_on(int cpu, int (*fn)(void *arg), void *arg,
			  bool ipi)
{
	struct tresor_call call = {
		.done = COMPLETION_INITIALIZER_ONSTACK(call.done),
		.fn = fn,
		.arg = arg,
	};

	might_sleep();
	if (cpu < 0 || cpu >= nr_cpu_ids || !cpu_online(cpu))
		return -ENXIO;
	/*
	 * Not on PREEMPT_RT: fpregs_lock() is preempt_disable() there, so
	 * irq_fpu_usable() cannot see an interrupted fpregs_lock() section
	 */
	if (ipi && tresor_poll_call(cpu, fn, arg, &call.ret))
		return call.ret;
	if (ipi && !IS_ENABLED(CONFIG_PREEMPT_RT) &&
	    READ_ONCE(tresor_ipi_forward)) {
		call.ret = -EBUSY;
		if (!smp_call_function_single(cpu, tresor_call_ipi, &call, 1) &&
		    call.ret != -EBUSY) {
			tresor_count_ipi_forwarded();
			return call.ret;
		}
	}
	INIT_WORK_ONSTACK(&call.work, tresor_call_work);
	queue_work_on(cpu, tresor_call_wq, &call.work);
	wait_for_completion(&call.done);
	destroy_work_on_stack(&call.work);
	return call.ret;
}

/*
 * Run fn(arg) (returns -EAGAIN when its CPU is no valid key holder) on the
 * valid holders in turn, from a rotating start, each at most once, until
 * one takes it: the whole mask if need be. A holder that fails its check
 * leaves the mask as it is tried. -EAGAIN: none could.
 */
static int tresor_forward(int (*fn)(void *arg), void *arg, bool ipi)
{
	/* Once: for_each_cpu_wrap() evaluates its start at every step */
	unsigned int start = tresor_holder_start();
	int cpu, ret = -EAGAIN;

	for_each_cpu_wrap(cpu, tresor_valid_holders(), start) {
		if (!cpu_online(cpu))
			continue;
		tresor_count_forwarded();
		ret = tresor_call_on(cpu, fn, arg, ipi);
		if (ret == -ENXIO)	/* it went offline */
			ret = -EAGAIN;
		if (ret != -EAGAIN)
			break;
	}
	return ret;
}

struct tresor_req_ctx {
	struct work_struct work;
	bool enc;
	/* Bytes done by holders whose check failed later, and the tweak there */
	unsigned int done;
	u8 tweak[AES_BLOCK_SIZE];
	struct scatterlist src[2], dst[2];
	/* The rest of the request, when done > 0; last: it ends in __ctx[] */
	struct skcipher_request rest;
};

/*
 * Run the request (what is left of it) on this CPU inside one FPU
 * section, so nothing can take the CPU (and load a KVM guest's debug
 * registers) between two chunks. Each chunk's assembly call checks the key
 * it uses. -EAGAIN: this CPU is no valid key holder, or its check failed
 * at a chunk; nothing was written under a wrong key, and rctx records how
 * far the request got.
 */
static int tresor_xts_crypt_here(struct skcipher_request *req, bool enc)
{
	struct crypto_skcipher *tfm = crypto_skcipher_reqtfm(req);
	const struct tresor_impl *impl = tresor_tfm_impl(tfm);
	struct tresor_req_ctx *rctx = skcipher_request_ctx(req);
	struct skcipher_request *sub = req;
	unsigned int done = 0;
	struct skcipher_walk walk;
	u8 tweak[AES_BLOCK_SIZE];
	int first = 1;
	int err;

	if (rctx->done) {
		/* resume after the chunks an earlier holder did */
		sub = &rctx->rest;
		skcipher_request_set_tfm(sub, tfm);
		sub->base.flags = req->base.flags;
		skcipher_request_set_crypt(sub,
			scatterwalk_ffwd(rctx->src, req->src, rctx->done),
			scatterwalk_ffwd(rctx->dst, req->dst, rctx->done),
			req->cryptlen - rctx->done, rctx->tweak);
		first = 0;
	}
	err = skcipher_walk_virt(&walk, sub, true);
	if (err)
		return err;
	/* The running tweak stays on this stack, not in req->iv. */
	memcpy(tweak, sub->iv, sizeof(tweak));
	kernel_fpu_begin();
	if (!tresor_local_holder()) {
		kernel_fpu_end();
		skcipher_walk_done(&walk, -EAGAIN);
		return -EAGAIN;
	}
	while (walk.nbytes) {
		unsigned int nbytes = round_down(walk.nbytes, AES_BLOCK_SIZE);
		int ret;

		if (enc)
			ret = impl->encrypt(walk.dst.virt.addr,
					    walk.src.virt.addr, nbytes, tweak,
					    first, tresor_key_check());
		else
			ret = impl->decrypt(walk.dst.virt.addr,
					    walk.src.virt.addr, nbytes, tweak,
					    first, tresor_key_check());
		if (unlikely(ret)) {
			tresor_local_check_failed();
			kernel_fpu_end();
			skcipher_walk_done(&walk, -EAGAIN);
			/* tweak[] is the one of this chunk's first block */
			if (done || rctx->done) {
				rctx->done += done;
				memcpy(rctx->tweak, tweak, sizeof(tweak));
			}
			memzero_explicit(tweak, sizeof(tweak));
			return -EAGAIN;
		}
		first = 0;
		done += nbytes;
		/* atomic walk: may not sleep, fine inside the FPU section */
		err = skcipher_walk_done(&walk, walk.nbytes - nbytes);
	}
	/* counted on the CPU that ran it: still inside the FPU section */
	if (!err)
		tresor_count_request();
	kernel_fpu_end();
	memzero_explicit(tweak, sizeof(tweak));
	return err;
}

static int tresor_xts_queue(struct skcipher_request *req)
{
	struct tresor_req_ctx *rctx = skcipher_request_ctx(req);
	int cpu = tresor_pick_holder(raw_smp_processor_id());

	if (cpu < 0) {
		pr_err_ratelimited("no CPU holds a valid key; request fails\n");
		memzero_explicit(rctx->tweak, sizeof(rctx->tweak));
		return -EIO;
	}
	tresor_count_forwarded();
	queue_work_on(cpu, tresor_wq, &rctx->work);
	return -EINPROGRESS;
}

static int tresor_xts_here_cb(void *arg)
{
	struct skcipher_request *req = arg;
	struct tresor_req_ctx *rctx = skcipher_request_ctx(req);

	return tresor_xts_crypt_here(req, rctx->enc);
}

static void tresor_xts_work(struct work_struct *work)
{
	struct tresor_req_ctx *rctx =
		container_of(work, struct tresor_req_ctx, work);
	struct skcipher_request *req =
		container_of((void *)rctx, struct skcipher_request, __ctx);
	int err;

	err = tresor_xts_crypt_here(req, rctx->enc);
	/*
	 * This holder failed its check meanwhile (and left the valid mask):
	 * run the request on the others, synchronously. Never re-queue this
	 * running work item: the workqueue would put it back on this CPU.
	 */
	if (err == -EAGAIN)
		err = tresor_forward(tresor_xts_here_cb, req, false);
	if (err == -EAGAIN) {
		pr_err_ratelimited("no CPU holds a valid key; request fails\n");
		err = -EIO;
	}
	memzero_explicit(rctx->tweak, sizeof(rctx->tweak));
	local_bh_disable();
	skcipher_request_complete(req, err);
	local_bh_enable();
}

static int tresor_xts_crypt(struct skcipher_request *req, bool enc)
{
	struct tresor_req_ctx *rctx = skcipher_request_ctx(req);
	int err;

	/* No ciphertext stealing: dm-crypt never needs it. */
	if (req->cryptlen < AES_BLOCK_SIZE || req->cryptlen % AES_BLOCK_SIZE)
		return -EINVAL;
	if (!tresor_key_loaded())
		return -ENOKEY;
	rctx->done = 0;
	if (crypto_simd_usable()) {
		err = tresor_xts_crypt_here(req, enc);
		if (err != -EAGAIN)
			return err;
	}
	rctx->enc = enc;
	INIT_WORK(&rctx->work, tresor_xts_work);
	return tresor_xts_queue(req);
}

struct tresor_page_job {
	void *dst;
	const void *src;
	const u8 *iv;
	bool enc;
	int cpu;		/* the only CPU allowed to run it, or -1 */
};

/* -EAGAIN: not here (no valid key holder, or not the job's CPU) */
static int tresor_page_here(void *arg)
{
	const struct tresor_impl *impl = tresor_best_impl();
	struct tresor_page_job *job = arg;
	u8 tweak[AES_BLOCK_SIZE];
	int ret = 0;

	memcpy(tweak, job->iv, sizeof(tweak));
	kernel_fpu_begin();
	/* checked with preemption off: the CPU that runs the cipher */
	if (job->cpu >= 0 && smp_processor_id() != job->cpu)
		ret = -EAGAIN;
	else if (!tresor_local_holder())
		ret = -EAGAIN;
	else if (job->enc)
		ret = impl->encrypt(job->dst, job->src, TRESOR_PAGE_SIZE,
				    tweak, 1, tresor_key_check());
	else
		ret = impl->decrypt(job->dst, job->src, TRESOR_PAGE_SIZE,
				    tweak, 1, tresor_key_check());
	if (ret == TRESOR_KEY_MISMATCH) {
		/* one call, the whole page: nothing of it was written */
		tresor_local_check_failed();
		ret = -EAGAIN;
	}
	if (!ret)
		tresor_count_request();
	kernel_fpu_end();
	memzero_explicit(tweak, sizeof(tweak));
	return ret;
}

/*
 * Only on @cpu: here if this is it, else forwarded to it; -EXDEV if it is
 * no valid key holder (offline, not a holder, or its check fails).
 */
static int tresor_crypt_page_on(struct tresor_page_job *job)
{
	int ret;

	if (!tresor_holder_valid(job->cpu))
		return -EXDEV;
	if (raw_smp_processor_id() == job->cpu) {
		ret = tresor_page_here(job);
		if (ret != -EAGAIN)
			return ret;
		/* migrated meanwhile, or its check failed: forward */
	}
	if (!tresor_holder_valid(job->cpu))
		return -EXDEV;
	tresor_count_forwarded();
	ret = tresor_call_on(job->cpu, tresor_page_here, job, true);
	/* -ENXIO: it went offline; -EAGAIN: its check failed meanwhile */
	return ret == -ENXIO || ret == -EAGAIN ? -EXDEV : ret;
}

/* Process context only: forwarding to a key holder may sleep. */
static int tresor_crypt_page(void *dst, const void *src, const u8 iv[16],
			     bool enc, int cpu)
{
	struct tresor_page_job job = { dst, src, iv, enc, -1 };
	int ret;

	might_sleep();
	if (!tresor_key_loaded())
		return -ENOKEY;
	if (cpu >= 0) {
		job.cpu = cpu;
		return tresor_crypt_page_on(&job);
	}
	ret = tresor_page_here(&job);
	/* Not a (valid) holder here: every valid holder in turn */
	if (ret == -EAGAIN)
		ret = tresor_forward(tresor_page_here, &job, true);
	return ret == -EAGAIN ? -EIO : ret;
}

int tresor_encrypt_page(void *dst, const void *src, const u8 iv[16])
{
	return tresor_crypt_page(dst, src, iv, true, -1);
}
EXPORT_SYMBOL_GPL(tresor_encrypt_page);

int tresor_decrypt_page(void *dst, const void *src, const u8 iv[16])
{
	return tresor_crypt_page(dst, src, iv, false, -1);
}
EXPORT_SYMBOL_GPL(tresor_decrypt_page);

int tresor_encrypt_page_on(void *dst, const void *src, const u8 iv[16],
			   int cpu)
{
	return tresor_crypt_page(dst, src, iv, true, cpu);
}
EXPORT_SYMBOL_GPL(tresor_encrypt_page_on);

int tresor_decrypt_page_on(void *dst, const void *src, const u8 iv[16],
			   int cpu)
{
	return tresor_crypt_page(dst, src, iv, false, cpu);
}
EXPORT_SYMBOL_GPL(tresor_decrypt_page_on);

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

/* An algorithm and the implementation behind it. */
struct tresor_alg {
	struct skcipher_alg alg;
	const struct tresor_impl *impl;
};

static int tresor_xts_init_tfm(struct crypto_skcipher *tfm)
{
	struct tresor_alg *talg = container_of(crypto_skcipher_alg(tfm),
					       struct tresor_alg, alg);

	/* The host key must be no encryption oracle for local users. */
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	*(const struct tresor_impl **)crypto_skcipher_ctx(tfm) = talg->impl;
	crypto_skcipher_set_reqsize(tfm, sizeof(struct tresor_req_ctx));
	tresor_key_user_get();
	return 0;
}

static void tresor_xts_exit_tfm(struct crypto_skcipher *tfm)
{
	tresor_key_user_put();
}

#define TRESOR_ALG(i, drv, prio) { .impl = &tresor_impls[i], .alg = {	\
	.base = {							\
		.cra_name = "xts(tresor)",				\
		.cra_driver_name = "xts-tresor-" drv,			\
		.cra_priority = prio,					\
		.cra_flags = CRYPTO_ALG_ASYNC,				\
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
} }

static struct tresor_alg tresor_algs[TRESOR_NR_IMPLS] = {
	[TRESOR_AESNI] = TRESOR_ALG(TRESOR_AESNI, "aesni", 300),
	[TRESOR_VAES_AVX2] = TRESOR_ALG(TRESOR_VAES_AVX2, "vaes-avx2", 400),
	[TRESOR_VAES_AVX512] = TRESOR_ALG(TRESOR_VAES_AVX512, "vaes-avx512",
					  500),
};

static bool tresor_registered[TRESOR_NR_IMPLS];

void tresor_cipher_exit(void)
{
	int i;

	for (i = TRESOR_NR_IMPLS - 1; i >= 0; i--) {
		if (!tresor_registered[i])
			continue;
		crypto_unregister_skcipher(&tresor_algs[i].alg);
		tresor_registered[i] = false;
	}
	if (tresor_wq) {
		destroy_workqueue(tresor_wq);
		tresor_wq = NULL;
	}
	if (tresor_call_wq) {
		destroy_workqueue(tresor_call_wq);
		tresor_call_wq = NULL;
	}
}

int tresor_cipher_init(void)
{
	u8 cv[32], cv_ref[32];
	int i, ret;

	/* Bound (per-CPU) so queue_work_on() runs on the chosen holder;
	 * WQ_MEM_RECLAIM because dm-crypt may carry swap.
	 */
	tresor_wq = alloc_workqueue("tresor", WQ_HIGHPRI | WQ_MEM_RECLAIM, 0);
	tresor_call_wq = alloc_workqueue("tresor_call",
					 WQ_HIGHPRI | WQ_MEM_RECLAIM, 0);
	if (!tresor_wq || !tresor_call_wq) {
		tresor_cipher_exit();
		return -ENOMEM;
	}

	/* AES-NI is the baseline: without it (or its self-test) no cipher. */
	for (i = 0; i < TRESOR_NR_IMPLS && tresor_impl_supported(i); i++) {
		if (!tresor_impl_selftest(&tresor_impls[i], cv))
			continue;
		if (i == TRESOR_AESNI)
			memcpy(cv_ref, cv, sizeof(cv));
		else if (tresor_best < 0 || memcmp(cv, cv_ref, sizeof(cv)))
			continue;
		ret = crypto_register_skcipher(&tresor_algs[i].alg);
		if (ret) {
			pr_err("registering %s failed: %d\n",
			       tresor_algs[i].alg.base.cra_driver_name, ret);
			tresor_cipher_exit();
			return ret;
		}
		tresor_registered[i] = true;
		tresor_best = i;
	}
	if (tresor_best < 0) {
		pr_err("no working AES-NI implementation on this CPU (needs AES-NI and SSE4.1)\n");
		tresor_cipher_exit();
		return -ENODEV;
	}
	return 0;
}
