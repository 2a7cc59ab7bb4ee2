#!/bin/bash
# dracut module 90tresor: unlock the LUKS2 volumes of /etc/tresortab in the
# initramfs with the volume key in the CPU debug registers (tresor.ko), and
# map them on dm-crypt capi:xts(tresor)-plain64. rd.tresor=0 skips it.
#
# With systemd in the initramfs, tresor-generator makes one
# tresor-unlock@NAME.service per volume (as in the booted system); without
# it, an initqueue/settled hook polls: tresor-unlock --initramfs --once
# --device-wait 0 open on every pass (volumes on arrays assembled later in
# the queue open when they appear), and an emergency hook names what is missing.
# Key files named in tresortab are NOT copied into the (unencrypted)
# initramfs; entries with a key file fall back to the passphrase when the
# file is not there (keyfile-timeout=), else the booted system opens them.

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

# tresortab has entries: the image cannot unlock them without tresor.ko
_tresor_needed() {
    grep -qv '^[[:space:]]*\(#\|$\)' "$dracutsysrootdir"/etc/tresortab 2>/dev/null
}

installkernel() {
    if _tresor_needed; then
        # -c: a missing or unbuilt module fails the build (here, not as a
        # root that never appears at boot). tresor_showregs is required:
        # tresor.ko refuses the key until that livepatch is active, so an
        # image without it could never unlock (tresor-unlock fails closed)
        local m
        for m in tresor tresor_showregs dm_crypt; do
            hostonly='' instmods -c "$m" && continue
            derror "90tresor: $m.ko is not available for kernel $kernel" \
                "(is the ramcrypt-host DKMS module built for it? dkms" \
                "status); the TRESOR volumes of /etc/tresortab could not" \
                "be opened at boot"
            return 1
        done
    fi
    hostonly='' instmods tresor tresor_showregs dm_crypt dm_mod xts ecb \
        af_alg algif_skcipher aesni_intel
    return 0
}

# libcryptsetup's token plugins (its compiled-in directory, beside the
# libcryptsetup that tresor-unlock links) and the libraries they dlopen()
# (ldd does not see those: libtss2-* for systemd-tpm2, libfido2 for
# systemd-fido2), those present on this host, one path a line.
_tresor_token_files() {
    local lib f
    lib=$(ldd "$TRESOR_UNLOCK" 2>/dev/null |
        awk '$1 ~ /^libcryptsetup\.so/ { print $3; exit }')
    [[ $lib == /* ]] || return 0
    lib=${lib%/*}
    for f in "$lib"/cryptsetup/libcryptsetup-token-*.so \
        "$lib"/libtss2-esys.so.0 "$lib"/libtss2-rc.so.0 \
        "$lib"/libtss2-mu.so.0 "$lib"/libtss2-tcti-device.so.0 \
        "$lib"/libfido2.so.1; do
        [[ -e $f ]] && echo "$f"
    done
    return 0
}

# The tresortab name of the root volume (/ on /dev/mapper/NAME), if any.
_tresor_root_name() {
    local dev name
    dev=$(awk '$1 !~ /^#/ && $2 == "/" { print $1; exit }' \
        "$dracutsysrootdir"/etc/fstab 2>/dev/null)
    [[ $dev == /dev/mapper/* ]] || dev=$(findmnt -n -o SOURCE --target / 2>/dev/null)
    name=
    case "$dev" in
        /dev/mapper/*) name=${dev#/dev/mapper/} ;;
        /dev/dm-*) name=$(dmsetup info -c --noheadings -o name "$dev" 2>/dev/null) ;;
    esac
    [[ $name ]] || return 0
    awk -v n="$name" '$1 == n { f = 1 } END { exit !f }' \
        "$dracutsysrootdir"/etc/tresortab 2>/dev/null && echo "$name"
    return 0
}

# Keep the TRESOR volumes away from 90crypt: with cryptsetup installed and
# hostonly, 90crypt lists every LUKS device of the host (rd.luks.uuid=,
# the initrd crypttab) and systemd-cryptsetup would map the root with the
# key in RAM before tresor-unlock. $1: the TRESOR volumes' LUKS UUIDs.
_tresor_hide_from_crypt() {
    local uuids=" ${1,,} " conf="$initdir/etc/cmdline.d/90crypt.conf"
    local tok u kept="" dropped="" line

    if [[ -f $conf ]]; then
        for tok in $(cat "$conf"); do
            u=${tok#rd.luks.uuid=}
            u=${u#luks-}
            if [[ $tok == rd.luks.uuid=* && $uuids == *" ${u,,} "* ]]; then
                dropped+=" $tok"
            else
                kept+=" $tok"
            fi
        done
        if [[ $dropped ]]; then
            dinfo "90tresor: not handing the TRESOR volumes to 90crypt:$dropped"
            if [[ $kept == *rd.luks.uuid=* ]]; then
                printf '%s\n' "$kept" > "$conf"
            else
                # no other LUKS volume: without any rd.luks.uuid= 90crypt
                # (non-systemd) would ask for every LUKS device
                printf '%s\n' "$kept rd.luks=0" > "$conf"
            fi
        fi
    fi
    if [[ -f $initdir/etc/crypttab ]]; then
        while read -r line; do
            set -- $line
            u=
            case "$2" in
                UUID=*) u=${2#UUID=} ;;
                /*) u=$(blkid -s UUID -o value "$2" 2>/dev/null) ;;
            esac
            if [[ $1 != \#* ]] && { awk -v n="$1" '$1 == n { f = 1 } END { exit !f }' \
                "$dracutsysrootdir"/etc/tresortab 2>/dev/null ||
                { [[ $u ]] && [[ $uuids == *" ${u,,} "* ]]; }; }; then
                dinfo "90tresor: dropped from the initrd crypttab: $line"
                continue
            fi
            printf '%s\n' "$line"
        done < "$initdir/etc/crypttab" > "$initdir/etc/crypttab.tresor"
        mv -f "$initdir/etc/crypttab.tresor" "$initdir/etc/crypttab"
    fi
}

install() {
    local root out uuids
    if _tresor_needed; then
        # errors at build time, not at boot: headers, the root's key file,
        # volumes also in crypttab
        root=$(_tresor_root_name)
        if ! out=$("$TRESOR_UNLOCK" --tresortab "$dracutsysrootdir"/etc/tresortab \
            --initramfs ${root:+--root "$root"} \
            --crypttab "$dracutsysrootdir"/etc/crypttab --print-uuids check 2>&1); then
            dfatal "90tresor: /etc/tresortab cannot be unlocked at boot:"
            printf '%s\n' "$out" | grep -v '^uuid ' | while read -r line; do
                dfatal "  $line"
            done
            exit 1
        fi
        uuids=$(printf '%s\n' "$out" | awk '$1 == "uuid" { print $3 }')
        _tresor_hide_from_crypt "$(echo $uuids)"
    fi
    inst_binary "$TRESOR_UNLOCK"
    [[ -f /etc/tresortab ]] && inst_simple /etc/tresortab
    # LUKS2 tokens (systemd-cryptenroll's TPM2, FIDO2, PKCS#11): the
    # token plugins present here and what systemd's TPM2 code dlopen()s
    local tok
    tok=$(_tresor_token_files)
    [[ $tok ]] && inst_multiple -o $tok
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
        # one tresor-unlock@NAME.service per volume, as in the booted
        # system (the generator script and what it runs)
        local gen
        for gen in "$systemdutildir/system-generators/tresor-generator" \
            /usr/lib/systemd/system-generators/tresor-generator \
            /lib/systemd/system-generators/tresor-generator; do
            [[ -x $dracutsysrootdir$gen ]] && break
        done
        if [[ ! -x $dracutsysrootdir$gen ]]; then
            dfatal "90tresor: tresor-generator is not installed" \
                "($systemdutildir/system-generators/tresor-generator);" \
                "the TRESOR volumes could not be opened at boot"
            exit 1
        fi
        inst_script "$gen" "$systemdutildir/system-generators/tresor-generator"
        inst_multiple cat mkdir ln systemd-escape
        inst_multiple -o awk
    else
        inst_hook cmdline 30 "$moddir/parse-tresor.sh"
        inst_hook initqueue/settled 30 "$moddir/tresor-unlock.sh"
        inst_hook emergency 50 "$moddir/tresor-emergency.sh"
    fi
    dracut_need_initqueue
}
