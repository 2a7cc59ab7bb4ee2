// SPDX-License-Identifier: GPL-2.0
/*
 * xts_bench.c - speed of tresor.ko's AES-128-XTS assembly (userspace build,
 * -DTRESOR_KEY_FROM_MEMORY: identical code except that the key words come
 * from tresor_bench_key[] instead of DR0-DR3, and without cli) against
 * OpenSSL EVP_aes_128_xts, on dm-crypt-like data units.
 *
 * Every unit is one call with its own IV (sector number, plain64) and
 * first=1, so ours pays the full per-call key expansion (K1 schedule + K2
 * tweak encryption) as it does in the kernel.  OpenSSL variants:
 *   ossl-iv:    EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, enc) + Update
 *               per unit (key schedule cached in the context; the usual way)
 *   ossl-reuse: one init, Update per unit with the context reused as is
 *   ossl-key:   EVP_CipherInit_ex with key and IV per unit (pays the key
 *               schedule like ours does)
 * All variants run interleaved in the same process, R rounds; the median
 * GB/s per variant is reported, with ratios ours / ossl-iv (the target).
 *
 * usage: xts_bench [-s unit_bytes] [-w working_set_bytes] [-r rounds]
 *                  [-t ms_per_sample]
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>

#include "tresor_asm.h"

unsigned char tresor_bench_key[32];

typedef void (*xts_fn)(u8 *, const u8 *, unsigned int, u8 *, int);

enum kind { OURS, OSSL_IV, OSSL_REUSE, OSSL_KEY };

struct variant {
	const char *name;
	enum kind kind;
	int enc;
	xts_fn fn;
	int (*supported)(void);
	double *samples;
	double median;
};

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

static struct variant vars[] = {
	{ .name = "aesni        enc", OURS, 1, tresor_xts_encrypt_aesni, have_aesni },
	{ .name = "aesni        dec", OURS, 0, tresor_xts_decrypt_aesni, have_aesni },
	{ .name = "vaes_avx2    enc", OURS, 1, tresor_xts_encrypt_vaes_avx2, have_avx2 },
	{ .name = "vaes_avx2    dec", OURS, 0, tresor_xts_decrypt_vaes_avx2, have_avx2 },
	{ .name = "vaes_avx512  enc", OURS, 1, tresor_xts_encrypt_vaes_avx512, have_avx512 },
	{ .name = "vaes_avx512  dec", OURS, 0, tresor_xts_decrypt_vaes_avx512, have_avx512 },
	{ .name = "ossl-iv      enc", OSSL_IV, 1, NULL, yes },
	{ .name = "ossl-iv      dec", OSSL_IV, 0, NULL, yes },
	{ .name = "ossl-reuse   enc", OSSL_REUSE, 1, NULL, yes },
	{ .name = "ossl-reuse   dec", OSSL_REUSE, 0, NULL, yes },
	{ .name = "ossl-key     enc", OSSL_KEY, 1, NULL, yes },
	{ .name = "ossl-key     dec", OSSL_KEY, 0, NULL, yes },
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

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

/* process n units; returns bytes */
static size_t run(struct variant *v, size_t n, uint64_t *sector)
{
	size_t nunits = wset / unit, done = 0;
	EVP_CIPHER_CTX *c = v->enc ? ctx_enc : ctx_dec;
	u8 iv[16];
	int outl;

	for (size_t i = 0; i < n; i++) {
		size_t off = (i % nunits) * unit;

		iv_for(iv, (*sector)++);
		switch (v->kind) {
		case OURS:
			v->fn(dst + off, src + off, (unsigned int)unit, iv, 1);
			break;
		case OSSL_IV:
			EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, -1);
			EVP_CipherUpdate(c, dst + off, &outl, src + off, (int)unit);
			break;
		case OSSL_REUSE:
			EVP_CipherUpdate(c, dst + off, &outl, src + off, (int)unit);
			break;
		case OSSL_KEY:
			EVP_CipherInit_ex(c, NULL, NULL, key, iv, -1);
			EVP_CipherUpdate(c, dst + off, &outl, src + off, (int)unit);
			break;
		}
		done += unit;
	}
	return done;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double find(const char *prefix, int enc)
{
	for (size_t i = 0; i < NVARS; i++)
		if (!strncmp(vars[i].name, prefix, strlen(prefix)) &&
		    vars[i].enc == enc)
			return vars[i].median;
	return 0;
}

int main(int argc, char **argv)
{
	int rounds = 11, opt;
	double ms = 100;
	uint64_t sector = 0;
	u8 iv0[16] = { 0 };

	while ((opt = getopt(argc, argv, "s:w:r:t:")) != -1) {
		switch (opt) {
		case 's': unit = strtoul(optarg, NULL, 0); break;
		case 'w': wset = strtoul(optarg, NULL, 0); break;
		case 'r': rounds = atoi(optarg); break;
		case 't': ms = atof(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-s unit] [-w wset] [-r rounds] [-t ms]\n",
				argv[0]);
			return 2;
		}
	}
	if (!unit || unit % 16 || wset < unit || rounds < 1) {
		fprintf(stderr, "bad arguments\n");
		return 2;
	}
	wset -= wset % unit;
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

	ctx_enc = EVP_CIPHER_CTX_new();
	ctx_dec = EVP_CIPHER_CTX_new();
	if (!ctx_enc || !ctx_dec ||
	    EVP_CipherInit_ex(ctx_enc, EVP_aes_128_xts(), NULL, key, iv0, 1) != 1 ||
	    EVP_CipherInit_ex(ctx_dec, EVP_aes_128_xts(), NULL, key, iv0, 0) != 1) {
		fprintf(stderr, "OpenSSL init failed\n");
		return 2;
	}

	/* calibrate: units per sample so that one sample takes ~ms */
	size_t n = 256;
	{
		struct variant *v = &vars[6];
		double t0 = now();

		run(v, n, &sector);
		double dt = now() - t0;

		n = (size_t)(n * (ms / 1e3) / (dt > 1e-6 ? dt : 1e-6));
		if (n < 16)
			n = 16;
	}

	for (size_t i = 0; i < NVARS; i++)
		vars[i].samples = calloc((size_t)rounds, sizeof(double));

	/* warm-up, then interleaved rounds */
	for (size_t i = 0; i < NVARS; i++)
		if (vars[i].supported())
			run(&vars[i], n / 4 + 1, &sector);
	for (int r = 0; r < rounds; r++)
		for (size_t k = 0; k < NVARS; k++) {
			/* rotate the order every round */
			struct variant *v = &vars[(k + (size_t)r) % NVARS];

			if (!v->supported())
				continue;
			double t0 = now();
			size_t bytes = run(v, n, &sector);
			double dt = now() - t0;

			v->samples[r] = bytes / dt / 1e9;
		}

	printf("AES-128-XTS, %zu-byte data units (one call/IV each), working set %zu KiB, %d rounds x %zu units, %s\n",
	       unit, wset / 1024, rounds, n, OpenSSL_version(OPENSSL_VERSION));
	for (size_t i = 0; i < NVARS; i++) {
		struct variant *v = &vars[i];

		if (!v->supported()) {
			printf("  %s   (not supported by this CPU)\n", v->name);
			continue;
		}
		qsort(v->samples, (size_t)rounds, sizeof(double), cmp_double);
		v->median = v->samples[rounds / 2];
		printf("  %s  %7.2f GB/s  (min %.2f, max %.2f)\n", v->name,
		       v->median, v->samples[0], v->samples[rounds - 1]);
	}
	printf("ratios ours / OpenSSL (median GB/s):\n");
	for (size_t i = 0; i < NVARS; i++) {
		struct variant *v = &vars[i];

		if (v->kind != OURS || !v->supported())
			continue;
		printf("  %s  vs ossl-iv %.3f   vs ossl-reuse %.3f   vs ossl-key %.3f\n",
		       v->name, v->median / find("ossl-iv", v->enc),
		       v->median / find("ossl-reuse", v->enc),
		       v->median / find("ossl-key", v->enc));
	}
	EVP_CIPHER_CTX_free(ctx_enc);
	EVP_CIPHER_CTX_free(ctx_dec);
	return 0;
}
