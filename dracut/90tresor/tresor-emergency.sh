#!/bin/sh
# dracut emergency hook (an initramfs without systemd): the boot gave up.
# Name each TRESOR volume whose device never appeared (the settled hook
# polled for them silently), and how to boot without TRESOR.
[ -e /tmp/tresor.skip ] && return 0 2>/dev/null
[ -f /etc/tresortab ] || return 0 2>/dev/null
/usr/lib/ramcrypt/tresor-unlock --initramfs --once --device-wait 1 open
warn "tresor: to boot without TRESOR: rd.tresor=0 on the kernel command line, then cryptsetup open (the key in RAM)"
