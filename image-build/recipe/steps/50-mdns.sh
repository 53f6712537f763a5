# Step 50: the LAN name (FACED_HOSTNAME.local through avahi). The API is advertised by
# faced itself over DNS-SD (mdns.enabled), so agents can find the box without its address.
# shellcheck shell=bash

printf '%s\n' "$FACED_HOSTNAME" > "$ROOT/etc/hostname"
if grep -q '^127\.0\.1\.1' "$ROOT/etc/hosts" 2>/dev/null; then
    sed -i "s/^127\.0\.1\.1.*/127.0.1.1\t$FACED_HOSTNAME/" "$ROOT/etc/hosts"
else
    printf '127.0.1.1\t%s\n' "$FACED_HOSTNAME" >> "$ROOT/etc/hosts"
fi
# avahi answers for the host name only: faced announces its own services (_faced._tcp,
# _http._tcp) with python-zeroconf, live TXT and goodbye packets (faced.discovery), so avahi
# must not publish them too (two responders, one service). An image built before this
# step changed had a static service file: remove it.
rm -f "$ROOT/etc/avahi/services/faced.service"
enable_unit avahi-daemon.service
