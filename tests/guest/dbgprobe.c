// SPDX-License-Identifier: GPL-2.0
/*
 * dbgprobe - try to program the debug registers the ways userspace can:
 * PTRACE_POKEUSER of DR0 and DR7 on a traced child, and a perf hardware
 * breakpoint event. Prints "poke-dr0=… poke-dr7=… perf-bp=…" with "ok" or
 * the errno name of each attempt; always exits 0 once it could try.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/hw_breakpoint.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int watched;

static const char *res(long r)
{
	return r < 0 ? strerrorname_np(errno) : "ok";
}

int main(void)
{
	struct perf_event_attr attr;
	const char *dr0, *dr7;
	pid_t child;
	long r, fd;
	int status;

	child = fork();
	if (child == 0) {
		ptrace(PTRACE_TRACEME, 0, NULL, NULL);
		raise(SIGSTOP);
		_exit(0);
	}
	if (child < 0 || waitpid(child, &status, 0) != child) {
		perror("dbgprobe: fork/wait");
		return 1;
	}
	r = ptrace(PTRACE_POKEUSER, child,
		   (void *)offsetof(struct user, u_debugreg[0]),
		   (void *)&watched);
	dr0 = res(r);
	/* local enable of DR0, 4-byte write watch */
	r = ptrace(PTRACE_POKEUSER, child,
		   (void *)offsetof(struct user, u_debugreg[7]),
		   (void *)0xd0001ul);
	dr7 = res(r);
	kill(child, SIGKILL);
	waitpid(child, &status, 0);

	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_BREAKPOINT;
	attr.size = sizeof(attr);
	attr.bp_type = HW_BREAKPOINT_W;
	attr.bp_addr = (unsigned long)&watched;
	attr.bp_len = HW_BREAKPOINT_LEN_4;
	attr.exclude_kernel = 1;
	fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
	printf("poke-dr0=%s poke-dr7=%s perf-bp=%s\n", dr0, dr7, res(fd));
	return 0;
}
