#!/bin/sh
# dracut cmdline hook (non-systemd initramfs): rd.tresor=0 skips TRESOR.
if ! getargbool 1 rd.tresor; then
    info "tresor: rd.tresor=0, not unlocking TRESOR volumes"
    : > /tmp/tresor.skip
fi
