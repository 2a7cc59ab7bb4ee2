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
# Not exec'd: the agent must not be PID 1. Orphans (a test's background
# jobs, once the script that started them has ended) are reparented to PID
# 1, and their SIGCHLD interrupts busybox ash's `read` builtin, which then
# restarts with an empty buffer: the part of a command line it had read is
# lost, the rest fails the "@@CMD " match, and the host times out waiting
# for the command to start (seen after tresor-nmi-transit's loops ended).
# This shell, PID 1, takes those SIGCHLDs and reaps the orphans instead.
# When the agent exits, so does PID 1 (kernel panic, QEMU exits).
/usr/bin/guest-agent
