// SPDX-License-Identifier: GPL-2.0
/*
 * mbguest - a tiny multiboot (v1) test image for QEMU (-kernel).
 *
 * Writes w(a) = a * 0x9E3779B1 + seed (mod 2^32) to every 32-bit word a of
 * [4 MiB, top of RAM - 1 MiB), then reads all of it back twice, summing
 * every word (mod 2^64) and counting mismatches. Reports on COM1:
 *
 *   mbguest: start mem_upper=<KiB> seed=0x<seed>
 *   mbguest: ok start=0x... end=0x... seed=0x... wsum=0x... rsum1=0x...
 *            rsum2=0x... mismatches=0
 *
 * ("FAIL" instead of "ok" on any mismatch), then leaves QEMU through
 * isa-debug-exit at port 0xf4: QEMU exits 1 on success, 3 on failure.
 * The seed comes from the command line ("seed=0x1234", -append).
 *
 * "canary=0x<set>" (hex) instead writes canary page i of that set (the
 * generator of tests/guest/canary.c and tests/harness/memsearch.py: magic
 * "RCCANARY", set id, index, xorshift body) to the page at 4 MiB + i * 4 KiB,
 * so a RAM dump of the host shows which guest pages are in plaintext:
 *
 *   mbguest: canary written set=0x... start=0x... pages=N
 *   mbguest: canary pass=K ok pages=N mismatches=0    (after each read pass)
 *
 * It reads everything back twice and exits like the default mode; with
 * "loop" as well it keeps doing read passes (one line each) until QEMU is
 * stopped, a guest that runs like a service. A mismatch prints FAIL and
 * exits at once.
 */
#include <stdint.h>

#define MB_BOOT_MAGIC	0x2BADB002u
#define MB_INFO_MEM	(1u << 0)
#define MB_INFO_CMDLINE	(1u << 2)
#define COM1		0x3f8
#define DEBUG_EXIT	0xf4
#define MUL		0x9E3779B1u
#define TEST_START	0x400000u

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
};

void mb_main(uint32_t magic, const struct mb_info *mbi);

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void putc(char c)
{
	for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
		;
	outb(COM1, c);
}

static void puts(const char *s)
{
	while (*s) {
		if (*s == '\n')
			putc('\r');
		putc(*s++);
	}
}

static void puthex(uint64_t v, int digits)
{
	char buf[17];

	for (int i = digits - 1; i >= 0; i--, v >>= 4)
		buf[i] = "0123456789abcdef"[v & 15];
	buf[digits] = 0;
	puts("0x");
	puts(buf);
}

static void putdec(uint32_t v)
{
	char buf[11];
	int i = 10;

	buf[i] = 0;
	do {
		buf[--i] = '0' + v % 10;
		v /= 10;
	} while (v);
	puts(buf + i);
}

static void __attribute__((noreturn)) leave(int ok)
{
	outb(DEBUG_EXIT, ok ? 0 : 1);
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* The hex value of "<key>=" in the command line, or dflt; *found set. */
static uint32_t parse_hex(const char *s, const char *key, uint32_t dflt,
			  int *found)
{
	uint32_t v = 0;

	*found = 0;
	for (; *s; s++) {
		int n = 0;

		while (key[n] && s[n] == key[n])
			n++;
		if (!key[n] && s[n] == '=') {
			*found = 1;
			s += n + 1;
			if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
				s += 2;
			for (; *s && *s != ' '; s++) {
				char c = *s | 0x20;

				if (c >= '0' && c <= '9')
					v = v * 16 + (uint32_t)(c - '0');
				else if (c >= 'a' && c <= 'f')
					v = v * 16 + (uint32_t)(c - 'a' + 10);
				else
					break;
			}
			return v;
		}
	}
	return dflt;
}

/* A whole word of the command line. */
static int has_word(const char *s, const char *w)
{
	for (const char *p = s; *p; p++) {
		int n = 0;

		if (p != s && p[-1] != ' ')
			continue;
		while (w[n] && p[n] == w[n])
			n++;
		if (!w[n] && (!p[n] || p[n] == ' '))
			return 1;
	}
	return 0;
}

#define PAGE		4096u
#define CANARY_WORDS	((PAGE - 24) / 8)

/* Canary page `index` of set `set` at p, or the number of its 64-bit words
 * that differ from it (check != 0). Same generator as canary.c. */
static uint32_t canary_page(volatile uint64_t *p, uint64_t set,
			    uint64_t index, int check)
{
	/* "RCCANARY" little-endian */
	const uint64_t magic = 0x5952414e41434352ull;
	uint64_t x = set * 0x9E3779B97F4A7C15ull + index + 1;
	uint32_t bad = 0;

	if (!x)
		x = 1;
	if (check) {
		bad += p[0] != magic;
		bad += p[1] != set;
		bad += p[2] != index;
	} else {
		p[0] = magic;
		p[1] = set;
		p[2] = index;
	}
	for (uint32_t i = 0; i < CANARY_WORDS; i++) {
		uint64_t w;

		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		w = x * 0x2545F4914F6CDD1Dull;
		if (check)
			bad += p[3 + i] != w;
		else
			p[3 + i] = w;
	}
	return bad;
}

static void __attribute__((noreturn)) canary_main(uint32_t set,
						  uint32_t start,
						  uint32_t end, int loop)
{
	uint32_t pages = (end - start) / PAGE;

	for (uint32_t i = 0; i < pages; i++)
		canary_page((volatile uint64_t *)(start + i * PAGE), set, i, 0);
	puts("mbguest: canary written set=");
	puthex(set, 8);
	puts(" start=");
	puthex(start, 8);
	puts(" pages=");
	putdec(pages);
	puts("\n");
	for (uint32_t pass = 1; loop || pass <= 2; pass++) {
		uint32_t mism = 0;

		for (uint32_t i = 0; i < pages; i++)
			mism += canary_page((volatile uint64_t *)
					    (start + i * PAGE), set, i, 1);
		puts("mbguest: canary pass=");
		putdec(pass);
		puts(mism ? " FAIL pages=" : " ok pages=");
		putdec(pages);
		puts(" mismatches=");
		putdec(mism);
		puts("\n");
		if (mism)
			leave(0);
	}
	leave(1);
}

static uint64_t read_pass(uint32_t start, uint32_t end, uint32_t seed,
			  uint32_t *mismatches)
{
	uint64_t sum = 0;

	for (uint32_t a = start; a < end; a += 4) {
		uint32_t v = *(volatile uint32_t *)a;

		sum += v;
		if (v != a * MUL + seed)
			(*mismatches)++;
	}
	return sum;
}

void mb_main(uint32_t magic, const struct mb_info *mbi)
{
	uint32_t seed = 0x5eed5eed, start = TEST_START, end, mism = 0, set = 0;
	uint64_t wsum = 0, rsum1, rsum2;
	int canary = 0, loop = 0;

	if (magic != MB_BOOT_MAGIC || !(mbi->flags & MB_INFO_MEM)) {
		puts("mbguest: FAIL no multiboot memory info\n");
		leave(0);
	}
	if (mbi->flags & MB_INFO_CMDLINE) {
		const char *cmdline = (const char *)mbi->cmdline;
		int found;

		seed = parse_hex(cmdline, "seed", 0x5eed5eed, &found);
		set = parse_hex(cmdline, "canary", 0, &canary);
		loop = has_word(cmdline, "loop");
	}
	puts("mbguest: start mem_upper=");
	putdec(mbi->mem_upper);
	puts(" seed=");
	puthex(seed, 8);
	puts("\n");
	/* mem_upper: KiB from 1 MiB; keep clear of the top MiB (firmware). */
	end = (0x100000u + mbi->mem_upper * 1024u - 0x100000u) & ~0xfffu;
	if (end <= start + 0x100000u) {
		puts("mbguest: FAIL too little memory\n");
		leave(0);
	}
	if (canary)
		canary_main(set, start, end, loop);
	for (uint32_t a = start; a < end; a += 4) {
		uint32_t v = a * MUL + seed;

		*(volatile uint32_t *)a = v;
		wsum += v;
	}
	rsum1 = read_pass(start, end, seed, &mism);
	rsum2 = read_pass(start, end, seed, &mism);
	puts(mism || rsum1 != wsum || rsum2 != wsum ? "mbguest: FAIL" :
	     "mbguest: ok");
	puts(" start=");
	puthex(start, 8);
	puts(" end=");
	puthex(end, 8);
	puts(" seed=");
	puthex(seed, 8);
	puts(" wsum=");
	puthex(wsum, 16);
	puts(" rsum1=");
	puthex(rsum1, 16);
	puts(" rsum2=");
	puthex(rsum2, 16);
	puts(" mismatches=");
	putdec(mism);
	puts("\n");
	leave(!mism && rsum1 == wsum && rsum2 == wsum);
}
