// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * log.c - journal priorities for tresor-unlock's messages, and plymouth:
 * behind a boot splash, warnings and errors also go to plymouth's message
 * line, as Debian's initramfs message() does.
 */
#define _GNU_SOURCE
#include "log.h"

#include <errno.h>
#include <fcntl.h>
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

/* argv run with stdin/stdout/stderr on /dev/null: its exit status, or -1 */
static int run_quiet(char *const argv[])
{
	pid_t pid;
	int status;

	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
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

/* one line on plymouth's message line (the splash hides the console) */
static void plymouth_message(const char *fmt, va_list ap)
{
	char text[1024], arg[1040];
	char *argv[] = { "plymouth", "display-message", arg, NULL };
	size_t n;

	if (!plymouth_running())
		return;
	vsnprintf(text, sizeof(text), fmt, ap);
	n = strlen(text);
	while (n && text[n - 1] == '\n')
		text[--n] = '\0';
	snprintf(arg, sizeof(arg), "--text=%s", text);
	run_quiet(argv);
}

static void vlog(int level, const char *fmt, va_list ap)
{
	va_list aq;

	va_copy(aq, ap);
	fputs(log_prefix(level), stderr);
	vfprintf(stderr, fmt, ap);
	if (level <= LOG_WARNING)
		plymouth_message(fmt, aq);
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
