# Step 50: the LAN name (FACED_HOSTNAME.local through avahi) and the API advertised by
# DNS-SD, so agents can find the box without knowing its address.
# shellcheck shell=bash

printf '%s\n' "$FACED_HOSTNAME" > "$ROOT/etc/hostname"
if grep -q '^127\.0\.1\.1' "$ROOT/etc/hosts" 2>/dev/null; then
    sed -i "s/^127\.0\.1\.1.*/127.0.1.1\t$FACED_HOSTNAME/" "$ROOT/etc/hosts"
else
    printf '127.0.1.1\t%s\n' "$FACED_HOSTNAME" >> "$ROOT/etc/hosts"
fi
mkdir -p "$ROOT/etc/avahi/services"
cat > "$ROOT/etc/avahi/services/faced.service" <<'XML'
<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<!-- faced's API and viewer, advertised on the LAN (installed by the faced recipe). -->
<service-group>
  <name replace-wildcards="yes">faced on %h</name>
  <service>
    <type>_http._tcp</type>
    <port>9999</port>
    <txt-record>path=/</txt-record>
    <txt-record>api=openface-v1</txt-record>
  </service>
</service-group>
XML
enable_unit avahi-daemon.service
