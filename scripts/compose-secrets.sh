#!/usr/bin/env bash
# Makes the secrets docker-compose.yml needs, once, on this machine; nothing here is
# committed (.env and deploy/secrets/ are git- and docker-ignored):
#   .env                        NATS passwords of n1..n3, admin and monitor (read by compose)
#   deploy/secrets/cluster.key  the cluster key: reports and config changes are signed with it
#   deploy/secrets/tls/         a CA, one certificate per broker (broker1..3, localhost,
#                               127.0.0.1) and a client certificate for stubs on the host
# Run again with --force to replace them all (every node must then be restarted).
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

if [ -e .env ] || [ -e deploy/secrets ]; then
  if [ "${1:-}" != "--force" ]; then
    echo "compose-secrets: .env or deploy/secrets/ exists; pass --force to replace them" >&2
    exit 1
  fi
  rm -rf deploy/secrets
fi
command -v openssl >/dev/null || { echo "compose-secrets: openssl is needed" >&2; exit 1; }

umask 077
mkdir -p deploy/secrets/tls
{
  echo "# Made by scripts/compose-secrets.sh; never commit this file."
  for user in N1 N2 N3 ADMIN MONITOR; do
    echo "PEERBROKER_${user}_PASS=$(openssl rand -hex 24)"
  done
} > .env
{
  echo "# Cluster key (scripts/compose-secrets.sh). One secret per line: the first signs, all verify."
  openssl rand -hex 32
} > deploy/secrets/cluster.key

tls=deploy/secrets/tls
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$tls/ca.key" -out "$tls/ca.crt" -days 825 -subj "/CN=peerbroker demo CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
issue() { # name, subjectAltName
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' "$2" > "$tls/$1.ext"
  openssl req "${ec[@]}" -keyout "$tls/$1.key" -out "$tls/$1.csr" -subj "/CN=$1" 2>/dev/null
  openssl x509 -req -in "$tls/$1.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
    -out "$tls/$1.crt" -days 825 -extfile "$tls/$1.ext" 2>/dev/null
  rm -f "$tls/$1.csr" "$tls/$1.ext"
}
for n in 1 2 3; do issue "broker$n" "DNS:broker$n,DNS:localhost,IP:127.0.0.1"; done
issue client "DNS:client"
rm -f "$tls/ca.key" "$tls/ca.srl" # nothing more is signed; a new CA comes with --force

# The containers run as another user: the directory stays private to you, the files
# inside are readable so the bind-mounted secrets can be read in the containers.
chmod 700 deploy/secrets deploy/secrets/tls
chmod 644 deploy/secrets/cluster.key "$tls"/*
echo "compose-secrets: wrote .env, deploy/secrets/cluster.key and deploy/secrets/tls/"
