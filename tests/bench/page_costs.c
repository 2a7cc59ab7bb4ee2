// SPDX-License-Identifier: GPL-2.0
/*
 * page_costs.c - the work of one page, without the fault around it: what
 * a ramcrypt window fault adds (AES-128-XTS of 4096 bytes with tresor.ko's
 * assembly, -DTRESOR_KEY_FROM_MEMORY as in xts_bench) against what a zram
 * swap-in adds (decompress one page with LZ4 or LZO1X, the algorithms of
 * zram's defaults on 6.12 and 6.1, or a copy for a page zram stores
 * uncompressed). The pages hold rcbench's pattern (half random words, half
 * a counter), so the compressors see what zram sees in the fault benchmark.
 *
 * Run natively and in the test VM (TCG), it shows how differently the
 * emulator prices AES rounds and integer code: the ratios, not the times,
 * are what to read.
 *
 * usage: page_costs [-a] [-r rounds]   (-a: the AES-NI path only)
 * prints "cost NAME ns_per_page=N" per variant (median of rounds)
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <lz4.h>
#include <lzo/lzo1x.h>

#include "tresor_asm.h"
#include "../guest/mix64.h"

#define PAGE	4096
#define WORDS	(PAGE / 8)
#define PAGES	64		/* a working set of 256 KiB */

unsigned char tresor_bench_key[32];
/* the key's check values, verified inside every tresor call */
static u8 tresor_bench_check[32];

enum kind { XTS_DEC, XTS_ENC, LZ4_DEC, LZO_DEC, COPY };

struct variant {
	const char *name;
	enum kind kind;
	int (*xts)(u8 *, const u8 *, unsigned int, u8 *, int, const u8 *);
	int vaes;
	double ns[64];
};

static struct variant vars[] = {
	{ "xts_decrypt_aesni", XTS_DEC, tresor_xts_decrypt_aesni, 0, {0} },
	{ "xts_encrypt_aesni", XTS_ENC, tresor_xts_encrypt_aesni, 0, {0} },
	{ "xts_decrypt_vaes_avx512", XTS_DEC, tresor_xts_decrypt_vaes_avx512, 1, {0} },
	{ "xts_encrypt_vaes_avx512", XTS_ENC, tresor_xts_encrypt_vaes_avx512, 1, {0} },
	{ "lz4_decompress", LZ4_DEC, NULL, 0, {0} },
	{ "lzo1x_decompress", LZO_DEC, NULL, 0, {0} },
	{ "copy", COPY, NULL, 0, {0} },
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

static u8 plain[PAGES][PAGE], cipher[PAGES][PAGE], out[PAGES][PAGE];
static u8 lz4buf[PAGES][LZ4_COMPRESSBOUND(PAGE)];
static u8 lzobuf[PAGES][PAGE + PAGE / 16 + 64 + 3];
static int lz4len[PAGES];
static lzo_uint lzolen[PAGES];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void iv_for(u8 iv[16], uint64_t page)
{
	memset(iv, 0, 16);
	memcpy(iv, &page, 8);
	iv[15] = 0x80;		/* upper half non-zero, as ramcrypt's */
}

static void fail(const char *what)
{
	fprintf(stderr, "page_costs: %s\n", what);
	exit(1);
}

/* Process every page @reps times; returns ns per page */
static double run(const struct variant *v, int reps)
{
	double t0 = now();
	u8 iv[16];

	for (int r = 0; r < reps; r++)
		for (size_t p = 0; p < PAGES; p++) {
			switch (v->kind) {
			case XTS_DEC:
				iv_for(iv, p);
				v->xts(out[p], cipher[p], PAGE, iv, 1,
				       tresor_bench_check);
				break;
			case XTS_ENC:
				iv_for(iv, p);
				v->xts(out[p], plain[p], PAGE, iv, 1,
				       tresor_bench_check);
				break;
			case LZ4_DEC:
				if (LZ4_decompress_safe((const char *)lz4buf[p],
							(char *)out[p],
							lz4len[p], PAGE) != PAGE)
					fail("lz4 decompress failed");
				break;
			case LZO_DEC: {
				lzo_uint n = PAGE;

				if (lzo1x_decompress_safe(lzobuf[p], lzolen[p],
							  out[p], &n, NULL) != LZO_E_OK ||
				    n != PAGE)
					fail("lzo decompress failed");
				break;
			}
			case COPY:
				memcpy(out[p], plain[p], PAGE);
				break;
			}
			__asm__ volatile("" : : "r"(out[p]) : "memory");
		}
	return (now() - t0) / ((double)reps * PAGES);
}

/* The output of @v for page 0 is right (decrypt/decompress give the page) */
static void check(const struct variant *v)
{
	run(v, 1);
	if (v->kind == XTS_ENC)
		return;		/* checked by the decrypt of its ciphertext */
	if (memcmp(out[0], plain[0], PAGE))
		fail(v->name);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static u8 lzowork[LZO1X_1_MEM_COMPRESS];
	int rounds = 15, aesni_only = 0, opt;
	size_t compressed = 0;
	u8 iv[16];

	while ((opt = getopt(argc, argv, "ar:")) != -1) {
		switch (opt) {
		case 'a': aesni_only = 1; break;
		case 'r': rounds = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-a] [-r rounds]\n", argv[0]);
			return 2;
		}
	}
	if (rounds < 1 || rounds > 64)
		fail("rounds must be 1..64");
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("aes"))
		fail("no AES-NI");
	if (lzo_init() != LZO_E_OK)
		fail("lzo_init failed");
	for (int i = 0; i < 32; i++)
		tresor_bench_key[i] = (u8)mix(i);
	tresor_check_values_aesni(tresor_bench_check);
	for (size_t p = 0; p < PAGES; p++) {
		uint64_t *w = (uint64_t *)plain[p];

		for (size_t i = 0; i < WORDS; i++)
			w[i] = i < WORDS / 2 ? mix(0xa5a5 ^ (p * WORDS + i)) :
					       (p << 16 | i);
		iv_for(iv, p);
		tresor_xts_encrypt_aesni(cipher[p], plain[p], PAGE, iv, 1,
					 tresor_bench_check);
		lz4len[p] = LZ4_compress_default((const char *)plain[p],
						 (char *)lz4buf[p], PAGE,
						 sizeof(lz4buf[p]));
		if (lz4len[p] <= 0 ||
		    lzo1x_1_compress(plain[p], PAGE, lzobuf[p], &lzolen[p],
				     lzowork) != LZO_E_OK)
			fail("compress failed");
		compressed += (size_t)lz4len[p];
	}

	int vaes = !aesni_only && __builtin_cpu_supports("vaes") &&
		   __builtin_cpu_supports("avx512f") &&
		   __builtin_cpu_supports("avx512bw") &&
		   __builtin_cpu_supports("avx512vl") &&
		   __builtin_cpu_supports("vpclmulqdq");

	for (size_t k = 0; k < NVARS; k++)
		if (!vars[k].vaes || vaes)
			check(&vars[k]);
	/* about 20 ms of decrypts a sample, whatever the speed */
	int reps = (int)(20e6 / (run(&vars[0], 1) * PAGES)) + 1;

	for (int r = 0; r < rounds; r++)
		for (size_t k = 0; k < NVARS; k++) {
			struct variant *v = &vars[(k + (size_t)r) % NVARS];

			if (!v->vaes || vaes)
				v->ns[r] = run(v, reps);
		}
	printf("pages=%d rounds=%d reps=%d lz4_compressed_bytes_per_page=%zu\n",
	       PAGES, rounds, reps, compressed / PAGES);
	for (size_t k = 0; k < NVARS; k++) {
		struct variant *v = &vars[k];

		if (v->vaes && !vaes)
			continue;
		qsort(v->ns, (size_t)rounds, sizeof(double), cmp_double);
		printf("cost %s ns_per_page=%.0f\n", v->name, v->ns[rounds / 2]);
	}
	return 0;
}
