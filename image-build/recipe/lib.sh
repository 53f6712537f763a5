# Helpers shared by the recipe's steps, the image build and the Jetson installer.
# Sourced, not run.
# shellcheck shell=bash

log() { printf '[faced-recipe] %s\n' "$*" >&2; }
die() { printf '[faced-recipe] ERROR: %s\n' "$*" >&2; exit 1; }

# Run a command inside the target root (directly when the target is the running system).
in_root() {
    if [ "$ROOT" = / ]; then
        "$@"
    else
        chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
            LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
    fi
}

# Copy a file from this repository into the target, with a mode.
install_file() {
    local mode=$1 source=$2 target=$3
    install -D -m "$mode" "$source" "$ROOT$target"
}

# Package names from a list file (comments and blank lines dropped).
package_list() {
    grep -v '^[[:space:]]*#' "$1" | awk 'NF { print $1 }'
}

# Enable a unit inside the target without a running systemd (works in a chroot and on /).
enable_unit() {
    if [ "$ROOT" = / ] && [ -d /run/systemd/system ]; then
        systemctl enable "$@"
    else
        systemctl --root="$ROOT" enable "$@"
    fi
}

# True when a Debian package is installed in the target.
is_installed() {
    # shellcheck disable=SC2016  # ${Status} is dpkg-query's format, not a shell expansion
    in_root dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}
