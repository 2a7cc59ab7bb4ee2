// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit test of rc-cpuset: parse, format, set operations, systemd bytes. */
#include "test-util.h"
#include "rc-cpuset.h"

static void roundtrip(const char *in, const char *want, unsigned int count)
{
	struct rc_cpuset s;
	char *out = NULL;
	int r = rc_cpuset_parse(in, &s);

	CHECK(r == 0, "parse '%s': %d", in, r);
	if (r < 0)
		return;
	CHECK(rc_cpuset_count(&s) == count, "'%s': count %u, want %u", in,
	      rc_cpuset_count(&s), count);
	CHECK(rc_cpuset_format(&s, &out) == 0, "format");
	CHECK_STR(out, want);
	free(out);
}

static void bad(const char *in, int want, const char *bad_part)
{
	struct rc_cpuset s;
	const char *b = NULL;
	int r;

	rc_cpuset_zero(&s);
	rc_cpuset_set(&s, 5);
	r = rc_cpuset_parse_full(in, &s, &b);
	CHECK(r == want, "'%s': %d, want %d", in, r, want);
	CHECK(rc_cpuset_isset(&s, 5) && rc_cpuset_count(&s) == 1,
	      "'%s': result touched on error", in);
	if (bad_part)
		CHECK(b && strncmp(b, bad_part, strlen(bad_part)) == 0,
		      "'%s': bad part '%s', want '%s'", in, b ? b : "(null)",
		      bad_part);
}

int main(void)
{
	struct rc_cpuset a, b, c;
	uint8_t *bytes;
	size_t n;
	int cpu, k;

	roundtrip("", "", 0);
	roundtrip("\n", "", 0);
	roundtrip("0", "0", 1);
	roundtrip("0-3\n", "0-3", 4);
	roundtrip("0-3,8,10-11", "0-3,8,10-11", 7);
	roundtrip("3,2,1,0", "0-3", 4);
	roundtrip("0,2,4", "0,2,4", 3);
	roundtrip("1-1", "1", 1);
	roundtrip("0-1023", "0-1023", 1024);
	roundtrip("63,64,127-128", "63-64,127-128", 4);

	bad("a", -EINVAL, "a");
	bad("1,,2", -EINVAL, ",2");
	bad("1,", -EINVAL, ",");
	bad(",1", -EINVAL, ",1");
	bad("3-1", -EINVAL, "3-1");
	bad("1-", -EINVAL, "1-");
	bad("-1", -EINVAL, "-1");
	bad("1 2", -EINVAL, "1 2");
	bad("0-3:1/2", -EINVAL, "0-3:");
	bad("1024", -ERANGE, "1024");
	bad("0-99999999999999999999", -ERANGE, "0-");
	bad("0x3", -EINVAL, "0x3");
	bad("+1", -EINVAL, "+1");

	rc_cpuset_parse("0-3,8", &a);
	rc_cpuset_parse("3-5", &b);
	CHECK(rc_cpuset_intersects(&a, &b), "intersects");
	c = a;
	rc_cpuset_andnot(&c, &b);
	CHECK(rc_cpuset_count(&c) == 4 && !rc_cpuset_isset(&c, 3), "andnot");
	c = a;
	rc_cpuset_and(&c, &b);
	CHECK(rc_cpuset_count(&c) == 1 && rc_cpuset_isset(&c, 3), "and");
	c = a;
	rc_cpuset_or(&c, &b);
	CHECK(rc_cpuset_count(&c) == 7, "or");
	CHECK(rc_cpuset_subset(&a, &c) && !rc_cpuset_subset(&c, &a), "subset");
	CHECK(!rc_cpuset_equal(&a, &b) && rc_cpuset_equal(&a, &a), "equal");
	rc_cpuset_parse("10,12", &b);
	CHECK(!rc_cpuset_intersects(&a, &b), "disjoint");
	CHECK(rc_cpuset_first(&a) == 0 && rc_cpuset_next(&a, 3) == 8 &&
	      rc_cpuset_next(&a, 8) == -1, "first/next");
	rc_cpuset_zero(&c);
	CHECK(rc_cpuset_empty(&c) && rc_cpuset_first(&c) == -1, "empty");
	rc_cpuset_set(&c, 1023);
	CHECK(rc_cpuset_first(&c) == 1023 && !rc_cpuset_empty(&c), "1023");
	rc_cpuset_set(&c, 1024);	/* ignored, no overflow */
	CHECK(!rc_cpuset_isset(&c, 1024) && rc_cpuset_count(&c) == 1, "1024");
	rc_cpuset_clear(&c, 1023);
	CHECK(rc_cpuset_empty(&c), "clear");

	k = 0;
	rc_cpuset_foreach(cpu, &a)
		k += cpu;
	CHECK(k == 0 + 1 + 2 + 3 + 8, "foreach sum %d", k);

	/* systemd's AllowedCPUs=: byte i bit j is CPU 8i+j */
	CHECK(rc_cpuset_to_bytes(&a, &bytes, &n) == 0, "to_bytes");
	CHECK(n == 2 && bytes[0] == 0x0f && bytes[1] == 0x01, "bytes %zu %x %x",
	      n, bytes[0], n > 1 ? bytes[1] : 0);
	CHECK(rc_cpuset_from_bytes(bytes, n, &c) == 0 && rc_cpuset_equal(&a, &c),
	      "from_bytes");
	free(bytes);
	rc_cpuset_zero(&c);
	CHECK(rc_cpuset_to_bytes(&c, &bytes, &n) == 0 && n == 0 && bytes,
	      "empty bytes");
	free(bytes);
	{
		uint8_t big[129] = { 0 };

		big[128] = 1;
		CHECK(rc_cpuset_from_bytes(big, sizeof(big), &c) == -ERANGE,
		      "from_bytes beyond RC_MAX_CPUS");
	}
	return test_done("test_cpuset");
}
