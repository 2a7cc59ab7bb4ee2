// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * askpass.c - get a passphrase into locked, wiped memory.
 *
 * Every byte is read with read(2) straight into a crypt_safe_alloc buffer:
 * no stdio buffer ever holds the passphrase.
 */
#define _GNU_SOURCE
#include "askpass.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <libcryptsetup.h>

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Read one line (without its newline) from fd into safe memory.
 * Returns 0, or -1 (EOF before any byte: -2; timeout: -3).
 */
static int read_line(int fd, unsigned int timeout_ms, char **out,
		     size_t *len)
{
	char *buf = crypt_safe_alloc(PASSPHRASE_MAX + 1);
	long long deadline = timeout_ms ? now_ms() + timeout_ms : 0;
	size_t n = 0;
	int got_any = 0;

	if (!buf)
		return -1;
	for (;;) {
		char c;
		ssize_t r;

		if (deadline) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			long long left = deadline - now_ms();

			if (left <= 0 || poll(&p, 1, (int)left) == 0) {
				crypt_safe_free(buf);
				return -3;
			}
		}
		r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			crypt_safe_free(buf);
			return -1;
		}
		if (r == 0) {
			if (!got_any) {
				crypt_safe_free(buf);
				return -2;
			}
			break;
		}
		got_any = 1;
		if (c == '\n' || c == '\r')
			break;
		if (n == PASSPHRASE_MAX) {
			crypt_safe_memzero(&c, 1);
			crypt_safe_free(buf);
			fprintf(stderr, "tresor-unlock: passphrase longer than "
				"%d bytes\n", PASSPHRASE_MAX);
			return -1;
		}
		buf[n++] = c;
		crypt_safe_memzero(&c, 1);
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* Run argv with stdout on a pipe; read its first line as the passphrase. */
static int ask_helper(char *const argv[], unsigned int timeout_ms,
		      char **pass, size_t *len)
{
	int fds[2], status, r;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	r = read_line(fds[0], timeout_ms, pass, len);
	close(fds[0]);
	if (r == -3)
		kill(pid, SIGTERM);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
		crypt_safe_free(*pass);
		*pass = NULL;
		r = -1;
	}
	if (r == -3)
		fprintf(stderr, "tresor-unlock: no passphrase within the "
			"timeout\n");
	return r ? -1 : 0;
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

static int plymouth_running(void)
{
	pid_t pid;
	int status;

	if (!have_program("plymouth"))
		return 0;
	pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("plymouth", "plymouth", "--ping", (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int ask_console(const char *prompt, const struct ask_opts *o,
		       char **pass, size_t *len)
{
	struct termios old, noecho;
	int fd, own = 0, r, have_tio;

	if (o->console) {
		fd = open(o->console, O_RDWR | O_NOCTTY | O_CLOEXEC);
		own = 1;
	} else if (isatty(0)) {
		fd = 0;
	} else {
		fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
		own = 1;
	}
	if (fd < 0) {
		fprintf(stderr, "tresor-unlock: no terminal to ask the "
			"passphrase on (%s): %s\n",
			o->console ? o->console : "/dev/console",
			strerror(errno));
		return -1;
	}
	have_tio = tcgetattr(fd, &old) == 0;
	if (have_tio) {
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		noecho.c_lflag |= ECHONL | ICANON;
		tcsetattr(fd, TCSAFLUSH, &noecho);
	}
	if (write(fd, prompt, strlen(prompt)) < 0) {
		/* the prompt is cosmetic; reading still works */
	}
	r = read_line(fd, o->timeout_ms, pass, len);
	if (have_tio)
		tcsetattr(fd, TCSAFLUSH, &old);	/* ECHONL echoed the newline */
	if (own)
		close(fd);
	if (r == -3)
		fprintf(stderr, "tresor-unlock: no passphrase within the "
			"timeout\n");
	else if (r == -2)
		fprintf(stderr, "tresor-unlock: end of input on the "
			"terminal\n");
	return r ? -1 : 0;
}

int ask_passphrase(const char *prompt, const struct ask_opts *o,
		   char **pass, size_t *len)
{
	struct stat st;

	*pass = NULL;
	*len = 0;
	if (o->passphrase_fd >= 0) {
		int r = read_line(o->passphrase_fd, o->timeout_ms, pass, len);

		if (r == -2)
			fprintf(stderr, "tresor-unlock: no more passphrases "
				"on fd %d\n", o->passphrase_fd);
		else if (r == -3)
			fprintf(stderr, "tresor-unlock: no passphrase on fd "
				"%d within the timeout\n", o->passphrase_fd);
		else if (r)
			fprintf(stderr, "tresor-unlock: reading fd %d: %s\n",
				o->passphrase_fd, strerror(errno));
		return r ? -1 : 0;
	}
	if (!o->console && plymouth_running()) {
		char arg[600];
		char *argv[] = { "plymouth", "ask-for-password", arg, NULL };

		snprintf(arg, sizeof(arg), "--prompt=%s", prompt);
		return ask_helper(argv, o->timeout_ms, pass, len);
	}
	if (!o->console && stat("/run/systemd/system", &st) == 0 &&
	    have_program("systemd-ask-password")) {
		char id[300], tmo[40];
		char *argv[] = { "systemd-ask-password", id, tmo,
				 (char *)prompt, NULL };

		snprintf(id, sizeof(id), "--id=%s", o->id ? o->id :
			 "tresor-unlock");
		snprintf(tmo, sizeof(tmo), "--timeout=%us",
			 (o->timeout_ms + 999) / 1000);
		return ask_helper(argv, 0, pass, len);
	}
	return ask_console(prompt, o, pass, len);
}
