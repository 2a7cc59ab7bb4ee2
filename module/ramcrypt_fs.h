/* SPDX-License-Identifier: GPL-2.0 */
/* ramcryptfs: ramcrypt regions as regular files (ramcrypt_fs.c) */
#ifndef RAMCRYPT_FS_H
#define RAMCRYPT_FS_H

int ramcrypt_fs_init(void);
void ramcrypt_fs_exit(void);

#endif /* RAMCRYPT_FS_H */
