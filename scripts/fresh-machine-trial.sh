#!/usr/bin/env bash
# The two commands on a really fresh machine: makes a Debian 12 (bookworm) minbase chroot
# with debootstrap, copies this repository and the current Rust toolchain into it and
# nothing else, then runs `scripts/run.sh` (until /readyz answers) and `scripts/test.sh`
# inside, as a new user of such a machine would. Run by hand as root, not by CI: it
# downloads Debian packages and crates and builds everything twice (about half an hour).
#
# Usage: sudo bash scripts/fresh-machine-trial.sh [DIR]      (default /var/tmp/ordo-trial)
#
# What the chroot gets from this machine: the repository's tracked files (git ls-files),
# the toolchain of `rustc --print sysroot` (rustc, cargo and the standard library; rustup
# itself is not needed to build), /etc/resolv.conf, the site's certificate authorities of
# /usr/local/share/ca-certificates, and /proc and /dev mounted. Packages
# come from the Debian mirror (ORDO_TRIAL_MIRROR, default http://deb.debian.org/debian) and
# crates from crates.io: the network needed is that of any Debian machine building Rust.
#
# The chroot shares this machine's network, whose PostgreSQL, NATS and HTTP ports may be
# taken: the trial gives the scripts ports of their own (ORDO_PG_PORT=55432,
# ORDO_NATS_PORT=54222, ORDO_TEST_NATS_PORT=54223, ORDO_HTTP_ADDR=127.0.0.1:58080), which
# also tries the case of a port other than the one Debian gives its `main` cluster. Services
# do not start from package installation (policy-rc.d, as in any chroot): the scripts start
# what they need. The logs are left in DIR/root/trial-*.log; DIR is kept for inspection and
# made anew by the next run.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-/var/tmp/ordo-trial}
mirror=${ORDO_TRIAL_MIRROR:-http://deb.debian.org/debian}

say() { printf 'fresh-machine-trial: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "run it as root (debootstrap, chroot and mounts need it)"
command -v rustc >/dev/null 2>&1 || die "no Rust toolchain here to copy into the chroot"
sysroot=$(rustc --print sysroot)
[ -x "$sysroot/bin/cargo" ] || die "$sysroot/bin/cargo is missing: install the toolchain with rustup"
if ! command -v debootstrap >/dev/null 2>&1; then
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

unmount_all() {
  for mount in dev proc; do
    if mountpoint -q "$dir/$mount"; then umount -R "$dir/$mount" || umount -lR "$dir/$mount" || true; fi
  done
}

# A fresh chroot each time; a directory that is not a previous trial is never removed.
if [ -e "$dir" ]; then
  [ -f "$dir/.ordo-trial" ] || die "$dir exists and is not a previous trial; choose another DIR"
  say "removing the previous trial in $dir"
  unmount_all
  rm -rf --one-file-system "$dir"
fi
mkdir -p "$dir"
touch "$dir/.ordo-trial"

say "debootstrap bookworm minbase into $dir (from $mirror)"
debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir/.debootstrap.log" 2>&1 \
  || { tail -n 30 "$dir/.debootstrap.log" >&2; die "debootstrap failed"; }
touch "$dir/.ordo-trial"

say "copying the repository and the toolchain ($sysroot)"
mkdir -p "$dir/root/ordo" "$dir/opt/rust"
(cd "$repo" && git ls-files -z | tar --null -T - -cf -) | tar -C "$dir/root/ordo" -xf -
cp -a "$sysroot/." "$dir/opt/rust/"
cp /etc/resolv.conf "$dir/etc/resolv.conf"
# The site's own certificate authorities (a TLS-inspecting proxy's, say): a machine of this
# site has them too. The ca-certificates package, when the scripts install it, adds them.
if [ -d /usr/local/share/ca-certificates ]; then
  mkdir -p "$dir/usr/local/share/ca-certificates"
  cp -a /usr/local/share/ca-certificates/. "$dir/usr/local/share/ca-certificates/"
fi
# As in any chroot: package installation starts no service.
printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
chmod 755 "$dir/usr/sbin/policy-rc.d"

trap 'chroot "$dir" /bin/bash -c "$stop_services" >/dev/null 2>&1 || true; unmount_all' EXIT
mount -t proc proc "$dir/proc"
mount --rbind /dev "$dir/dev"
mount --make-rslave "$dir/dev"

stop_services='
  for pidfile in /root/.local/state/ordo/nats-server.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  done
  command -v pg_lsclusters >/dev/null && pg_lsclusters -h | while read -r v n _; do
    pg_ctlcluster --skip-systemctl-redirect "$v" "$n" stop 2>/dev/null
  done
  true'

in_chroot() {
  chroot "$dir" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/opt/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    ORDO_PG_PORT=55432 ORDO_NATS_PORT=54222 ORDO_TEST_NATS_PORT=54223 \
    ORDO_HTTP_ADDR=127.0.0.1:58080 \
    /bin/bash -c "cd /root/ordo && $1"
}

say "scripts/run.sh (log: $dir/root/trial-run.log)"
in_chroot 'bash scripts/run.sh >/root/trial-run.log 2>&1 & echo $! >/root/trial-run.pid'
ready=0
for _ in $(seq 1 3600); do
  if in_chroot 'exec 3<>/dev/tcp/127.0.0.1/58080 && printf "GET /readyz HTTP/1.0\r\n\r\n" >&3 && head -n 1 <&3 | grep -q " 200 "' 2>/dev/null; then
    ready=1
    break
  fi
  in_chroot 'kill -0 "$(cat /root/trial-run.pid)" 2>/dev/null' || break
  sleep 1
done
run_status=failed
if [ "$ready" -eq 1 ]; then
  run_status=passed
  say "run.sh: Ordo serves and /readyz answers 200"
else
  tail -n 30 "$dir/root/trial-run.log" >&2
  say "run.sh: Ordo did not become ready"
fi
in_chroot 'kill "$(cat /root/trial-run.pid)" 2>/dev/null; true'

say "scripts/test.sh (log: $dir/root/trial-test.log)"
test_status=passed
in_chroot 'bash scripts/test.sh >/root/trial-test.log 2>&1' || test_status=failed
grep -E '^test result:' "$dir/root/trial-test.log" \
  | awk '{ passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' >&2 || true

say "run.sh $run_status, test.sh $test_status"
[ "$run_status" = passed ] && [ "$test_status" = passed ]
