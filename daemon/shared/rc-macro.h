/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rc-macro.h - small helpers in the style of systemd's macro.h.
 *
 *   _cleanup_free_ char *s = NULL;        free(s) at scope exit
 *   _cleanup_fclose_ FILE *f = NULL;      fclose(f) if non-NULL
 *   _cleanup_close_ int fd = -1;          close(fd) if >= 0
 *   _cleanup_closedir_ DIR *d = NULL;     closedir(d) if non-NULL
 *   return TAKE_PTR(s);                   hand over, leave NULL behind
 */
#ifndef RC_MACRO_H
#define RC_MACRO_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

static inline void rc_freep(void *p)
{
	free(*(void **)p);
}

static inline void rc_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

static inline void rc_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;

		close(*fd);
		errno = saved;
	}
}

static inline void rc_closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

#define _cleanup_free_ _cleanup_(rc_freep)
#define _cleanup_fclose_ _cleanup_(rc_fclosep)
#define _cleanup_close_ _cleanup_(rc_closep)
#define _cleanup_closedir_ _cleanup_(rc_closedirp)

#define TAKE_PTR(p)                                   \
	({                                            \
		__typeof__(p) _p_ = (p);              \
		(p) = NULL;                           \
		_p_;                                  \
	})

#define TAKE_FD(fd)                                   \
	({                                            \
		int _fd_ = (fd);                      \
		(fd) = -1;                            \
		_fd_;                                 \
	})

/* errno as a negative return value, never 0 (-EIO if errno was 0). */
static inline int rc_negative_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

#endif /* RC_MACRO_H */
