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
 *
 * "aeskey" adds a secret of the guest's own, as a real guest's dm-crypt
 * holds its disk key: a 256-bit AES-128-XTS key derived from the set
 * (guest_aes_key() in tests/harness/memsearch.py) and the expanded AES-128
 * schedules of both halves, at AESKEY_AT, set up once at boot (a guest
 * that unlocked its disk and does no disk I/O meanwhile):
 *
 *   mbguest: aes key at 0x... (2 schedules)
 *
 * "work=S" (with "loop") keeps doing read passes for S seconds of wall
 * time (the CMOS RTC, counted from "canary written"), then idles for good
 * (cli; hlt: the vCPU sleeps, no page of the guest is touched again):
 *
 *   mbguest: idle after 60 s in pass=K
 *
 * "balloon=N" (decimal, canary mode) gives the last N canary pages to the
 * host after they are written (and "balloon_wait=S" seconds later, for a
 * host that wants to read its figures first): the inflate queue of a
 * legacy virtio-balloon (virtio-pci 0.9.5, 1af4:1002, e.g. QEMU's
 * -device virtio-balloon-pci,disable-modern=on), whose host discards them
 * (QEMU: ram_block_discard_range(), a hole punch of a file backend). The
 * read passes then check only the other pages (the given ones are never
 * touched again: a read would fault them back in):
 *
 *   mbguest: balloon inflated pages=N pfns=0x...-0x... (io=0x..., queue=Q)
 *   mbguest: balloon FAIL <why>                        (exits at once)
 */
#include <stdint.h>

#define MB_BOOT_MAGIC	0x2BADB002u
#define MB_INFO_MEM	(1u << 0)
#define MB_INFO_CMDLINE	(1u << 2)
#define COM1		0x3f8
#define DEBUG_EXIT	0xf4
#define MUL		0x9E3779B1u
#define TEST_START	0x400000u
#define AESKEY_AT	0x300000u

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

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
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

/* The decimal value of "<key>=" in the command line, or 0. */
static uint32_t parse_dec(const char *s, const char *key)
{
	for (; *s; s++) {
		uint32_t v = 0;
		int n = 0;

		while (key[n] && s[n] == key[n])
			n++;
		if (key[n] || s[n] != '=')
			continue;
		for (s += n + 1; *s >= '0' && *s <= '9'; s++)
			v = v * 10 + (uint32_t)(*s - '0');
		return v;
	}
	return 0;
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


/* The guest's own AES key (see the top): xorshift64* words from the set. */
static const uint8_t aes_sbox[256] = {
	0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b,
	0xfe, 0xd7, 0xab, 0x76, 0xca, 0x82, 0xc9, 0x7d, 0xfa, 0x59, 0x47, 0xf0,
	0xad, 0xd4, 0xa2, 0xaf, 0x9c, 0xa4, 0x72, 0xc0, 0xb7, 0xfd, 0x93, 0x26,
	0x36, 0x3f, 0xf7, 0xcc, 0x34, 0xa5, 0xe5, 0xf1, 0x71, 0xd8, 0x31, 0x15,
	0x04, 0xc7, 0x23, 0xc3, 0x18, 0x96, 0x05, 0x9a, 0x07, 0x12, 0x80, 0xe2,
	0xeb, 0x27, 0xb2, 0x75, 0x09, 0x83, 0x2c, 0x1a, 0x1b, 0x6e, 0x5a, 0xa0,
	0x52, 0x3b, 0xd6, 0xb3, 0x29, 0xe3, 0x2f, 0x84, 0x53, 0xd1, 0x00, 0xed,
	0x20, 0xfc, 0xb1, 0x5b, 0x6a, 0xcb, 0xbe, 0x39, 0x4a, 0x4c, 0x58, 0xcf,
	0xd0, 0xef, 0xaa, 0xfb, 0x43, 0x4d, 0x33, 0x85, 0x45, 0xf9, 0x02, 0x7f,
	0x50, 0x3c, 0x9f, 0xa8, 0x51, 0xa3, 0x40, 0x8f, 0x92, 0x9d, 0x38, 0xf5,
	0xbc, 0xb6, 0xda, 0x21, 0x10, 0xff, 0xf3, 0xd2, 0xcd, 0x0c, 0x13, 0xec,
	0x5f, 0x97, 0x44, 0x17, 0xc4, 0xa7, 0x7e, 0x3d, 0x64, 0x5d, 0x19, 0x73,
	0x60, 0x81, 0x4f, 0xdc, 0x22, 0x2a, 0x90, 0x88, 0x46, 0xee, 0xb8, 0x14,
	0xde, 0x5e, 0x0b, 0xdb, 0xe0, 0x32, 0x3a, 0x0a, 0x49, 0x06, 0x24, 0x5c,
	0xc2, 0xd3, 0xac, 0x62, 0x91, 0x95, 0xe4, 0x79, 0xe7, 0xc8, 0x37, 0x6d,
	0x8d, 0xd5, 0x4e, 0xa9, 0x6c, 0x56, 0xf4, 0xea, 0x65, 0x7a, 0xae, 0x08,
	0xba, 0x78, 0x25, 0x2e, 0x1c, 0xa6, 0xb4, 0xc6, 0xe8, 0xdd, 0x74, 0x1f,
	0x4b, 0xbd, 0x8b, 0x8a, 0x70, 0x3e, 0xb5, 0x66, 0x48, 0x03, 0xf6, 0x0e,
	0x61, 0x35, 0x57, 0xb9, 0x86, 0xc1, 0x1d, 0x9e, 0xe1, 0xf8, 0x98, 0x11,
	0x69, 0xd9, 0x8e, 0x94, 0x9b, 0x1e, 0x87, 0xe9, 0xce, 0x55, 0x28, 0xdf,
	0x8c, 0xa1, 0x89, 0x0d, 0xbf, 0xe6, 0x42, 0x68, 0x41, 0x99, 0x2d, 0x0f,
	0xb0, 0x54, 0xbb, 0x16,
};

/* AES-128 key expansion: 16 key bytes -> 176 bytes of round keys. */
static void aes128_expand(volatile uint8_t *rk, const uint8_t *key)
{
	uint8_t rcon = 1, t[4];

	for (int i = 0; i < 16; i++)
		rk[i] = key[i];
	for (int i = 16; i < 176; i += 4) {
		for (int j = 0; j < 4; j++)
			t[j] = rk[i - 4 + j];
		if (i % 16 == 0) {
			uint8_t t0 = t[0];

			t[0] = aes_sbox[t[1]] ^ rcon;
			t[1] = aes_sbox[t[2]];
			t[2] = aes_sbox[t[3]];
			t[3] = aes_sbox[t0];
			rcon = (uint8_t)((rcon << 1) ^ ((rcon & 0x80) ? 0x1b : 0));
		}
		for (int j = 0; j < 4; j++)
			rk[i + j] = rk[i - 16 + j] ^ t[j];
	}
}

/* At AESKEY_AT: the 32-byte key, then the schedules of K1 and K2. */
static void aeskey_setup(uint32_t set)
{
	volatile uint8_t *at = (volatile uint8_t *)AESKEY_AT;
	uint64_t x = set * 0xD1B54A32D192ED03ull + 0xAE5;
	uint8_t key[32];

	if (!x)
		x = 1;
	for (int i = 0; i < 32; i += 8) {
		uint64_t w;

		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		w = x * 0x2545F4914F6CDD1Dull;
		for (int j = 0; j < 8; j++)
			key[i + j] = (uint8_t)(w >> (8 * j));
	}
	for (int i = 0; i < 32; i++)
		at[i] = key[i];
	aes128_expand(at + 32, key);
	aes128_expand(at + 32 + 176, key + 16);
	for (int i = 0; i < 32; i++)
		((volatile uint8_t *)key)[i] = 0;
	puts("mbguest: aes key at ");
	puthex(AESKEY_AT, 8);
	puts(" (2 schedules)\n");
}

/* Seconds of the day from the CMOS RTC (BCD or binary, 24 h). */
static uint8_t cmos(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

static uint32_t rtc_seconds(void)
{
	uint8_t s, m, h, b;

	while (cmos(0x0a) & 0x80)	/* update in progress */
		;
	s = cmos(0x00);
	m = cmos(0x02);
	h = cmos(0x04);
	b = cmos(0x0b);
	if (!(b & 0x04)) {
		s = (uint8_t)((s & 15) + (s >> 4) * 10);
		m = (uint8_t)((m & 15) + (m >> 4) * 10);
		h = (uint8_t)((h & 15) + ((h & 0x70) >> 4) * 10);
	}
	return h * 3600u + m * 60u + s;
}

static uint32_t rtc_since(uint32_t t0)
{
	return (rtc_seconds() + 86400u - t0) % 86400u;
}

/*
 * A legacy virtio-balloon (virtio-pci 0.9.5): found on PCI bus 0 through
 * configuration mechanism #1, driven through its I/O BAR0. Queue 0 (inflate)
 * is a legacy vring at BALLOON_RING: descriptors, the available ring, the
 * used ring on the next 4 KiB boundary (the queue size is the device's).
 * Each buffer is up to BALLOON_CHUNK 32-bit little-endian PFNs (4 KiB
 * pages) from the array at BALLOON_PFNS; no feature is taken.
 */
#define PCI_ADDR		0xcf8
#define PCI_DATA		0xcfc
#define VIRTIO_VENDOR		0x1af4u
#define VIRTIO_ID_BALLOON	0x1002u		/* legacy (transitional) id */
#define VP_HOST_FEATURES	0x00		/* 32 bit */
#define VP_GUEST_FEATURES	0x04		/* 32 bit */
#define VP_QUEUE_PFN		0x08		/* 32 bit, address >> 12 */
#define VP_QUEUE_NUM		0x0c		/* 16 bit */
#define VP_QUEUE_SEL		0x0e		/* 16 bit */
#define VP_QUEUE_NOTIFY		0x10		/* 16 bit */
#define VP_STATUS		0x12		/* 8 bit */
#define VP_ISR			0x13		/* 8 bit, read clears */
#define VP_BALLOON_ACTUAL	0x18		/* config (no MSI-X) + 4 */
#define VS_ACK			1
#define VS_DRIVER		2
#define VS_DRIVER_OK		4
#define VS_FAILED		0x80
#define VRING_AVAIL_NO_INTR	1
#define BALLOON_RING		0x340000u
#define BALLOON_PFNS		0x350000u
#define BALLOON_MAX_PFNS	((TEST_START - BALLOON_PFNS) / 4)
#define BALLOON_CHUNK		256u
#define BALLOON_MAX_QUEUE	1024u
#define BALLOON_TIMEOUT		10		/* s, for the used ring */

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

static uint32_t pci_read(uint32_t bdf, uint32_t reg)
{
	outl(PCI_ADDR, 0x80000000u | bdf << 8 | (reg & 0xfc));
	return inl(PCI_DATA);
}

static void pci_write(uint32_t bdf, uint32_t reg, uint32_t v)
{
	outl(PCI_ADDR, 0x80000000u | bdf << 8 | (reg & 0xfc));
	outl(PCI_DATA, v);
}

/* The I/O base of the first legacy virtio-balloon on bus 0, or 0. */
static uint16_t balloon_find(const char **why)
{
	for (uint32_t dev = 0; dev < 32; dev++) {
		uint32_t bdf = dev << 3, bar0;

		if (pci_read(bdf, 0x00) != (VIRTIO_ID_BALLOON << 16 |
					    VIRTIO_VENDOR))
			continue;
		bar0 = pci_read(bdf, 0x10);
		if (!(bar0 & 1) || !(bar0 & 0xfffc)) {
			*why = "BAR0 is not an assigned I/O BAR";
			return 0;
		}
		/* I/O space and bus mastering (the device reads the rings) */
		pci_write(bdf, 0x04, (pci_read(bdf, 0x04) & 0xffff) | 0x5);
		return (uint16_t)(bar0 & 0xfffc);
	}
	*why = "no virtio-balloon 1af4:1002 on PCI bus 0";
	return 0;
}

static void __attribute__((noreturn)) balloon_fail(const char *why)
{
	puts("mbguest: balloon FAIL ");
	puts(why);
	puts("\n");
	leave(0);
}

/* Give the n pages from first to the host through the inflate queue. */
static void balloon_inflate(uint32_t first, uint32_t n)
{
	const char *why = "";
	uint16_t io = balloon_find(&why), q, idx = 0;
	volatile struct vring_desc *desc;
	volatile uint16_t *avail, *used;
	volatile uint32_t *pfns = (volatile uint32_t *)BALLOON_PFNS;
	uint32_t used_off;

	if (!io)
		balloon_fail(why);
	if (n > BALLOON_MAX_PFNS)
		balloon_fail("too many pages");
	outb(io + VP_STATUS, 0);			/* reset */
	outb(io + VP_STATUS, VS_ACK);
	outb(io + VP_STATUS, VS_ACK | VS_DRIVER);
	(void)inl(io + VP_HOST_FEATURES);
	outl(io + VP_GUEST_FEATURES, 0);
	outw(io + VP_QUEUE_SEL, 0);
	q = inw(io + VP_QUEUE_NUM);
	if (!q || q > BALLOON_MAX_QUEUE || (q & (q - 1))) {
		outb(io + VP_STATUS, VS_FAILED);
		balloon_fail("bad inflate queue size");
	}
	used_off = (16u * q + 6u + 2u * q + PAGE - 1) & ~(PAGE - 1);
	for (uint32_t i = 0; i < used_off + 6u + 8u * q; i += 4)
		*(volatile uint32_t *)(BALLOON_RING + i) = 0;
	desc = (volatile struct vring_desc *)BALLOON_RING;
	avail = (volatile uint16_t *)(BALLOON_RING + 16u * q);
	used = (volatile uint16_t *)(BALLOON_RING + used_off);
	avail[0] = VRING_AVAIL_NO_INTR;		/* we poll the used ring */
	outl(io + VP_QUEUE_PFN, BALLOON_RING >> 12);
	outb(io + VP_STATUS, VS_ACK | VS_DRIVER | VS_DRIVER_OK);

	for (uint32_t i = 0; i < n; i++)
		pfns[i] = (first >> 12) + i;
	for (uint32_t done = 0; done < n;) {
		uint16_t k = 0;
		uint32_t t0;

		/* a batch: up to one buffer a descriptor, all in flight */
		for (; k < q && done < n; k++) {
			uint32_t cnt = n - done < BALLOON_CHUNK ? n - done :
				       BALLOON_CHUNK;

			desc[k].addr = BALLOON_PFNS + done * 4u;
			desc[k].len = cnt * 4u;
			desc[k].flags = 0;		/* device reads it */
			desc[k].next = 0;
			avail[2 + (uint16_t)(idx + k) % q] = k;
			done += cnt;
		}
		__asm__ volatile("" : : : "memory");
		avail[1] = (uint16_t)(idx + k);
		__asm__ volatile("" : : : "memory");
		outw(io + VP_QUEUE_NOTIFY, 0);
		idx = (uint16_t)(idx + k);
		t0 = rtc_seconds();
		while (used[1] != idx)
			if (rtc_since(t0) >= BALLOON_TIMEOUT)
				balloon_fail("no answer on the used ring");
	}
	(void)inb(io + VP_ISR);
	outl(io + VP_BALLOON_ACTUAL, n);
	puts("mbguest: balloon inflated pages=");
	putdec(n);
	puts(" pfns=");
	puthex(first >> 12, 5);
	puts("-");
	puthex((first >> 12) + n - 1, 5);
	puts(" (io=");
	puthex(io, 4);
	puts(", queue=");
	putdec(q);
	puts(")\n");
}

static void __attribute__((noreturn)) idle_forever(uint32_t secs,
						   uint32_t pass)
{
	puts("mbguest: idle after ");
	putdec(secs);
	puts(" s in pass=");
	putdec(pass);
	puts("\n");
	for (;;)
		__asm__ volatile("cli; hlt");
}

static void __attribute__((noreturn)) canary_main(uint32_t set,
						  uint32_t start,
						  uint32_t end, int loop,
						  int aeskey, uint32_t work,
						  uint32_t balloon,
						  uint32_t balloon_wait)
{
	uint32_t pages = (end - start) / PAGE, kept = pages - balloon;
	uint32_t t0;

	if (aeskey)
		aeskey_setup(set);
	if (!loop)
		work = 0;

	for (uint32_t i = 0; i < pages; i++)
		canary_page((volatile uint64_t *)(start + i * PAGE), set, i, 0);
	puts("mbguest: canary written set=");
	puthex(set, 8);
	puts(" start=");
	puthex(start, 8);
	puts(" pages=");
	putdec(pages);
	puts("\n");
	t0 = rtc_seconds();
	if (balloon) {
		if (balloon >= pages)
			balloon_fail("leaves no page to check");
		while (rtc_since(t0) < balloon_wait)
			;
		balloon_inflate(start + kept * PAGE, balloon);
	}
	for (uint32_t pass = 1; loop || pass <= 2; pass++) {
		uint32_t mism = 0;

		for (uint32_t i = 0; i < kept; i++) {
			mism += canary_page((volatile uint64_t *)
					    (start + i * PAGE), set, i, 1);
			if (work && i % 64 == 0 && rtc_since(t0) >= work)
				idle_forever(work, pass);
		}
		puts("mbguest: canary pass=");
		putdec(pass);
		puts(mism ? " FAIL pages=" : " ok pages=");
		putdec(kept);
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
	int canary = 0, loop = 0, aeskey = 0;
	uint32_t work = 0, balloon = 0, balloon_wait = 0;

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
		aeskey = has_word(cmdline, "aeskey");
		work = parse_dec(cmdline, "work");
		balloon = parse_dec(cmdline, "balloon");
		balloon_wait = parse_dec(cmdline, "balloon_wait");
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
		canary_main(set, start, end, loop, aeskey, work, balloon,
			    balloon_wait);
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
