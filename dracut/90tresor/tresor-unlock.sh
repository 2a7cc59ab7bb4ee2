#!/bin/sh
# dracut initqueue/settled hook (an initramfs without systemd): runs on
# every pass of dracut's initqueue until the root is there. Each pass
# opens the /etc/tresortab volumes whose devices are present, each at most
# once per boot (--once: a wrong passphrase is not asked again), and waits
# for none (--device-wait 0): a volume on an md array or an LVM volume
# that the queue assembles later (a degraded array is started only after
# 2/3 of rd.retry) opens on a later pass, where a wait here would hold up
# that very assembly. If the boot gives up, the emergency hook says which
# volumes never appeared.
[ -e /tmp/tresor.skip ] && return 0 2>/dev/null
[ -f /etc/tresortab ] || return 0 2>/dev/null
if [ ! -e /tmp/tresor.modules ]; then
    : > /tmp/tresor.modules
    modprobe -q tresor_showregs 2>/dev/null
    modprobe -a tresor dm_crypt af_alg algif_skcipher xts ||
        warn "tresor: cannot load tresor.ko/dm_crypt"
fi
if ! /usr/lib/ramcrypt/tresor-unlock --initramfs --once --device-wait 0 open; then
    warn "tresor: unlocking a TRESOR volume failed (see the messages above)"
fi
