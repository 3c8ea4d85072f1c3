package gotls

import "fmt"

// Layout holds the struct offsets from a *tls.Conn to its socket's file
// descriptor, and the registers of Go's internal ABI (ABIInternal) for
// func (c *Conn) Write/Read(b []byte) (n int, err error): c in RAX, b's
// pointer and length in RBX and RCX at entry; n in RAX, err's type word in
// RBX at the RET.
type Layout struct {
	ConnData uint64 // tls.Conn.conn's data word (the *net.TCPConn)
	ConnFD   uint64 // net.TCPConn -> conn.fd (*netFD)
	FDSysfd  uint64 // netFD.pfd.Sysfd (poll.FD after its 16-byte fdMutex)
	// RawInput and Input are the offsets of tls.Conn.rawInput (a
	// bytes.Buffer: ciphertext read and not yet decrypted) and
	// tls.Conn.input (a bytes.Reader: plaintext of a record not yet
	// returned), 0 when unknown. They give the TCP sequence number of the
	// record a Read decrypts when earlier reads buffered it.
	RawInput, Input uint64
	FirstMinor      int // the Go versions it was checked for: 1.FirstMinor ..
	LastMinor       int // .. 1.LastMinor
}

// layouts lists the layouts known, by Go version. Go 1.17 introduced the
// register ABI on amd64 (older versions pass arguments on the stack). In
// every version from 1.17 to 1.26 tls.Conn begins with conn net.Conn (an
// interface: type word, then data word), net.TCPConn embeds conn whose
// only field is fd *netFD, netFD begins with pfd poll.FD, and poll.FD
// begins with fdmu fdMutex{state uint64; rsema, wsema uint32} followed by
// Sysfd int. The collector's test checks these offsets against the DWARF
// of a binary built by the Go toolchain at hand.
//
// tls.Conn's rawInput and input move between versions: they are read from
// the binary's DWARF when it has some, else taken from this table for the
// versions whose offsets were checked (go1.26, against its DWARF).
var layouts = []Layout{
	{ConnData: 8, ConnFD: 0, FDSysfd: 16, FirstMinor: 17, LastMinor: 25},
	{ConnData: 8, ConnFD: 0, FDSysfd: 16, RawInput: 672, Input: 712, FirstMinor: 26, LastMinor: 26},
}

// Field offsets inside bytes.Buffer and bytes.Reader (unchanged since Go 1).
const (
	BufferLen = 8  // bytes.Buffer.buf's length word
	BufferOff = 24 // bytes.Buffer.off
	ReaderLen = 8  // bytes.Reader.s's length word
	ReaderI   = 24 // bytes.Reader.i
)

// LayoutFor returns the layout of Go version v ("go1.26.8"), or
// ErrUnknownLayout.
func LayoutFor(v string) (Layout, error) {
	minor, err := goMinor(v)
	if err != nil {
		return Layout{}, err
	}
	for _, l := range layouts {
		if minor >= l.FirstMinor && minor <= l.LastMinor {
			return l, nil
		}
	}
	if minor < 17 {
		return Layout{}, fmt.Errorf("%w: %s predates the register ABI (Go 1.17)", ErrUnknownLayout, v)
	}
	return Layout{}, fmt.Errorf("%w: %s is newer than the last version checked (go1.26)", ErrUnknownLayout, v)
}
