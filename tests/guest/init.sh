#!/bin/sh
# PID 1 of every test guest: mount the basics, then hand the serial line to
# the agent that runs the host's commands.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/mapper
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /dev/shm
# Kernel messages stay in dmesg; the console carries only the protocol.
dmesg -n 1
# Test disks are virtio; their nodes appear in devtmpfs once probed.
modprobe virtio_pci 2>/dev/null
modprobe virtio_blk 2>/dev/null
hostname guest
# A test may add /test/boot.sh in its per-boot archive (the hang self-test).
[ -x /test/boot.sh ] && /test/boot.sh
exec /usr/bin/guest-agent
