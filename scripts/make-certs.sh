#!/usr/bin/env bash
# Makes a private certificate authority and one certificate per node, for
# bby's "tls" config field (docs/security.md).
#
#   scripts/make-certs.sh DIR NAME:ADDR[,ADDR...] [NAME:ADDR[,ADDR...] ...]
#
#   scripts/make-certs.sh certs node1:10.0.0.1 node2:10.0.0.2 node3:10.0.0.3,node3.lan
#
# writes DIR/ca.pem and DIR/ca-key.pem (the authority: keep ca-key.pem off the
# nodes), and per node DIR/NAME.pem (its certificate, signed by the authority)
# and DIR/NAME-key.pem (its private key). Each ADDR is an IP address (v4 or v6)
# or a DNS name: a client or peer checks that the address it dials is one of
# them, so list every address the node is dialed at (its "advertise" address).
# Every certificate also names 127.0.0.1, ::1 and localhost, so that `bby`
# works on the node's own machine.
#
# An authority already in DIR is reused (add a node later with the same
# command); an existing node certificate is replaced. Keys are mode 600.
# Needs only openssl (1.1.1 or 3.x). Certificates are valid for 825 days.
set -euo pipefail

usage() {
  echo "usage: $0 DIR NAME:ADDR[,ADDR...] [NAME:ADDR[,ADDR...] ...]" >&2
  echo "example: $0 certs node1:10.0.0.1 node2:10.0.0.2" >&2
  exit 2
}

[ "$#" -ge 2 ] || usage
command -v openssl >/dev/null 2>&1 || { echo "$0: openssl is not installed; install it (Debian: apt-get install openssl)" >&2; exit 1; }

dir=$1
shift
days=825

# Check every argument before writing anything.
for spec in "$@"; do
  name=${spec%%:*}
  addrs=${spec#*:}
  if [ "$name" = "$spec" ] || [ -z "$name" ] || [ -z "$addrs" ]; then
    echo "$0: $spec is not NAME:ADDR[,ADDR...], for example node1:10.0.0.1" >&2
    exit 2
  fi
  if ! [[ "$name" =~ ^[A-Za-z0-9_-]+$ ]] || [ "$name" = ca ]; then
    echo "$0: node name $name must be letters, digits, _ or - (and not \"ca\")" >&2
    exit 2
  fi
done

mkdir -p "$dir"
umask 077

# Runs a command, showing its output only when it fails.
quiet() {
  local out
  if ! out=$("$@" 2>&1); then
    echo "$0: $* failed:" >&2
    echo "$out" >&2
    exit 1
  fi
}

san_entry() {
  # An IP address (v4, or v6 with a colon) or a DNS name.
  if [[ "$1" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || [[ "$1" == *:* ]]; then echo "IP:$1"; else echo "DNS:$1"; fi
}

if [ ! -f "$dir/ca.pem" ] || [ ! -f "$dir/ca-key.pem" ]; then
  quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" -days "$days" \
    -subj "/CN=bby mesh CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
  chmod 600 "$dir/ca-key.pem"
  chmod 644 "$dir/ca.pem"
  echo "made $dir/ca.pem (give it to every node and client as \"ca\") and $dir/ca-key.pem (keep it safe, off the nodes)"
fi

for spec in "$@"; do
  name=${spec%%:*}
  addrs=${spec#*:}
  sans="IP:127.0.0.1,IP:::1,DNS:localhost"
  IFS=',' read -r -a list <<<"$addrs"
  for addr in "${list[@]}"; do
    [ -n "$addr" ] && sans="$sans,$(san_entry "$addr")"
  done
  ext=$(mktemp)
  csr=$(mktemp)
  trap 'rm -f "$ext" "$csr"' EXIT
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' "$sans" >"$ext"
  quiet openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/$name-key.pem" -out "$csr" -subj "/CN=$name"
  quiet openssl x509 -req -in "$csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial \
    -out "$dir/$name.pem" -days "$days" -extfile "$ext"
  rm -f "$ext" "$csr" "$dir/ca.srl"
  chmod 600 "$dir/$name-key.pem"
  chmod 644 "$dir/$name.pem"
  echo "made $dir/$name.pem and $dir/$name-key.pem for $addrs"
done
