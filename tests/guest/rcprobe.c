// SPDX-License-Identifier: GPL-2.0
/*
 * rcprobe - poke the tresor/ramcrypt ioctl ABI from tests.
 *
 *   rcprobe [--as-user UID] tresor-status
 *   rcprobe [--as-user UID] ioctl DEVICE CMD      (CMD: number, e.g. 0xc0ded5ff)
 *   rcprobe set-key-masked E_HEX M_HEX   load key E^M (32 bytes each)
 *   rcprobe clear-key
 *   rcprobe set-holders CPU[,CPU...]       key-holder CPUs, e.g. "0" or "0,1"
 *
 * set-key-masked: the test key arrives XOR-split so that its bytes exist in
 * guest RAM only in this process's locked buffer (wiped) and the kernel's
 * SET_KEY buffer (wiped), like tresor-unlock's.
 *
 * Prints the result as key=value words ("errno=ENOTTY", "key_loaded=0 ...")
 * and exits 0 whenever the call was made, so tests compare the words.
 * --as-user drops root (uid, gid, all capabilities) before opening.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <uapi/tresor.h>

static int open_dev(const char *path)
{
	int fd = open(path, O_RDWR);

	if (fd < 0) {
		printf("open=%s\n", strerrorname_np(errno));
		exit(0);
	}
	return fd;
}

static int unhex32(const char *s, unsigned char out[32])
{
	if (strlen(s) != 64)
		return -1;
	for (int i = 0; i < 32; i++)
		if (sscanf(s + 2 * i, "%2hhx", &out[i]) != 1)
			return -1;
	return 0;
}

static int set_key_masked(const char *e_hex, const char *m_hex)
{
	static struct tresor_key k;
	unsigned char m[32];
	int fd, ret;

	if (mlock(&k, sizeof(k)))
		perror("rcprobe: mlock");
	if (unhex32(e_hex, k.key) || unhex32(m_hex, m)) {
		fprintf(stderr, "rcprobe: keys must be 64 hex digits\n");
		return 2;
	}
	for (int i = 0; i < 32; i++)
		k.key[i] ^= m[i];
	k.size = TRESOR_KEY_SIZE;
	fd = open_dev(TRESOR_DEVICE_PATH);
	ret = ioctl(fd, TRESOR_IOC_SET_KEY, &k);
	explicit_bzero(&k, sizeof(k));
	printf(ret < 0 ? "errno=%s\n" : "ok\n", strerrorname_np(errno));
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1;

	if (argc > 2 && !strcmp(argv[1], "--as-user")) {
		uid_t uid = atoi(argv[2]);

		if (setgroups(0, NULL) || setresgid(uid, uid, uid) ||
		    setresuid(uid, uid, uid)) {
			perror("rcprobe: dropping root");
			return 1;
		}
		i = 3;
	}
	if (argc - i == 1 && !strcmp(argv[i], "tresor-status")) {
		struct tresor_status st;
		int fd = open_dev(TRESOR_DEVICE_PATH);

		memset(&st, 0xa5, sizeof(st));
		if (ioctl(fd, TRESOR_IOC_GET_STATUS, &st) < 0) {
			printf("errno=%s\n", strerrorname_np(errno));
			return 0;
		}
		printf("abi=%u key_loaded=%u holders=%u valid_holders=%u "
		       "check_failures=%llu forwarded=%llu peer_copies=%llu "
		       "requests=%llu pmu_xmm_exposed=%u\n", st.abi_version,
		       !!(st.flags & TRESOR_STATUS_KEY_LOADED), st.nr_holders,
		       st.nr_valid_holders,
		       (unsigned long long)st.check_failures,
		       (unsigned long long)st.forwarded_requests,
		       (unsigned long long)st.peer_copies,
		       (unsigned long long)st.requests,
		       !!(st.flags & TRESOR_STATUS_PMU_XMM_EXPOSED));
		return 0;
	}
	if (argc - i == 3 && !strcmp(argv[i], "set-key-masked"))
		return set_key_masked(argv[i + 1], argv[i + 2]);
	if (argc - i == 1 && !strcmp(argv[i], "clear-key")) {
		int fd = open_dev(TRESOR_DEVICE_PATH);

		if (ioctl(fd, TRESOR_IOC_CLEAR_KEY) < 0)
			printf("errno=%s\n", strerrorname_np(errno));
		else
			printf("ok\n");
		return 0;
	}
	if (argc - i == 2 && !strcmp(argv[i], "set-holders")) {
		static struct tresor_holders h = { .nr_cpus = TRESOR_MAX_CPUS };
		int fd = open_dev(TRESOR_DEVICE_PATH);

		for (char *p = argv[i + 1]; *p; ) {
			unsigned long cpu = strtoul(p, &p, 10);

			if (cpu < TRESOR_MAX_CPUS)
				h.mask[cpu / 64] |= 1ull << (cpu % 64);
			if (*p == ',')
				p++;
			else if (*p)
				break;
		}
		if (ioctl(fd, TRESOR_IOC_SET_HOLDERS, &h) < 0)
			printf("errno=%s\n", strerrorname_np(errno));
		else
			printf("ok\n");
		return 0;
	}
	if (argc - i == 3 && !strcmp(argv[i], "ioctl")) {
		static unsigned char buf[65536];
		unsigned long cmd = strtoul(argv[i + 2], NULL, 0);
		int fd = open_dev(argv[i + 1]);

		if (ioctl(fd, cmd, buf) < 0)
			printf("errno=%s\n", strerrorname_np(errno));
		else
			printf("ok\n");
		return 0;
	}
	fprintf(stderr, "usage: rcprobe [--as-user UID] tresor-status | "
		"ioctl DEVICE CMD | set-key-masked E M | clear-key | "
		"set-holders CPUS\n");
	return 2;
}
