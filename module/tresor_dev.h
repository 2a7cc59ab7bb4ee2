/* SPDX-License-Identifier: GPL-2.0 */
#ifndef TRESOR_DEV_H
#define TRESOR_DEV_H

int tresor_dev_init(void);
void tresor_dev_exit(void);

#endif /* TRESOR_DEV_H */
