// SPDX-License-Identifier: GPL-2.0
/*
 * xts_bench.c - speed of tresor.ko's AES-128-XTS assembly (userspace build,
 * -DTRESOR_KEY_FROM_MEMORY: identical code except that the key words come
 * from tresor_bench_key[] instead of DR0-DR3, and without cli) against the
 * Linux kernel's own AES-XTS assembly and OpenSSL EVP_aes_128_xts, on
 * dm-crypt-like data units.
 *
 * The anchor: arch/x86/crypto/aes-xts-avx-x86_64.S of Debian's
 * linux-source-6.12, unpacked and assembled at build time
 * (tests/unit/Makefile.asm, -DHAVE_KERNEL_XTS), called exactly as
 * xts_crypt() in aesni-intel_glue.c does for one data unit:
 * aes_xts_encrypt_iv(&ctx->tweak_ctx, iv), then
 * aes_xts_{en,de}crypt_<impl>(&ctx->crypt_ctx, src, dst, len, iv), with
 * the round keys expanded once (in C, below) into struct aesni_xts_ctx as
 * xts_setkey_aesni() leaves them.  kernel_fpu_begin/end are left out on
 * both sides.  Before any timing, every kernel and tresor path is checked
 * against OpenSSL (16 B .. 4 KiB, encrypt and decrypt); a mismatch aborts.
 *
 * Every unit is one call with its own IV (sector number, plain64) and
 * first=1, so tresor pays the full per-call key expansion (K1 schedule + K2
 * tweak encryption) as it does in the kernel; the kernel's asm uses its
 * cached schedules.  OpenSSL variants:
 *   ossl-iv:    EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, enc) + Update
 *               per unit (key schedule cached in the context; the usual way)
 *   ossl-reuse: one init, Update per unit with the context reused as is
 *   ossl-key:   EVP_CipherInit_ex with key and IV per unit (pays the key
 *               schedule like tresor does)
 * All variants run interleaved in the same process (order rotated every
 * round), R rounds per unit size; the best and the median GB/s are
 * reported, with ratios tresor / kernel (same class of instructions, and
 * the implementation the kernel itself would pick on this CPU) and
 * tresor / ossl-iv.  No timed assertions: the machine may be noisy.
 *
 * Then where tresor's time goes: ns per call at 16 B, the per-block slope
 * from 512 B to 4 KiB, the key expansion alone (tresor_check_values_*:
 * key load + both schedules, as at the start of every request) and a
 * pushfq;popfq pair, also in core cycles (clock estimated from a chain of
 * dependent adds).
 *
 * usage: xts_bench [-s unit[,unit...]] [-w working_set_bytes] [-r rounds]
 *                  [-t ms_per_sample]
 *        (default -s 16,512,4096 -w 65536 -r 9 -t 40)
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <immintrin.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>

#include "tresor_asm.h"

unsigned char tresor_bench_key[32];

typedef uint32_t u32;

/* ---- the kernel's AES-XTS asm (arch/x86/crypto, 6.12) ---------------- */

/* include/crypto/aes.h */
struct crypto_aes_ctx {
	u32 key_enc[60];
	u32 key_dec[60];
	u32 key_length;
};

/* aesni-intel_glue.c: struct aesni_xts_ctx, AESNI_ALIGN 16 */
struct aesni_xts_ctx {
	_Alignas(16) struct crypto_aes_ctx tweak_ctx;
	_Alignas(16) struct crypto_aes_ctx crypt_ctx;
};

/* the offsets aes-xts-avx-x86_64.S hard-codes */
_Static_assert(offsetof(struct crypto_aes_ctx, key_enc) == 0, "key_enc");
_Static_assert(offsetof(struct crypto_aes_ctx, key_dec) == 240, "key_dec");
_Static_assert(offsetof(struct crypto_aes_ctx, key_length) == 480, "len");

typedef void (*kxts_fn)(const struct crypto_aes_ctx *, const u8 *, u8 *,
			unsigned int, u8 *);

#ifdef HAVE_KERNEL_XTS
void aes_xts_encrypt_iv(const struct crypto_aes_ctx *tweak_key, u8 iv[16]);
#define KDECL(s)							\
void aes_xts_encrypt_##s(const struct crypto_aes_ctx *key, const u8 *src, \
			 u8 *dst, unsigned int len, u8 tweak[16]);	\
void aes_xts_decrypt_##s(const struct crypto_aes_ctx *key, const u8 *src, \
			 u8 *dst, unsigned int len, u8 tweak[16]);
KDECL(aesni_avx)
KDECL(vaes_avx2)
KDECL(vaes_avx10_256)
KDECL(vaes_avx10_512)
#define KFN(f)	f
#else
#define KFN(f)	NULL
#define KERNEL_XTS_SRC "(not built)"
#endif

static struct aesni_xts_ctx kctx;

/* AES-128 key schedule, laid out as aes_expandkey()/aesni_set_key() do. */
static __attribute__((target("aes,sse4.1"))) __m128i
ks_step(__m128i k, __m128i g)
{
	g = _mm_shuffle_epi32(g, 0xff);
	k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
	k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
	k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
	return _mm_xor_si128(k, g);
}

static __attribute__((target("aes,sse4.1"))) void
kernel_aes_expandkey128(struct crypto_aes_ctx *c, const u8 key[16])
{
	__m128i rk[11];

	memset(c, 0, sizeof(*c));
	rk[0] = _mm_loadu_si128((const __m128i *)key);
#define KS(i, rc) rk[i] = ks_step(rk[i - 1], _mm_aeskeygenassist_si128(rk[i - 1], rc))
	KS(1, 0x01); KS(2, 0x02); KS(3, 0x04); KS(4, 0x08); KS(5, 0x10);
	KS(6, 0x20); KS(7, 0x40); KS(8, 0x80); KS(9, 0x1b); KS(10, 0x36);
#undef KS
	for (int i = 0; i <= 10; i++) {
		/* decryption: equivalent inverse cipher order */
		__m128i d = (i == 0 || i == 10) ? rk[10 - i] :
			    _mm_aesimc_si128(rk[10 - i]);

		_mm_storeu_si128((__m128i *)&c->key_enc[4 * i], rk[i]);
		_mm_storeu_si128((__m128i *)&c->key_dec[4 * i], d);
	}
	c->key_length = 16;
}

/* xts_setkey_aesni(): first half of the key for data, second for tweak */
static void kernel_xts_setkey(struct aesni_xts_ctx *c, const u8 key[32])
{
	kernel_aes_expandkey128(&c->crypt_ctx, key);
	kernel_aes_expandkey128(&c->tweak_ctx, key + 16);
}

/* ---- CPU features ----------------------------------------------------- */

static int yes(void) { return 1; }

static int have_aesni(void)
{
	return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
}

static int have_avx2(void)
{
	return have_aesni() && __builtin_cpu_supports("avx2") &&
	       __builtin_cpu_supports("vaes");
}

static int have_avx512(void)
{
	return have_avx2() && __builtin_cpu_supports("avx512f") &&
	       __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx512vl") &&
	       __builtin_cpu_supports("vpclmulqdq");
}

#ifdef HAVE_KERNEL_XTS
/* aesni-intel_glue.c register_xts_algs() (and the module's AES-NI check) */
static int k_have_aesni_avx(void)
{
	return __builtin_cpu_supports("aes") && __builtin_cpu_supports("avx");
}

static int k_have_vaes_avx2(void)
{
	return k_have_aesni_avx() && __builtin_cpu_supports("avx2") &&
	       __builtin_cpu_supports("vaes") &&
	       __builtin_cpu_supports("vpclmulqdq") &&
	       __builtin_cpu_supports("pclmul");
}

static int k_have_avx10(void)
{
	return k_have_vaes_avx2() && __builtin_cpu_supports("avx512f") &&
	       __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx512vl") &&
	       __builtin_cpu_supports("bmi2");
}
#else
static int no(void) { return 0; }
#define k_have_aesni_avx no
#define k_have_vaes_avx2 no
#define k_have_avx10 no
#endif

/* ---- variants --------------------------------------------------------- */

typedef int (*xts_fn)(u8 *, const u8 *, unsigned int, u8 *, int,
		      const u8 *);

/* the key's check values, verified inside every tresor call */
static u8 tresor_bench_check[32];

enum kind { TRESOR, KERNEL, OSSL_IV, OSSL_REUSE, OSSL_KEY };

#define MAXSIZES 8

struct variant {
	const char *name;
	const char *cls;	/* pairs tresor with kernel: same instructions */
	enum kind kind;
	int enc;
	xts_fn fn;
	kxts_fn kfn;
	int (*supported)(void);
	int prio;		/* kernel: cra_priority of the driver */
	double *samples;
	double best[MAXSIZES], med[MAXSIZES];
};

#define T(n, c, e, f, s) \
	{ .name = "tresor " n, .cls = c, .kind = TRESOR, .enc = e, .fn = f, .supported = s }
#define K(n, c, e, f, s, p) \
	{ .name = "kernel " n, .cls = c, .kind = KERNEL, .enc = e, .kfn = KFN(f), \
	  .supported = s, .prio = p }
#define O(n, k, e) { .name = n, .kind = k, .enc = e, .supported = yes }

static struct variant vars[] = {
	T("aesni", "aesni", 1, tresor_xts_encrypt_aesni, have_aesni),
	T("aesni", "aesni", 0, tresor_xts_decrypt_aesni, have_aesni),
	T("vaes_avx2", "avx2", 1, tresor_xts_encrypt_vaes_avx2, have_avx2),
	T("vaes_avx2", "avx2", 0, tresor_xts_decrypt_vaes_avx2, have_avx2),
	T("vaes_avx512", "avx512", 1, tresor_xts_encrypt_vaes_avx512, have_avx512),
	T("vaes_avx512", "avx512", 0, tresor_xts_decrypt_vaes_avx512, have_avx512),
	K("aesni_avx", "aesni", 1, aes_xts_encrypt_aesni_avx, k_have_aesni_avx, 500),
	K("aesni_avx", "aesni", 0, aes_xts_decrypt_aesni_avx, k_have_aesni_avx, 500),
	K("vaes_avx2", "avx2", 1, aes_xts_encrypt_vaes_avx2, k_have_vaes_avx2, 600),
	K("vaes_avx2", "avx2", 0, aes_xts_decrypt_vaes_avx2, k_have_vaes_avx2, 600),
	K("vaes_avx10_256", "-", 1, aes_xts_encrypt_vaes_avx10_256, k_have_avx10, 700),
	K("vaes_avx10_256", "-", 0, aes_xts_decrypt_vaes_avx10_256, k_have_avx10, 700),
	K("vaes_avx10_512", "avx512", 1, aes_xts_encrypt_vaes_avx10_512, k_have_avx10, 800),
	K("vaes_avx10_512", "avx512", 0, aes_xts_decrypt_vaes_avx10_512, k_have_avx10, 800),
	O("ossl-iv", OSSL_IV, 1),
	O("ossl-iv", OSSL_IV, 0),
	O("ossl-reuse", OSSL_REUSE, 1),
	O("ossl-reuse", OSSL_REUSE, 0),
	O("ossl-key", OSSL_KEY, 1),
	O("ossl-key", OSSL_KEY, 0),
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

static int usable(const struct variant *v)
{
	if (v->kind == KERNEL && !v->kfn)
		return 0;
	return v->supported();
}

static size_t unit = 4096, wset = 64 * 1024;
static u8 *src, *dst;
static u8 key[32];
static EVP_CIPHER_CTX *ctx_enc, *ctx_dec;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void iv_for(u8 iv[16], uint64_t sector)
{
	memset(iv, 0, 16);
	memcpy(iv, &sector, 8);		/* plain64 */
}

/* one data unit, as the respective caller does it */
static void one_unit(struct variant *v, u8 *out, const u8 *in,
		     unsigned int len, u8 iv[16])
{
	EVP_CIPHER_CTX *c = v->enc ? ctx_enc : ctx_dec;
	int outl;

	switch (v->kind) {
	case TRESOR:
		if (v->fn(out, in, len, iv, 1, tresor_bench_check)) {
			fprintf(stderr, "tresor key check failed\n");
			exit(1);
		}
		break;
	case KERNEL:
#ifdef HAVE_KERNEL_XTS
		aes_xts_encrypt_iv(&kctx.tweak_ctx, iv);
#endif
		v->kfn(&kctx.crypt_ctx, in, out, len, iv);
		break;
	case OSSL_IV:
		EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, -1);
		EVP_CipherUpdate(c, out, &outl, in, (int)len);
		break;
	case OSSL_REUSE:
		EVP_CipherUpdate(c, out, &outl, in, (int)len);
		break;
	case OSSL_KEY:
		EVP_CipherInit_ex(c, NULL, NULL, key, iv, -1);
		EVP_CipherUpdate(c, out, &outl, in, (int)len);
		break;
	}
}

/* process n units; returns bytes */
static size_t run(struct variant *v, size_t n, uint64_t *sector)
{
	size_t nunits = wset / unit, done = 0;
	u8 iv[16];

	for (size_t i = 0; i < n; i++) {
		size_t off = (i % nunits) * unit;

		iv_for(iv, (*sector)++);
		one_unit(v, dst + off, src + off, (unsigned int)unit, iv);
		done += unit;
	}
	return done;
}

/*
 * Every tresor and kernel path against OpenSSL (separate contexts) for all
 * lengths 16..4096 in steps of 16, 3 IVs each (plain64 and a full 16-byte
 * one), both directions.  Exits 1 on the first difference.
 */
static unsigned long verify_all(char *names, size_t nlen)
{
	static u8 in[4096], ref[4096], out[4096];
	EVP_CIPHER_CTX *vc = EVP_CIPHER_CTX_new();
	unsigned long checked = 0;
	uint64_t x = 0x9e3779b97f4a7c15ull;

	if (!vc) {
		fprintf(stderr, "FATAL: EVP_CIPHER_CTX_new\n");
		exit(1);
	}
	for (unsigned int len = 16; len <= sizeof(in); len += 16) {
		for (int t = 0; t < 3; t++) {
			u8 iv[16], iv2[16];

			for (size_t i = 0; i < len; i++) {
				x = x * 6364136223846793005ull + 1442695040888963407ull;
				in[i] = (u8)(x >> 56);
			}
			if (t < 2) {
				iv_for(iv, t ? 0xfedcba9876543210ull : len);
			} else {
				for (int i = 0; i < 16; i++)
					iv[i] = (u8)(len * 7 + i * 29);
			}
			for (int enc = 0; enc <= 1; enc++) {
				int outl = 0, fl = 0;

				if (EVP_CipherInit_ex(vc, EVP_aes_128_xts(), NULL,
						      key, iv, enc) != 1 ||
				    EVP_CipherUpdate(vc, ref, &outl, in, (int)len) != 1 ||
				    EVP_CipherFinal_ex(vc, ref + outl, &fl) != 1 ||
				    outl + fl != (int)len) {
					fprintf(stderr, "FATAL: OpenSSL XTS failed\n");
					exit(1);
				}
				for (size_t k = 0; k < NVARS; k++) {
					struct variant *v = &vars[k];

					if ((v->kind != TRESOR && v->kind != KERNEL) ||
					    v->enc != enc || !usable(v))
						continue;
					memcpy(iv2, iv, 16);
					memset(out, 0xa5, sizeof(out));
					one_unit(v, out, in, len, iv2);
					if (memcmp(out, ref, len)) {
						fprintf(stderr,
							"FATAL: %s %s differs from OpenSSL EVP_aes_128_xts (%u-byte unit, IV set %d); no figures printed\n",
							v->name, enc ? "enc" : "dec", len, t);
						exit(1);
					}
					checked++;
				}
			}
		}
	}
	EVP_CIPHER_CTX_free(vc);
	names[0] = 0;
	for (size_t k = 0; k < NVARS; k++) {
		struct variant *v = &vars[k];
		size_t l = strlen(names);

		if ((v->kind == TRESOR || v->kind == KERNEL) && v->enc && usable(v))
			snprintf(names + l, nlen - l, "%s%s", l ? ", " : "", v->name);
	}
	return checked;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static struct variant *find(enum kind kind, const char *cls, int enc)
{
	for (size_t i = 0; i < NVARS; i++)
		if (vars[i].kind == kind && vars[i].enc == enc && usable(&vars[i]) &&
		    (!cls || !strcmp(vars[i].cls, cls)))
			return &vars[i];
	return NULL;
}

/* the xts(aes) driver the kernel would pick here: highest cra_priority */
static struct variant *kernel_pick(int enc)
{
	struct variant *b = NULL;

	for (size_t i = 0; i < NVARS; i++)
		if (vars[i].kind == KERNEL && vars[i].enc == enc &&
		    usable(&vars[i]) && (!b || vars[i].prio > b->prio))
			b = &vars[i];
	return b;
}

/*
 * Core clock from a chain of dependent adds (1 per cycle), sampled (5 x
 * 0.6 ms) between the timed rounds and before the fixed-cost figures; the
 * highest sample is used.
 */
static double ghz;

static void sample_core_ghz(void)
{
	for (int t = 0; t < 5; t++) {
		unsigned long n = 50000, x = 0;
		double t0 = now();

		__asm__ volatile("1:\n\t.rept 40\n\tadd $1, %0\n\t.endr\n\t"
				 "dec %1\n\tjnz 1b"
				 : "+r"(x), "+r"(n) : : "cc");
		double g = 2e6 / (now() - t0) / 1e9;

		if (g > ghz)
			ghz = g;
	}
}

/* ns per pushfq;popfq pair (TRESOR_LOAD_KEY's, minus the kernel's cli) */
static double pushf_popf_ns(void)
{
	double best = 1e9;

	for (int t = 0; t < 40; t++) {
		unsigned long n = 10000;
		double t0 = now();

		/* below the red zone, which the compiler may be using */
		__asm__ volatile("sub $128, %%rsp\n1:\n\t.rept 8\n\t"
				 "pushfq\n\tpopfq\n\t.endr\n\tdec %0\n\tjnz 1b\n\t"
				 "add $128, %%rsp"
				 : "+r"(n) : : "cc", "memory");
		double ns = (now() - t0) * 1e9 / 80000;

		if (ns < best)
			best = ns;
	}
	return best;
}

/* ns per call of a tresor check-values function (key load + expansion) */
static double expand_ns(void (*cv)(u8 *))
{
	double best = 1e9;
	u8 out[32];

	for (int t = 0; t < 40; t++) {
		double t0 = now();

		for (int i = 0; i < 20000; i++)
			cv(out);
		double ns = (now() - t0) * 1e9 / 20000;

		if (ns < best)
			best = ns;
	}
	return best;
}

static void usage(const char *p)
{
	fprintf(stderr, "usage: %s [-s unit[,unit...]] [-w wset] [-r rounds] [-t ms]\n", p);
	exit(2);
}

int main(int argc, char **argv)
{
	int rounds = 9, opt, nsizes = 0;
	size_t sizes[MAXSIZES];
	double ms = 40;
	uint64_t sector = 0;
	u8 iv0[16] = { 0 };
	char *p;

	while ((opt = getopt(argc, argv, "s:w:r:t:")) != -1) {
		switch (opt) {
		case 's':
			for (p = optarg; *p && nsizes < MAXSIZES; ) {
				sizes[nsizes++] = strtoul(p, &p, 0);
				if (*p == ',')
					p++;
				else if (*p)
					usage(argv[0]);
			}
			break;
		case 'w': wset = strtoul(optarg, NULL, 0); break;
		case 'r': rounds = atoi(optarg); break;
		case 't': ms = atof(optarg); break;
		default:
			usage(argv[0]);
		}
	}
	if (!nsizes) {
		sizes[nsizes++] = 16;
		sizes[nsizes++] = 512;
		sizes[nsizes++] = 4096;
	}
	for (int s = 0; s < nsizes; s++)
		if (!sizes[s] || sizes[s] % 16 || sizes[s] > wset ||
		    sizes[s] > 1u << 30) {
			fprintf(stderr, "bad arguments\n");
			return 2;
		}
	if (rounds < 1 || ms <= 0)
		usage(argv[0]);
	__builtin_cpu_init();
	src = aligned_alloc(64, wset);
	dst = aligned_alloc(64, wset);
	if (!src || !dst)
		return 2;
	for (size_t i = 0; i < wset; i++)
		src[i] = (u8)(i * 131 + 7);
	memset(dst, 0, wset);
	for (int i = 0; i < 32; i++)
		key[i] = (u8)(i * 37 + 11);
	memcpy(tresor_bench_key, key, 32);
	tresor_check_values_aesni(tresor_bench_check);
	if (k_have_aesni_avx())
		kernel_xts_setkey(&kctx, key);

	ctx_enc = EVP_CIPHER_CTX_new();
	ctx_dec = EVP_CIPHER_CTX_new();
	if (!ctx_enc || !ctx_dec ||
	    EVP_CipherInit_ex(ctx_enc, EVP_aes_128_xts(), NULL, key, iv0, 1) != 1 ||
	    EVP_CipherInit_ex(ctx_dec, EVP_aes_128_xts(), NULL, key, iv0, 0) != 1) {
		fprintf(stderr, "OpenSSL init failed\n");
		return 2;
	}

	printf("AES-128-XTS, one data unit per call (own IV, plain64), working set %zu KiB, %s\n",
	       wset / 1024, OpenSSL_version(OPENSSL_VERSION));
#ifdef HAVE_KERNEL_XTS
	printf("kernel anchor: %s, key schedules expanded once in C into struct aesni_xts_ctx\n",
	       KERNEL_XTS_SRC);
#else
	printf("kernel anchor: not built (no /usr/src/linux-source-6.12.tar.xz: apt-get install linux-source-6.12, see tests/install-deps)\n");
#endif
	for (size_t i = 0; i < NVARS; i++)
		if ((vars[i].kind == TRESOR ||
		     (vars[i].kind == KERNEL && vars[i].kfn)) &&
		    vars[i].enc && !usable(&vars[i]))
			printf("  %-22s not available on this CPU\n", vars[i].name);
	char names[512];
	unsigned long checked = verify_all(names, sizeof(names));

	printf("output check: == OpenSSL for 16..4096-byte units, 3 IVs, enc+dec (%lu units): OK: %s\n",
	       checked, names);

	for (size_t i = 0; i < NVARS; i++)
		vars[i].samples = calloc((size_t)rounds, sizeof(double));

	for (int s = 0; s < nsizes; s++) {
		unit = sizes[s];
		size_t w = wset - wset % unit;
		size_t save = wset;

		wset = w;
		/* calibrate: units per sample so that one sample takes ~ms */
		size_t n = 256;
		{
			struct variant *v = find(OSSL_IV, NULL, 1);
			double t0 = now();

			run(v, n, &sector);
			double dt = now() - t0;

			n = (size_t)(n * (ms / 1e3) / (dt > 1e-6 ? dt : 1e-6));
			if (n < 16)
				n = 16;
		}
		/* warm-up, then interleaved rounds */
		for (size_t i = 0; i < NVARS; i++)
			if (usable(&vars[i]))
				run(&vars[i], n / 4 + 1, &sector);
		for (int r = 0; r < rounds; r++) {
			for (size_t k = 0; k < NVARS; k++) {
				/* rotate the order every round */
				struct variant *v = &vars[(k + (size_t)r) % NVARS];

				if (!usable(v))
					continue;
				double t0 = now();
				size_t bytes = run(v, n, &sector);
				double dt = now() - t0;

				v->samples[r] = bytes / dt / 1e9;
			}
			sample_core_ghz();
		}
		wset = save;

		printf("\n%zu-byte units: %d rounds x %zu units, interleaved; GB/s best, median; ns/unit at best\n",
		       unit, rounds, n);
		for (size_t i = 0; i < NVARS; i++) {
			struct variant *v = &vars[i];

			if (!usable(v))
				continue;
			qsort(v->samples, (size_t)rounds, sizeof(double), cmp_double);
			v->best[s] = v->samples[rounds - 1];
			v->med[s] = v->samples[rounds / 2];
			printf("  %-22s %s  %6.2f %6.2f  %8.1f ns\n", v->name,
			       v->enc ? "enc" : "dec", v->best[s], v->med[s],
			       unit / v->best[s]);
		}
		printf("  ratios, best/best (median/median):\n");
		for (size_t i = 0; i < NVARS; i++) {
			struct variant *v = &vars[i], *k, *kp, *o;

			if (v->kind != TRESOR || !usable(v))
				continue;
			k = find(KERNEL, v->cls, v->enc);
			kp = kernel_pick(v->enc);
			o = find(OSSL_IV, NULL, v->enc);
			printf("  %-22s %s", v->name, v->enc ? "enc" : "dec");
			if (k)
				printf("  vs %s %.3f (%.3f)", k->name,
				       v->best[s] / k->best[s], v->med[s] / k->med[s]);
			if (kp && kp != k)
				printf("  vs %s %.3f (%.3f)", kp->name,
				       v->best[s] / kp->best[s], v->med[s] / kp->med[s]);
			printf("  vs ossl-iv %.3f (%.3f)\n", v->best[s] / o->best[s],
			       v->med[s] / o->med[s]);
		}
	}

	/* where the time goes: fixed cost per call vs per block */
	for (int t = 0; t < 10; t++)
		sample_core_ghz();
	int s16 = -1, s512 = -1, s4k = -1;

	for (int s = 0; s < nsizes; s++) {
		if (sizes[s] == 16) s16 = s;
		if (sizes[s] == 512) s512 = s;
		if (sizes[s] == 4096) s4k = s;
	}
	printf("\nper-call cost (best; cycles at ~%.2f GHz, the fastest 0.6 ms dependent-add clock sample):\n",
	       ghz);
	if (s512 >= 0 && s4k >= 0) {
		printf("  %-22s     %-15s %-15s %-13s %-13s\n", "", "16 B call", "slope/block",
		       "fixed (fit)", "4 KiB: fixed");
		for (size_t i = 0; i < NVARS; i++) {
			struct variant *v = &vars[i];

			if (v->kind != TRESOR && v->kind != KERNEL)
				continue;
			if (!usable(v))
				continue;
			double t512 = 512 / v->best[s512], t4k = 4096 / v->best[s4k];
			double slope = (t4k - t512) / (256 - 32);
			double fixed = t512 - 32 * slope;

			printf("  %-22s %s ", v->name, v->enc ? "enc" : "dec");
			if (s16 >= 0)
				printf("%6.1f ns %4.0f c ", 16 / v->best[s16],
				       16 / v->best[s16] * ghz);
			else
				printf("%-15s ", "-");
			printf("%5.2f ns %4.1f c %5.1f ns %4.0f c  %4.1f%%\n", slope,
			       slope * ghz, fixed, fixed * ghz, 100 * fixed / t4k);
		}
		printf("  (slope: (t(4 KiB) - t(512 B)) / 224 blocks; fixed: t(512 B) - 32 x slope;\n"
		       "   last column: fixed share of a 4 KiB call)\n");
	}
	printf("  tresor key load + both schedules alone (tresor_check_values_*, as at the start of each request):\n");
	{
		struct { const char *n; void (*f)(u8 *); int (*ok)(void); } cv[] = {
			{ "aesni", tresor_check_values_aesni, have_aesni },
			{ "vaes_avx2", tresor_check_values_vaes_avx2, have_avx2 },
			{ "vaes_avx512", tresor_check_values_vaes_avx512, have_avx512 },
		};
		for (size_t i = 0; i < sizeof(cv) / sizeof(cv[0]); i++) {
			if (!cv[i].ok())
				continue;
			double ns = expand_ns(cv[i].f);

			printf("    %-12s %5.1f ns  %4.0f cycles\n", cv[i].n, ns, ns * ghz);
		}
	}
	double pf = pushf_popf_ns();

	printf("  pushfq;popfq pair (userspace; the kernel adds cli and 4 x mov %%drN): %.1f ns  %.0f cycles\n",
	       pf, pf * ghz);

	/* the target (issue 21 item 9) */
	if (s4k >= 0) {
		struct variant *t = find(TRESOR, "avx512", 1), *k = find(KERNEL, "avx512", 1);

		if (t && k) {
			printf("\ntarget: tresor vaes_avx512 enc >= 0.9 x kernel vaes_avx10_512 enc at 4 KiB: %.3f (median %.3f)\n",
			       t->best[s4k] / k->best[s4k], t->med[s4k] / k->med[s4k]);
		} else {
			printf("\ntarget: tresor vaes_avx512 vs kernel vaes_avx10_512 at 4 KiB: not measurable here (%s)\n",
			       !have_avx512() ? "no AVX-512 on this CPU" : "kernel anchor not built");
			t = find(TRESOR, "avx2", 1);
			k = find(KERNEL, "avx2", 1);
			if (t && k)
				printf("        closest: tresor vaes_avx2 enc / kernel vaes_avx2 enc at 4 KiB: %.3f (median %.3f)\n",
				       t->best[s4k] / k->best[s4k], t->med[s4k] / k->med[s4k]);
		}
	}
	EVP_CIPHER_CTX_free(ctx_enc);
	EVP_CIPHER_CTX_free(ctx_dec);
	return 0;
}
