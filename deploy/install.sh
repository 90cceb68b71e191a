#!/bin/sh
# Install EMS on Debian / Raspberry Pi OS: venv under PREFIX, config under /etc/ems,
# the systemd unit, and the state directory managed by systemd (StateDirectory=ems).
# Usage: sudo make install   (or: sudo sh deploy/install.sh /opt/ems)
set -eu
PREFIX=${1:-/opt/ems}
SRC=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (sudo make install)" >&2
    exit 1
fi
command -v python3 >/dev/null || { echo "install.sh: python3 (>= 3.11) is required" >&2; exit 1; }

python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install --quiet --upgrade pip
"$PREFIX/venv/bin/pip" install --quiet "$SRC"
mkdir -p "$PREFIX/share"
cp -r "$SRC/docs" "$PREFIX/share/"

# The config may hold the forecast.solar key and the web UI's password hash: readable by root
# and the service only. The unit's dynamic user gets this static group through
# SupplementaryGroups=ems-config. Not a group called `ems`: systemd refuses to start a
# DynamicUser= service (status 217/USER) when a static group has the name of its User=ems but
# no static user does.
getent group ems-config >/dev/null || groupadd --system ems-config
if getent group ems >/dev/null && ! getent passwd ems >/dev/null; then
    echo "install.sh: warning: the group 'ems' (without a user 'ems') keeps the service from starting; if nothing else uses it: sudo groupdel ems" >&2
fi
install -d -m 0755 /etc/ems
if [ ! -f /etc/ems/ems-config.yaml ]; then
    install -m 0640 -o root -g ems-config "$SRC/configs/ems-config.yaml" /etc/ems/ems-config.yaml
    echo "installed /etc/ems/ems-config.yaml: review it, then: sudo emsctl check-config /etc/ems/ems-config.yaml"
else
    chown root:ems-config /etc/ems/ems-config.yaml && chmod 0640 /etc/ems/ems-config.yaml
    echo "kept the existing /etc/ems/ems-config.yaml (now root:ems-config 0640)"
fi
if [ ! -f /etc/ems/credentials.env ]; then
    umask 077
    printf '# EMS_SHELLY_PASSWORD=...\n# EMS_SHELLY_WB_A_PASSWORD=...\n' > /etc/ems/credentials.env
    chmod 0600 /etc/ems/credentials.env
fi
"$PREFIX/venv/bin/emsctl" check-config /etc/ems/ems-config.yaml >/dev/null

sed "s#/opt/ems#$PREFIX#g" "$SRC/deploy/ems.service" > /etc/systemd/system/ems.service
systemctl daemon-reload
echo "installed. Start with: systemctl enable --now ems; logs: journalctl -u ems -f"
