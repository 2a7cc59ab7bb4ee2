// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * test_agent.c - a minimal systemd password agent, for tests only.
 *
 *   test-ask-agent [--dir DIR] [--timeout S] [--count N]
 *
 * Answers the next N (default 1) password requests that appear in DIR
 * (default /run/systemd/ask-password) as systemd's agents do
 * (systemd.io/PASSWORD_AGENTS): reads the ask file, sends "+PASSPHRASE"
 * (the next line of stdin; a line "-" cancels) as a datagram to its
 * Socket=. Prints each request's fields (not the passphrase) on stdout.
 * Exit 0 when N requests were answered, 1 on timeout or error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char answered[64][300];
static int nanswered;

static int seen(const char *name)
{
	int i;

	for (i = 0; i < nanswered; i++)
		if (!strcmp(answered[i], name))
			return 1;
	return 0;
}

static int answer(const char *dir, const char *name)
{
	char path[600], line[1024], sock[200] = "", pass[600];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	FILE *f;
	int fd;
	size_t n;
	ssize_t k;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (!f)
		return 0;	/* gone meanwhile */
	printf("request %s\n", name);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "Socket=", 7))
			snprintf(sock, sizeof(sock), "%.190s", line + 7);
		printf("  %s\n", line);
	}
	fclose(f);
	if (!*sock) {
		fprintf(stderr, "test-ask-agent: %s has no Socket=\n", name);
		return -1;
	}
	if (!fgets(pass + 1, sizeof(pass) - 1, stdin)) {
		fprintf(stderr, "test-ask-agent: no passphrase left on stdin\n");
		return -1;
	}
	pass[1 + strcspn(pass + 1, "\n")] = '\0';
	if (!strcmp(pass + 1, "-")) {
		pass[0] = '-';
		n = 1;
	} else {
		pass[0] = '+';
		n = strlen(pass);
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", sock);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	k = sendto(fd, pass, n, 0, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (k != (ssize_t)n) {
		fprintf(stderr, "test-ask-agent: sendto %s: %s\n", sock,
			strerror(errno));
		return -1;
	}
	printf("answered %s\n", pass[0] == '-' ? "(cancel)" : "(passphrase)");
	fflush(stdout);
	return 1;
}

int main(int argc, char **argv)
{
	const char *dir = "/run/systemd/ask-password";
	int timeout = 60, count = 1, done = 0, i;
	struct timespec t0, t;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: test-ask-agent [--dir DIR] "
				"[--timeout S] [--count N] < passphrases\n");
			return 2;
		}
	}
	setvbuf(stdin, NULL, _IONBF, 0);	/* one line per request */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (done < count) {
		DIR *d = opendir(dir);
		struct dirent *de;

		while (d && done < count && (de = readdir(d))) {
			int r;

			if (strncmp(de->d_name, "ask.", 4) || seen(de->d_name))
				continue;
			r = answer(dir, de->d_name);
			if (r < 0)
				return 1;
			if (r > 0 && nanswered < 64) {
				snprintf(answered[nanswered++], 300, "%.290s",
					 de->d_name);
				done++;
			}
		}
		if (d)
			closedir(d);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > timeout) {
			fprintf(stderr, "test-ask-agent: %d of %d requests "
				"within %ds\n", done, count, timeout);
			return 1;
		}
		usleep(50000);
	}
	return 0;
}
