package spangen

import (
	"testing"

	"github.com/zerotrace/zerotrace/pkg/span"
)

// The written-down shape of one Bookinfo request: label → parent label.
var wantTree = [][2]string{
	{"loadgen>productpage: loadgen c-p", ""},
	{"loadgen>productpage: loadgen-proxy s-p", "loadgen>productpage: loadgen c-p"},
	{"loadgen>productpage: loadgen-proxy c-p", "loadgen>productpage: loadgen-proxy s-p"},
	{"loadgen>productpage: loadgen-vnic c", "loadgen>productpage: loadgen-proxy c-p"},
	{"loadgen>productpage: productpage-vnic s", "loadgen>productpage: loadgen-vnic c"},
	{"loadgen>productpage: productpage-proxy s-p", "loadgen>productpage: productpage-vnic s"},
	{"loadgen>productpage: productpage-proxy c-p", "loadgen>productpage: productpage-proxy s-p"},
	{"loadgen>productpage: productpage s-p", "loadgen>productpage: productpage-proxy c-p"},

	{"productpage>details: productpage c-p", "loadgen>productpage: productpage s-p"},
	{"productpage>details: productpage-proxy s-p", "productpage>details: productpage c-p"},
	{"productpage>details: productpage-proxy c-p", "productpage>details: productpage-proxy s-p"},
	{"productpage>details: productpage-vnic c", "productpage>details: productpage-proxy c-p"},
	{"productpage>details: node2-nic c-nd", "productpage>details: productpage-vnic c"},
	{"productpage>details: node1-nic s-nd", "productpage>details: node2-nic c-nd"},
	{"productpage>details: details-vnic s", "productpage>details: node1-nic s-nd"},
	{"productpage>details: details-proxy s-p", "productpage>details: details-vnic s"},
	{"productpage>details: details-proxy c-p", "productpage>details: details-proxy s-p"},
	{"productpage>details: details s-p", "productpage>details: details-proxy c-p"},

	{"productpage>reviews: productpage c-p", "loadgen>productpage: productpage s-p"},
	{"productpage>reviews: productpage-proxy s-p", "productpage>reviews: productpage c-p"},
	{"productpage>reviews: productpage-proxy c-p", "productpage>reviews: productpage-proxy s-p"},
	{"productpage>reviews: productpage-vnic c", "productpage>reviews: productpage-proxy c-p"},
	{"productpage>reviews: node2-nic c-nd", "productpage>reviews: productpage-vnic c"},
	{"productpage>reviews: node1-nic s-nd", "productpage>reviews: node2-nic c-nd"},
	{"productpage>reviews: reviews-vnic s", "productpage>reviews: node1-nic s-nd"},
	{"productpage>reviews: reviews-proxy s-p", "productpage>reviews: reviews-vnic s"},
	{"productpage>reviews: reviews-proxy c-p", "productpage>reviews: reviews-proxy s-p"},
	{"productpage>reviews: reviews s-p", "productpage>reviews: reviews-proxy c-p"},

	{"reviews>ratings: reviews c-p", "productpage>reviews: reviews s-p"},
	{"reviews>ratings: reviews-proxy s-p", "reviews>ratings: reviews c-p"},
	{"reviews>ratings: reviews-proxy c-p", "reviews>ratings: reviews-proxy s-p"},
	{"reviews>ratings: reviews-vnic c", "reviews>ratings: reviews-proxy c-p"},
	{"reviews>ratings: node1-nic c-nd", "reviews>ratings: reviews-vnic c"},
	{"reviews>ratings: node2-nic s-nd", "reviews>ratings: node1-nic c-nd"},
	{"reviews>ratings: ratings-vnic s", "reviews>ratings: node2-nic s-nd"},
	{"reviews>ratings: ratings-proxy s-p", "reviews>ratings: ratings-vnic s"},
	{"reviews>ratings: ratings-proxy c-p", "reviews>ratings: ratings-proxy s-p"},
	{"reviews>ratings: ratings s-p", "reviews>ratings: ratings-proxy c-p"},
}

func TestPointsShape(t *testing.T) {
	pts := Points()
	if len(pts) != len(wantTree) {
		t.Fatalf("got %d points, want %d", len(pts), len(wantTree))
	}
	var ebpf, pkt int
	for i, p := range pts {
		if p.Label != wantTree[i][0] || p.Parent != wantTree[i][1] {
			t.Errorf("point %d: got %q under %q, want %q under %q", i, p.Label, p.Parent, wantTree[i][0], wantTree[i][1])
		}
		switch p.Source {
		case span.SourceEBPF:
			ebpf++
		case span.SourcePacket:
			pkt++
		}
	}
	if ebpf != 24 || pkt != 14 {
		t.Errorf("got %d eBPF and %d packet points, want 24 and 14", ebpf, pkt)
	}
}
