/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef TRESOR_LOG_H
#define TRESOR_LOG_H

#include <syslog.h>

/*
 * journald's "<N>" level prefix (sd-daemon(3)) when stderr is the journal
 * stream of a unit (JOURNAL_STREAM names stderr's device and inode), so
 * `journalctl -p err` shows a failed unlock; "" on a terminal or a pipe.
 */
const char *log_prefix(int level);

/* fprintf(stderr, ...) of an error line, with the prefix at LOG_ERR */
void err_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* the same at another level (LOG_WARNING, LOG_NOTICE, LOG_INFO) */
void lvl_printf(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * 1 if plymouth runs (plymouth --ping).
 */
int plymouth_running(void);

/*
 * Send the last warning or error line printed above to plymouth's message
 * line (plymouth display-message), if plymouth runs, so a failed unlock
 * is not hidden behind the splash. Called at exit (atexit), after key
 * material is wiped: it spawns processes.
 */
void log_flush_plymouth(void);

#endif
