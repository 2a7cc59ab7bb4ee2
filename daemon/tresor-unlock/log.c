// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * log.c - journal priorities for tresor-unlock's messages, and plymouth:
 * behind a boot splash, the last warning or error also goes to plymouth's
 * message line at exit, as Debian's initramfs message() shows its lines.
 */
#define _GNU_SOURCE
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int to_journal(void)
{
	static int v = -1;
	unsigned long long dev, ino;
	const char *e;
	struct stat st;

	if (v >= 0)
		return v;
	v = 0;
	e = getenv("JOURNAL_STREAM");
	if (e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 &&
	    fstat(STDERR_FILENO, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino)
		v = 1;
	return v;
}

const char *log_prefix(int level)
{
	static const char *p[8] = { "<0>", "<1>", "<2>", "<3>", "<4>", "<5>",
				    "<6>", "<7>" };

	if (!to_journal() || level < 0 || level > 7)
		return "";
	return p[level];
}

static int have_program(const char *name)
{
	const char *path = getenv("PATH");
	char buf[4096];
	const char *p, *e;

	if (!path)
		path = "/usr/sbin:/usr/bin:/sbin:/bin";
	for (p = path; *p; p = *e ? e + 1 : e) {
		e = strchrnul(p, ':');
		if (snprintf(buf, sizeof(buf), "%.*s/%s", (int)(e - p), p,
			     name) < (int)sizeof(buf) && access(buf, X_OK) == 0)
			return 1;
	}
	return 0;
}

/*
 * argv run with stdin/stdout/stderr on /dev/null: its exit status, or -1.
 * posix_spawnp (vfork-like: no copy of this process's pages) and only
 * from log_flush_plymouth(), never while a passphrase or key is live.
 */
static int run_quiet(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status, r;

	if (posix_spawn_file_actions_init(&fa))
		return -1;
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDWR, 0);
	posix_spawn_file_actions_adddup2(&fa, 0, 1);
	posix_spawn_file_actions_adddup2(&fa, 0, 2);
	r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r)
		return -1;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int plymouth_running(void)
{
	char *argv[] = { "plymouth", "--ping", NULL };

	return have_program("plymouth") && run_quiet(argv) == 0;
}

/*
 * The last warning or error line, for plymouth's message line. Lines are
 * only collected here; log_flush_plymouth() sends the last one at exit,
 * after the key buffers, the stack and the vector registers were wiped
 * (a fork while they are live copies them).
 */
static char ply_line[1024];	/* the line being written */
static size_t ply_len;
static char ply_msg[1024];	/* the last complete one */

static void ply_collect(const char *text)
{
	const char *p = text, *nl;
	size_t n;

	while (*p) {
		nl = strchr(p, '\n');
		n = nl ? (size_t)(nl - p) : strlen(p);
		if (n > sizeof(ply_line) - 1 - ply_len)
			n = sizeof(ply_line) - 1 - ply_len;
		memcpy(ply_line + ply_len, p, n);
		ply_len += n;
		ply_line[ply_len] = '\0';
		if (!nl)
			break;
		/* "Try '... --help'" after a usage error says nothing there */
		if (ply_len && strncmp(ply_line, "Try '", 5))
			memcpy(ply_msg, ply_line, ply_len + 1);
		ply_len = 0;
		p = nl + 1;
	}
}

void log_flush_plymouth(void)
{
	char arg[sizeof(ply_msg) + 8];
	char *argv[] = { "plymouth", "display-message", arg, NULL };

	if (!ply_msg[0])
		return;
	snprintf(arg, sizeof(arg), "--text=%s", ply_msg);
	ply_msg[0] = '\0';
	if (plymouth_running())
		run_quiet(argv);
}

static void vlog(int level, const char *fmt, va_list ap)
{
	char text[1024];
	va_list aq;

	va_copy(aq, ap);
	fputs(log_prefix(level), stderr);
	vfprintf(stderr, fmt, ap);
	if (level <= LOG_WARNING) {
		vsnprintf(text, sizeof(text), fmt, aq);
		ply_collect(text);
	}
	va_end(aq);
}

void err_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap);
	va_end(ap);
}

void lvl_printf(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}
