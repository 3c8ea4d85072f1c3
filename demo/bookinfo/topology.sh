# The demo topology (sourced by up and down). Two nodes joined by a veth that
# carries a VXLAN tunnel; pods are namespaces behind each node's bridge.
#
#   node2 (10.203.2.0/24): loadgen .10, productpage .11, ratings .12
#   node1 (10.203.1.0/24): details .10, reviews .11
#   underlay: underlay1 10.204.0.1 ── underlay2 10.204.0.2, VXLAN 42 (vx, 10.204.100.x)
DEMO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$DEMO_DIR/../.." && pwd)
RUN=${ZT_DEMO_RUN:-$DEMO_DIR/.run}
NS=${ZT_DEMO_NS:-zt-demo}  # prefix of every namespace; tests use their own
PODS=(loadgen productpage ratings details reviews)
# ZT_OBJECT_STORE=1: a SeaweedFS S3 server on loopback, both collectors
# upload to one bucket (docs/demo.md). Ports S3_PORT..S3_PORT+7.
S3_PORT=${ZT_S3_PORT:-18333}
S3_BUCKET=zerotrace-demo
S3_PREFIX=bookinfo
S3_ACCESS_KEY=zerotrace-demo
S3_SECRET_KEY=zerotrace-demo-secret
declare -A NODE=([loadgen]=node2 [productpage]=node2 [ratings]=node2 [details]=node1 [reviews]=node1)
declare -A IP=([loadgen]=10.203.2.10 [productpage]=10.203.2.11 [ratings]=10.203.2.12 [details]=10.203.1.10 [reviews]=10.203.1.11)
declare -A GW=([node1]=10.203.1.1 [node2]=10.203.2.1)
declare -A UNDERLAY=([node1]=10.204.0.1 [node2]=10.204.0.2)
declare -A VXIP=([node1]=10.204.100.1 [node2]=10.204.100.2)
declare -A PEER=([node1]=node2 [node2]=node1)
declare -A PODNET=([node1]=10.203.1.0/24 [node2]=10.203.2.0/24)
