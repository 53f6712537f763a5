#!/bin/sh
# mmdebstrap essential hook ($1 = the new root): a small initrd for the emulated image.
# Only the modules the qemu virt machine needs to mount its root (initramfs-modules) go into
# the initrd: under user-mode emulation mkinitramfs with MODULES=most is most of the build.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"
printf 'MODULES=list\nCOMPRESS=gzip\n' > "$1/etc/initramfs-tools/conf.d/faced-virt.conf"
grep -v '^#' "$here/initramfs-modules" > "$1/usr/share/initramfs-tools/modules.d/faced-virt"
