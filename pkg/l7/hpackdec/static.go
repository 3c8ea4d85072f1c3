package hpackdec

import "golang.org/x/net/http2/hpack"

// static is HPACK's static table (RFC 7541 Appendix A), read from
// golang.org/x/net's decoder one index at a time rather than copied.
var static = func() []hpack.HeaderField {
	var out []hpack.HeaderField
	d := hpack.NewDecoder(0, nil)
	for i := 1; ; i++ {
		fs, err := d.DecodeFull([]byte{0x80 | byte(i)})
		if err != nil || len(fs) != 1 {
			break
		}
		out = append(out, fs[0])
	}
	return out
}()
