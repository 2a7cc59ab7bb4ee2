// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit test of the tresortab parser (host only, no kernel). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tresortab.h"

static int failures, checks;

#define CHECK(cond, ...) do {						\
	checks++;							\
	if (!(cond)) {							\
		failures++;						\
		printf("FAIL %s:%d: ", __FILE__, __LINE__);		\
		printf(__VA_ARGS__);					\
		printf("\n");						\
	}								\
} while (0)

static int parse(const char *line, struct tresor_entry *e, char *err)
{
	return tresortab_parse_line(line, 7, "tab", e, err, 300);
}

/* The line must fail with an error containing every needle. */
static void bad(const char *line, const char *n1, const char *n2)
{
	struct tresor_entry e;
	char err[300] = "";
	int r = parse(line, &e, err);

	CHECK(r == -1, "accepted bad line '%s'", line);
	CHECK(strstr(err, "tab:7:") != NULL, "no line number in '%s'", err);
	CHECK(!n1 || strstr(err, n1), "'%s': error '%s' lacks '%s'", line,
	      err, n1);
	CHECK(!n2 || strstr(err, n2), "'%s': error '%s' lacks '%s'", line,
	      err, n2);
	if (r == 1)
		tresor_entry_free(&e);
}

static void test_good(void)
{
	struct tresor_entry e;
	char err[300] = "";
	int r;

	r = parse("root /dev/vda2 none discard,tries=5,readonly\n", &e, err);
	CHECK(r == 1, "basic line: %d %s", r, err);
	CHECK(!strcmp(e.name, "root") && e.dev_kind == TT_DEV_PATH &&
	      !strcmp(e.device, "/dev/vda2") && !e.keyfile,
	      "basic fields");
	CHECK(e.flags == (TT_DISCARD | TT_READONLY) && e.tries == 5 &&
	      e.line == 7, "basic options: %x %d", e.flags, e.tries);
	tresor_entry_free(&e);

	r = parse("  data\tUUID=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 "
		  "/etc/keys/data.key keyfile-timeout=10s,keyfile-offset=16,"
		  "keyfile-size=64,read-only,nofail  ", &e, err);
	CHECK(r == 1, "uuid line: %d %s", r, err);
	CHECK(e.dev_kind == TT_DEV_UUID &&
	      !strcmp(e.device, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
	      "UUID= form");
	CHECK(e.keyfile && !strcmp(e.keyfile, "/etc/keys/data.key"),
	      "key file");
	CHECK(e.keyfile_timeout_ms == 10000 && e.keyfile_offset == 16 &&
	      e.keyfile_size == 64, "key file options");
	CHECK(e.flags == (TT_READONLY | TT_NOFAIL) && e.tries == 3,
	      "defaults kept: tries %d", e.tries);
	tresor_entry_free(&e);

	r = parse("swap PARTUUID=6a8e3b2c-01 - tries=0,no-read-workqueue,"
		  "no-write-workqueue,x-systemd.device-timeout=2min,luks,"
		  "timeout=500ms,noauto", &e, err);
	CHECK(r == 1, "partuuid line: %d %s", r, err);
	CHECK(e.dev_kind == TT_DEV_PARTUUID && !strcmp(e.device,
	      "6a8e3b2c-01") && !e.keyfile, "PARTUUID= form");
	CHECK(e.tries == 0 && e.device_timeout_ms == 120000 &&
	      e.timeout_ms == 500, "tries=0 and timeouts: %d %u %u",
	      e.tries, e.device_timeout_ms, e.timeout_ms);
	CHECK(e.flags == (TT_NO_READ_WQ | TT_NO_WRITE_WQ | TT_NOAUTO),
	      "flags %x", e.flags);
	tresor_entry_free(&e);

	/* only name and device are required */
	r = parse("home /dev/disk/by-id/x", &e, err);
	CHECK(r == 1 && !e.keyfile && e.flags == 0 && e.tries == 3 &&
	      e.device_timeout_ms == TT_DEFAULT_DEVICE_TIMEOUT_MS,
	      "two fields: %d %s", r, err);
	tresor_entry_free(&e);
	r = parse("home /dev/vdb none -", &e, err);
	CHECK(r == 1 && e.flags == 0, "'-' options: %d %s", r, err);
	tresor_entry_free(&e);
	r = parse("home /dev/vdb none discard # trailing comment", &e, err);
	CHECK(r == 1 && e.flags == TT_DISCARD, "trailing comment: %d %s", r,
	      err);
	tresor_entry_free(&e);

	/* comments and blank lines */
	CHECK(parse("# name device keyfile options\n", &e, err) == 0,
	      "comment");
	CHECK(parse("   # indented comment", &e, err) == 0, "indented #");
	CHECK(parse("\n", &e, err) == 0, "empty line");
	CHECK(parse(" \t \r\n", &e, err) == 0, "blank line");
}

static void test_bad(void)
{
	bad("root /dev/vda2 none discard,frobnicate", "unknown option",
	    "'frobnicate'");
	bad("root /dev/vda2 none cipher=aes-cbc-essiv", "unknown option",
	    "'cipher=aes-cbc-essiv'");
	bad("root", "missing device", "root");
	bad("root /dev/vda none discard extra", "too many fields", "extra");
	bad("root /dev/vda none tries=-1", "invalid value '-1'", "'tries'");
	bad("root /dev/vda none tries=abc", "invalid value 'abc'", "'tries'");
	bad("root /dev/vda none tries=3x", "invalid value '3x'", "'tries'");
	bad("root /dev/vda none tries=", "invalid value ''", "'tries'");
	bad("root /dev/vda none tries=99999999999999999999", "invalid value",
	    "'tries'");
	bad("root /dev/vda none tries", "needs a value", "'tries'");
	bad("root /dev/vda none discard=1", "takes no value", "'discard'");
	bad("root /dev/vda none keyfile-timeout=soon", "invalid value 'soon'",
	    "keyfile-timeout");
	bad("root LABEL=root none", "unsupported device", "LABEL=root");
	bad("root vda none", "unsupported device", "'vda'");
	bad("root UUID= none", "invalid UUID", NULL);
	bad("root UUID=xyz! none", "invalid UUID", NULL);
	bad("root PARTUUID=zz none", "invalid UUID", NULL);
	bad("root /dev/vda keys/rel.key", "not an absolute path", NULL);
	bad("ro/ot /dev/vda", "invalid volume name", "ro/ot");
	bad(".. /dev/vda", "invalid volume name", NULL);
	bad("root /dev/vda none keyfile-size=32", "no key file", NULL);
	bad("root /dev/vda none headless=maybe", "invalid value 'maybe'",
	    "'headless'");
	bad("root /dev/vda none tpm2-device=/dev/tpmrm0",
	    "supports only the value 'auto'", "'/dev/tpmrm0'");
	bad("root /dev/vda none fido2-device=", "supports only the value "
	    "'auto'", "'fido2-device'");
	bad("root /dev/vda none tpm2-device", "needs a value", "tpm2-device");
	bad("root /dev/vda none token-timeout=soon", "invalid value 'soon'",
	    "'token-timeout'");
	bad("root /dev/vda none tpm2-pcrs=7", "unknown option", "tpm2-pcrs");
	bad("root /dev/vda none tpm2-pin=yes", "unknown option", "tpm2-pin");
}

static void test_tokens(void)
{
	struct tresor_entry e;
	char err[300];
	int r;

	r = parse("root /dev/vda none headless,tpm2-device=auto,"
		  "token-timeout=30s", &e, err);
	CHECK(r == 1, "token options: '%s'", err);
	CHECK((e.flags & (TT_HEADLESS | TT_TPM2_DEVICE)) ==
	      (TT_HEADLESS | TT_TPM2_DEVICE) && !(e.flags & TT_FIDO2_DEVICE) &&
	      e.token_timeout_ms == 30000, "headless, tpm2: %x %u", e.flags,
	      e.token_timeout_ms);
	CHECK(tt_token_type(&e) && !strcmp(tt_token_type(&e), "systemd-tpm2"),
	      "tpm2 token type");
	tresor_entry_free(&e);
	r = parse("root /dev/vda none headless=yes,headless=no,"
		  "fido2-device=auto", &e, err);
	CHECK(r == 1 && !(e.flags & TT_HEADLESS) &&
	      e.token_timeout_ms == TT_DEFAULT_TOKEN_TIMEOUT_MS,
	      "headless=no: '%s' %x", err, e.flags);
	CHECK(tt_token_type(&e) && !strcmp(tt_token_type(&e), "systemd-fido2"),
	      "fido2 token type");
	tresor_entry_free(&e);
	r = parse("root /dev/vda none headless=true,fido2-device=auto,"
		  "tpm2-device=auto", &e, err);
	CHECK(r == 1 && (e.flags & TT_HEADLESS) && !tt_token_type(&e),
	      "both devices: any token type '%s'", err);
	tresor_entry_free(&e);
	r = parse("root /dev/vda", &e, err);
	CHECK(r == 1 && !tt_token_type(&e) && !(e.flags & TT_HEADLESS),
	      "defaults: any token, not headless");
	tresor_entry_free(&e);
}

static void test_file(void)
{
	const char *text =
		"# tresortab\n"
		"\n"
		"root UUID=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 none tries=2\n"
		"data /dev/vdb /etc/data.key discard\n";
	struct tresortab tab;
	char err[300] = "";
	FILE *f;

	f = fmemopen((void *)text, strlen(text), "r");
	CHECK(tresortab_parse_file(f, "/etc/tresortab", &tab, err,
				   sizeof(err)) == 0, "file: %s", err);
	fclose(f);
	CHECK(tab.n == 2, "two entries, got %zu", tab.n);
	CHECK(tab.n == 2 && tab.entries[0].line == 3 &&
	      tab.entries[1].line == 4, "line numbers");
	CHECK(tresortab_find(&tab, "data") == &tab.entries[1], "find");
	CHECK(!tresortab_find(&tab, "nope"), "find missing");
	tresortab_free(&tab);

	text = "a /dev/vda\n#\nb /dev/vdb none discard,bogus\n";
	f = fmemopen((void *)text, strlen(text), "r");
	CHECK(tresortab_parse_file(f, "/etc/tresortab", &tab, err,
				   sizeof(err)) == -1, "bad file accepted");
	fclose(f);
	CHECK(strstr(err, "/etc/tresortab:3: unknown option 'bogus'") != NULL,
	      "file error: '%s'", err);
	CHECK(tab.n == 0 && !tab.entries, "table freed on error");

	text = "a /dev/vda\na /dev/vdb\n";
	f = fmemopen((void *)text, strlen(text), "r");
	CHECK(tresortab_parse_file(f, "t", &tab, err, sizeof(err)) == -1 &&
	      strstr(err, "t:2:") && strstr(err, "twice"),
	      "duplicate name: '%s'", err);
	fclose(f);
}

static void test_timespan(void)
{
	unsigned int ms;

	CHECK(tt_parse_timespan("5", &ms) == 0 && ms == 5000, "5");
	CHECK(tt_parse_timespan("5s", &ms) == 0 && ms == 5000, "5s");
	CHECK(tt_parse_timespan("250ms", &ms) == 0 && ms == 250, "250ms");
	CHECK(tt_parse_timespan("3min", &ms) == 0 && ms == 180000, "3min");
	CHECK(tt_parse_timespan("1h", &ms) == 0 && ms == 3600000, "1h");
	CHECK(tt_parse_timespan("", &ms) == -1, "empty");
	CHECK(tt_parse_timespan("-1", &ms) == -1, "-1");
	CHECK(tt_parse_timespan("1d", &ms) == -1, "1d");
	CHECK(tt_parse_timespan("99999999h", &ms) == -1, "overflow");
}

int main(void)
{
	test_good();
	test_bad();
	test_tokens();
	test_file();
	test_timespan();
	if (failures) {
		printf("FAIL tresortab parser: %d of %d checks failed\n",
		       failures, checks);
		return 1;
	}
	printf("PASS tresortab parser: %d checks\n", checks);
	return 0;
}
