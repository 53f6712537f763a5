#!/bin/sh
# faced first-boot configuration, installed as /usr/lib/faced/firstboot and run by
# faced-firstboot.service before faced.service on every boot.
#
# Reads the owner's files from the boot partition (FAT, editable from any computer):
#   faced.toml       -> /etc/faced/faced.toml (validated with `faced config check` first;
#                       an invalid file is refused and the previous config kept)
#   faced-wifi.txt   -> a Wi-Fi connection (lines SSID=..., PSK=..., COUNTRY=..); the file
#                       is deleted once applied, so the passphrase does not stay on FAT
#   faced-api-key.txt   the API key: taken from here if the owner wrote one, otherwise
#                       generated on this device and written here for the owner to read.
# The key is never part of the image: a freshly flashed card has no key until this runs.
set -eu

BOOT=${FACED_BOOT_DIR:-/boot/firmware}
ETC=${FACED_ETC_DIR:-/etc/faced}
FACED=${FACED_BIN:-/opt/faced/venv/bin/faced}
NM_DIR=${FACED_NM_DIR:-/etc/NetworkManager/system-connections}
WPA_DIR=${FACED_WPA_DIR:-/etc/wpa_supplicant}
UNIT_DIR=${FACED_UNIT_DIR:-/etc/systemd/system}
KEY_FILE="$ETC/api-key"
BOOT_KEY="$BOOT/faced-api-key.txt"

log() { echo "faced-firstboot: $*"; }

mkdir -p "$ETC"

# 1. The API key.
if [ -s "$BOOT_KEY" ]; then
    key=$(tr -d ' \r\n\t' < "$BOOT_KEY")
else
    key=""
fi
if [ -n "$key" ]; then
    if [ ! -s "$KEY_FILE" ] || [ "$key" != "$(cat "$KEY_FILE")" ]; then
        (umask 077; printf '%s\n' "$key" > "$KEY_FILE.new")
        mv "$KEY_FILE.new" "$KEY_FILE"
        log "API key taken from $BOOT_KEY"
    fi
else
    if [ ! -s "$KEY_FILE" ]; then
        # 32 random bytes, URL-safe base64 without padding: 43 characters.
        key=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        (umask 077; printf '%s\n' "$key" > "$KEY_FILE.new")
        mv "$KEY_FILE.new" "$KEY_FILE"
        log "API key generated"
    fi
    if [ -d "$BOOT" ] && [ -w "$BOOT" ]; then
        # Written back so the owner can read it from the card in any computer.
        cp "$KEY_FILE" "$BOOT_KEY.new"
        mv "$BOOT_KEY.new" "$BOOT_KEY"
        sync "$BOOT_KEY" 2>/dev/null || sync
        log "API key written to $BOOT_KEY"
    else
        log "boot partition $BOOT not writable: the key stays in $KEY_FILE only"
    fi
fi
chmod 600 "$KEY_FILE"

# 2. faced.toml from the boot partition.
if [ -f "$BOOT/faced.toml" ] && ! cmp -s "$BOOT/faced.toml" "$ETC/faced.toml"; then
    if "$FACED" config check "$BOOT/faced.toml"; then
        cp "$BOOT/faced.toml" "$ETC/faced.toml.new"
        chmod 644 "$ETC/faced.toml.new"
        mv "$ETC/faced.toml.new" "$ETC/faced.toml"
        log "config installed from $BOOT/faced.toml"
    else
        log "REFUSED $BOOT/faced.toml (see the line above); keeping the previous config"
    fi
fi

# 3. Wi-Fi.
WIFI="$BOOT/faced-wifi.txt"
if [ -f "$WIFI" ]; then
    ssid=$(sed -n 's/^SSID=//p' "$WIFI" | tr -d '\r')
    psk=$(sed -n 's/^PSK=//p' "$WIFI" | tr -d '\r')
    country=$(sed -n 's/^COUNTRY=//p' "$WIFI" | tr -d '\r')
    if [ -z "$ssid" ]; then
        log "REFUSED $WIFI: no SSID= line"
    else
        if [ -n "$country" ] && command -v iw >/dev/null; then
            iw reg set "$country" || log "cannot set Wi-Fi country $country"
        fi
        if [ -d "$NM_DIR" ]; then
            # NetworkManager (Raspberry Pi OS bookworm) stores it as a system connection.
            conn="$NM_DIR/faced-wifi.nmconnection"
            (umask 077; {
                printf '[connection]\nid=faced-wifi\ntype=wifi\nautoconnect=true\n\n'
                printf '[wifi]\nmode=infrastructure\nssid=%s\n\n' "$ssid"
                if [ -n "$psk" ]; then
                    printf '[wifi-security]\nkey-mgmt=wpa-psk\npsk=%s\n\n' "$psk"
                fi
                printf '[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=auto\n'
            } > "$conn")
        else
            # systemd-networkd + wpa_supplicant@wlan0 (plain Debian).
            conf="$WPA_DIR/wpa_supplicant-wlan0.conf"
            mkdir -p "$WPA_DIR"
            (umask 077; {
                printf 'ctrl_interface=/run/wpa_supplicant\nupdate_config=0\n'
                [ -n "$country" ] && printf 'country=%s\n' "$country"
                printf 'network={\n  ssid="%s"\n' "$ssid"
                if [ -n "$psk" ]; then printf '  psk="%s"\n' "$psk"; else printf '  key_mgmt=NONE\n'; fi
                printf '}\n'
            } > "$conf")
            mkdir -p "$UNIT_DIR/multi-user.target.wants"
            ln -sf /lib/systemd/system/wpa_supplicant@.service \
                "$UNIT_DIR/multi-user.target.wants/wpa_supplicant@wlan0.service"
            if [ -z "${FACED_UNIT_DIR:-}" ] && [ -d /run/systemd/system ]; then
                systemctl --no-block start wpa_supplicant@wlan0.service || true
            fi
        fi
        rm -f "$WIFI"
        log "Wi-Fi network '$ssid' configured; $WIFI removed"
    fi
fi
