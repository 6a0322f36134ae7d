# Helpers shared by the scripts (sourced, not run): the settings every script reads, messages,
# root access, Debian packages, prerequisites and the generated secrets.
#
# Settings (environment variables; README "Settings of the scripts" lists them all):
#   ORDO_PG_PORT    port of the local PostgreSQL (default 5432)
#   ORDO_NATS_PORT  port of the local nats-server (default 4222)
#   ORDO_STATE_DIR  where NATS data, logs and secrets.env live (default ~/.local/state/ordo)

ORDO_PG_PORT=${ORDO_PG_PORT:-5432}
ORDO_NATS_PORT=${ORDO_NATS_PORT:-4222}
ORDO_STATE_DIR=${ORDO_STATE_DIR:-$HOME/.local/state/ordo}
ORDO_SECRETS_FILE=$ORDO_STATE_DIR/secrets.env

say() { printf 'ordo-setup: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

# Whether something accepts TCP connections on 127.0.0.1:<port>.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_listening() {
  local port=$1 what=$2 log=${3:-}
  for _ in $(seq 1 150); do
    listening "$port" && return 0
    sleep 0.2
  done
  [ -n "$log" ] && [ -f "$log" ] && tail -n 20 "$log" >&2
  die "$what did not start listening on 127.0.0.1:$port"
}

ordo_apt_updated=0
# Installs Debian packages, or says exactly what to install where it cannot.
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    die "missing: $*. This is not a Debian-like system (no apt-get): install the equivalent packages, then run this again"
  fi
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    die "missing: $*. Install them as root (apt-get install $*), or run this as root or with sudo available"
  fi
  say "installing Debian packages: $*"
  if [ "$ordo_apt_updated" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    ordo_apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# What building Ordo needs besides the Rust toolchain: a C compiler and linker (`cc`, for
# crates with C parts such as ring) with the C library headers, and CA certificates so that
# cargo can fetch crates over HTTPS.
ensure_build_tools() {
  if ! command -v cargo >/dev/null 2>&1; then
    die "cargo (the Rust toolchain) is missing. Install it with rustup (https://rustup.rs):
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
(on a minimal system first: apt-get install curl ca-certificates), then open a new shell (or: . \"\$HOME/.cargo/env\") and run this again. Debian's own cargo
package is too old for Ordo's dependencies."
  fi
  local missing=()
  command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
  [ -f /usr/include/stdio.h ] || missing+=(libc6-dev)
  [ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
  if [ "${#missing[@]}" -gt 0 ]; then
    # shellcheck disable=SC2207
    missing=($(printf '%s\n' "${missing[@]}" | sort -u))
    apt_install "${missing[@]}"
  fi
}

# Schemathesis (from PyPI), which the OpenAPI contract test runs against a live Ordo: in a
# virtual environment of its own under ORDO_STATE_DIR, installed once (python3 and its venv
# module from Debian when missing). Exports ORDO_SCHEMATHESIS, the path of its `st` command.
ORDO_SCHEMATHESIS_VERSION=${ORDO_SCHEMATHESIS_VERSION:-4.32.5}
ensure_schemathesis() {
  local venv=$ORDO_STATE_DIR/schemathesis
  if [ ! -x "$venv/bin/st" ] || ! "$venv/bin/st" --version 2>/dev/null | grep -q "$ORDO_SCHEMATHESIS_VERSION"; then
    command -v python3 >/dev/null 2>&1 || apt_install python3
    python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
    say "installing schemathesis $ORDO_SCHEMATHESIS_VERSION into $venv"
    rm -rf "$venv"
    mkdir -p "$ORDO_STATE_DIR"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$ORDO_SCHEMATHESIS_VERSION"
  fi
  export ORDO_SCHEMATHESIS=$venv/bin/st
}

# kubernetes-validate (from PyPI), which checks the Kubernetes manifests of deploy/kubernetes
# against the Kubernetes API schemas offline (they ship inside the package): in a virtual
# environment of its own under ORDO_STATE_DIR, installed once. Exports
# ORDO_KUBERNETES_VALIDATE, the path of its `kubernetes-validate` command.
ORDO_KUBERNETES_VALIDATE_VERSION=${ORDO_KUBERNETES_VALIDATE_VERSION:-1.37.0}
ensure_kubernetes_validate() {
  local venv=$ORDO_STATE_DIR/kubernetes-validate
  if [ ! -x "$venv/bin/kubernetes-validate" ] || ! "$venv/bin/pip" show kubernetes-validate 2>/dev/null | grep -q "^Version: $ORDO_KUBERNETES_VALIDATE_VERSION\$"; then
    command -v python3 >/dev/null 2>&1 || apt_install python3
    python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
    say "installing kubernetes-validate $ORDO_KUBERNETES_VALIDATE_VERSION into $venv"
    rm -rf "$venv"
    mkdir -p "$ORDO_STATE_DIR"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$ORDO_KUBERNETES_VALIDATE_VERSION"
  fi
  export ORDO_KUBERNETES_VALIDATE=$venv/bin/kubernetes-validate
}

# Prometheus and promtool (Debian package prometheus), which the tests of the alert and
# recording rules run: `promtool check rules`, `promtool test rules`, and a Prometheus that
# scrapes a live Ordo. The package's own service is not started (the tests run their own
# server on a free port). Exports ORDO_PROMETHEUS and ORDO_PROMTOOL, the paths of both.
ensure_prometheus() {
  if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    apt_install prometheus
  fi
  ORDO_PROMETHEUS=$(command -v prometheus)
  ORDO_PROMTOOL=$(command -v promtool)
  export ORDO_PROMETHEUS ORDO_PROMTOOL
}

# Chromium and its WebDriver (Debian packages chromium and chromium-driver), which the
# browser tests of the web consoles (tests/tests/web_*.rs) drive headless. Exports
# ORDO_CHROMIUM and ORDO_CHROMEDRIVER, the paths of both.
ensure_chromium() {
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    apt_install chromium chromium-driver
  fi
  ORDO_CHROMIUM=$(command -v chromium)
  ORDO_CHROMEDRIVER=$(command -v chromedriver)
  export ORDO_CHROMIUM ORDO_CHROMEDRIVER
}

# axe-core (from npm), the accessibility checker the browser tests inject into each page:
# installed once into ORDO_STATE_DIR/axe-core (Node.js and npm from Debian when missing).
# Exports ORDO_AXE_CORE, the path of its script.
ORDO_AXE_CORE_VERSION=${ORDO_AXE_CORE_VERSION:-4.10.3}
ensure_axe_core() {
  local dir=$ORDO_STATE_DIR/axe-core
  local script=$dir/node_modules/axe-core/axe.min.js
  if [ ! -f "$script" ] || ! grep -q "\"version\": \"$ORDO_AXE_CORE_VERSION\"" "$dir/node_modules/axe-core/package.json" 2>/dev/null; then
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    say "installing axe-core $ORDO_AXE_CORE_VERSION into $dir"
    rm -rf "$dir"
    mkdir -p "$dir"
    (cd "$dir" && npm install --no-audit --no-fund --silent "axe-core@$ORDO_AXE_CORE_VERSION" >/dev/null)
  fi
  export ORDO_AXE_CORE=$script
}

# A random secret of 32 bytes as 43 URL-safe characters, without openssl.
random_secret() {
  head -c 32 /dev/urandom | base64 | tr -d '=\n' | tr '+/' '-_'
}

# The secrets every run of Ordo on this machine shares: made on first use into
# $ORDO_SECRETS_FILE (mode 0600, only this user can read it), reused afterwards; a name
# missing from an older file is added. Exports each one the environment does not already set
# (a value given by the caller wins).
ensure_secrets() {
  local names=(
    ORDO_JWT_SECRET
    ORDO_PAYMENT_SECRET
    ORDO_TICKET_SECRET
    ORDO_BOOTSTRAP_ADMIN_PASSWORD
    ORDO_NATS_ORDO_PASSWORD
    ORDO_NATS_RELAY_PASSWORD
    ORDO_NATS_WORKER_PASSWORD
    ORDO_NATS_GATEWAY_PASSWORD
    ORDO_NATS_OPERATOR_PASSWORD
    ORDO_NATS_ANALYST_PASSWORD
  )
  mkdir -p "$ORDO_STATE_DIR"
  (
    umask 077
    touch "$ORDO_SECRETS_FILE"
  )
  chmod 600 "$ORDO_SECRETS_FILE"
  local name added=0
  for name in "${names[@]}"; do
    if ! grep -q "^$name=" "$ORDO_SECRETS_FILE"; then
      [ "$added" -eq 0 ] && say "generating secrets into $ORDO_SECRETS_FILE"
      # The admin password also meets Ordo's rule of a letter and a digit.
      printf '%s=%s\n' "$name" "$(random_secret)a1" >>"$ORDO_SECRETS_FILE"
      added=1
    fi
  done
  local line value
  while IFS= read -r line; do
    name=${line%%=*}
    value=${line#*=}
    case $name in ORDO_[A-Z_]*) ;; *) continue ;; esac
    [ -n "${!name:-}" ] || export "$name=$value"
  done <"$ORDO_SECRETS_FILE"
}
