//go:build linux

package packet

// Probe opens n rings of geometry geo on iface in the namespace at nsPath
// ("" = this process's), joined in a fanout group when n > 1, as Start
// does, and closes them: whether the packet capture can work here
// (`zerotrace doctor`). The rings accept no frame while open.
func Probe(nsPath, iface string, geo Geometry, n int) error {
	rings, err := OpenRingGroup(nsPath, iface, dropAll, geo, n)
	for _, r := range rings {
		r.Close()
	}
	return err
}
