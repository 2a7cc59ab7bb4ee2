// SPDX-License-Identifier: GPL-2.0
/*
 * tresor_testresume.ko - TEST ONLY, never shipped: make a key holder fail
 * its check in the middle of a multi-chunk xts(tresor) request, so the
 * request must resume on another holder where it stopped (issue 21 item
 * 5: tresor_cipher.c's rctx->done / rctx->tweak path).
 *
 * Kprobes on the xts assembly entries (tresor_xts_{en,de}crypt_<impl>)
 * see every chunk call. While a run is armed, a call whose source lies in
 * the run's buffers is recorded, and the calls numbered in the run's fail
 * list (1-based, over the whole request, on whatever CPU) first overwrite
 * DR0 of their CPU (as a KVM guest does, tests/kmod/tresor_testdr.c): the
 * call's own check fails, nothing is written, and the request continues on
 * another valid holder.
 *
 *   echo "E M" > /sys/module/tresor_testresume/parameters/key
 *	the key tresor holds, XOR-split as rcprobe takes it: keys the
 *	kernel's xts(aes), the reference; the bytes are wiped at once.
 *   echo "CPU enc|dec inplace|copy FAIL[,FAIL...]" > .../parameters/run
 *	on CPU (a bound worker), one request of NSEG scatterlist entries on
 *	separate pages (NSEG chunks); the calls FAIL.. clobber their CPU.
 *	Then the inverse request, unarmed. `result` says
 *	"err=E match=0|1 roundtrip=0|1 calls=N": E the armed request's
 *	error, match: its output equals xts(aes)'s, roundtrip: the inverse
 *	gives the input back. `trace` lists the armed request's calls, one
 *	a line: "N cpu=C op=enc|dec impl=I seg=S off=O len=L first=F
 *	clobbered=0|1" (off: byte offset of the chunk within its entry).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <crypto/aes.h>
#include <crypto/skcipher.h>
#include <linux/atomic.h>
#include <linux/cpumask.h>
#include <linux/gfp.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/random.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/workqueue.h>
#include <asm/debugreg.h>

#define TESTRESUME_WORD	0x5eed5eed5eed5eedUL
#define NSEG		5
#define MAXCALLS	32
#define MAXFAIL		4

/* The entries: a mix of offsets and lengths, each within its own page */
static const unsigned int seg_off[NSEG] = { 0, 512, 48, 0, 1024 };
static const unsigned int seg_len[NSEG] = { 4096, 1024, 2048, 4096, 3072 };
#define TOTAL		(4096 + 1024 + 2048 + 4096 + 3072)

static const char * const probe_syms[] = {
	"tresor_xts_encrypt_aesni", "tresor_xts_decrypt_aesni",
	"tresor_xts_encrypt_vaes_avx2", "tresor_xts_decrypt_vaes_avx2",
	"tresor_xts_encrypt_vaes_avx512", "tresor_xts_decrypt_vaes_avx512",
};

#define NPROBES	ARRAY_SIZE(probe_syms)

static struct kprobe probes[NPROBES];
static bool probe_on[NPROBES];

struct call_rec {
	int cpu, probe, seg;
	unsigned int off, len;
	bool first, clobbered;
};

static struct call_rec calls[MAXCALLS];
static atomic_t ncalls = ATOMIC_INIT(0);
static bool armed;
static int fail_at[MAXFAIL], nfail;
/* the armed request's source pages */
static struct page *src_pages[NSEG];

static const u8 zero_key[2 * AES_KEYSIZE_128];
static DEFINE_MUTEX(run_lock);
static struct crypto_skcipher *ref_tfm;	/* xts(aes) with the key */
static char result[128] = "none\n";

static int resume_pre(struct kprobe *p, struct pt_regs *regs)
{
	int i, n, seg = -1;
	unsigned long off = 0;

	if (!READ_ONCE(armed))
		return 0;
	for (i = 0; i < NSEG; i++) {
		unsigned long base = (unsigned long)page_address(src_pages[i]);

		if (regs->si >= base + seg_off[i] &&
		    regs->si < base + seg_off[i] + seg_len[i]) {
			seg = i;
			off = regs->si - base - seg_off[i];
			break;
		}
	}
	if (seg < 0)
		return 0;
	n = atomic_inc_return(&ncalls);
	if (n > MAXCALLS)
		return 0;
	calls[n - 1] = (struct call_rec) {
		.cpu = smp_processor_id(),
		.probe = p - probes,
		.seg = seg,
		.off = off,
		.len = regs->dx,
		.first = regs->r8 != 0,
	};
	for (i = 0; i < nfail; i++) {
		if (fail_at[i] == n) {
			/* the check of this very call fails */
			set_debugreg(TESTRESUME_WORD, 0);
			calls[n - 1].clobbered = true;
		}
	}
	return 0;
}

static int key_set(const char *val, const struct kernel_param *kp)
{
	char hex[2][2 * 32 + 1];
	u8 *key;
	int i, ret;

	if (sscanf(val, "%64s %64s", hex[0], hex[1]) != 2)
		return -EINVAL;
	key = kzalloc(64, GFP_KERNEL);
	if (!key)
		return -ENOMEM;
	ret = -EINVAL;
	if (hex2bin(key, hex[0], 32) || hex2bin(key + 32, hex[1], 32))
		goto out;
	for (i = 0; i < 32; i++)
		key[i] ^= key[32 + i];
	mutex_lock(&run_lock);
	if (!ref_tfm) {
		ref_tfm = crypto_alloc_skcipher("xts(aes)", 0, 0);
		if (IS_ERR(ref_tfm)) {
			ret = PTR_ERR(ref_tfm);
			ref_tfm = NULL;
			mutex_unlock(&run_lock);
			goto out;
		}
	}
	ret = crypto_skcipher_setkey(ref_tfm, key, 32);
	mutex_unlock(&run_lock);
out:
	kfree_sensitive(key);
	memzero_explicit(hex, sizeof(hex));
	return ret;
}

static const struct kernel_param_ops key_ops = { .set = key_set };
module_param_cb(key, &key_ops, NULL, 0200);
MODULE_PARM_DESC(key, "\"E M\": the key loaded into tresor, XOR-split");

struct run_job {
	struct crypto_skcipher *tfm;
	struct scatterlist *src, *dst;
	unsigned int len;
	u8 iv[AES_BLOCK_SIZE];
	bool enc;
};

static long crypt_one(void *arg)
{
	struct run_job *job = arg;
	struct skcipher_request *req;
	DECLARE_CRYPTO_WAIT(wait);
	u8 iv[AES_BLOCK_SIZE];
	int err;

	req = skcipher_request_alloc(job->tfm, GFP_KERNEL);
	if (!req)
		return -ENOMEM;
	memcpy(iv, job->iv, sizeof(iv));
	skcipher_request_set_callback(req, CRYPTO_TFM_REQ_MAY_BACKLOG |
				      CRYPTO_TFM_REQ_MAY_SLEEP,
				      crypto_req_done, &wait);
	skcipher_request_set_crypt(req, job->src, job->dst, job->len, iv);
	err = crypto_wait_req(job->enc ? crypto_skcipher_encrypt(req) :
			      crypto_skcipher_decrypt(req), &wait);
	skcipher_request_free(req);
	return err;
}

static void sg_fill(struct scatterlist *sg, struct page **pages)
{
	int i;

	sg_init_table(sg, NSEG);
	for (i = 0; i < NSEG; i++)
		sg_set_page(&sg[i], pages[i], seg_len[i], seg_off[i]);
}

static void seg_copy(struct page **pages, u8 *buf, bool to_pages)
{
	unsigned int i, pos = 0;

	for (i = 0; i < NSEG; i++) {
		u8 *p = page_address(pages[i]) + seg_off[i];

		if (to_pages)
			memcpy(p, buf + pos, seg_len[i]);
		else
			memcpy(buf + pos, p, seg_len[i]);
		pos += seg_len[i];
	}
}

struct run_bufs {
	struct page *in[NSEG], *out[NSEG];
	struct scatterlist sg_in[NSEG], sg_out[NSEG], sg_lin[2];
	u8 *plain, *ref, *got;
};

static void bufs_free(struct run_bufs *b)
{
	int i;

	for (i = 0; i < NSEG; i++) {
		if (b->in[i])
			__free_page(b->in[i]);
		if (b->out[i])
			__free_page(b->out[i]);
	}
	kfree(b->plain);
	kfree(b->ref);
	kfree(b->got);
	kfree(b);
}

static struct run_bufs *bufs_alloc(void)
{
	struct run_bufs *b = kzalloc(sizeof(*b), GFP_KERNEL);
	int i;

	if (!b)
		return NULL;
	for (i = 0; i < NSEG; i++) {
		b->in[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		b->out[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!b->in[i] || !b->out[i])
			goto fail;
	}
	b->plain = kmalloc(TOTAL, GFP_KERNEL);
	b->ref = kmalloc(TOTAL, GFP_KERNEL);
	b->got = kmalloc(TOTAL, GFP_KERNEL);
	if (!b->plain || !b->ref || !b->got)
		goto fail;
	return b;
fail:
	bufs_free(b);
	return NULL;
}

static int parse_run(const char *val, int *cpu, bool *enc, bool *inplace)
{
	char op[4], mode[8], fails[32], *p, *tok;
	int n;

	if (sscanf(val, "%d %3s %7s %31s", cpu, op, mode, fails) != 4)
		return -EINVAL;
	if (!strcmp(op, "enc") || !strcmp(op, "dec"))
		*enc = op[0] == 'e';
	else
		return -EINVAL;
	if (!strcmp(mode, "inplace") || !strcmp(mode, "copy"))
		*inplace = mode[0] == 'i';
	else
		return -EINVAL;
	nfail = 0;
	p = fails;
	while ((tok = strsep(&p, ",")) != NULL) {
		if (nfail == MAXFAIL || kstrtoint(tok, 10, &n) || n < 1)
			return -EINVAL;
		fail_at[nfail++] = n;
	}
	return 0;
}

static int run_set(const char *val, const struct kernel_param *kp)
{
	struct run_job job = { .len = TOTAL };
	struct crypto_skcipher *tfm;
	struct run_bufs *b;
	bool enc, inplace, match, roundtrip;
	int cpu, err, ret;

	mutex_lock(&run_lock);
	ret = parse_run(val, &cpu, &enc, &inplace);
	if (ret)
		goto out_unlock;
	ret = -EINVAL;
	if (cpu < 0 || cpu >= nr_cpu_ids || !cpu_online(cpu) || !ref_tfm)
		goto out_unlock;
	ret = -ENOMEM;
	b = bufs_alloc();
	if (!b)
		goto out_unlock;
	tfm = crypto_alloc_skcipher("xts(tresor)", 0, 0);
	if (IS_ERR(tfm)) {
		ret = PTR_ERR(tfm);
		goto out_free;
	}
	/* the all-zero placeholder: the key is in the debug registers */
	ret = crypto_skcipher_setkey(tfm, zero_key, sizeof(zero_key));
	if (ret)
		goto out_tfm;

	/* The reference: xts(aes) of the input, one linear buffer */
	get_random_bytes(b->plain, TOTAL);
	get_random_bytes(job.iv, sizeof(job.iv));
	job.tfm = ref_tfm;
	job.enc = true;
	memcpy(b->ref, b->plain, TOTAL);
	sg_init_one(b->sg_lin, b->ref, TOTAL);
	job.src = job.dst = b->sg_lin;
	ret = crypt_one(&job);
	if (ret)
		goto out_tfm;

	/* The armed request: plain -> ref (enc) or ref -> plain (dec) */
	sg_fill(b->sg_in, b->in);
	sg_fill(b->sg_out, b->out);
	seg_copy(b->in, enc ? b->plain : b->ref, true);
	job.tfm = tfm;
	job.enc = enc;
	job.src = b->sg_in;
	job.dst = inplace ? b->sg_in : b->sg_out;
	memcpy(src_pages, b->in, sizeof(src_pages));
	atomic_set(&ncalls, 0);
	memset(calls, 0, sizeof(calls));
	WRITE_ONCE(armed, true);
	/* process context on @cpu, where the FPU is usable: runs there */
	err = work_on_cpu(cpu, crypt_one, &job);
	WRITE_ONCE(armed, false);
	synchronize_rcu();	/* no pre-handler still looks at src_pages */
	seg_copy(inplace ? b->in : b->out, b->got, false);
	match = !err && !memcmp(b->got, enc ? b->ref : b->plain, TOTAL);

	/* The inverse, unarmed, in place on the armed request's output */
	job.src = job.dst = inplace ? b->sg_in : b->sg_out;
	job.enc = !enc;
	ret = work_on_cpu(cpu, crypt_one, &job);
	seg_copy(inplace ? b->in : b->out, b->got, false);
	roundtrip = !err && !ret &&
		    !memcmp(b->got, enc ? b->plain : b->ref, TOTAL);
	scnprintf(result, sizeof(result),
		  "err=%d match=%d roundtrip=%d calls=%d\n", err, match,
		  roundtrip, atomic_read(&ncalls));
	pr_info("run %s: %s", val, result);
	ret = 0;
out_tfm:
	crypto_free_skcipher(tfm);
out_free:
	bufs_free(b);
out_unlock:
	mutex_unlock(&run_lock);
	return ret;
}

static const struct kernel_param_ops run_ops = { .set = run_set };
module_param_cb(run, &run_ops, NULL, 0200);
MODULE_PARM_DESC(run, "\"CPU enc|dec inplace|copy FAIL[,FAIL..]\": one run");

static int result_get(char *buf, const struct kernel_param *kp)
{
	int len;

	mutex_lock(&run_lock);
	len = sysfs_emit(buf, "%s", result);
	mutex_unlock(&run_lock);
	return len;
}

static const struct kernel_param_ops result_ops = { .get = result_get };
module_param_cb(result, &result_ops, NULL, 0444);

static int trace_get(char *buf, const struct kernel_param *kp)
{
	int i, n, len = 0;

	mutex_lock(&run_lock);
	n = min(atomic_read(&ncalls), MAXCALLS);
	for (i = 0; i < n; i++) {
		const struct call_rec *c = &calls[i];

		len += sysfs_emit_at(buf, len,
				     "%d cpu=%d op=%s impl=%s seg=%d off=%u len=%u first=%d clobbered=%d\n",
				     i + 1, c->cpu, c->probe % 2 ? "dec" : "enc",
				     probe_syms[c->probe] + 19, c->seg, c->off,
				     c->len, c->first, c->clobbered);
	}
	mutex_unlock(&run_lock);
	return len;
}

static const struct kernel_param_ops trace_ops = { .get = trace_get };
module_param_cb(trace, &trace_ops, NULL, 0444);

static void resume_unregister(void)
{
	int i;

	for (i = 0; i < NPROBES; i++) {
		if (probe_on[i])
			unregister_kprobe(&probes[i]);
		probe_on[i] = false;
	}
}

static int __init resume_init(void)
{
	int i, ret;

	for (i = 0; i < NPROBES; i++) {
		probes[i].symbol_name = probe_syms[i];
		probes[i].pre_handler = resume_pre;
		ret = register_kprobe(&probes[i]);
		if (ret) {
			pr_err("kprobe on %s: %d (is tresor loaded?)\n",
			       probe_syms[i], ret);
			resume_unregister();
			return ret;
		}
		probe_on[i] = true;
	}
	return 0;
}

static void __exit resume_exit(void)
{
	resume_unregister();
	if (ref_tfm)
		crypto_free_skcipher(ref_tfm);
}

module_init(resume_init);
module_exit(resume_exit);

MODULE_DESCRIPTION("TEST ONLY: a key holder fails its check in the middle of an xts(tresor) request");
MODULE_LICENSE("GPL");
