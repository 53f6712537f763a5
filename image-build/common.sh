# Shared by build-image.sh and test-image.sh. Sourced.
# shellcheck shell=bash

# Exit 77 with a loud banner when arm64 code cannot run here (no root, no binfmt_misc, no
# qemu-user-static): the image cannot be built or booted on this machine.
skip_loudly() {
    {
        echo "######################################################################"
        echo "# SKIPPED: the faced image cannot be built/booted here:"
        echo "#   $*"
        echo "######################################################################"
    } >&2
    exit 77
}

require_emulation() {
    [ "$(id -u)" -eq 0 ] || skip_loudly "not root (mmdebstrap, chroot and mounts need root)"
    if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null \
            || skip_loudly "binfmt_misc cannot be mounted (mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc failed)"
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        if command -v update-binfmts >/dev/null; then
            update-binfmts --enable qemu-aarch64 2>/dev/null || true
        fi
        [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] \
            || skip_loudly "no qemu-aarch64 binfmt handler (apt-get install qemu-user-static binfmt-support)"
    fi
}
