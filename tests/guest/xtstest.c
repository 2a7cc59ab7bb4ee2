// SPDX-License-Identifier: GPL-2.0
/*
 * xtstest - xts(tresor) through AF_ALG, inside the test guest.
 *
 *   xtstest kat                IEEE P1619 vectors 2-9 (key via /dev/tresor)
 *   xtstest random N SEED      N random requests vs the kernel's xts(aes)
 *   xtstest bad                bad input gets the documented errors
 *   xtstest bench SECONDS      4 KiB requests: xts(tresor) drivers vs xts(aes)
 *   xtstest check N SEED E M   N requests vs xts(aes) with the key already
 *                              loaded (the key is E^M, 64 hex digits each)
 *   xtstest rate SECONDS       MB/s of 4 KiB xts(tresor) requests, key loaded
 *
 * Each mode prints what it checked and exits 0 only if everything matched.
 * Requests are fed through vmsplice+splice in random chunks and read back
 * into random iovec splits, so the cipher sees scatterlists split at any
 * byte offset, including inside a block.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_alg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <uapi/tresor.h>
#include "xts_ieee1619.h"

#define MAX_REQ		65536

static uint64_t rng_state = 1;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static void rnd_fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = rnd() >> 56;
}

static size_t unhex(const char *s, uint8_t *out, size_t max)
{
	size_t n = strlen(s) / 2;

	if (n > max)
		n = max;
	for (size_t i = 0; i < n; i++)
		sscanf(s + 2 * i, "%2hhx", &out[i]);
	return n;
}

/* ---- /dev/tresor ---- */
static int tresor_ioctl(unsigned long cmd, void *arg)
{
	int fd = open(TRESOR_DEVICE_PATH, O_RDWR);
	int ret;

	if (fd < 0)
		return -errno;
	ret = ioctl(fd, cmd, arg) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

static int tresor_set_key(const uint8_t key[32])
{
	struct tresor_key k = { .size = TRESOR_KEY_SIZE };
	int ret;

	memcpy(k.key, key, 32);
	ret = tresor_ioctl(TRESOR_IOC_SET_KEY, &k);
	explicit_bzero(&k, sizeof(k));
	return ret;
}

static int tresor_clear_key(void)
{
	return tresor_ioctl(TRESOR_IOC_CLEAR_KEY, NULL);
}

/* ---- AF_ALG ---- */
static int alg_open(const char *name)
{
	struct sockaddr_alg sa = { .salg_family = AF_ALG,
				   .salg_type = "skcipher" };
	int fd = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	strncpy((char *)sa.salg_name, name, sizeof(sa.salg_name) - 1);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static int alg_setkey(int tfm, const uint8_t *key, int len)
{
	return setsockopt(tfm, SOL_ALG, ALG_SET_KEY, key, len) < 0 ? -errno : 0;
}

static int send_op(int op, int enc, const uint8_t iv[16], const uint8_t *src,
		   size_t len, int more)
{
	char cbuf[CMSG_SPACE(4) + CMSG_SPACE(sizeof(struct af_alg_iv) + 16)];
	struct msghdr msg = { .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct iovec iov = { (void *)src, len };
	struct cmsghdr *c;
	struct af_alg_iv *aiv;

	memset(cbuf, 0, sizeof(cbuf));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_ALG;
	c->cmsg_type = ALG_SET_OP;
	c->cmsg_len = CMSG_LEN(4);
	*(uint32_t *)CMSG_DATA(c) = enc ? ALG_OP_ENCRYPT : ALG_OP_DECRYPT;
	c = CMSG_NXTHDR(&msg, c);
	c->cmsg_level = SOL_ALG;
	c->cmsg_type = ALG_SET_IV;
	c->cmsg_len = CMSG_LEN(sizeof(*aiv) + 16);
	aiv = (void *)CMSG_DATA(c);
	aiv->ivlen = 16;
	memcpy(aiv->iv, iv, 16);
	if (len) {
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
	}
	return sendmsg(op, &msg, more ? MSG_MORE : 0) < 0 ? -errno : 0;
}

/*
 * One request. split != 0: the source goes through a pipe in random
 * chunks (each a separate scatterlist entry) and the result comes back
 * into up to 8 random iovecs. Returns bytes produced or -errno.
 */
static ssize_t alg_crypt(int tfm, int enc, const uint8_t iv[16],
			 const uint8_t *src, size_t len, uint8_t *dst, int split)
{
	struct iovec rio[8];
	int op, nrio = 1, ret;
	ssize_t n;

	op = accept(tfm, NULL, 0);
	if (op < 0)
		return -errno;
	if (!split) {
		ret = send_op(op, enc, iv, src, len, 0);
		if (ret)
			goto out;
	} else {
		int p[2];
		size_t off = 0;

		ret = send_op(op, enc, iv, NULL, 0, 1);
		if (ret)
			goto out;
		if (pipe(p) < 0) {
			ret = -errno;
			goto out;
		}
		fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
		while (off < len) {
			size_t chunk = 1 + rnd() % (len - off);
			struct iovec v = { (void *)(src + off), chunk };
			ssize_t put;

			if (rnd() % 2 && len - off > 64)
				chunk = v.iov_len = 1 + rnd() % 64;
			put = vmsplice(p[1], &v, 1, 0);
			if (put <= 0)
				break;
			while (put > 0) {
				ssize_t s = splice(p[0], NULL, op, NULL, put,
						   off + put < len ? SPLICE_F_MORE : 0);

				if (s <= 0) {
					put = -1;
					break;
				}
				put -= s;
				off += s;
			}
			if (put < 0)
				break;
		}
		close(p[0]);
		close(p[1]);
		if (off != len) {
			ret = -EIO;
			goto out;
		}
		nrio = 1 + rnd() % 8;
	}
	{
		size_t left = len, off = 0;

		for (int i = 0; i < nrio; i++) {
			size_t l = i == nrio - 1 ? left : rnd() % (left + 1);

			rio[i].iov_base = dst + off;
			rio[i].iov_len = l;
			off += l;
			left -= l;
		}
	}
	n = readv(op, rio, nrio);
	ret = n < 0 ? -errno : (int)n;
out:
	close(op);
	return ret;
}

/* ---- modes ---- */
static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; \
	printf("FAIL: " __VA_ARGS__); putchar('\n'); } } while (0)

static void vector_data(const struct ieee_vec *t, uint8_t *key, uint8_t *iv,
			uint8_t *pt, uint8_t *ct, size_t *len)
{
	unhex(t->key, key, 32);
	memset(iv, 0, 16);
	unhex(t->iv, iv, 16);
	if (!strcmp(t->pt, P4)) {
		for (int i = 0; i < 512; i++)
			pt[i] = i & 0xff;
		*len = 512;
	} else {
		*len = unhex(t->pt, pt, 512);
	}
	unhex(t->ct, ct, 512);
}

static int mode_kat(void)
{
	static uint8_t key[32], iv[16], pt[512], ct[512], out[512];
	static const uint8_t zero[32];
	size_t len;
	int tfm, ret;

	for (size_t v = 0; v < XTS_IEEE1619_NR_VECTORS; v++) {
		const struct ieee_vec *t = &ieee[v];

		vector_data(t, key, iv, pt, ct, &len);
		ret = tresor_set_key(key);
		if (t->num == 1) {
			/* an all-zero host key is refused by design */
			CHECK(ret == -EINVAL, "vector 1: zero key accepted (%d)", ret);
			printf("vector 1: zero key refused (EINVAL), as designed\n");
			continue;
		}
		CHECK(ret == 0, "vector %d: SET_KEY: %s", t->num, strerror(-ret));
		tfm = alg_open("xts(tresor)");
		CHECK(tfm >= 0, "open xts(tresor): %s", strerror(-tfm));
		if (tfm < 0)
			return 1;
		CHECK(!alg_setkey(tfm, zero, 32), "setkey zeros");
		CHECK(alg_crypt(tfm, 1, iv, pt, len, out, 0) == (ssize_t)len &&
		      !memcmp(out, ct, len), "vector %d: encrypt mismatch", t->num);
		CHECK(alg_crypt(tfm, 0, iv, ct, len, out, 1) == (ssize_t)len &&
		      !memcmp(out, pt, len), "vector %d: decrypt mismatch", t->num);
		close(tfm);
		CHECK(tresor_clear_key() == 0, "CLEAR_KEY");
		printf("vector %d: %zu bytes encrypt+decrypt %s\n", t->num, len,
		       failures ? "checked" : "ok");
	}
	return failures != 0;
}

/*
 * n random requests (16 B .. max_len, random IVs, scatterlists split at
 * random byte offsets) through xts(tresor), each compared with the
 * kernel's xts(aes) keyed with @key and decrypted back. Mismatches count
 * in failures; returns the bytes processed.
 */
static uint64_t compare_with_xts_aes(const uint8_t key[32], long n,
				     size_t max_len)
{
	static uint8_t iv[16], pt[MAX_REQ], ct[MAX_REQ], ref[MAX_REQ],
		back[MAX_REQ];
	static const uint8_t zero[32];
	int tres = alg_open("xts(tresor)"), aes = alg_open("xts(aes)");
	uint64_t bytes = 0;

	if (tres < 0 || aes < 0 || alg_setkey(tres, zero, 32) ||
	    alg_setkey(aes, key, 32)) {
		CHECK(0, "opening ciphers: %d %d", tres, aes);
		n = 0;
	}
	for (long i = 0; i < n && failures < 10; i++) {
		size_t len = 16 * (1 + rnd() % (max_len / 16));
		ssize_t r;

		rnd_fill(iv, 16);
		rnd_fill(pt, len);
		CHECK(alg_crypt(aes, 1, iv, pt, len, ref, 0) == (ssize_t)len,
		      "xts(aes) request %ld", i);
		r = alg_crypt(tres, 1, iv, pt, len, ct, 1);
		CHECK(r == (ssize_t)len, "xts(tresor) request %ld: %s", i,
		      r < 0 ? strerror(-r) : "short");
		CHECK(!memcmp(ct, ref, len), "request %ld (%zu bytes): "
		      "ciphertext differs from xts(aes)", i, len);
		CHECK(alg_crypt(tres, 0, iv, ct, len, back, 1) == (ssize_t)len &&
		      !memcmp(back, pt, len), "request %ld: decrypt mismatch", i);
		bytes += len;
	}
	if (tres >= 0)
		close(tres);
	if (aes >= 0)
		close(aes);
	return bytes;
}

static int mode_random(long n, uint64_t seed)
{
	uint8_t key[32];
	uint64_t bytes;
	int ret;

	rng_state = seed | 1;
	rnd_fill(key, 32);
	ret = tresor_set_key(key);
	if (ret) {
		printf("FAIL: SET_KEY: %s\n", strerror(-ret));
		return 1;
	}
	bytes = compare_with_xts_aes(key, n, MAX_REQ);
	explicit_bzero(key, sizeof(key));
	CHECK(tresor_clear_key() == 0, "CLEAR_KEY after closing");
	printf("random: %ld requests, %llu bytes, %d mismatches\n", n,
	       (unsigned long long)bytes, failures);
	return failures != 0;
}

static int mode_check(long n, uint64_t seed, const char *e_hex,
		      const char *m_hex)
{
	uint8_t key[32], m[32];

	if (unhex(e_hex, key, 32) != 32 || unhex(m_hex, m, 32) != 32) {
		printf("FAIL: E and M must be 64 hex digits\n");
		return 2;
	}
	for (int i = 0; i < 32; i++)
		key[i] ^= m[i];
	rng_state = seed | 1;
	compare_with_xts_aes(key, n, 4096);
	explicit_bzero(key, sizeof(key));
	printf("check: %ld requests, %d mismatches\n", n, failures);
	return failures != 0;
}

static double bench_one(const char *name, const uint8_t *key, double secs);

static int mode_rate(double secs)
{
	static const uint8_t zero[32];
	double r = bench_one("xts(tresor)", zero, secs);

	if (r < 0) {
		printf("FAIL: xts(tresor) requests failed\n");
		return 1;
	}
	printf("rate %.2f MB/s\n", r);
	return 0;
}

static const char *ename(int e)
{
	static char num[16];

	if (e >= 0) {
		snprintf(num, sizeof(num), "%d", e);
		return num;
	}
	return strerrorname_np(-e);
}

#define EXPECT(what, got, want) do { int g_ = (got); \
	CHECK(g_ == (want), "%s: got %s, want %s", what, ename(g_), \
	      ename(want)); \
	if (g_ == (want)) printf("ok %s -> %s\n", what, ename(g_)); } while (0)

static int mode_bad(void)
{
	static const uint8_t zero[64];
	uint8_t key[32], nz[32], buf[64] = { 0 }, iv[16] = { 0 };
	struct tresor_key k = { .size = 16 };
	struct tresor_holders h = { .nr_cpus = 1, .mask = { 1 } };
	struct tresor_status st;
	int tfm, fd;

	rng_state = 42;
	rnd_fill(key, 32);
	memset(nz, 0, 32);
	nz[31] = 1;

	tfm = alg_open("xts(tresor)");
	CHECK(tfm >= 0, "open xts(tresor): %s", ename(tfm));
	EXPECT("setkey non-zero", alg_setkey(tfm, nz, 32), -EINVAL);
	EXPECT("setkey 16 bytes", alg_setkey(tfm, zero, 16), -EINVAL);
	EXPECT("setkey 64 bytes", alg_setkey(tfm, zero, 64), -EINVAL);
	EXPECT("setkey zeros", alg_setkey(tfm, zero, 32), 0);
	EXPECT("encrypt with no key loaded",
	       (int)alg_crypt(tfm, 1, iv, buf, 32, buf, 0), -ENOKEY);
	EXPECT("SET_KEY size 16", tresor_ioctl(TRESOR_IOC_SET_KEY, &k), -EINVAL);
	k.size = 32;
	k.flags = 1;
	memcpy(k.key, key, 32);
	EXPECT("SET_KEY flags 1", tresor_ioctl(TRESOR_IOC_SET_KEY, &k), -EINVAL);
	explicit_bzero(&k, sizeof(k));
	EXPECT("SET_KEY all-zero key", tresor_set_key(zero), -EINVAL);
	EXPECT("SET_KEY", tresor_set_key(key), 0);
	EXPECT("SET_KEY again", tresor_set_key(key), -EEXIST);
	EXPECT("encrypt 17 bytes", (int)alg_crypt(tfm, 1, iv, buf, 17, buf, 0),
	       -EINVAL);
	EXPECT("encrypt 8 bytes", (int)alg_crypt(tfm, 1, iv, buf, 8, buf, 0),
	       -EINVAL);
	EXPECT("encrypt 32 bytes", (int)alg_crypt(tfm, 1, iv, buf, 32, buf, 0),
	       32);
	EXPECT("CLEAR_KEY with a tfm open", tresor_clear_key(), -EBUSY);
	h.flags = 1;
	EXPECT("SET_HOLDERS flags 1", tresor_ioctl(TRESOR_IOC_SET_HOLDERS, &h),
	       -EINVAL);
	h.flags = 0;
	h.nr_cpus = 0;
	EXPECT("SET_HOLDERS nr_cpus 0",
	       tresor_ioctl(TRESOR_IOC_SET_HOLDERS, &h), -EINVAL);
	h.nr_cpus = TRESOR_MAX_CPUS;
	h.mask[0] = 0;
	EXPECT("SET_HOLDERS empty", tresor_ioctl(TRESOR_IOC_SET_HOLDERS, &h),
	       -EINVAL);
	h.mask[TRESOR_MAX_CPUS / 64 - 1] = 1ull << 63;
	EXPECT("SET_HOLDERS CPU 1023", tresor_ioctl(TRESOR_IOC_SET_HOLDERS, &h),
	       -EINVAL);
	h.mask[TRESOR_MAX_CPUS / 64 - 1] = 0;
	h.mask[0] = 1;
	EXPECT("SET_HOLDERS CPU 0", tresor_ioctl(TRESOR_IOC_SET_HOLDERS, &h),
	       0);
	EXPECT("encrypt 32 bytes with holders {0}",
	       (int)alg_crypt(tfm, 1, iv, buf, 32, buf, 0), 32);

	/* Unprivileged: an fd opened by root, used after dropping root. */
	fd = open(TRESOR_DEVICE_PATH, O_RDWR);
	CHECK(fd >= 0, "open /dev/tresor");
	if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) {
		printf("FAIL: cannot drop root\n");
		return 1;
	}
	k.size = 32;
	memcpy(k.key, nz, 32);
	EXPECT("unprivileged SET_KEY",
	       ioctl(fd, TRESOR_IOC_SET_KEY, &k) < 0 ? -errno : 0, -EPERM);
	EXPECT("unprivileged CLEAR_KEY",
	       ioctl(fd, TRESOR_IOC_CLEAR_KEY) < 0 ? -errno : 0, -EPERM);
	EXPECT("unprivileged GET_STATUS",
	       ioctl(fd, TRESOR_IOC_GET_STATUS, &st) < 0 ? -errno : 0, -EPERM);
	EXPECT("unprivileged SET_HOLDERS",
	       ioctl(fd, TRESOR_IOC_SET_HOLDERS, &h) < 0 ? -errno : 0, -EPERM);
	EXPECT("unprivileged AF_ALG bind of xts(tresor)",
	       alg_open("xts(tresor)") < 0 ? -EPERM : 0, -EPERM);
	explicit_bzero(key, sizeof(key));
	printf("bad: %d failures\n", failures);
	return failures != 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* MB/s of 4 KiB encryptions through one op socket. */
static double bench_one(const char *name, const uint8_t *key, double secs)
{
	static uint8_t buf[4096], out[4096];
	uint8_t iv[16] = { 0 };
	double t0, t;
	long n = 0;
	int tfm, op;

	tfm = alg_open(name);
	if (tfm < 0)
		return -1;
	if (alg_setkey(tfm, key, 32)) {
		close(tfm);
		return -1;
	}
	op = accept(tfm, NULL, 0);
	t0 = now();
	do {
		for (int i = 0; i < 64; i++, n++) {
			memcpy(iv, &n, sizeof(n));
			if (send_op(op, 1, iv, buf, sizeof(buf), 0) ||
			    read(op, out, sizeof(out)) != sizeof(out)) {
				n = -1;
				goto out;
			}
		}
		t = now() - t0;
	} while (t < secs);
out:
	close(op);
	close(tfm);
	return n < 0 ? -1 : n * 4096.0 / t / 1e6;
}

static int mode_bench(double secs)
{
	static const uint8_t zero[32];
	static const char *const drivers[] = {
		"xts-tresor-aesni", "xts-tresor-vaes-avx2",
		"xts-tresor-vaes-avx512",
	};
	uint8_t key[32];
	double base;

	rng_state = 7;
	rnd_fill(key, 32);
	if (tresor_set_key(key)) {
		printf("FAIL: SET_KEY\n");
		return 1;
	}
	base = bench_one("xts(aes)", key, secs);
	printf("bench xts(aes) 4KiB: %.1f MB/s\n", base);
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
		double r = bench_one(drivers[i], zero, secs);

		if (r < 0)
			printf("bench %s: not registered on this CPU\n",
			       drivers[i]);
		else
			printf("bench %s 4KiB: %.1f MB/s, ratio %.2f vs xts(aes)\n",
			       drivers[i], r, r / base);
	}
	explicit_bzero(key, sizeof(key));
	return tresor_clear_key() != 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "kat"))
		return mode_kat();
	if (argc == 4 && !strcmp(argv[1], "random"))
		return mode_random(atol(argv[2]), strtoull(argv[3], NULL, 0));
	if (argc == 2 && !strcmp(argv[1], "bad"))
		return mode_bad();
	if (argc == 3 && !strcmp(argv[1], "bench"))
		return mode_bench(atof(argv[2]));
	if (argc == 6 && !strcmp(argv[1], "check"))
		return mode_check(atol(argv[2]), strtoull(argv[3], NULL, 0),
				  argv[4], argv[5]);
	if (argc == 3 && !strcmp(argv[1], "rate"))
		return mode_rate(atof(argv[2]));
	fprintf(stderr, "usage: xtstest kat | random N SEED | bad | "
		"bench SECONDS | check N SEED E M | rate SECONDS\n");
	return 2;
}
