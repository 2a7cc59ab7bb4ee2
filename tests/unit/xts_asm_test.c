// SPDX-License-Identifier: GPL-2.0
/*
 * xts_asm_test.c - correctness of module/tresor_{aesni,vaes}.S (tresor.ko's
 * AES-128-XTS) against IEEE P1619 vectors and OpenSSL EVP_aes_128_xts.
 *
 * Built natively with -DTRESOR_KEY_FROM_MEMORY: the assembly reads the key
 * from tresor_bench_key[] instead of DR0-DR3; all other code is identical.
 *
 * For every path the CPU supports:
 *   - IEEE P1619/D16 Annex B AES-128-XTS vectors 1-9, encrypt and decrypt;
 *   - check values vs OpenSSL AES-128-ECB(K1/K2, 0^128);
 *   - N random cases (default 10000; argv[1] overrides): random key and IV,
 *     16 B..64 KiB, request split into 1-4 chunks continued with first=0,
 *     in place and out of place, unaligned buffers, guard bytes around dst,
 *     returned tweak checked, vs OpenSSL; encrypt and decrypt;
 *   - register hygiene: after each function returns, all vector registers
 *     the path may use are zero and no GPR holds a key word;
 *   - negative checks: one flipped bit in K1 and in K2 must be detected,
 *     by the check values and by the in-call key check: an XTS call whose
 *     key does not match the check values it is given returns
 *     TRESOR_KEY_MISMATCH and writes nothing (dst, tweak).
 * Exit status 0 only if everything passed.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "tresor_asm.h"

unsigned char tresor_bench_key[32];

int xts_dump_level;
void xts_call_dump(void *fn, u8 *dst, const u8 *src, unsigned int nbytes,
		   u8 *tweak, int first, uint64_t *dump);

typedef int (*xts_fn)(u8 *, const u8 *, unsigned int, u8 *, int, const u8 *);

/* check values of the key in tresor_bench_key (set_key()); the register
 * dump helper passes them too */
u8 xts_cur_check[32];
typedef void (*chk_fn)(u8 *);

struct path {
	const char *name;
	xts_fn enc, dec;
	chk_fn chk;
	int dump_level;		/* registers the path must leave zero */
	int (*supported)(void);
};

static int have_aesni(void)
{
	return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
}

static int have_vaes_avx2(void)
{
	return have_aesni() && __builtin_cpu_supports("avx2") &&
	       __builtin_cpu_supports("vaes");
}

static int have_vaes_avx512(void)
{
	return have_vaes_avx2() && __builtin_cpu_supports("avx512f") &&
	       __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx512vl") &&
	       __builtin_cpu_supports("vpclmulqdq");
}

static const struct path paths[] = {
	{ "aesni", tresor_xts_encrypt_aesni, tresor_xts_decrypt_aesni,
	  tresor_check_values_aesni, 0, have_aesni },
	{ "vaes_avx2", tresor_xts_encrypt_vaes_avx2,
	  tresor_xts_decrypt_vaes_avx2, tresor_check_values_vaes_avx2, 1,
	  have_vaes_avx2 },
	{ "vaes_avx512", tresor_xts_encrypt_vaes_avx512,
	  tresor_xts_decrypt_vaes_avx512, tresor_check_values_vaes_avx512, 2,
	  have_vaes_avx512 },
};

/* ---- PRNG (xorshift64*), seeded, reproducible ---- */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static void rnd_fill(u8 *p, size_t n)
{
	while (n >= 8) {
		uint64_t v = rnd();

		memcpy(p, &v, 8);
		p += 8;
		n -= 8;
	}
	while (n--)
		*p++ = (u8)rnd();
}

/* ---- OpenSSL reference ---- */
static EVP_CIPHER_CTX *ref_ctx;

/* returns 0 on success, -1 if OpenSSL refused (e.g. K1 == K2) */
static int ref_xts(int enc, const u8 key[32], const u8 iv[16], const u8 *in,
		   u8 *out, size_t len)
{
	int outl = 0;

	if (EVP_CipherInit_ex(ref_ctx, EVP_aes_128_xts(), NULL, key, iv, enc) != 1)
		return -1;
	if (EVP_CipherUpdate(ref_ctx, out, &outl, in, (int)len) != 1 ||
	    (size_t)outl != len)
		return -1;
	return 0;
}

static void ref_ecb(const u8 key[16], const u8 in[16], u8 out[16])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int outl = 0;

	if (!c || EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, key, NULL) != 1 ||
	    EVP_CIPHER_CTX_set_padding(c, 0) != 1 ||
	    EVP_EncryptUpdate(c, out, &outl, in, 16) != 1 || outl != 16) {
		fprintf(stderr, "OpenSSL AES-128-ECB failed\n");
		exit(2);
	}
	EVP_CIPHER_CTX_free(c);
}

static void gf_mul_x(u8 t[16])
{
	uint64_t lo, hi, c;

	memcpy(&lo, t, 8);
	memcpy(&hi, t + 8, 8);
	c = hi >> 63;
	hi = (hi << 1) | (lo >> 63);
	lo = (lo << 1) ^ (c * 0x87);
	memcpy(t, &lo, 8);
	memcpy(t + 8, &hi, 8);
}

/* ---- hex helpers for the IEEE vectors ---- */
static size_t unhex(const char *s, u8 *out, size_t max)
{
	size_t n = 0;

	while (s[0] && s[1]) {
		unsigned int v;

		if (n >= max || sscanf(s, "%2x", &v) != 1) {
			fprintf(stderr, "bad hex vector\n");
			exit(2);
		}
		out[n++] = (u8)v;
		s += 2;
	}
	return n;
}

#include "xts_ieee1619.h"

/* ---- helpers ---- */
static int failures;

/* print the first 20 failures, count all */
#define FAIL(...) do { if (failures++ < 20) { \
			fprintf(stderr, "FAIL: " __VA_ARGS__); \
			fputc('\n', stderr); } } while (0)

static void ref_ecb(const u8 key[16], const u8 in[16], u8 out[16]);

static void set_key(const u8 key[32])
{
	u8 zero[16] = { 0 };

	memcpy(tresor_bench_key, key, 32);
	ref_ecb(key, zero, xts_cur_check);
	ref_ecb(key + 16, zero, xts_cur_check + 16);
}

/*
 * Run fn over [0,len) as nchunks chunks cut at cuts[] (block multiples),
 * first call with first=1.  Returns the final tweak in tw_out.
 */
static void run_chunked(xts_fn fn, u8 *dst, const u8 *src, size_t len,
			const u8 iv[16], const size_t *cuts, int nchunks,
			u8 tw_out[16])
{
	u8 tw[16];
	size_t off = 0;

	memcpy(tw, iv, 16);
	for (int c = 0; c < nchunks; c++) {
		size_t end = (c == nchunks - 1) ? len : cuts[c];

		if (fn(dst + off, src + off, (unsigned int)(end - off), tw,
		       c == 0, xts_cur_check))
			FAIL("key check failed with the right key");
		off = end;
	}
	memcpy(tw_out, tw, 16);
}

static int test_ieee(const struct path *p)
{
	u8 key[32], iv[16], pt[512], ct[512], out[512], tw[16];
	int ok = 0;

	for (size_t v = 0; v < sizeof(ieee) / sizeof(ieee[0]); v++) {
		const struct ieee_vec *t = &ieee[v];
		size_t n, m;
		int good = 1;

		unhex(t->key, key, 32);
		unhex(t->iv, iv, 16);
		if (t->pt[0] == '(') {
			for (int i = 0; i < 512; i++)
				pt[i] = (u8)i;
			n = 512;
		} else {
			n = unhex(t->pt, pt, sizeof(pt));
		}
		m = unhex(t->ct, ct, sizeof(ct));
		if (n != m) {
			FAIL("vector %d: bad lengths", t->num);
			continue;
		}
		set_key(key);
		memcpy(tw, iv, 16);
		p->enc(out, pt, (unsigned int)n, tw, 1, xts_cur_check);
		if (memcmp(out, ct, n)) {
			FAIL("%s: IEEE vector %d encrypt mismatch", p->name, t->num);
			good = 0;
		}
		memcpy(tw, iv, 16);
		p->dec(out, ct, (unsigned int)n, tw, 1, xts_cur_check);
		if (memcmp(out, pt, n)) {
			FAIL("%s: IEEE vector %d decrypt mismatch", p->name, t->num);
			good = 0;
		}
		/* the vectors also validate the OpenSSL reference itself */
		if (ref_xts(1, key, iv, pt, out, n) == 0 && memcmp(out, ct, n)) {
			FAIL("OpenSSL disagrees with IEEE vector %d", t->num);
			good = 0;
		}
		ok += good;
	}
	return ok;
}

static int test_check_values(const struct path *p, const u8 key[32])
{
	u8 got[32], want[32], zero[16] = { 0 };

	set_key(key);
	ref_ecb(key, zero, want);
	ref_ecb(key + 16, zero, want + 16);
	memset(got, 0x5a, sizeof(got));
	p->chk(got);
	return memcmp(got, want, 32) == 0;
}

/* guard bytes around the destination region */
#define GUARD 64
#define MAXLEN (64 * 1024)

static u8 *buf_src, *buf_dst, *buf_ref, *buf_pt;

static int check_guards(const u8 *base, size_t off, size_t len)
{
	for (size_t i = 0; i < GUARD; i++)
		if (base[off - GUARD + i] != 0xa5 || base[off + len + i] != 0xa5)
			return 0;
	return 1;
}

static int random_case(const struct path *p, int idx, unsigned long *bytes)
{
	u8 key[32], iv[16], tw_ref[16], tw_got[16];
	size_t nblocks, len, cuts[3];
	int nchunks, inplace, ok = 1;
	size_t soff = rnd() % 16, doff = GUARD + rnd() % 16;

	do {
		rnd_fill(key, 32);
	} while (!memcmp(key, key + 16, 16));
	rnd_fill(iv, 16);
	nblocks = (idx & 1) ? 1 + rnd() % 64 : 1 + rnd() % (MAXLEN / 16);
	len = nblocks * 16;
	inplace = (idx >> 1) & 1;

	nchunks = 1 + (int)(rnd() % 4);
	if ((size_t)nchunks > nblocks)
		nchunks = (int)nblocks;
	/* nchunks-1 distinct sorted cut points in 1..nblocks-1 (blocks) */
	for (int c = 0; c < nchunks - 1; c++) {
		size_t v;
		int dup;

		do {
			v = 1 + rnd() % (nblocks - 1);
			dup = 0;
			for (int d = 0; d < c; d++)
				dup |= cuts[d] == v * 16;
		} while (dup);
		cuts[c] = v * 16;
	}
	for (int a = 0; a < nchunks - 1; a++)
		for (int b = a + 1; b < nchunks - 1; b++)
			if (cuts[b] < cuts[a]) {
				size_t t = cuts[a];

				cuts[a] = cuts[b];
				cuts[b] = t;
			}

	rnd_fill(buf_pt, len);
	if (ref_xts(1, key, iv, buf_pt, buf_ref, len)) {
		FAIL("OpenSSL encrypt failed");
		return 0;
	}
	/* expected final tweak: AES_K2(iv) * x^nblocks */
	ref_ecb(key + 16, iv, tw_ref);
	for (size_t i = 0; i < nblocks; i++)
		gf_mul_x(tw_ref);

	set_key(key);
	for (int dir = 0; dir < 2; dir++) {
		const u8 *in = dir ? buf_ref : buf_pt;
		const u8 *want = dir ? buf_pt : buf_ref;
		xts_fn fn = dir ? p->dec : p->enc;
		u8 *dst = buf_dst + doff;
		const u8 *src;

		memset(buf_dst, 0xa5, MAXLEN + 3 * GUARD);
		if (inplace) {
			memcpy(dst, in, len);
			src = dst;
		} else {
			memcpy(buf_src + soff, in, len);
			src = buf_src + soff;
		}
		run_chunked(fn, dst, src, len, iv, cuts, nchunks, tw_got);
		if (memcmp(dst, want, len)) {
			size_t i = 0;

			while (dst[i] == want[i])
				i++;
			FAIL("%s: case %d %s len=%zu chunks=%d %s: first bad byte %zu",
			     p->name, idx, dir ? "decrypt" : "encrypt", len,
			     nchunks, inplace ? "in-place" : "out-of-place", i);
			ok = 0;
		}
		if (memcmp(tw_got, tw_ref, 16)) {
			FAIL("%s: case %d %s: returned tweak wrong", p->name, idx,
			     dir ? "decrypt" : "encrypt");
			ok = 0;
		}
		if (!check_guards(buf_dst, doff, len)) {
			FAIL("%s: case %d: write outside dst", p->name, idx);
			ok = 0;
		}
		if (!inplace && memcmp(src, in, len)) {
			FAIL("%s: case %d: src modified", p->name, idx);
			ok = 0;
		}
	}
	*bytes += 2 * len;
	return ok;
}

/*
 * Register hygiene: call through xts_call_dump and require all vector
 * registers of the path's class to be zero and no GPR to equal a key word.
 */
static int test_registers(const struct path *p)
{
	static uint64_t dump[16 + 32 * 8];
	static const unsigned int lens[] = { 16, 32, 48, 64, 80, 112, 128, 144,
					     512, 528, 560, 4096, 4144 };
	u8 key[32], iv[16], tw[16], out[32];
	int nregs = p->dump_level == 2 ? 32 : 16;
	int width = p->dump_level == 2 ? 64 : p->dump_level == 1 ? 32 : 16;
	int ok = 1;

	xts_dump_level = p->dump_level;
	rnd_fill(key, 32);
	set_key(key);
	for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]) + 1; l++) {
		/* f == 3, 4: encrypt, decrypt refused by the key check */
		for (int f = 0; f < 5; f++) {
			void *fn = f == 0 || f == 3 ? (void *)p->enc :
				   f == 1 || f == 4 ? (void *)p->dec :
				   (void *)p->chk;
			const u8 *vb = (const u8 *)&dump[16];

			if (f == 2 && l)
				continue;
			rnd_fill(iv, 16);
			memcpy(tw, iv, 16);
			memset(dump, 0xcc, sizeof(dump));
			if (f >= 3)
				xts_cur_check[f == 3 ? 3 : 29] ^= 0x10;
			if (f == 2)
				xts_call_dump(fn, out, NULL, 0, NULL, 0, dump);
			else
				xts_call_dump(fn, buf_dst, buf_src,
					      l < sizeof(lens) / sizeof(lens[0]) ?
					      lens[l] : 65536, tw, 1, dump);
			if (f >= 3)
				xts_cur_check[f == 3 ? 3 : 29] ^= 0x10;
			if (f != 2 && (uint32_t)dump[0] !=
			    (f >= 3 ? TRESOR_KEY_MISMATCH : 0)) {
				FAIL("%s: fn %d len idx %zu returned %u",
				     p->name, f, l, (uint32_t)dump[0]);
				ok = 0;
			}
			for (int r = 0; r < nregs * width; r++)
				if (vb[r]) {
					FAIL("%s: fn %d len idx %zu: vector register %d not cleared",
					     p->name, f, l, r / width);
					ok = 0;
					break;
				}
			for (int g = 0; g < 9; g++)
				for (int k = 0; k < 4; k++) {
					uint64_t kw;

					memcpy(&kw, key + 8 * k, 8);
					if (dump[g] == kw) {
						FAIL("%s: GPR %d holds key word %d",
						     p->name, g, k);
						ok = 0;
					}
				}
		}
	}
	return ok;
}

/*
 * Negative check: a flipped key bit must be detected by the comparisons,
 * and by the XTS calls themselves given the right key's check values (the
 * registers changed after the check values were made): they must return
 * TRESOR_KEY_MISMATCH and leave dst and the tweak as they were.
 */
static int test_negative(const struct path *p)
{
	u8 key[32], bad[32], iv[16], tw[16], good_check[32];
	const size_t len = 4096;
	int detected = 0;

	rnd_fill(key, 32);
	rnd_fill(iv, 16);
	rnd_fill(buf_pt, len);
	ref_xts(1, key, iv, buf_pt, buf_ref, len);
	for (int half = 0; half < 2; half++) {
		memcpy(bad, key, 32);
		bad[half * 16 + rnd() % 16] ^= (u8)(1u << (rnd() % 8));
		set_key(key);
		memcpy(good_check, xts_cur_check, 32);
		set_key(bad);
		for (int dir = 0; dir < 2; dir++) {
			int ret;

			memset(buf_dst, 0xa5, len);
			memcpy(tw, iv, 16);
			ret = (dir ? p->dec : p->enc)(buf_dst, buf_pt, len, tw,
						      dir, good_check);
			if (ret == TRESOR_KEY_MISMATCH &&
			    !memcmp(tw, iv, 16) && buf_dst[0] == 0xa5 &&
			    !memcmp(buf_dst, buf_dst + 1, len - 1))
				detected++;
		}
		memcpy(tw, iv, 16);
		p->enc(buf_dst, buf_pt, len, tw, 1, xts_cur_check);
		if (memcmp(buf_dst, buf_ref, len))
			detected++;
		{
			u8 got[32], want[32], zero[16] = { 0 };

			ref_ecb(key, zero, want);
			ref_ecb(key + 16, zero, want + 16);
			p->chk(got);
			if (memcmp(got, want, 32))
				detected++;
		}
	}
	return detected == 8;
}

int main(int argc, char **argv)
{
	int ncases = argc > 1 ? atoi(argv[1]) : 10000;
	int any = 0;

	__builtin_cpu_init();
	ref_ctx = EVP_CIPHER_CTX_new();
	buf_src = malloc(MAXLEN + 3 * GUARD);
	buf_dst = malloc(MAXLEN + 3 * GUARD);
	buf_ref = malloc(MAXLEN);
	buf_pt = malloc(MAXLEN);
	if (!ref_ctx || !buf_src || !buf_dst || !buf_ref || !buf_pt)
		return 2;
	memset(buf_src, 0, MAXLEN + 3 * GUARD);

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const struct path *p = &paths[i];
		int f0 = failures, vec, chk = 0, regs, neg, rnd_ok = 0;
		unsigned long bytes = 0;

		if (!p->supported()) {
			printf("SKIP %-12s (CPU lacks the features)\n", p->name);
			continue;
		}
		any = 1;
		vec = test_ieee(p);
		for (int k = 0; k < 16; k++) {
			u8 key[32];

			rnd_fill(key, 32);
			chk += test_check_values(p, key);
		}
		if (chk != 16)
			FAIL("%s: check values wrong (%d/16)", p->name, chk);
		for (int c = 0; c < ncases; c++)
			rnd_ok += random_case(p, c, &bytes);
		regs = test_registers(p);
		neg = test_negative(p);
		if (!neg)
			FAIL("%s: negative check: flipped key bit NOT detected", p->name);
		printf("%s %-12s IEEE-1619 vectors %d/9, check values %d/16, random %d/%d (%.1f MB, 1-4 chunks, in/out-of-place), registers %s, negative check %s\n",
		       failures == f0 ? "PASS" : "FAIL", p->name, vec, chk,
		       rnd_ok, ncases, bytes / 1e6, regs ? "clean" : "DIRTY",
		       neg ? "detected" : "MISSED");
	}
	EVP_CIPHER_CTX_free(ref_ctx);
	free(buf_src);
	free(buf_dst);
	free(buf_ref);
	free(buf_pt);
	if (!any) {
		printf("FAIL no path supported on this CPU\n");
		return 1;
	}
	return failures ? 1 : 0;
}
