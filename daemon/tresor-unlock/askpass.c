// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * askpass.c - get a passphrase into locked, wiped memory.
 *
 * Every byte is read with read(2) or recvmsg(2) straight into a
 * crypt_safe_alloc buffer: no stdio buffer ever holds the passphrase.
 *
 * Where systemd runs, the passphrase is asked through its password agents
 * (the protocol of systemd.io/PASSWORD_AGENTS, spoken here directly: an
 * ask file in /run/systemd/ask-password, the answer on our datagram
 * socket, accepted from root only), so whatever agent runs answers it:
 * plymouth, the console agent, systemd-tty-ask-password-agent over SSH.
 * Without systemd (initramfs-tools), the console is read together with
 * Debian's /lib/cryptsetup/passfifo, as cryptsetup-initramfs's askpass
 * does, so a passphrase written there (cryptroot-unlock over
 * dropbear-initramfs) answers the prompt.
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
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <libcryptsetup.h>

#include "log.h"

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
			err_printf("tresor-unlock: passphrase longer than "
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
		err_printf("tresor-unlock: no passphrase within the "
			"timeout\n");
	return r ? -1 : 0;
}

static int systemd_running(void)
{
	struct stat st;

	return stat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- the console, and Debian's passfifo beside it ---------------------- */

/* the fifo, made (with its directory) if it is not there; -1 if it
 * cannot be used */
static int passfifo_open(int *made_fifo, int *made_dir)
{
	struct stat st;

	if (mkdir("/lib/cryptsetup", 0755) == 0)
		*made_dir = 1;
	if (mkfifo(PASSFIFO_PATH, 0600) == 0)
		*made_fifo = 1;
	else if (errno != EEXIST)
		return -1;
	/* a fifo of ours (root's), not something else of that name */
	if (lstat(PASSFIFO_PATH, &st) || !S_ISFIFO(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077)) {
		err_printf("tresor-unlock: %s is not a fifo of this user "
			"with mode 0600; not reading it\n", PASSFIFO_PATH);
		return -1;
	}
	return open(PASSFIFO_PATH, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
}

/* ASKING_PATH: which volume the console and the fifo are asked for */
static void asking_write(const struct ask_opts *o)
{
	char tmp[] = ASKING_PATH ".XXXXXX";
	int fd;

	if (!o->name)
		return;
	mkdir("/run/tresor-unlock", 0700);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return;
	dprintf(fd, "NAME=%s\nTRIED=%d\nTRIES=%d\nPID=%d\n", o->name,
		o->attempt > 0 ? o->attempt - 1 : 0, o->tries, (int)getpid());
	close(fd);
	if (rename(tmp, ASKING_PATH))
		unlink(tmp);
}

/*
 * Read a line from the console fd (cfd, may be -1) or whatever a writer
 * puts into the fifo (ffd, may be -1) until it closes it, whichever is
 * complete first. Returns 0, -1, -2 (EOF on the console and no fifo) or
 * -3 (timeout); *from_fifo tells where the passphrase came from.
 */
static int read_console_or_fifo(int cfd, int *ffdp, unsigned int timeout_ms,
				char **out, size_t *len, int *from_fifo)
{
	int ffd = *ffdp;
	char *cb = crypt_safe_alloc(PASSPHRASE_MAX + 1);
	char *fb = crypt_safe_alloc(PASSPHRASE_MAX + 2);
	long long deadline = timeout_ms ? now_ms() + timeout_ms : 0;
	size_t cn = 0, fn = 0;
	int r = -1, done = 0;

	*from_fifo = 0;
	if (!cb || !fb)
		goto out;
	while (!done) {
		struct pollfd p[2] = { { .fd = cfd, .events = POLLIN },
				       { .fd = ffd, .events = POLLIN } };
		int left = -1, n;

		if (cfd < 0 && ffd < 0) {
			r = -2;
			goto out;
		}
		if (deadline) {
			long long l = deadline - now_ms();

			if (l <= 0) {
				r = -3;
				goto out;
			}
			left = (int)l;
		}
		n = poll(p, 2, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0) {
			r = -3;
			goto out;
		}
		if (cfd >= 0 && p[0].revents) {
			char c;
			ssize_t k = read(cfd, &c, 1);

			if (k < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (k <= 0) {
				/* no more console; the fifo may still answer */
				cfd = -1;
				if (ffd >= 0)
					continue;
				if (k == 0 && cn)
					break;	/* a last line without newline */
				r = k == 0 ? -2 : -1;
				goto out;
			}
			if (c == '\n' || c == '\r') {
				done = 1;
			} else if (cn == PASSPHRASE_MAX) {
				crypt_safe_memzero(&c, 1);
				err_printf("tresor-unlock: passphrase "
					"longer than %d bytes\n",
					PASSPHRASE_MAX);
				goto out;
			} else {
				cb[cn++] = c;
			}
			crypt_safe_memzero(&c, 1);
			continue;
		}
		if (ffd >= 0 && p[1].revents) {
			ssize_t k = read(ffd, fb + fn, PASSPHRASE_MAX + 1 - fn);

			if (k < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (k > 0) {
				char *nl;

				fn += (size_t)k;
				nl = memchr(fb, '\n', fn);
				if (nl) {
					/* a line is enough */
					fn = (size_t)(nl - fb);
					if (fn && fb[fn - 1] == '\r')
						fn--;
					*from_fifo = 1;
					done = 1;
				} else if (fn > PASSPHRASE_MAX) {
					err_printf("tresor-unlock: "
						"passphrase in %s longer than "
						"%d bytes\n", PASSFIFO_PATH,
						PASSPHRASE_MAX);
					goto out;
				}
				continue;
			}
			/* the writer closed it: a passphrase, or (nothing
			 * written) listen again */
			if (fn) {
				if (fb[fn - 1] == '\r')
					fn--;
				*from_fifo = 1;
				done = 1;
				continue;
			}
			{
				int nfd = open(PASSFIFO_PATH, O_RDONLY |
					       O_NONBLOCK | O_CLOEXEC);

				close(ffd);
				ffd = *ffdp = nfd;
			}
		}
	}
	if (*from_fifo) {
		crypt_safe_memzero(fb + fn, PASSPHRASE_MAX + 2 - fn);
		fb[fn] = '\0';
		*out = fb;
		*len = fn;
		fb = NULL;
	} else {
		cb[cn] = '\0';
		*out = cb;
		*len = cn;
		cb = NULL;
	}
	r = 0;
out:
	crypt_safe_free(cb);
	crypt_safe_free(fb);
	return r;
}

static int ask_console(const char *prompt, const struct ask_opts *o,
		       int use_fifo, char **pass, size_t *len)
{
	struct termios old, noecho;
	int fd, own = 0, r, have_tio = 0, ffd = -1, made_fifo = 0;
	int made_dir = 0, from_fifo = 0;
	const char *tty = o->console ? o->console : "/dev/console";

	if (o->console) {
		fd = open(o->console, O_RDWR | O_NOCTTY | O_CLOEXEC);
		own = 1;
	} else if (isatty(0)) {
		fd = 0;
		tty = "stdin";
	} else {
		fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
		own = 1;
	}
	if (use_fifo)
		ffd = passfifo_open(&made_fifo, &made_dir);
	if (fd < 0) {
		err_printf("tresor-unlock: no terminal to ask the "
			"passphrase on (%s): %s%s\n", tty, strerror(errno),
			ffd >= 0 ? "; waiting for it in " PASSFIFO_PATH : "");
		if (ffd < 0)
			return -1;
		own = 0;
	}
	if (fd >= 0) {
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
	}
	use_fifo = ffd >= 0;
	if (use_fifo)
		asking_write(o);
	r = read_console_or_fifo(fd, &ffd, o->timeout_ms, pass, len,
				 &from_fifo);
	if (use_fifo && o->name)
		unlink(ASKING_PATH);
	if (ffd >= 0)
		close(ffd);
	if (made_fifo)
		unlink(PASSFIFO_PATH);
	if (made_dir)
		rmdir("/lib/cryptsetup");
	if (fd >= 0) {
		if (have_tio)	/* ECHONL echoed a typed newline */
			tcsetattr(fd, TCSAFLUSH, &old);
		if (from_fifo && write(fd, "\n", 1) < 0) {
			/* cosmetic */
		}
		if (own)
			close(fd);
	}
	if (r == -3)
		err_printf("tresor-unlock: no passphrase within the "
			"timeout\n");
	else if (r == -2)
		err_printf("tresor-unlock: end of input on the "
			"terminal\n");
	return r ? -1 : 0;
}

/* ---- systemd's password agents ----------------------------------------- */

/*
 * One request as systemd-ask-password makes it: the ask file (written
 * under a temporary name and renamed, so agents watching the directory
 * see it complete), answered on our socket with "+PASSPHRASE" or "-"
 * (cancelled) by a root process (SCM_CREDENTIALS), until NotAfter=.
 * AcceptCached=0: no agent hands over a cached (kernel keyring)
 * passphrase, and nothing is put there.
 */
static int ask_agent(const char *prompt, const struct ask_opts *o,
		     char **pass, size_t *len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char ask[sizeof(ASK_PASSWORD_DIR) + 40];
	char tmp[sizeof(ASK_PASSWORD_DIR) + 40];
	char msgbuf[600], hex[17];
	unsigned char rnd[8];
	long long deadline = o->timeout_ms ? now_ms() + o->timeout_ms : 0;
	unsigned long long not_after = 0;
	char *buf = NULL;
	int fd = -1, af = -1, one = 1, r = -1, i;
	size_t n;

	*pass = NULL;
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
		err_printf("tresor-unlock: getrandom: %s\n",
			strerror(errno));
		return -1;
	}
	for (i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	mkdir(ASK_PASSWORD_DIR, 0755);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sck.%s",
		 ASK_PASSWORD_DIR, hex);
	snprintf(ask, sizeof(ask), "%s/ask.%s", ASK_PASSWORD_DIR, hex);
	snprintf(tmp, sizeof(tmp), "%s/.tmp.%s", ASK_PASSWORD_DIR, hex);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one,
				 sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err_printf("tresor-unlock: cannot make the password "
			"agent socket %s: %s\n", sa.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* one line: the agents show Message= as it is */
	snprintf(msgbuf, sizeof(msgbuf), "%s", prompt);
	for (n = 0; msgbuf[n]; n++)
		if (msgbuf[n] == '\n' || msgbuf[n] == '\r')
			msgbuf[n] = ' ';
	while (n && (msgbuf[n - 1] == ' ' || msgbuf[n - 1] == ':'))
		msgbuf[--n] = '\0';
	if (deadline) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		not_after = (unsigned long long)ts.tv_sec * 1000000ULL +
			    (unsigned long long)ts.tv_nsec / 1000ULL +
			    (unsigned long long)o->timeout_ms * 1000ULL;
	}
	af = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0644);
	if (af >= 0) {
		int bad = dprintf(af, "[Ask]\nPID=%d\nSocket=%s\n"
				  "AcceptCached=0\nEcho=0\nNotAfter=%llu\n"
				  "Message=%s\nIcon=drive-harddisk\nId=%s\n",
				  (int)getpid(), sa.sun_path, not_after,
				  msgbuf, o->id ? o->id : "tresor-unlock") < 0;

		bad |= fchmod(af, 0644) != 0;
		bad |= close(af) != 0;
		af = bad ? -1 : 0;
	}
	/* renamed complete: agents watch for IN_MOVED_TO of ask.* */
	if (af < 0 || rename(tmp, ask)) {
		err_printf("tresor-unlock: cannot write the password request "
			   "%s: %s\n", ask, strerror(errno));
		unlink(tmp);
		goto out;
	}
	buf = crypt_safe_alloc(PASSPHRASE_MAX + 2);
	if (!buf)
		goto out;
	for (;;) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(struct ucred))];
		} cm;
		struct iovec iov = { buf, PASSPHRASE_MAX + 2 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = &cm,
				     .msg_controllen = sizeof(cm) };
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct ucred *uc = NULL;
		struct cmsghdr *c;
		int left = -1;
		ssize_t k;

		if (deadline) {
			long long l = deadline - now_ms();

			if (l <= 0) {
				err_printf("tresor-unlock: no passphrase "
					"within the timeout\n");
				goto out;
			}
			left = (int)l;
		}
		k = poll(&p, 1, left);
		if (k < 0 && errno != EINTR)
			goto out;
		if (k <= 0)
			continue;
		k = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (k < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			err_printf("tresor-unlock: reading the password "
				"agent's answer: %s\n", strerror(errno));
			goto out;
		}
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET &&
			    c->cmsg_type == SCM_CREDENTIALS &&
			    c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
				uc = (struct ucred *)CMSG_DATA(c);
		if (!uc || uc->uid != 0 || k < 1) {
			/* only root's agents may answer */
			crypt_safe_memzero(buf, PASSPHRASE_MAX + 2);
			continue;
		}
		if (buf[0] == '-') {
			err_printf("tresor-unlock: the password request "
				"was cancelled\n");
			goto out;
		}
		if (buf[0] != '+') {
			crypt_safe_memzero(buf, PASSPHRASE_MAX + 2);
			continue;
		}
		if (mh.msg_flags & MSG_TRUNC || k > PASSPHRASE_MAX + 1) {
			err_printf("tresor-unlock: passphrase longer "
				"than %d bytes\n", PASSPHRASE_MAX);
			goto out;
		}
		/* "+pw1\0pw2..." (cached ones): the first */
		n = strnlen(buf + 1, (size_t)k - 1);
		memmove(buf, buf + 1, n);
		crypt_safe_memzero(buf + n, PASSPHRASE_MAX + 2 - n);
		*pass = buf;
		*len = n;
		buf = NULL;
		r = 0;
		break;
	}
out:
	crypt_safe_free(buf);
	unlink(ask);
	close(fd);
	unlink(sa.sun_path);
	return r;
}

int ask_passphrase(const char *prompt, const struct ask_opts *o,
		   char **pass, size_t *len)
{
	int sd = systemd_running();

	*pass = NULL;
	*len = 0;
	if (o->passphrase_fd >= 0) {
		int r = read_line(o->passphrase_fd, o->timeout_ms, pass, len);

		if (r == -2)
			err_printf("tresor-unlock: no more passphrases "
				"on fd %d\n", o->passphrase_fd);
		else if (r == -3)
			err_printf("tresor-unlock: no passphrase on fd "
				"%d within the timeout\n", o->passphrase_fd);
		else if (r)
			err_printf("tresor-unlock: reading fd %d: %s\n",
				o->passphrase_fd, strerror(errno));
		return r ? -1 : 0;
	}
	if (o->console)
		return ask_console(prompt, o, !sd, pass, len);
	if (sd) {
		/* an admin at a terminal is asked there (as
		 * systemd-ask-password does); a unit through the agents */
		if (isatty(0))
			return ask_console(prompt, o, 0, pass, len);
		return ask_agent(prompt, o, pass, len);
	}
	if (plymouth_running()) {
		char arg[600];
		char *argv[] = { "plymouth", "ask-for-password", arg, NULL };

		snprintf(arg, sizeof(arg), "--prompt=%s", prompt);
		return ask_helper(argv, o->timeout_ms, pass, len);
	}
	return ask_console(prompt, o, 1, pass, len);
}
