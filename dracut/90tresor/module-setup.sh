#!/bin/bash
# dracut module 90tresor: unlock the LUKS2 volumes of /etc/tresortab in the
# initramfs with the volume key in the CPU debug registers (tresor.ko), and
# map them on dm-crypt capi:xts(tresor)-plain64. rd.tresor=0 skips it.
#
# Key files named in tresortab are NOT copied into the (unencrypted)
# initramfs; entries with a key file fall back to the passphrase when the
# file is not there (keyfile-timeout=) or fail.

TRESOR_UNLOCK=/usr/lib/ramcrypt/tresor-unlock

# 0: include (tresortab has entries); 255: only on request; 1: cannot.
check() {
    require_binaries "$TRESOR_UNLOCK" || return 1
    [[ $hostonly ]] || return 0
    grep -qv '^[[:space:]]*\(#\|$\)' /etc/tresortab 2>/dev/null && return 0
    return 255
}

depends() {
    local deps="dm rootfs-block"
    # the passphrase prompt on the console (systemd-ask-password-console)
    dracut_module_included "systemd" && deps+=" systemd-ask-password"
    echo "$deps"
    return 0
}

installkernel() {
    hostonly='' instmods tresor dm_crypt dm_mod xts ecb af_alg \
        algif_skcipher aesni_intel
    # optional: the livepatch that hides DR0-DR3 in oops dumps
    hostonly='' instmods tresor_showregs 2>/dev/null
    return 0
}

install() {
    inst_binary "$TRESOR_UNLOCK"
    [[ -f /etc/tresortab ]] && inst_simple /etc/tresortab
    inst_multiple -o plymouth systemd-ask-password

    if dracut_module_included "systemd"; then
        # 00systemd installs cryptsetup.target but not its enablement
        # symlink (90crypt does; it is not included without cryptsetup)
        inst_multiple -o \
            "$systemdsystemunitdir"/cryptsetup.target \
            "$systemdsystemunitdir"/sysinit.target.wants/cryptsetup.target \
            "$systemdsystemunitdir"/systemd-ask-password-console.path \
            "$systemdsystemunitdir"/systemd-ask-password-console.service \
            systemd-ask-password systemd-tty-ask-password-agent
        inst_simple "$moddir/tresor-unlock.service" \
            "$systemdsystemunitdir/tresor-unlock.service"
        $SYSTEMCTL -q --root "$initdir" add-wants cryptsetup.target \
            tresor-unlock.service
    else
        inst_hook cmdline 30 "$moddir/parse-tresor.sh"
        inst_hook initqueue/settled 30 "$moddir/tresor-unlock.sh"
    fi
    dracut_need_initqueue
}
