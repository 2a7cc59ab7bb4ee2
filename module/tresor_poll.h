/* SPDX-License-Identifier: GPL-2.0 */
#ifndef TRESOR_POLL_H
#define TRESOR_POLL_H

#include <linux/sysfs.h>
#include <linux/types.h>

/* fn(arg) on @cpu's polling thread; false: not run, forward it otherwise */
bool tresor_poll_call(int cpu, int (*fn)(void *arg), void *arg, int *ret);
void tresor_poll_exit(void);

/* poll_cpus (rw), polled_requests (ro) in /sys/kernel/tresor */
extern const struct attribute_group tresor_poll_group;

#endif /* TRESOR_POLL_H */
