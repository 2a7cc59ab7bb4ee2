// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * unlock.c - open a LUKS2 volume onto xts(tresor).
 *
 * The volume key goes from the LUKS2 keyslot into crypt_safe_alloc'd memory,
 * from there into tresor.ko (TRESOR_IOC_SET_KEY), and is wiped. The payload
 * is then mapped as a plain dm-crypt device with the cipher
 * capi:xts(tresor)-plain64 and a 32-zero-byte placeholder key, at the LUKS2
 * data offset and sector size: dm-crypt never sees the key. There is no
 * fallback to a stock key-in-RAM mapping.
 */
#define _GNU_SOURCE
#include "unlock.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <blkid/blkid.h>
#include <libcryptsetup.h>
#include <libdevmapper.h>
#include <linux/fs.h>
#include <linux/if_alg.h>

#include "log.h"
#include "tresor.h"

#define TRESOR_CIPHER_SPEC	"capi:xts(tresor)-plain64"
#define REENCRYPT_HINT \
	"cryptsetup reencrypt --key-size 256 --cipher aes-xts-plain64"

#define SHOWREGS_NAME		"tresor_showregs"
#define SHOWREGS_SYSFS		"/sys/kernel/livepatch/" SHOWREGS_NAME
#define SHOWREGS_TIMEOUT_MS	30000

#ifndef SOL_ALG
#define SOL_ALG 279
#endif

static int udev_running;

/* The host key of this run, once a volume has opened with it and
 * tresor.ko holds it (struct unlock_opts.keep_key): later volumes are
 * checked against it with crypt_volume_key_verify() (no prompt, no
 * PBKDF) and opened with it. Locked memory, wiped by unlock_done(). */
static char *run_vk;
static char run_vk_name[TT_NAME_MAX + 1];
static int vk_from_run;		/* the last get_volume_key() used run_vk */

/*
 * Overwrite the vector registers with a non-zero pattern. memcpy and
 * libcryptsetup move the key through XMM/YMM registers and leave it there;
 * the kernel saves them into the task's FPU state in RAM when it switches
 * the task out (XSAVES), and a component in its init state (all zero) is
 * not written: zeroed registers would leave an older saved copy in place.
 * Every vector register is call-clobbered (x86-64 ABI); noipa keeps the
 * compiler from assuming otherwise.
 */
static __attribute__((noipa)) void clobber_vector_regs(void)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("avx"))
		__asm__ __volatile__(
			"vpcmpeqd %%ymm0, %%ymm0, %%ymm0\n\t"
			"vmovdqa %%ymm0, %%ymm1\n\tvmovdqa %%ymm0, %%ymm2\n\t"
			"vmovdqa %%ymm0, %%ymm3\n\tvmovdqa %%ymm0, %%ymm4\n\t"
			"vmovdqa %%ymm0, %%ymm5\n\tvmovdqa %%ymm0, %%ymm6\n\t"
			"vmovdqa %%ymm0, %%ymm7\n\tvmovdqa %%ymm0, %%ymm8\n\t"
			"vmovdqa %%ymm0, %%ymm9\n\tvmovdqa %%ymm0, %%ymm10\n\t"
			"vmovdqa %%ymm0, %%ymm11\n\tvmovdqa %%ymm0, %%ymm12\n\t"
			"vmovdqa %%ymm0, %%ymm13\n\tvmovdqa %%ymm0, %%ymm14\n\t"
			"vmovdqa %%ymm0, %%ymm15" : : : "memory");
	else
		__asm__ __volatile__(
			"pcmpeqd %%xmm0, %%xmm0\n\t"
			"movdqa %%xmm0, %%xmm1\n\tmovdqa %%xmm0, %%xmm2\n\t"
			"movdqa %%xmm0, %%xmm3\n\tmovdqa %%xmm0, %%xmm4\n\t"
			"movdqa %%xmm0, %%xmm5\n\tmovdqa %%xmm0, %%xmm6\n\t"
			"movdqa %%xmm0, %%xmm7\n\tmovdqa %%xmm0, %%xmm8\n\t"
			"movdqa %%xmm0, %%xmm9\n\tmovdqa %%xmm0, %%xmm10\n\t"
			"movdqa %%xmm0, %%xmm11\n\tmovdqa %%xmm0, %%xmm12\n\t"
			"movdqa %%xmm0, %%xmm13\n\tmovdqa %%xmm0, %%xmm14\n\t"
			"movdqa %%xmm0, %%xmm15" : : : "memory");
	if (__builtin_cpu_supports("avx512f"))
		__asm__ __volatile__(
			"vpternlogd $0xff, %%zmm0, %%zmm0, %%zmm0\n\t"
			"vmovdqa64 %%zmm0, %%zmm1\n\tvmovdqa64 %%zmm0, %%zmm2\n\t"
			"vmovdqa64 %%zmm0, %%zmm3\n\tvmovdqa64 %%zmm0, %%zmm4\n\t"
			"vmovdqa64 %%zmm0, %%zmm5\n\tvmovdqa64 %%zmm0, %%zmm6\n\t"
			"vmovdqa64 %%zmm0, %%zmm7\n\tvmovdqa64 %%zmm0, %%zmm8\n\t"
			"vmovdqa64 %%zmm0, %%zmm9\n\tvmovdqa64 %%zmm0, %%zmm10\n\t"
			"vmovdqa64 %%zmm0, %%zmm11\n\tvmovdqa64 %%zmm0, %%zmm12\n\t"
			"vmovdqa64 %%zmm0, %%zmm13\n\tvmovdqa64 %%zmm0, %%zmm14\n\t"
			"vmovdqa64 %%zmm0, %%zmm15\n\tvmovdqa64 %%zmm0, %%zmm16\n\t"
			"vmovdqa64 %%zmm0, %%zmm17\n\tvmovdqa64 %%zmm0, %%zmm18\n\t"
			"vmovdqa64 %%zmm0, %%zmm19\n\tvmovdqa64 %%zmm0, %%zmm20\n\t"
			"vmovdqa64 %%zmm0, %%zmm21\n\tvmovdqa64 %%zmm0, %%zmm22\n\t"
			"vmovdqa64 %%zmm0, %%zmm23\n\tvmovdqa64 %%zmm0, %%zmm24\n\t"
			"vmovdqa64 %%zmm0, %%zmm25\n\tvmovdqa64 %%zmm0, %%zmm26\n\t"
			"vmovdqa64 %%zmm0, %%zmm27\n\tvmovdqa64 %%zmm0, %%zmm28\n\t"
			"vmovdqa64 %%zmm0, %%zmm29\n\tvmovdqa64 %%zmm0, %%zmm30\n\t"
			"vmovdqa64 %%zmm0, %%zmm31" : : : "memory");
#endif
}

/*
 * Wipe the stack below the caller: libcryptsetup (keyslot and digest
 * code, its crypto backend), token plugins and glibc leave copies of the
 * volume key in stack frames they return from, and they stay in this
 * process's stack pages until overwritten. Then the vector registers
 * (above). Found by tresor-unlock-open's RAM dump of a stopped
 * tresor-unlock: with one stack layout a K2 copy in a stack page, with
 * the stack wiped and the registers zeroed K1 and K2 in the XSAVE area;
 * with both done, none (256 KiB: far below the deepest library frame).
 */
static __attribute__((noipa)) void scrub_stack(void)
{
	char buf[256 << 10];

	explicit_bzero(buf, sizeof(buf));
	__asm__ __volatile__("" : : "r"(buf) : "memory");
	clobber_vector_regs();
}

void unlock_done(void)
{
	crypt_safe_free(run_vk);
	run_vk = NULL;
	scrub_stack();
}

static void vmsg(int level, const char *name, const char *fmt, va_list ap)
{
	char text[2048];

	vsnprintf(text, sizeof(text), fmt, ap);
	/* one line through log.c: the journal prefix, and plymouth */
	lvl_printf(level, "tresor-unlock: %s%s%s\n", name ? name : "",
		   name ? ": " : "", text);
}

/* an error (journal priority err) */
static void __attribute__((format(printf, 2, 3)))
msg(const char *name, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(LOG_ERR, name, fmt, ap);
	va_end(ap);
}

/* progress and outcomes that are no error (LOG_NOTICE, LOG_INFO) or a
 * warning (LOG_WARNING) */
static void __attribute__((format(printf, 3, 4)))
lmsg(int level, const char *name, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(level, name, fmt, ap);
	va_end(ap);
}

static int debug;	/* --debug */

static void cs_log(int level, const char *m, void *usrptr)
{
	(void)usrptr;
	if (level == CRYPT_LOG_ERROR)
		err_printf("tresor-unlock: cryptsetup: %s", m);
	else if (level == CRYPT_LOG_DEBUG && debug)
		/* as cryptsetup --debug prints them (m ends in a newline) */
		lvl_printf(LOG_DEBUG, "# %.*s\n", (int)strcspn(m, "\n"), m);
}

void unlock_init(void)
{
	struct stat st;

	udev_running = stat("/run/udev/control", &st) == 0;
	if (!udev_running) {
		/* Without udev, libdevmapper and libcryptsetup must make
		 * /dev/mapper nodes themselves and not wait for udev. */
		setenv("DM_DISABLE_UDEV", "1", 1);
	}
	crypt_set_log_callback(NULL, cs_log, NULL);
	dm_log_init_verbose(0);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* "90s", "1.5s" (a static buffer: one use per message) */
static const char *secs(unsigned int ms)
{
	static char buf[2][32];
	static int i;

	i ^= 1;
	if (ms % 1000)
		snprintf(buf[i], sizeof(buf[i]), "%u.%03us", ms / 1000,
			 ms % 1000);
	else
		snprintf(buf[i], sizeof(buf[i]), "%us", ms / 1000);
	return buf[i];
}

/*
 * A block device with a size: an md array assembled but not started (an
 * inactive member set, size 0) is not there yet, or --once would spend
 * its one try on it.
 */
static int is_blockdev(const char *path)
{
	struct stat st;
	uint64_t size = 0;
	int fd, ok;

	if (stat(path, &st) || !S_ISBLK(st.st_mode))
		return 0;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ok = ioctl(fd, BLKGETSIZE64, &size) == 0 && size > 0;
	close(fd);
	return ok;
}

static int uuid_eq(const char *a, const char *b)
{
	/* case-insensitive, dashes ignored */
	for (;;) {
		while (*a == '-')
			a++;
		while (*b == '-')
			b++;
		if (!*a || !*b)
			return !*a && !*b;
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return 0;
		a++;
		b++;
	}
}

/* Has /sys/class/block/NAME holders (an md array, dm, a multipath map)? */
static int has_holders(const char *name)
{
	char path[300];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/sys/class/block/%s/holders", name);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n > 0;
}

/* blkid's view of path: is it LUKS with this UUID? (no crypt_init, no
 * messages: a device that cannot be opened is just not it) */
static int blkid_is_luks_uuid(const char *path, const char *uuid)
{
	blkid_probe pr = blkid_new_probe_from_filename(path);
	const char *type = NULL, *u = NULL;
	int r = 0;

	if (!pr)
		return 0;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE |
					  BLKID_SUBLKS_UUID);
	blkid_probe_enable_partitions(pr, 1);
	if (blkid_do_safeprobe(pr) == 0 &&
	    blkid_probe_lookup_value(pr, "TYPE", &type, NULL) == 0 &&
	    !strcmp(type, "crypto_LUKS") &&
	    blkid_probe_lookup_value(pr, "UUID", &u, NULL) == 0 &&
	    uuid_eq(u, uuid))
		r = 1;
	blkid_free_probe(pr);
	return r;
}

/*
 * Without udev: the block device whose LUKS header has this UUID. Devices
 * with holders are skipped (a RAID member, a multipath path, the backing
 * disk of a dm device: the holder is the device to open). blkid reports
 * an md member (metadata 1.0/0.90 at the end) as linux_raid_member, not as
 * LUKS, so an unassembled member is never taken either.
 */
static int scan_luks_uuid(const char *uuid, char *out, size_t outlen)
{
	DIR *d = opendir("/sys/class/block");
	struct dirent *de;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (de = readdir(d))) {
		char path[300];

		if (de->d_name[0] == '.' || has_holders(de->d_name))
			continue;
		snprintf(path, sizeof(path), "/dev/%s", de->d_name);
		if (!is_blockdev(path))
			continue;
		if (blkid_is_luks_uuid(path, uuid)) {
			snprintf(out, outlen, "%s", path);
			found = 1;
		}
	}
	closedir(d);
	return found;
}

/* /dev/disk/<dir>/<val>, as given or lower-cased (udev keeps blkid's case,
 * lower case for LUKS and GPT) */
static int udev_link(const char *dir, const char *val, char *out)
{
	char link[300], low[200];
	size_t i;

	snprintf(link, sizeof(link), "/dev/disk/%s/%s", dir, val);
	if (is_blockdev(link) && realpath(link, out))
		return 1;
	for (i = 0; val[i] && i < sizeof(low) - 1; i++)
		low[i] = (char)tolower((unsigned char)val[i]);
	low[i] = '\0';
	snprintf(link, sizeof(link), "/dev/disk/%s/%s", dir, low);
	return is_blockdev(link) && realpath(link, out);
}

static int blkid_lookup(const char *tag, const char *val, char *out,
			size_t outlen)
{
	blkid_cache cache = NULL;
	char *dev;

	if (blkid_get_cache(&cache, "/dev/null"))
		return 0;
	blkid_probe_all(cache);
	dev = blkid_get_devname(cache, tag, val);
	blkid_put_cache(cache);
	if (!dev)
		return 0;
	snprintf(out, outlen, "%s", dev);
	free(dev);
	return 1;
}

/* Where udev runs, its links are the only answer (it knows about arrays,
 * multipath and holders); the scan is for an initramfs without udev. */
static int try_resolve(const struct tresor_entry *e, char *out, size_t outlen)
{
	switch (e->dev_kind) {
	case TT_DEV_PATH:
		if (!is_blockdev(e->device))
			return 0;
		snprintf(out, outlen, "%s", e->device);
		return 1;
	case TT_DEV_UUID:
		if (udev_link("by-uuid", e->device, out))
			return 1;
		return !udev_running && scan_luks_uuid(e->device, out, outlen);
	case TT_DEV_PARTUUID:
		if (udev_link("by-partuuid", e->device, out))
			return 1;
		return !udev_running &&
		       blkid_lookup("PARTUUID", e->device, out, outlen);
	}
	return 0;
}

static const char *dev_desc(const struct tresor_entry *e, char *buf,
			    size_t len)
{
	snprintf(buf, len, "%s%s", e->dev_kind == TT_DEV_UUID ? "UUID=" :
		 e->dev_kind == TT_DEV_PARTUUID ? "PARTUUID=" : "",
		 e->device);
	return buf;
}

int entry_device_present(const struct tresor_entry *e)
{
	char path[PATH_MAX];

	return try_resolve(e, path, sizeof(path));
}

int wait_entry_device(const struct tresor_entry *e, long long ms)
{
	long long start = now_ms();

	if (e->device_timeout_ms && e->device_timeout_ms < ms)
		ms = e->device_timeout_ms;
	for (;;) {
		if (entry_device_present(e))
			return 1;
		if (now_ms() - start >= ms)
			return 0;
		sleep_ms(100);
	}
}

/* Wait (bounded by the entry's device timeout; 0: no timeout, as
 * x-systemd.device-timeout=0 in systemd) for the device to appear. */
static int resolve_device(const struct tresor_entry *e, char *out,
			  size_t outlen)
{
	unsigned int tmo = e->device_timeout_ms;
	long long start = now_ms();
	int told = 0;
	char desc[300];

	for (;;) {
		if (try_resolve(e, out, outlen))
			return 0;
		if (tmo && now_ms() - start >= tmo)
			break;
		if (!told && now_ms() - start > 1000) {
			if (tmo)
				lmsg(LOG_INFO, e->name, "waiting up to %s for %s",
				    secs(tmo), dev_desc(e, desc, sizeof(desc)));
			else
				lmsg(LOG_INFO, e->name, "waiting for %s (no timeout: "
				    "x-systemd.device-timeout=0)",
				    dev_desc(e, desc, sizeof(desc)));
			told = 1;
		}
		sleep_ms(100);
	}
	msg(e->name, "device %s did not appear within %s%s",
	    dev_desc(e, desc, sizeof(desc)), secs(tmo),
	    udev_running ? "" : " (no udev: scanned every block device "
	    "without holders)");
	return -1;
}

/* The volume must be LUKS2 aes-xts-plain64 with a 256-bit key, no
 * integrity, no reencryption in progress. */
static int check_luks(struct crypt_device *cd, const char *name,
		      const char *path)
{
	const char *cipher, *mode;
	struct crypt_params_integrity ip;
	int ks;

	if (crypt_load(cd, CRYPT_LUKS2, NULL)) {
		if (crypt_load(cd, CRYPT_LUKS1, NULL) == 0) {
			msg(name, "%s is LUKS1; tresor-unlock opens LUKS2 only "
			    "(convert: cryptsetup convert --type luks2 %s)",
			    path, path);
			return -1;
		}
		msg(name, "%s has no LUKS2 header", path);
		return -1;
	}
	cipher = crypt_get_cipher(cd);
	mode = crypt_get_cipher_mode(cd);
	ks = crypt_get_volume_key_size(cd);
	if (!cipher || !mode || strcmp(cipher, "aes") ||
	    strcmp(mode, "xts-plain64") || ks != 32) {
		msg(name, "%s uses %s-%s with a %d-bit key; TRESOR needs "
		    "aes-xts-plain64 with a 256-bit key (AES-128-XTS). "
		    "Convert it with: %s %s", path, cipher ? cipher : "?",
		    mode ? mode : "?", ks * 8, REENCRYPT_HINT, path);
		return -1;
	}
	memset(&ip, 0, sizeof(ip));
	if (crypt_get_integrity_info(cd, &ip) == 0 && ip.integrity) {
		msg(name, "%s uses integrity protection (%s); not supported "
		    "with TRESOR", path, ip.integrity);
		return -1;
	}
	if (crypt_reencrypt_status(cd, NULL) != CRYPT_REENCRYPT_NONE) {
		msg(name, "%s is being reencrypted; finish it with "
		    "cryptsetup reencrypt --resume-only %s first", path, path);
		return -1;
	}
	return 0;
}

static int wait_keyfile(const struct tresor_entry *e)
{
	long long deadline = now_ms() + e->keyfile_timeout_ms;

	while (access(e->keyfile, R_OK)) {
		if (now_ms() >= deadline)
			return -1;
		sleep_ms(100);
	}
	return 0;
}

/* 1: tresor.ko holds a key, 0: it does not, -1: cannot tell */
static int tresor_key_loaded(const char *tresor_dev)
{
	struct tresor_status st;
	int fd = open(tresor_dev, O_RDWR | O_CLOEXEC), r = -1;

	if (fd < 0)
		return -1;
	memset(&st, 0, sizeof(st));
	if (ioctl(fd, TRESOR_IOC_GET_STATUS, &st) == 0)
		r = !!(st.flags & TRESOR_STATUS_KEY_LOADED);
	close(fd);
	return r;
}

/* A key file others may read: warn, as systemd-cryptsetup does. */
static void check_keyfile_mode(const struct tresor_entry *e)
{
	struct stat st;

	if (stat(e->keyfile, &st) || !S_ISREG(st.st_mode))
		return;
	if (st.st_mode & 0007)
		lmsg(LOG_WARNING, e->name, "key file %s is world-accessible (mode %04o); "
		    "restrict it: chmod 0400 %s", e->keyfile,
		    (unsigned int)(st.st_mode & 07777), e->keyfile);
	else if (st.st_mode & 0070)
		lmsg(LOG_WARNING, e->name, "key file %s is group-accessible (mode %04o); "
		    "consider chmod 0400 %s", e->keyfile,
		    (unsigned int)(st.st_mode & 07777), e->keyfile);
}

/* ---- LUKS2 tokens ------------------------------------------------------ */

/* The header's active tokens as "0 systemd-tpm2, 1 systemd-fido2 (no
 * plugin)" in buf; returns how many there are. */
static int token_list(struct crypt_device *cd, char *buf, size_t len)
{
	const char *type;
	size_t used = 0;
	int i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < 32; i++) {	/* LUKS2 has at most 32 tokens */
		crypt_token_info ti = crypt_token_status(cd, i, &type);

		if (ti == CRYPT_TOKEN_INVALID || ti == CRYPT_TOKEN_INACTIVE)
			continue;
		if (used < len)
			used += (size_t)snprintf(buf + used, len - used,
				"%s%d %s%s", n ? ", " : "", i,
				type ? type : "?",
				ti == CRYPT_TOKEN_EXTERNAL_UNKNOWN ?
				" (no plugin)" : "");
		n++;
	}
	return n;
}

/* One try of the tokens (CRYPT_ANY_TOKEN, of this type or any): the
 * volume key into vk (locked memory); 0 or a negative errno. The plugin
 * gets the PIN (or NULL) and hands libcryptsetup the keyslot's secret,
 * which it wipes when done (the plugin's buffer_free). */
static int token_once(struct crypt_device *cd, const char *type,
		      const char *pin, size_t pin_len, char *vk)
{
	struct crypt_keyslot_context *kc = NULL;
	size_t vk_size = 32;
	int r;

	r = crypt_keyslot_context_init_by_token(cd, CRYPT_ANY_TOKEN, type,
						pin, pin_len, NULL, &kc);
	if (r < 0)
		return r;
	r = crypt_volume_key_get_by_keyslot_context(cd, CRYPT_ANY_SLOT, vk,
						    &vk_size, kc);
	crypt_keyslot_context_free(kc);
	if (r >= 0 && vk_size != 32) {
		crypt_safe_memzero(vk, 32);
		r = -EINVAL;
	}
	return r < 0 ? r : 0;
}

#define TPM2_DEVICE	"/dev/tpmrm0"	/* where the TPM2 plugin's TCTI looks */
#define TPM2_ACPI_TABLE	"/sys/firmware/acpi/tables/TPM2"

/*
 * A TPM2 token while the firmware announces a TPM2 chip (its ACPI TPM2
 * table) whose device is not there yet (its driver still loading, early
 * in the initramfs): wait for the device for token-timeout=, as
 * systemd-cryptsetup does. The TPM2 plugin itself does not wait: it
 * fails at once, and the passphrase would be asked on a host whose TPM
 * was only a moment late. Without a TPM2 in the firmware nothing is
 * waited for (systemd waits there too unless booted by EFI).
 */
static void wait_tpm2_device(const struct tresor_entry *e, const char *type,
			     const char *list)
{
	long long end = now_ms() + e->token_timeout_ms;

	if ((type && strcmp(type, "systemd-tpm2")) ||
	    !strstr(list, "systemd-tpm2") ||
	    strstr(list, "systemd-tpm2 (no plugin)") || !e->token_timeout_ms ||
	    !access(TPM2_DEVICE, F_OK) || access(TPM2_ACPI_TABLE, F_OK))
		return;
	lmsg(LOG_INFO, e->name, "the firmware has a TPM2 chip but %s is not "
	     "there; waiting up to %s for it (token-timeout=)", TPM2_DEVICE,
	     secs(e->token_timeout_ms));
	while (access(TPM2_DEVICE, F_OK) && now_ms() < end)
		sleep_ms(250);
	if (access(TPM2_DEVICE, F_OK))
		lmsg(LOG_WARNING, e->name, "no %s after %s", TPM2_DEVICE,
		     secs(e->token_timeout_ms));
}

/*
 * Is a token device worth waiting for (-EAGAIN: not here)? systemd's TPM2
 * plugin says -EAGAIN when there is no TPM2 device at all: on a host
 * whose firmware has no TPM2 either, none will come (wait_tpm2_device()
 * waited already where one may). A FIDO2 key or PKCS#11 token may be
 * plugged in any time.
 */
static int token_device_may_come(const char *type, const char *list)
{
	if (type && !strcmp(type, "systemd-tpm2"))
		return !access(TPM2_ACPI_TABLE, F_OK);
	if (strstr(list, "systemd-fido2") || strstr(list, "systemd-pkcs11"))
		return 1;
	return !access(TPM2_ACPI_TABLE, F_OK);
}

/*
 * Open the volume with its LUKS2 tokens (systemd-cryptenroll's TPM2,
 * FIDO2, PKCS#11 through libcryptsetup's token plugins): 0 with the key in
 * vk; 1 when no token opened it (one line says why, if the header has
 * tokens or the entry is headless: the passphrase is asked next unless
 * headless); -1 when asking for the PIN failed. A token that needs a PIN
 * (-ENOANO) gets one asked like a passphrase (tries= attempts; none when
 * headless). A token whose device is missing (-EAGAIN, or a late TPM2:
 * wait_tpm2_device()) is tried again for token-timeout=.
 */
static int open_by_token(struct crypt_device *cd,
			 const struct tresor_entry *e,
			 const struct ask_opts *ask0, const char *path,
			 char *vk)
{
	const char *type = tt_token_type(e);
	int headless = !!(e->flags & TT_HEADLESS);
	const char *then = headless ? "headless: no passphrase is asked" :
		"asking for the passphrase";
	long long end;
	char list[400], prompt[1024], id[200], why[400];
	struct ask_opts ask = *ask0;
	int r, told = 0, attempt, n;
	char *pin;
	size_t len;

	n = token_list(cd, list, sizeof(list));
	if (!n) {
		if (headless)
			msg(e->name, "%s has no LUKS2 token and the entry is "
			    "headless: no passphrase is asked", path);
		return 1;
	}
	end = now_ms() + e->token_timeout_ms;	/* for both waits */
	wait_tpm2_device(e, type, list);
	for (;;) {
		r = token_once(cd, type, NULL, 0, vk);
		if (r != -EAGAIN || now_ms() >= end ||
		    !token_device_may_come(type, list))
			break;
		if (!told) {
			lmsg(LOG_INFO, e->name, "waiting up to %s for the "
			     "device of LUKS2 token %s (token-timeout=)",
			     secs(e->token_timeout_ms), list);
			told = 1;
		}
		sleep_ms(500);
	}
	if (r == -ENOANO && !headless) {
		snprintf(prompt, sizeof(prompt), "Please enter the LUKS2 token "
			 "PIN (token %s) for disk %s (%s): ", list, path,
			 e->name);
		snprintf(id, sizeof(id), "tresor-unlock-pin:%s", e->name);
		ask.id = id;
		for (attempt = 1; !e->tries || attempt <= e->tries;
		     attempt++) {
			ask.attempt = attempt;
			if (ask_passphrase(prompt, &ask, &pin, &len))
				return -1;
			r = token_once(cd, type, pin, len, vk);
			crypt_safe_free(pin);
			/* the TPM2 plugin of systemd 252 reports a wrong
			 * PIN as -ENOTRECOVERABLE (the TPM's HMAC check
			 * failed), not -ENOANO: after a PIN, every failure
			 * but a missing device or token is a wrong PIN */
			if (r == 0 || r == -EAGAIN || r == -ENOENT)
				break;
			if (e->tries)
				lmsg(LOG_WARNING, e->name, "wrong token PIN "
				     "(attempt %d of %d)", attempt, e->tries);
			else
				lmsg(LOG_WARNING, e->name, "wrong token PIN "
				     "(attempt %d)", attempt);
		}
		if (r && r != -EAGAIN && r != -ENOENT) {
			lmsg(LOG_WARNING, e->name, "no valid token PIN after "
			     "%d attempt%s; %s", e->tries,
			     e->tries == 1 ? "" : "s", then);
			return 1;
		}
	}
	if (r == 0) {
		lmsg(LOG_INFO, e->name, "volume key from LUKS2 token %s",
		     list);
		return 0;
	}
	crypt_safe_memzero(vk, 32);
	if (r == -ENOANO)
		snprintf(why, sizeof(why), "needs a PIN");
	else if (r == -EAGAIN)
		snprintf(why, sizeof(why), "needs a device that is not here "
			 "(no TPM2 chip or FIDO2 key found)");
	else if (r == -EPERM)
		snprintf(why, sizeof(why), "gave a secret that opens no "
			 "keyslot");
	else if (r == -ENOENT && type && !strstr(list, type))
		snprintf(why, sizeof(why), "is not of the type %s that the "
			 "entry's tpm2-device=/fido2-device= asks for", type);
	else if (r == -ENOENT && strstr(list, "(no plugin)"))
		snprintf(why, sizeof(why), "could not be used: libcryptsetup "
			 "has no plugin for its type in %s "
			 "(libcryptsetup-token-TYPE.so)",
			 crypt_token_external_path() ?
			 crypt_token_external_path() : "its token directory");
	else
		/* systemd 252's TPM2 plugin says -ENOTRECOVERABLE for a
		 * missing TPM, -ENOENT for a PCR policy that fails */
		snprintf(why, sizeof(why), "failed to unlock the volume (%s: "
			 "no TPM2 device, PCR values that changed since "
			 "enrollment, or a token device error)", strerror(-r));
	lmsg(headless ? LOG_ERR : LOG_WARNING, e->name, "LUKS2 token %s %s; "
	     "%s", list, why, then);
	return 1;
}

/* Volume key into *vk (crypt_safe_alloc'd, 32 bytes). */
static int get_volume_key(struct crypt_device *cd,
			  const struct tresor_entry *e,
			  const struct unlock_opts *o, const char *path,
			  char **vkp)
{
	char *vk = crypt_safe_alloc(32), *pass = NULL;
	size_t vk_size, len;
	char prompt[400];
	struct ask_opts ask = o->ask;
	char id[200];
	int r, attempt;

	*vkp = NULL;
	vk_from_run = 0;
	if (!vk) {
		msg(e->name, "cannot allocate locked memory");
		return -1;
	}
	if (run_vk) {
		/* one prompt for the run: the host key opens this volume,
		 * or the volume has another key and can never be opened
		 * next to the others (one key in the registers) */
		r = crypt_volume_key_verify(cd, run_vk, 32);
		if (r == 0) {
			memcpy(vk, run_vk, 32);
			vk_from_run = 1;
			*vkp = vk;
			return 0;
		}
		if (r == -EPERM)
			msg(e->name, "this volume's key differs from the key "
			    "already loaded in tresor.ko (the host key, from "
			    "%s). All TRESOR volumes of a host share one "
			    "volume key; refusing. Recreate it with: "
			    "tresor-unlock format --volume-key-from %s <device>",
			    run_vk_name, run_vk_name);
		else
			msg(e->name, "checking the host key against %s failed: "
			    "%s", path, strerror(-r));
		goto fail;
	}
	if (e->keyfile) {
		int use_file = 1;

		if (e->keyfile_timeout_ms) {
			if (wait_keyfile(e)) {
				lmsg(LOG_WARNING, e->name, "key file %s not there after %s; "
				    "asking for the passphrase",
				    e->keyfile, secs(e->keyfile_timeout_ms));
				use_file = 0;
			}
		}
		if (use_file) {
			check_keyfile_mode(e);
			r = crypt_keyfile_device_read(cd, e->keyfile, &pass,
					&len, e->keyfile_offset,
					e->keyfile_size, 0);
			if (r) {
				msg(e->name, "cannot read key file %s: %s",
				    e->keyfile, strerror(-r));
				goto fail;
			}
			vk_size = 32;
			r = crypt_volume_key_get(cd, CRYPT_ANY_SLOT, vk,
						 &vk_size, pass, len);
			crypt_safe_free(pass);
			if (r < 0 || vk_size != 32) {
				msg(e->name, "key file %s does not open any "
				    "keyslot of %s", e->keyfile, path);
				goto fail;
			}
			*vkp = vk;
			return 0;
		}
	}
	ask.name = e->name;
	ask.tries = e->tries;
	if (e->timeout_ms && !ask.timeout_ms)
		ask.timeout_ms = e->timeout_ms;
	/* the header's LUKS2 tokens (TPM2, FIDO2, ...) before any prompt */
	r = open_by_token(cd, e, &ask, path, vk);
	if (r == 0) {
		*vkp = vk;
		return 0;
	}
	if (r < 0 || (e->flags & TT_HEADLESS))
		goto fail;	/* said why */
	snprintf(prompt, sizeof(prompt), "Please enter passphrase for disk "
		 "%s (%s): ", path, e->name);
	snprintf(id, sizeof(id), "tresor-unlock:%s", e->name);
	ask.id = id;
	for (attempt = 1; !e->tries || attempt <= e->tries; attempt++) {
		ask.attempt = attempt;
		if (ask_passphrase(prompt, &ask, &pass, &len))
			goto fail;
		vk_size = 32;
		r = crypt_volume_key_get(cd, CRYPT_ANY_SLOT, vk, &vk_size,
					 pass, len);
		crypt_safe_free(pass);
		pass = NULL;
		if (r >= 0 && vk_size == 32) {
			*vkp = vk;
			return 0;
		}
		if (r != -EPERM) {
			msg(e->name, "reading the volume key failed: %s",
			    strerror(-r));
			goto fail;
		}
		if (e->tries)
			lmsg(LOG_WARNING, e->name, "wrong passphrase (attempt %d of %d)",
			    attempt, e->tries);
		else
			lmsg(LOG_WARNING, e->name, "wrong passphrase (attempt %d, tries=0: "
			    "asking until it is right)", attempt);
	}
	msg(e->name, "no valid passphrase after %d attempt%s; giving up%s",
	    e->tries, e->tries == 1 ? "" : "s",
	    tresor_key_loaded(o->tresor_dev ? o->tresor_dev :
			      TRESOR_DEVICE_PATH) == 0 ?
	    ", no key loaded" : " on this volume");
fail:
	crypt_safe_free(vk);
	return -1;
}

/* Encrypt len bytes of in through AF_ALG skcipher alg with iv. */
static int afalg_encrypt(const char *alg, const void *key, size_t keylen,
			 const unsigned char iv[16], const unsigned char *in,
			 unsigned char *out, size_t len)
{
	struct sockaddr_alg sa = { .salg_family = AF_ALG,
				   .salg_type = "skcipher" };
	char cbuf[CMSG_SPACE(sizeof(__u32)) +
		  CMSG_SPACE(sizeof(struct af_alg_iv) + 16)] = { 0 };
	struct msghdr mh = { 0 };
	struct iovec iov = { (void *)in, len };
	struct cmsghdr *c;
	struct af_alg_iv *aiv;
	int tfm, op = -1, err = -1;
	ssize_t n;

	snprintf((char *)sa.salg_name, sizeof(sa.salg_name), "%s", alg);
	tfm = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (tfm < 0)
		return -errno;
	if (bind(tfm, (struct sockaddr *)&sa, sizeof(sa)) ||
	    setsockopt(tfm, SOL_ALG, ALG_SET_KEY, key, keylen)) {
		err = -errno;
		goto out;
	}
	op = accept4(tfm, NULL, 0, SOCK_CLOEXEC);
	if (op < 0) {
		err = -errno;
		goto out;
	}
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_ALG;
	c->cmsg_type = ALG_SET_OP;
	c->cmsg_len = CMSG_LEN(sizeof(__u32));
	*(__u32 *)CMSG_DATA(c) = ALG_OP_ENCRYPT;
	c = CMSG_NXTHDR(&mh, c);
	c->cmsg_level = SOL_ALG;
	c->cmsg_type = ALG_SET_IV;
	c->cmsg_len = CMSG_LEN(sizeof(struct af_alg_iv) + 16);
	aiv = (struct af_alg_iv *)CMSG_DATA(c);
	aiv->ivlen = 16;
	memcpy(aiv->iv, iv, 16);
	if (sendmsg(op, &mh, 0) != (ssize_t)len) {
		err = -errno;
		goto out;
	}
	n = read(op, out, len);
	err = n == (ssize_t)len ? 0 : (n < 0 ? -errno : -EIO);
out:
	if (op >= 0)
		close(op);
	close(tfm);
	return err;
}

/*
 * Is vk the key tresor.ko holds? Encrypt one random block through
 * xts(tresor) and through xts(aes) keyed with vk: the key never leaves
 * the registers, and vk only goes into a transient kernel transform
 * (freed with kfree_sensitive).
 */
static int same_key_as_loaded(const char *name, const char *vk)
{
	unsigned char in[512], iv[16], a[512], b[512];
	static const unsigned char zero[32];
	int fd, r;

	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, in, sizeof(in)) != sizeof(in) ||
	    read(fd, iv, sizeof(iv)) != sizeof(iv)) {
		if (fd >= 0)
			close(fd);
		msg(name, "cannot read /dev/urandom");
		return -1;
	}
	close(fd);
	r = afalg_encrypt("xts(tresor)", zero, 32, iv, in, a, sizeof(a));
	if (r) {
		msg(name, "cannot check the loaded key through AF_ALG "
		    "xts(tresor): %s (modprobe algif_skcipher?)", strerror(-r));
		return -1;
	}
	r = afalg_encrypt("xts(aes)", vk, 32, iv, in, b, sizeof(b));
	if (r) {
		msg(name, "cannot check the key through AF_ALG xts(aes): %s",
		    strerror(-r));
		return -1;
	}
	r = memcmp(a, b, sizeof(a)) == 0;
	explicit_bzero(in, sizeof(in));
	return r;
}

/*
 * Load vk into tresor.ko, or check it equals the key already there.
 * *loaded is set when this call loaded the key.
 */
static int tresor_take_key(const char *name, const char *tresor_dev,
			   const char *vk, int *loaded)
{
	struct tresor_status st;
	struct tresor_key *k;
	int fd, r, have;

	*loaded = 0;
	fd = open(tresor_dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		msg(name, "cannot open %s: %s (is tresor.ko loaded? "
		    "modprobe tresor)", tresor_dev, strerror(errno));
		return -1;
	}
	memset(&st, 0, sizeof(st));
	if (ioctl(fd, TRESOR_IOC_GET_STATUS, &st)) {
		msg(name, "TRESOR_IOC_GET_STATUS: %s", strerror(errno));
		close(fd);
		return -1;
	}
	have = !!(st.flags & TRESOR_STATUS_KEY_LOADED);
	if (!have) {
		k = crypt_safe_alloc(sizeof(*k));
		if (!k) {
			close(fd);
			msg(name, "cannot allocate locked memory");
			return -1;
		}
		k->size = TRESOR_KEY_SIZE;
		k->flags = 0;
		memcpy(k->key, vk, TRESOR_KEY_SIZE);
		r = ioctl(fd, TRESOR_IOC_SET_KEY, k);
		crypt_safe_free(k);
		if (r == 0) {
			*loaded = 1;
			close(fd);
			return 0;
		}
		if (errno == EOPNOTSUPP) {
			msg(name, "tresor.ko refuses the key: this machine "
			    "runs under a hypervisor (CPUID hypervisor bit), "
			    "which saves DR0-DR3, the key, to its own RAM on "
			    "VM exits, so TRESOR protects nothing here. To "
			    "accept that (test benches), load tresor with "
			    "allow_hypervisor=1 (kernel command line "
			    "tresor.allow_hypervisor=1)");
			close(fd);
			return -1;
		}
		if (errno == ENOPKG) {
			msg(name, "tresor.ko refuses the key: the "
			    SHOWREGS_NAME " livepatch is not active, so an "
			    "oops or WARN would print DR0-DR3, the key, to "
			    "the kernel log. Install " SHOWREGS_NAME ".ko "
			    "for this kernel, or load tresor with "
			    "allow_no_showregs=1 to accept that");
			close(fd);
			return -1;
		}
		if (errno == EKEYREJECTED) {
			msg(name, "tresor.ko refuses the key: this CPU's "
			    "PMU can write XMM registers, which hold the AES "
			    "round keys during a request, to RAM (adaptive "
			    "PEBS) and kernel lockdown does not forbid it. "
			    "Boot with lockdown=confidentiality, or load "
			    "tresor with allow_pebs_xmm=1 to accept that");
			close(fd);
			return -1;
		}
		if (errno != EEXIST) {
			msg(name, "TRESOR_IOC_SET_KEY: %s", strerror(errno));
			close(fd);
			return -1;
		}
		/* someone loaded a key meanwhile: compare with it */
	}
	close(fd);
	r = same_key_as_loaded(name, vk);
	if (r < 0)
		return -1;
	if (!r) {
		msg(name, "this volume's key differs from the key already "
		    "loaded in tresor.ko (the host key, from the first "
		    "volume). All TRESOR volumes of a host share one volume "
		    "key; refusing. Recreate it with: tresor-unlock format "
		    "--volume-key-from <first volume> <device>");
		return -1;
	}
	return 0;
}

static void tresor_clear(const char *tresor_dev)
{
	int fd = open(tresor_dev, O_RDWR | O_CLOEXEC);

	if (fd >= 0) {
		if (ioctl(fd, TRESOR_IOC_CLEAR_KEY))
			msg(NULL, "could not clear the key: %s",
			    strerror(errno));
		close(fd);
	}
}

#define TRESOR_DM_UUID_PREFIX	"CRYPT-TRESOR-"

static int dm_active(const char *name)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_INFO);
	struct dm_info info;
	int r = 0;

	if (!dmt)
		return 0;
	if (dm_task_set_name(dmt, name) && dm_task_run(dmt) &&
	    dm_task_get_info(dmt, &info))
		r = info.exists;
	dm_task_destroy(dmt);
	return r;
}

/* why dm_check_existing() asks: its message (none when quiet) */
enum { DM_CHECK_OPEN, DM_CHECK_DETACH, DM_CHECK_QUIET };

/*
 * Is a dm device called name active, and is it ours? 0: no such device;
 * 1: ours (DM UUID CRYPT-TRESOR-..., one crypt target on capi:xts(tresor));
 * -1: another mapping of that name (a message names it: with a stock
 * key-in-RAM mapping the protection is gone, so it never counts as done).
 */

static int dm_check_existing(const char *name, int why)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_TABLE);
	struct dm_info info;
	uint64_t start, length;
	char *type = NULL, *params = NULL, cipher[128] = "?", what[200];
	const char *uuid = NULL;
	int r = 0, ntargets = 0, ours_cipher = 0;
	void *next = NULL;

	if (!dmt)
		return 0;
	if (!dm_active(name)) {	/* DM_DEVICE_TABLE would log ENXIO */
		dm_task_destroy(dmt);
		return 0;
	}
	dm_task_secure_data(dmt);	/* the table may hold a key: wiped */
	if (!dm_task_set_name(dmt, name) || !dm_task_run(dmt) ||
	    !dm_task_get_info(dmt, &info) || !info.exists)
		goto out;
	uuid = dm_task_get_uuid(dmt);
	snprintf(what, sizeof(what), "%s", "");
	do {
		next = dm_get_next_target(dmt, next, &start, &length, &type,
					  &params);
		if (!type)
			break;
		ntargets++;
		if (ntargets == 1) {
			size_t n = params ? strcspn(params, " ") : 0;

			if (n >= sizeof(cipher))
				n = sizeof(cipher) - 1;
			if (params) {
				memcpy(cipher, params, n);
				cipher[n] = '\0';
			}
			snprintf(what, sizeof(what), "%s", type);
			ours_cipher = !strcmp(type, "crypt") &&
				      !strcmp(cipher, TRESOR_CIPHER_SPEC);
		}
	} while (next);
	if (ntargets == 1 && ours_cipher && uuid &&
	    !strncmp(uuid, TRESOR_DM_UUID_PREFIX,
		     strlen(TRESOR_DM_UUID_PREFIX))) {
		r = 1;
		goto out;
	}
	if (!strcmp(what, "crypt"))
		snprintf(what + strlen(what), sizeof(what) - strlen(what),
			 " %s", cipher);
	if (why == DM_CHECK_DETACH)
		msg(name, "%s/%s is not a TRESOR mapping (DM UUID '%s', %d "
		    "target%s, table '%s'%s); refusing to detach it (if it is "
		    "meant: cryptsetup close %s)", dm_dir(), name,
		    uuid && *uuid ? uuid : "", ntargets,
		    ntargets == 1 ? "" : "s", what,
		    ntargets > 1 ? ", ..." : "", name);
	else if (why == DM_CHECK_OPEN)
		msg(name, "%s/%s exists but is not a TRESOR mapping (DM UUID "
		    "'%s', %d target%s, table '%s'%s); refusing to take it as "
		    "unlocked. If it is a stock dm-crypt mapping its key is in "
		    "RAM: remove the volume from /etc/crypttab (and rd.luks.* "
		    "from the kernel command line), close it (cryptsetup close "
		    "%s) and reboot", dm_dir(), name,
		    uuid && *uuid ? uuid : "", ntargets,
		    ntargets == 1 ? "" : "s", what,
		    ntargets > 1 ? ", ..." : "", name);
	r = -1;
out:
	dm_task_destroy(dmt);
	return r;
}

static int ensure_node(const char *name)
{
	struct dm_task *dmt;
	struct dm_info info;
	char path[PATH_MAX];
	struct stat st;
	int ok = 0;

	snprintf(path, sizeof(path), "%s/%s", dm_dir(), name);
	dmt = dm_task_create(DM_DEVICE_INFO);
	if (!dmt)
		return -1;
	if (dm_task_set_name(dmt, name) && dm_task_run(dmt) &&
	    dm_task_get_info(dmt, &info) && info.exists)
		ok = 1;
	dm_task_destroy(dmt);
	if (!ok)
		return -1;
	if (stat(path, &st) == 0 && S_ISBLK(st.st_mode) &&
	    st.st_rdev == makedev(info.major, info.minor))
		return 0;
	unlink(path);
	mkdir(dm_dir(), 0755);
	if (mknod(path, S_IFBLK | 0600, makedev(info.major, info.minor))) {
		msg(name, "mknod %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int dm_create_crypt(const char *name, const char *uuid,
			   uint64_t sectors, const char *params, int ro)
{
	struct dm_task *dmt = dm_task_create(DM_DEVICE_CREATE);
	uint32_t cookie = 0;
	int r = -1;

	if (!dmt)
		return -1;
	if (!dm_task_set_name(dmt, name) || !dm_task_set_uuid(dmt, uuid) ||
	    !dm_task_add_target(dmt, 0, sectors, "crypt", params))
		goto out;
	if (ro && !dm_task_set_ro(dmt))
		goto out;
	dm_task_secure_data(dmt);
	if (!dm_task_set_cookie(dmt, &cookie, 0))
		goto out;
	if (!dm_task_run(dmt)) {
		dm_udev_wait(cookie);
		goto out;
	}
	dm_udev_wait(cookie);
	r = 0;
out:
	dm_task_destroy(dmt);
	return r;
}

static uint64_t dev_size_bytes(const char *path)
{
	uint64_t sz = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	if (ioctl(fd, BLKGETSIZE64, &sz))
		sz = 0;
	close(fd);
	return sz;
}

static int map_payload(const struct tresor_entry *e, struct crypt_device *cd,
		       const char *path)
{
	uint64_t offset = crypt_get_data_offset(cd);
	uint64_t iv_offset = crypt_get_iv_offset(cd);
	int ss = crypt_get_sector_size(cd);
	uint64_t size = dev_size_bytes(path) / 512, sectors;
	const char *luks_uuid = crypt_get_uuid(cd);
	char params[512], opts[160] = "", uuid[160], zero[65];
	unsigned int nopt = 0;
	struct stat st;
	size_t i, n = 0;

	if (ss < 512)
		ss = 512;
	if (stat(path, &st)) {
		msg(e->name, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (size <= offset) {
		msg(e->name, "%s (%" PRIu64 " sectors) has no room for a "
		    "payload at sector %" PRIu64, path, size, offset);
		return -1;
	}
	sectors = (size - offset) / (ss / 512) * (ss / 512);
	if (!sectors) {
		msg(e->name, "%s: payload smaller than one sector", path);
		return -1;
	}
	if (e->flags & TT_DISCARD) {
		nopt++;
		strcat(opts, " allow_discards");
	}
	if (e->flags & TT_NO_READ_WQ) {
		nopt++;
		strcat(opts, " no_read_workqueue");
	}
	if (e->flags & TT_NO_WRITE_WQ) {
		nopt++;
		strcat(opts, " no_write_workqueue");
	}
	if (ss != 512) {
		nopt++;
		snprintf(opts + strlen(opts), sizeof(opts) - strlen(opts),
			 " sector_size:%d", ss);
	}
	memset(zero, '0', 64);
	zero[64] = '\0';
	snprintf(params, sizeof(params), "%s %s %" PRIu64 " %u:%u %" PRIu64,
		 TRESOR_CIPHER_SPEC, zero, iv_offset, major(st.st_rdev),
		 minor(st.st_rdev), offset);
	if (nopt)
		snprintf(params + strlen(params),
			 sizeof(params) - strlen(params), " %u%s", nopt, opts);
	n = (size_t)snprintf(uuid, sizeof(uuid), TRESOR_DM_UUID_PREFIX);
	for (i = 0; luks_uuid && luks_uuid[i] && n < 13 + 32; i++)
		if (luks_uuid[i] != '-')
			uuid[n++] = luks_uuid[i];
	snprintf(uuid + n, sizeof(uuid) - n, "-%s", e->name);
	if (dm_create_crypt(e->name, uuid, sectors, params,
			    !!(e->flags & TT_READONLY))) {
		msg(e->name, "device-mapper refused the table '0 %" PRIu64
		    " crypt %s' (is dm_crypt loaded and does the kernel have "
		    "xts(tresor)?)", sectors, params);
		return -1;
	}
	if (ensure_node(e->name)) {
		msg(e->name, "mapping created but no %s/%s node", dm_dir(),
		    e->name);
		return -1;
	}
	return 0;
}

/* The first number in a sysfs file, or -1. */
static int read_sysfs_int(const char *path)
{
	FILE *f = fopen(path, "re");
	int v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* modprobe MODULE with the kernel's modprobe; its exit status, or -1. */
static int run_modprobe(const char *module)
{
	char prog[PATH_MAX] = "/sbin/modprobe";
	FILE *f = fopen("/proc/sys/kernel/modprobe", "re");
	int status;
	pid_t pid;

	if (f) {
		if (!fgets(prog, sizeof(prog), f) || prog[0] != '/')
			snprintf(prog, sizeof(prog), "/sbin/modprobe");
		prog[strcspn(prog, "\n")] = '\0';
		fclose(f);
	}
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execl(prog, "modprobe", module, (char *)NULL);
		err_printf("tresor-unlock: cannot run %s: %s\n", prog,
			strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*
 * Before a key goes into the registers: the tresor_showregs livepatch is
 * loaded, enabled and done with its transition (tresor.ko refuses the key
 * before, ENOPKG: an oops or WARN would print DR0-DR3 to the log). Waits
 * at most SHOWREGS_TIMEOUT_MS. A failure is reported but not final:
 * tresor.ko decides (tresor.allow_no_showregs=1 accepts the risk).
 */
static void ensure_showregs(const char *name)
{
	long long end;
	int r, en, tr;

	if (access(SHOWREGS_SYSFS, F_OK)) {
		r = run_modprobe(SHOWREGS_NAME);
		if (r) {
			msg(name, "could not load the %s livepatch (modprobe "
			    "%s: %s %d); without it tresor.ko refuses the key",
			    SHOWREGS_NAME, SHOWREGS_NAME,
			    r < 0 ? "failed," : "exit status", r);
			return;
		}
	}
	end = now_ms() + SHOWREGS_TIMEOUT_MS;
	for (;;) {
		en = read_sysfs_int(SHOWREGS_SYSFS "/enabled");
		tr = read_sysfs_int(SHOWREGS_SYSFS "/transition");
		if (en == 1 && tr == 0)
			return;
		if (en == 0) {
			msg(name, "the %s livepatch is disabled (%s/enabled "
			    "is 0); without it tresor.ko refuses the key",
			    SHOWREGS_NAME, SHOWREGS_SYSFS);
			return;
		}
		if (now_ms() >= end)
			break;
		sleep_ms(100);
	}
	msg(name, "the %s livepatch did not finish its transition within "
	    "%s (%s/transition is %d: a task still runs the unpatched "
	    "register dump); without it tresor.ko refuses the key",
	    SHOWREGS_NAME, secs(SHOWREGS_TIMEOUT_MS), SHOWREGS_SYSFS, tr);
}

/*
 * Before any passphrase is asked: /dev/tresor answers and the kernel has
 * xts(tresor) (AF_ALG bind only, no key). On failure the message says how
 * to recover (without TRESOR, i.e. with the key in RAM).
 */
static int probe_tresor(const char *name, const char *tdev, const char *path)
{
	struct sockaddr_alg sa = { .salg_family = AF_ALG,
				   .salg_type = "skcipher",
				   .salg_name = "xts(tresor)" };
	int fd, err;

	if (tresor_key_loaded(tdev) < 0) {
		err = errno;
		msg(name, "%s does not answer (%s): tresor.ko is not loaded or "
		    "was not built for this kernel (modprobe tresor). Recovery, "
		    "with the key in RAM: boot with rd.tresor=0, then "
		    "cryptsetup open %s %s", tdev, strerror(err), path, name);
		return -1;
	}
	fd = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = errno;
		if (fd >= 0)
			close(fd);
		msg(name, "the kernel has no xts(tresor) cipher (%s; modprobe "
		    "af_alg algif_skcipher xts tresor). Recovery, with the key "
		    "in RAM: boot with rd.tresor=0, then cryptsetup open %s %s",
		    strerror(err), path, name);
		return -1;
	}
	close(fd);
	return 0;
}

#define LOCK_PATH	"/run/tresor-unlock.lock"

/* An exclusive lock shared by every tresor-unlock run; -1 where /run
 * cannot hold it (then there is no other run either: a bare initramfs). */
static int unlock_lock(const char *name)
{
	int fd = open(LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		      0600);

	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX)) {
		if (errno != EINTR) {
			msg(name, "cannot lock %s: %s", LOCK_PATH,
			    strerror(errno));
			close(fd);
			return -1;
		}
	}
	return fd;
}

int unlock_entry(const struct tresor_entry *e, const struct unlock_opts *o)
{
	struct crypt_device *cd = NULL;
	char path[PATH_MAX], *vk = NULL;
	const char *tdev = o->tresor_dev ? o->tresor_dev : TRESOR_DEVICE_PATH;
	int loaded = 0, r = -1, lock = -1;

	r = dm_check_existing(e->name, DM_CHECK_OPEN);
	if (r > 0) {
		lmsg(LOG_NOTICE, e->name, "already active on xts(tresor), nothing to do");
		return 0;
	}
	if (r < 0)
		return -1;
	r = -1;
	if (resolve_device(e, path, sizeof(path)))
		return -1;
	if (crypt_init(&cd, path)) {
		msg(e->name, "cannot open %s", path);
		return -1;
	}
	if (check_luks(cd, e->name, path))
		goto out;
	if (probe_tresor(e->name, tdev, path))
		goto out;
	if (tresor_key_loaded(tdev) == 0)
		ensure_showregs(e->name);
	if (get_volume_key(cd, e, o, path, &vk))
		goto out;
	/* Per-volume units run side by side: from here on one at a time,
	 * so a key this run loaded and clears again after a failed mapping
	 * is never one that another run has just checked and maps on. */
	lock = unlock_lock(e->name);
	/* opened meanwhile by another run? */
	r = dm_check_existing(e->name, DM_CHECK_OPEN);
	if (r) {
		crypt_safe_free(vk);
		vk = NULL;
		if (r > 0)
			lmsg(LOG_NOTICE, e->name, "already active on xts(tresor), "
			    "nothing to do");
		r = r > 0 ? 0 : -1;
		goto out;
	}
	r = tresor_take_key(e->name, tdev, vk, &loaded);
	if (!r && !run_vk && o->keep_key) {
		/* tresor.ko holds it: the key for the rest of the run */
		run_vk = vk;
		vk = NULL;
		snprintf(run_vk_name, sizeof(run_vk_name), "%s", e->name);
	}
	crypt_safe_free(vk);
	vk = NULL;
	if (r)
		goto out;
	r = map_payload(e, cd, path);
	if (r && loaded) {
		/* leave no key behind that nothing uses */
		tresor_clear(tdev);
		unlock_done();
	}
	if (!r)
		lmsg(LOG_NOTICE, e->name, "%s opened on xts(tresor) as %s/%s%s%s%s", path,
		    dm_dir(), e->name, loaded ? " (host key loaded)" : "",
		    vk_from_run ? " with the host key of " : "",
		    vk_from_run ? run_vk_name : "");
out:
	if (lock >= 0)
		close(lock);	/* releases the lock */
	crypt_free(cd);
	scrub_stack();	/* what libcryptsetup, a token plugin, glibc left */
	return r;
}

/*
 * Remove the mapping NAME if it is ours (DM UUID CRYPT-TRESOR-..., one
 * crypt target on capi:xts(tresor)); a foreign one is left alone and
 * named. Not active: nothing to do (a unit's ExecStop= after a manual
 * close). The host key stays in tresor.ko: other volumes and ramcrypt
 * regions may use it.
 */
int detach_mapping(const char *name)
{
	struct dm_task *dmt;
	uint32_t cookie = 0;
	char path[PATH_MAX];
	int r, err;

	r = dm_check_existing(name, DM_CHECK_DETACH);
	if (r < 0)
		return -1;
	if (r == 0) {
		lmsg(LOG_NOTICE, name, "not active, nothing to detach");
		return 0;
	}
	dmt = dm_task_create(DM_DEVICE_REMOVE);
	if (!dmt) {
		msg(name, "cannot allocate a device-mapper task");
		return -1;
	}
	r = -1;
	if (!dm_task_set_name(dmt, name) || !dm_task_retry_remove(dmt) ||
	    !dm_task_set_cookie(dmt, &cookie, 0))
		goto out;
	errno = 0;
	if (!dm_task_run(dmt)) {
		err = errno;
		dm_udev_wait(cookie);
		msg(name, "cannot detach %s/%s: %s", dm_dir(), name,
		    err == EBUSY || dm_active(name) ?
		    "it is in use (mounted, swap, or held by another device)" :
		    strerror(err ? err : EIO));
		goto out;
	}
	dm_udev_wait(cookie);
	if (!udev_running) {
		/* no udev to remove the node we made */
		snprintf(path, sizeof(path), "%s/%s", dm_dir(), name);
		unlink(path);
	}
	lmsg(LOG_NOTICE, name, "detached");
	r = 0;
out:
	dm_task_destroy(dmt);
	return r;
}

/* ---- status ------------------------------------------------------------ */

/*
 * `status`: whether tresor.ko holds a key (one line on stdout); 0 if it
 * does, 1 if not (or tresor.ko is not loaded).
 */
int status_key(const char *tresor_dev)
{
	const char *dev = tresor_dev ? tresor_dev : TRESOR_DEVICE_PATH;
	int r = tresor_key_loaded(dev);

	if (r < 0 && errno != ENOENT && errno != ENXIO && errno != ENODEV)
		printf("key: cannot ask tresor.ko (%s: %s)\n", dev,
		       strerror(errno));
	else if (r < 0)
		printf("key: tresor.ko is not loaded (no %s)\n", dev);
	else
		printf("key: %s\n", r ? "loaded in the CPU debug registers" :
		       "not loaded");
	return r > 0 ? 0 : 1;
}

/*
 * `status NAME`: one line on stdout, as cryptsetup status says whether a
 * mapping is active. 0: active and ours (on xts(tresor)); 4: not active
 * (cryptsetup's exit status for that); 1: a mapping of that name that is
 * not a TRESOR one (its key is in RAM).
 */
int status_entry(const struct tresor_entry *e)
{
	char desc[300], path[PATH_MAX];
	int r = dm_check_existing(e->name, DM_CHECK_QUIET);
	const char *dev = try_resolve(e, path, sizeof(path)) ? path :
		"not present";

	dev_desc(e, desc, sizeof(desc));
	if (r > 0) {
		printf("%s: active on %s as %s/%s (%s: %s)\n", e->name,
		       TRESOR_CIPHER_SPEC, dm_dir(), e->name, desc, dev);
		return 0;
	}
	if (r == 0) {
		printf("%s: inactive (%s: %s)\n", e->name, desc, dev);
		return 4;
	}
	printf("%s: %s/%s is active but NOT a TRESOR mapping: its key is in "
	       "RAM (%s: %s)\n", e->name, dm_dir(), e->name, desc, dev);
	return 1;
}

/* 1 if the device-mapper answers (its driver version) */
int dm_usable(void)
{
	char v[64];

	return dm_driver_version(v, sizeof(v));
}

/* --debug: libcryptsetup's debug messages (never key material) */
void unlock_debug(void)
{
	debug = 1;
	crypt_set_debug_level(CRYPT_DEBUG_ALL);
}

/* ---- format ------------------------------------------------------------ */

static int resolve_source(const char *src, const struct tresortab *tab,
			  char *path, size_t len,
			  const struct tresor_entry **ent)
{
	*ent = NULL;
	if (strchr(src, '/')) {
		snprintf(path, len, "%s", src);
		return 0;
	}
	*ent = tab ? tresortab_find(tab, src) : NULL;
	if (!*ent) {
		msg(NULL, "'%s' is neither a device path nor a name in "
		    "tresortab", src);
		return -1;
	}
	return resolve_device(*ent, path, len);
}

static int new_passphrase(const struct format_opts *f,
			  const struct unlock_opts *o, char **pass,
			  size_t *len)
{
	struct crypt_device *cd;
	char *again;
	size_t alen;
	int r;

	if (f->key_file) {
		if (crypt_init(&cd, NULL))
			return -1;
		r = crypt_keyfile_device_read(cd, f->key_file, pass, len, 0,
					      0, 0);
		crypt_free(cd);
		if (r)
			msg(NULL, "cannot read key file %s: %s", f->key_file,
			    strerror(-r));
		return r ? -1 : 0;
	}
	if (ask_passphrase("Enter a passphrase for the new volume: ",
			   &o->ask, pass, len))
		return -1;
	if (!*len) {
		msg(NULL, "empty passphrase refused");
		crypt_safe_free(*pass);
		return -1;
	}
	if (o->ask.passphrase_fd >= 0)
		return 0;
	if (ask_passphrase("Verify passphrase: ", &o->ask, &again, &alen)) {
		crypt_safe_free(*pass);
		return -1;
	}
	r = alen == *len && !memcmp(again, *pass, alen);
	crypt_safe_free(again);
	if (!r) {
		msg(NULL, "passphrases do not match");
		crypt_safe_free(*pass);
		return -1;
	}
	return 0;
}

int format_volume(const struct format_opts *f, const struct tresortab *tab,
		  const struct unlock_opts *o)
{
	struct crypt_device *cd = NULL, *src = NULL;
	struct crypt_params_luks2 p2;
	struct crypt_pbkdf_type pbkdf;
	char *vk = NULL, *pass = NULL, spath[PATH_MAX];
	size_t plen;
	int r = -1;

	if (f->volume_key_from) {
		const struct tresor_entry *se;
		struct tresor_entry tmp;

		if (resolve_source(f->volume_key_from, tab, spath,
				   sizeof(spath), &se))
			return -1;
		if (crypt_init(&src, spath)) {
			msg(NULL, "cannot open %s", spath);
			return -1;
		}
		if (check_luks(src, f->volume_key_from, spath))
			goto out;
		memset(&tmp, 0, sizeof(tmp));
		if (se)
			tmp = *se;
		tmp.name = (char *)f->volume_key_from;
		tmp.keyfile_timeout_ms = 0;
		if (!se)
			tmp.tries = TT_DEFAULT_TRIES;
		if (get_volume_key(src, &tmp, o, spath, &vk))
			goto out;
	}
	if (crypt_init(&cd, f->device)) {
		msg(NULL, "cannot open %s", f->device);
		goto out;
	}
	if (!f->force && crypt_load(cd, CRYPT_LUKS, NULL) == 0) {
		msg(NULL, "%s already has a LUKS header; refusing to overwrite "
		    "it without --force", f->device);
		goto out;
	}
	if (new_passphrase(f, o, &pass, &plen))
		goto out;
	if (f->pbkdf || f->pbkdf_iterations) {
		const struct crypt_pbkdf_type *def =
			crypt_get_pbkdf_default(CRYPT_LUKS2);

		pbkdf = *def;
		if (f->pbkdf)
			pbkdf.type = f->pbkdf;
		else if (f->pbkdf_iterations)
			pbkdf.type = CRYPT_KDF_PBKDF2;
		if (strcmp(pbkdf.type, CRYPT_KDF_PBKDF2)) {
			pbkdf.max_memory_kb = def->max_memory_kb;
			pbkdf.parallel_threads = def->parallel_threads;
		} else {
			pbkdf.hash = "sha256";
			pbkdf.max_memory_kb = 0;
			pbkdf.parallel_threads = 0;
		}
		if (f->pbkdf_iterations) {
			pbkdf.iterations = f->pbkdf_iterations;
			pbkdf.flags |= CRYPT_PBKDF_NO_BENCHMARK;
		}
		if (crypt_set_pbkdf_type(cd, &pbkdf)) {
			msg(NULL, "invalid PBKDF parameters");
			goto out;
		}
	}
	memset(&p2, 0, sizeof(p2));
	p2.sector_size = (uint32_t)f->sector_size;
	if (crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", NULL, vk, 32,
			 f->sector_size ? &p2 : NULL)) {
		msg(NULL, "formatting %s failed", f->device);
		goto out;
	}
	if (crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, vk, 32, pass,
					    plen) < 0) {
		msg(NULL, "adding the keyslot to %s failed", f->device);
		goto out;
	}
	lmsg(LOG_NOTICE, NULL, "%s: LUKS2 aes-xts-plain64, 256-bit key%s, UUID %s",
	    f->device, vk ? " (the host volume key)" : "",
	    crypt_get_uuid(cd));
	r = 0;
out:
	crypt_safe_free(vk);
	crypt_safe_free(pass);
	crypt_free(cd);
	crypt_free(src);
	return r;
}

/* ---- check (at initramfs build time) ----------------------------------- */

/* The LUKS UUID a crypttab device field names ("" if unknown). */
static void crypttab_dev_uuid(const char *dev, char *out, size_t len)
{
	char path[PATH_MAX];
	blkid_probe pr;
	const char *u;

	out[0] = '\0';
	if (!strncasecmp(dev, "UUID=", 5)) {
		size_t n = strlen(dev + 5);

		if (n >= len)
			n = len - 1;

		memcpy(out, dev + 5, n);
		out[n] = '\0';
		return;
	}
	if (!strncasecmp(dev, "PARTUUID=", 9))
		snprintf(path, sizeof(path), "/dev/disk/by-partuuid/%s",
			 dev + 9);
	else if (!strncasecmp(dev, "LABEL=", 6))
		snprintf(path, sizeof(path), "/dev/disk/by-label/%s", dev + 6);
	else if (!strncasecmp(dev, "ID=", 3))
		snprintf(path, sizeof(path), "/dev/disk/by-id/%s", dev + 3);
	else
		snprintf(path, sizeof(path), "%s", dev);
	pr = blkid_new_probe_from_filename(path);
	if (!pr)
		return;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE |
					  BLKID_SUBLKS_UUID);
	if (blkid_do_safeprobe(pr) == 0 &&
	    blkid_probe_lookup_value(pr, "UUID", &u, NULL) == 0)
		snprintf(out, len, "%s", u);
	blkid_free_probe(pr);
}

/* Is this volume (name, LUKS UUID, tresortab device field) also listed in
 * crypttab? Prints the crypttab line and returns 1. */
static int in_crypttab(const struct tresor_entry *e, const char *luks_uuid,
		       const char *crypttab)
{
	FILE *f = fopen(crypttab, "re");
	char line[1024], name[256], dev[512], u[128];
	unsigned int lineno = 0;
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		lineno++;
		if (sscanf(line, " %255s %511s", name, dev) != 2 ||
		    name[0] == '#')
			continue;
		if (!strcmp(name, e->name))
			found = 1;
		if (!found && luks_uuid && *luks_uuid) {
			crypttab_dev_uuid(dev, u, sizeof(u));
			found = *u && uuid_eq(u, luks_uuid);
		}
		if (found)
			msg(e->name, "also in %s:%u ('%s %s'): systemd-cryptsetup "
			    "would map it with the key in RAM; remove that line "
			    "(a TRESOR volume is listed in /etc/tresortab only)",
			    crypttab, lineno, name, dev);
	}
	fclose(f);
	return found;
}

/*
 * One entry, as an initramfs build sees it: the header can be opened on
 * xts(tresor), the root needs no key file (key files never go into an
 * initramfs), the volume is not in crypttab too. Returns the number of
 * errors (each printed).
 */
int check_entry(const struct tresor_entry *e, const struct check_opts *c)
{
	struct crypt_device *cd = NULL;
	char path[PATH_MAX], uuid[128] = "";
	int errs = 0, is_root = c->root && !strcmp(c->root, e->name);

	if (is_root && e->keyfile && c->initramfs) {
		msg(e->name, "the root volume has the key file %s, which is "
		    "never copied into the initramfs: the root would not open "
		    "at boot; use 'none' (passphrase) for the root", e->keyfile);
		errs++;
	}
	struct stat st;
	int found = try_resolve(e, path, sizeof(path));

	/* an image file named by path is checked too (tests, images) */
	if (!found && e->dev_kind == TT_DEV_PATH && !stat(e->device, &st) &&
	    S_ISREG(st.st_mode)) {
		snprintf(path, sizeof(path), "%s", e->device);
		found = 1;
	}
	if (!found) {
		char desc[300];

		/* a warning only: an image may be built for another
		 * machine, or in a chroot without the disk */
		if (is_root || !(e->flags & (TT_NOFAIL | TT_NOAUTO)))
			lmsg(LOG_WARNING, e->name, "warning: device %s not found here; its "
			    "header was not checked",
			    dev_desc(e, desc, sizeof(desc)));
	} else if (crypt_init(&cd, path)) {
		msg(e->name, "cannot open %s", path);
		errs++;
	} else {
		if (check_luks(cd, e->name, path))
			errs++;
		else if (crypt_get_uuid(cd))
			snprintf(uuid, sizeof(uuid), "%s", crypt_get_uuid(cd));
		crypt_free(cd);
	}
	if (e->dev_kind == TT_DEV_UUID && !*uuid)
		snprintf(uuid, sizeof(uuid), "%s", e->device);
	if (c->crypttab && in_crypttab(e, uuid, c->crypttab))
		errs++;
	if (c->print_uuids && *uuid)
		printf("uuid %s %s\n", e->name, uuid);
	return errs;
}
