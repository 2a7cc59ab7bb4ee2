/* SPDX-License-Identifier: GPL-2.0 */
#ifndef TRESOR_SHOWREGS_H
#define TRESOR_SHOWREGS_H

#include <linux/types.h>

/*
 * Exported by the livepatch tresor_showregs.ko: true once its patch of
 * __show_regs() is enabled and the transition is done (every task runs the
 * patched function), false again from the moment it starts to be disabled.
 * tresor.ko looks it up with symbol_get(), so neither module needs the
 * other to load.
 */
bool tresor_showregs_active(void);

#endif /* TRESOR_SHOWREGS_H */
