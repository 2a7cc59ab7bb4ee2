// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tresor-unlock - early-boot unlock of LUKS2 volumes onto xts(tresor)
 *
 *   tresor-unlock [OPTIONS] [open [NAME...]]   unlock tresortab entries
 *   tresor-unlock [OPTIONS] attach NAME        unlock one (a systemd unit's)
 *   tresor-unlock [OPTIONS] detach|close NAME  remove its TRESOR mapping
 *   tresor-unlock [OPTIONS] status [NAME...]   key and mappings
 *   tresor-unlock [OPTIONS] check              parse tresortab only
 *   tresor-unlock [OPTIONS] format [--volume-key-from NAME|DEVICE]
 *                 [--sector-size N] [--key-file F] [--force] DEVICE
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "tresortab.h"
#include "unlock.h"

#define DEFAULT_TAB	"/etc/tresortab"
#define TRIED_DIR	"/run/tresor-unlock/tried"

static void usage(FILE *f)
{
	fprintf(f,
"usage: tresor-unlock [OPTIONS] [open [NAME...]]\n"
"       tresor-unlock [OPTIONS] attach NAME\n"
"       tresor-unlock [OPTIONS] detach|close NAME\n"
"       tresor-unlock [OPTIONS] status [NAME...]\n"
"       tresor-unlock [OPTIONS] check\n"
"       tresor-unlock [OPTIONS] format [--volume-key-from NAME|DEVICE]\n"
"                     [--sector-size N] [--key-file FILE] [--force] DEVICE\n"
"\n"
"Unlocks the LUKS2 volumes of " DEFAULT_TAB " (crypttab syntax) with the\n"
"volume key in the CPU debug registers (tresor.ko) and maps them as\n"
"dm-crypt devices on capi:xts(tresor)-plain64. Without NAME, every entry\n"
"without 'noauto' is opened. 'attach NAME' opens one entry and fails when\n"
"it fails, 'nofail' or not (tresor-unlock@NAME.service, made by\n"
"tresor-generator, runs it). 'detach NAME' removes the mapping NAME if it\n"
"is a TRESOR one (the unit's ExecStop=; 'close' is the same); the host\n"
"key stays loaded. 'status' says whether the key is loaded and, for each\n"
"entry, whether it is mapped on xts(tresor) (exit 0), not at all (4) or\n"
"by another mapping with its key in RAM (1).\n"
"'open' asks one passphrase for all entries that share the host key.\n"
"\n"
"options:\n"
"  --tresortab FILE         read FILE instead of " DEFAULT_TAB "\n"
"  --passphrase-fd N        read passphrases from fd N, one per line\n"
"                           (no prompt; one line per attempt)\n"
"  --console TTY            ask on this terminal (echo off)\n"
"  --timeout SECONDS        passphrase prompt timeout\n"
"  --initramfs              (open) leave to the booted system's units the\n"
"                           entries whose key file is not here (key files\n"
"                           are never copied into an initramfs) and the\n"
"                           'nofail' entries whose device is not there yet\n"
"  --device-wait SECONDS    (open) wait at most SECONDS for each device; an\n"
"                           entry whose device is not there then is left\n"
"                           for a later run, not failed (0: no wait, and\n"
"                           no message: a poll, as initramfs-tools'\n"
"                           local-block stage runs every second)\n"
"  --once                   (open) try each entry at most once per boot\n"
"                           (recorded in " TRIED_DIR ")\n"
"  --pbkdf TYPE, --pbkdf-force-iterations N   (format) keyslot PBKDF\n"
"  --root NAME, --crypttab FILE, --print-uuids  (check) also check each\n"
"                           volume's header, that the root NAME has no key\n"
"                           file (with --initramfs) and that no volume is\n"
"                           in FILE too; print 'uuid NAME UUID' lines\n"
"      --debug              libcryptsetup's debug messages\n"
"  -h, --help               show this help\n"
"      --version            show the version\n");
}

enum { OPT_TAB = 256, OPT_FD, OPT_CONSOLE, OPT_TIMEOUT, OPT_VKFROM,
       OPT_SS, OPT_KEYFILE, OPT_FORCE, OPT_PBKDF, OPT_ITER,
       OPT_INITRAMFS, OPT_VERSION, OPT_ROOT, OPT_CRYPTTAB,
       OPT_PRINT_UUIDS, OPT_DEVICE_WAIT, OPT_ONCE, OPT_DEBUG };

static const struct option longopts[] = {
	{ "tresortab", required_argument, NULL, OPT_TAB },
	{ "passphrase-fd", required_argument, NULL, OPT_FD },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "volume-key-from", required_argument, NULL, OPT_VKFROM },
	{ "sector-size", required_argument, NULL, OPT_SS },
	{ "key-file", required_argument, NULL, OPT_KEYFILE },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "pbkdf", required_argument, NULL, OPT_PBKDF },
	{ "pbkdf-force-iterations", required_argument, NULL, OPT_ITER },
	{ "initramfs", no_argument, NULL, OPT_INITRAMFS },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "root", required_argument, NULL, OPT_ROOT },
	{ "crypttab", required_argument, NULL, OPT_CRYPTTAB },
	{ "print-uuids", no_argument, NULL, OPT_PRINT_UUIDS },
	{ "device-wait", required_argument, NULL, OPT_DEVICE_WAIT },
	{ "once", no_argument, NULL, OPT_ONCE },
	{ "debug", no_argument, NULL, OPT_DEBUG },
	{ NULL, 0, NULL, 0 },
};

static int parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || !*s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

#define TRY_HELP "Try 'tresor-unlock --help' for more information.\n"

#ifndef TRESOR_UNLOCK_VERSION
#define TRESOR_UNLOCK_VERSION "0.1"
#endif

static int bad_arg(const char *opt, const char *val)
{
	err_printf("tresor-unlock: invalid %s '%s'\n" TRY_HELP, opt, val);
	return 2;
}

static int usage_error(const char *fmt, const char *what)
{
	char m[512];

	snprintf(m, sizeof(m), fmt, what);
	err_printf("tresor-unlock: %s\n" TRY_HELP, m);
	return 2;
}

/* --once: 1 the first time an entry is tried in this boot (recorded as
 * TRIED_DIR/NAME, a tmpfs), else 0; 1 where it cannot be recorded. */
static int first_try(const char *name)
{
	char path[sizeof(TRIED_DIR) + TT_NAME_MAX + 2];
	int fd;

	mkdir("/run/tresor-unlock", 0700);
	mkdir(TRIED_DIR, 0700);
	snprintf(path, sizeof(path), "%s/%s", TRIED_DIR, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd >= 0) {
		close(fd);
		return 1;
	}
	return errno != EEXIST;
}

/* 1 if name is one of the NAMEs argv[from..argc) */
static int named(const char *name, int from, int argc, char **argv)
{
	int j;

	for (j = from; j < argc; j++)
		if (!strcmp(argv[j], name))
			return 1;
	return 0;
}

/* The first of the NAMEs argv[from..argc) that is not in tab, or NULL */
static const char *unknown_name(const struct tresortab *tab, int from,
				int argc, char **argv)
{
	int j;

	for (j = from; j < argc; j++)
		if (!tresortab_find(tab, argv[j]))
			return argv[j];
	return NULL;
}

static int finish(int rc)
{
	unlock_done();	/* the host key kept for the run */
	/* Test hook: stop (alive, buffers wiped) so a RAM dump can show
	 * what this process still holds; SIGCONT lets it exit. */
	if (getenv("TRESOR_UNLOCK_TEST_STOP"))
		raise(SIGSTOP);
	return rc;
}

int main(int argc, char **argv)
{
	const char *tabpath = DEFAULT_TAB, *cmd = "open";
	struct unlock_opts uo = { .ask = { .passphrase_fd = -1 } };
	struct format_opts fo = { 0 };
	struct check_opts co = { 0 };
	struct tresortab tab = { 0 };
	char err[600];
	int c, rc = 0, initramfs = 0, once = 0;
	long long device_wait_ms = -1;	/* -1: the entry's own timeout */
	long v;
	size_t i;

	prctl(PR_SET_DUMPABLE, 0);
	atexit(log_flush_plymouth);	/* after finish() wiped the key */
	opterr = 0;	/* our own one-line errors */
	/* options may come before or after the subcommand (GNU permutation) */
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_TAB:
			tabpath = optarg;
			break;
		case OPT_FD:
			if (parse_int(optarg, 0, 1 << 20, &v))
				return bad_arg("--passphrase-fd", optarg);
			uo.ask.passphrase_fd = (int)v;
			break;
		case OPT_CONSOLE:
			uo.ask.console = optarg;
			break;
		case OPT_TIMEOUT:
			if (parse_int(optarg, 0, 86400, &v))
				return bad_arg("--timeout", optarg);
			uo.ask.timeout_ms = (unsigned int)v * 1000;
			break;
		case OPT_VKFROM:
			fo.volume_key_from = optarg;
			break;
		case OPT_SS:
			if (parse_int(optarg, 512, 4096, &v) || (v & (v - 1)))
				return bad_arg("--sector-size (512..4096, a "
					       "power of 2)", optarg);
			fo.sector_size = (int)v;
			break;
		case OPT_KEYFILE:
			fo.key_file = optarg;
			break;
		case OPT_FORCE:
			fo.force = 1;
			break;
		case OPT_PBKDF:
			fo.pbkdf = optarg;
			break;
		case OPT_ITER:
			if (parse_int(optarg, 1000, 1L << 30, &v))
				return bad_arg("--pbkdf-force-iterations",
					       optarg);
			fo.pbkdf_iterations = (unsigned int)v;
			break;
		case OPT_INITRAMFS:
			initramfs = 1;
			co.initramfs = 1;
			break;
		case OPT_ROOT:
			co.root = optarg;
			break;
		case OPT_CRYPTTAB:
			co.crypttab = optarg;
			break;
		case OPT_DEVICE_WAIT:
			if (parse_int(optarg, 0, 86400, &v))
				return bad_arg("--device-wait", optarg);
			device_wait_ms = (long long)v * 1000;
			break;
		case OPT_ONCE:
			once = 1;
			break;
		case OPT_PRINT_UUIDS:
			co.print_uuids = 1;
			break;
		case OPT_DEBUG:
			unlock_debug();
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("tresor-unlock " TRESOR_UNLOCK_VERSION "\n");
			return 0;
		case ':':
			return usage_error("option '%s' requires an argument",
					   argv[optind - 1]);
		default:
			if (optopt) {
				char o[3] = { '-', (char)optopt, 0 };

				return usage_error("invalid option '%s'", o);
			}
			return usage_error("unrecognized option '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind < argc) {
		if (strcmp(argv[optind], "open") &&
		    strcmp(argv[optind], "attach") &&
		    strcmp(argv[optind], "detach") &&
		    strcmp(argv[optind], "close") &&
		    strcmp(argv[optind], "status") &&
		    strcmp(argv[optind], "check") &&
		    strcmp(argv[optind], "format"))
			return usage_error("unknown command '%s' (open, attach, "
					   "detach, close, status, check or "
					   "format)", argv[optind]);
		cmd = argv[optind++];
	}
	if (!strcmp(cmd, "attach") && optind != argc - 1) {
		err_printf("tresor-unlock: attach needs exactly one "
			"NAME\n" TRY_HELP);
		return 2;
	}
	/* close: cryptsetup's word for it */
	if (!strcmp(cmd, "detach") || !strcmp(cmd, "close")) {
		if (optind != argc - 1) {
			err_printf("tresor-unlock: %s needs exactly one NAME\n"
				TRY_HELP, cmd);
			return 2;
		}
		/* no table needed: the mapping tells whether it is ours
		 * (an entry removed from tresortab still detaches) */
		unlock_init();
		return detach_mapping(argv[optind]) ? 1 : 0;
	}
	if (!strcmp(cmd, "check") && optind < argc)
		return usage_error("check takes no argument: '%s'",
				   argv[optind]);
	if (!strcmp(cmd, "format")) {
		if (optind != argc - 1) {
			err_printf("tresor-unlock: format needs exactly "
				"one DEVICE\n" TRY_HELP);
			return 2;
		}
		fo.device = argv[optind];
		unlock_init();
		/* the table is only needed to resolve --volume-key-from NAME */
		if (fo.volume_key_from && !strchr(fo.volume_key_from, '/') &&
		    tresortab_load(tabpath, &tab, err, sizeof(err))) {
			err_printf("tresor-unlock: %s\n", err);
			return 2;
		}
		rc = format_volume(&fo, &tab, &uo) ? 1 : 0;
		tresortab_free(&tab);
		return finish(rc);
	}
	if (tresortab_load(tabpath, &tab, err, sizeof(err))) {
		err_printf("tresor-unlock: %s\n", err);
		return 2;
	}
	if ((!strcmp(cmd, "status") || !strcmp(cmd, "open")) &&
	    unknown_name(&tab, optind, argc, argv)) {
		err_printf("tresor-unlock: no entry '%s' in %s\n",
			unknown_name(&tab, optind, argc, argv), tabpath);
		tresortab_free(&tab);
		return 2;
	}
	if (!strcmp(cmd, "status")) {
		int worst;

		unlock_init();
		/* a failing device-mapper would read as "inactive" */
		if (!dm_usable()) {
			err_printf("tresor-unlock: status: cannot use the "
				"device-mapper (root only; dm_mod loaded?)\n");
			tresortab_free(&tab);
			return 1;
		}
		status_key(uo.tresor_dev);
		worst = 0;
		for (i = 0; i < tab.n; i++) {
			const struct tresor_entry *e = &tab.entries[i];
			int r;

			if (optind < argc && !named(e->name, optind, argc, argv))
				continue;
			r = status_entry(e);
			/* a foreign mapping (1) outranks an inactive one (4) */
			if (r == 1 || (r == 4 && worst == 0))
				worst = r;
		}
		tresortab_free(&tab);
		return worst;
	}
	if (!strcmp(cmd, "check")) {
		int errs = 0;

		if (co.root && !tresortab_find(&tab, co.root)) {
			err_printf("tresor-unlock: --root: no entry '%s' in "
				"%s\n", co.root, tabpath);
			tresortab_free(&tab);
			return 2;
		}
		if (co.root || co.crypttab || co.initramfs || co.print_uuids) {
			unlock_init();
			for (i = 0; i < tab.n; i++)
				errs += check_entry(&tab.entries[i], &co);
		}
		if (errs) {
			err_printf("tresor-unlock: %s: %d problem%s\n",
				tabpath, errs, errs == 1 ? "" : "s");
			tresortab_free(&tab);
			return 1;
		}
		printf("%s: %zu entr%s OK\n", tabpath, tab.n,
		       tab.n == 1 ? "y" : "ies");
		tresortab_free(&tab);
		return 0;
	}
	unlock_init();
	if (!strcmp(cmd, "attach")) {
		const struct tresor_entry *e = tresortab_find(&tab,
							     argv[optind]);

		if (!e) {
			err_printf("tresor-unlock: no entry '%s' in %s\n",
				argv[optind], tabpath);
			tresortab_free(&tab);
			return 2;
		}
		/* one unit per volume: its failure is the unit's, and
		 * nofail only keeps cryptsetup.target from requiring it */
		rc = unlock_entry(e, &uo) ? 1 : 0;
		tresortab_free(&tab);
		return finish(rc);
	}
	/* one passphrase for every entry of this run that shares the key */
	uo.keep_key = 1;
	for (i = 0; i < tab.n; i++) {
		const struct tresor_entry *e = &tab.entries[i];

		/* without NAMEs every entry but noauto ones */
		if (optind == argc ? (e->flags & TT_NOAUTO) :
		    !named(e->name, optind, argc, argv))
			continue;
		/* --device-wait 0 polls (every second): no message */
		if (initramfs && e->keyfile && !e->keyfile_timeout_ms &&
		    access(e->keyfile, F_OK)) {
			if (device_wait_ms != 0)
				lvl_printf(LOG_INFO, "tresor-unlock: %s: key file "
					"%s is not in the initramfs; left for "
					"its tresor-unlock@ unit in the booted "
					"system\n", e->name, e->keyfile);
			continue;
		}
		if (initramfs && (e->flags & TT_NOFAIL) &&
		    !entry_device_present(e)) {
			/* an absent nofail disk must not hold up the root */
			if (device_wait_ms != 0)
				lvl_printf(LOG_INFO, "tresor-unlock: %s: nofail and "
					"the device is not there yet; left for "
					"its tresor-unlock@ unit in the booted "
					"system\n", e->name);
			continue;
		}
		if (device_wait_ms >= 0 &&
		    !wait_entry_device(e, device_wait_ms)) {
			if (device_wait_ms)
				lvl_printf(LOG_INFO, "tresor-unlock: %s: device not "
					"there after %llds; left for a later "
					"run\n", e->name, device_wait_ms / 1000);
			continue;
		}
		if (once && !first_try(e->name))
			continue;	/* tried before in this boot */
		if (unlock_entry(e, &uo)) {
			if (e->flags & TT_NOFAIL)
				lvl_printf(LOG_WARNING, "tresor-unlock: %s: failed "
					"(nofail: continuing)\n", e->name);
			else
				rc = 1;
		}
	}
	tresortab_free(&tab);
	return finish(rc);
}
