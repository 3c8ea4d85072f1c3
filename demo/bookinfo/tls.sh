# TLS for the demo (sourced by up after topology.sh): a demo CA and a
# certificate per pod made with openssl, and the sidecar's TLS directives for
# the variant's switches TLS_APPS (on: apps ↔ sidecar over TLS) and TLS_MESH
# (mtls: sidecar ↔ sidecar mutual TLS). docs/demo.md "TLS variants".

# mkcerts DIR: DIR/ca.pem (the demo CA, key ca.key) and DIR/<pod>.pem,
# DIR/<pod>.key for every pod, signed by the CA, valid for the pod's name (the
# sidecars' upstream names, which nginx verifies), its pod IP and 127.0.0.1
# (what the applications dial: their sidecar's outbound listener, and the
# sidecar its application). EC P-256 keys; usable as server and client
# certificates (mutual TLS between sidecars).
mkcerts() {
  local dir=$1 p
  rm -rf "$dir"; mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/O=zerotrace demo/CN=zerotrace demo CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  for p in "${PODS[@]}"; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -subj "/O=zerotrace demo/CN=$p" \
      -addext "subjectAltName=DNS:$p,IP:${IP[$p]},IP:127.0.0.1" \
      -addext "extendedKeyUsage=serverAuth,clientAuth" -addext "basicConstraints=critical,CA:FALSE" \
      -keyout "$dir/$p.key" -out "$dir/$p.pem" 2>/dev/null
    openssl verify -CAfile "$dir/ca.pem" "$dir/$p.pem" >/dev/null
  done
  chmod 644 "$dir"/*.key   # the services run as root here, but nginx workers do not
}

# sidecar_tls POD sets the values up substitutes in sidecar.conf.tmpl:
# tls_http (http-level: TLS 1.3 offered both ways, which nginx 1.22 leaves
# out by default, the certificate and upstream verification), in_ssl and
# out_ssl (the listeners' ssl flag), in_verify (client certificates asked of
# the other sidecars), app_scheme and mesh_scheme (the upstreams' scheme) and
# mesh_cert (the client certificate a sidecar presents to the others).
sidecar_tls() {
  local p=$1 c=$RUN/certs
  tls_http="" in_ssl="" out_ssl="" in_verify="" app_scheme=http mesh_scheme=http mesh_cert=""
  if [ "$TLS_APPS" = on ] || [ "$TLS_MESH" = mtls ]; then
    tls_http="ssl_protocols TLSv1.2 TLSv1.3; proxy_ssl_protocols TLSv1.2 TLSv1.3; ssl_certificate $c/$p.pem; ssl_certificate_key $c/$p.key; proxy_ssl_trusted_certificate $c/ca.pem; proxy_ssl_verify on; proxy_ssl_verify_depth 2; proxy_ssl_server_name on;"
  fi
  if [ "$TLS_APPS" = on ]; then
    out_ssl=ssl app_scheme=https
  fi
  if [ "$TLS_MESH" = mtls ]; then
    in_ssl=ssl mesh_scheme=https
    in_verify="ssl_verify_client on; ssl_client_certificate $c/ca.pem;"
    mesh_cert="proxy_ssl_certificate $c/$p.pem; proxy_ssl_certificate_key $c/$p.key;"
  fi
}
