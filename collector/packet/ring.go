//go:build linux

// Package packet captures frames with AF_PACKET (TPACKET_V3 memory-mapped
// ring, classic BPF filter) on interfaces of any network namespace, decodes
// them (pkg/packet), follows TCP streams and turns their L7 messages into
// network spans through collector/session.
package packet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const frameSize = 1 << 11

// Ring is one AF_PACKET socket with its TPACKET_V3 receive ring.
type Ring struct {
	Iface   string
	fd      int
	mem     []byte
	block   int
	geo     Geometry
	scratch []byte // a frame with its VLAN tag put back

	// What Drain compares: frames the reader has consumed (whole blocks,
	// added once a block is handed back) and frames the kernel has written
	// into the ring (its PACKET_STATISTICS, which reset on every read,
	// summed here under statsMu so that no caller's read is lost).
	read    atomic.Uint64
	written atomic.Uint64
	statsMu sync.Mutex
	pending [2]uint32 // packets and drops read from the kernel, not yet returned by Stats
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// OpenRing opens a capture on iface inside the network namespace at nsPath
// ("" = the current one), with the classic BPF filter prog and the default
// ring geometry.
func OpenRing(nsPath, iface string, prog []unix.SockFilter) (*Ring, error) {
	return OpenRingGeometry(nsPath, iface, prog, DefaultGeometry)
}

// OpenRingGeometry is OpenRing with a ring of geometry geo.
func OpenRingGeometry(nsPath, iface string, prog []unix.SockFilter, geo Geometry) (*Ring, error) {
	if err := geo.Validate(); err != nil {
		return nil, err
	}
	var r *Ring
	err := inNetns(nsPath, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return fmt.Errorf("interface %s: %w", iface, err)
		}
		// Protocol 0: the socket receives nothing until it is bound to
		// the interface with its ring in place, so frames of every
		// interface are not queued (and dropped) in between.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		r = &Ring{Iface: iface, fd: fd, geo: geo}
		if err := r.setup(ifi.Index, prog); err != nil {
			r.Close()
			r = nil
			return err
		}
		return nil
	})
	return r, err
}

// OpenRingGroup opens n rings on iface joined in one fanout group
// (fanout.go): every frame reaches one of them, both directions of a flow
// the same one. n = 1 is OpenRingGeometry.
func OpenRingGroup(nsPath, iface string, prog []unix.SockFilter, geo Geometry, n int) ([]*Ring, error) {
	if n <= 1 {
		r, err := OpenRingGeometry(nsPath, iface, prog, geo)
		if err != nil {
			return nil, err
		}
		return []*Ring{r}, nil
	}
	var rings []*Ring
	closeAll := func() {
		for _, r := range rings {
			r.Close()
		}
	}
	for i := 0; i < n; i++ {
		// Each member accepts nothing until all have joined: a bound
		// socket outside the group sees every frame of the interface.
		r, err := OpenRingGeometry(nsPath, iface, dropAll, geo)
		if err != nil {
			closeAll()
			return nil, err
		}
		rings = append(rings, r)
	}
	if err := joinFanout(rings); err != nil {
		closeAll()
		return nil, err
	}
	for _, r := range rings {
		var err error
		if len(prog) > 0 {
			err = attachFilter(r.fd, prog)
		} else {
			err = unix.SetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0)
		}
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("filter of fanout member: %w", err)
		}
	}
	return rings, nil
}

func (r *Ring) setup(ifindex int, prog []unix.SockFilter) error {
	if len(prog) > 0 {
		if err := attachFilter(r.fd, prog); err != nil {
			return fmt.Errorf("attaching filter: %w", err)
		}
	}
	if err := unix.SetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fmt.Errorf("TPACKET_V3: %w", err)
	}
	bs, bn := r.geo.BlockSize, r.geo.Blocks
	req := unix.TpacketReq3{Block_size: uint32(bs), Block_nr: uint32(bn), Frame_size: frameSize,
		Frame_nr: uint32(bs / frameSize * bn), Retire_blk_tov: 10}
	if err := unix.SetsockoptTpacketReq3(r.fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fmt.Errorf("PACKET_RX_RING: %w", err)
	}
	mem, err := unix.Mmap(r.fd, 0, bs*bn, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_LOCKED)
	if err != nil {
		if mem, err = unix.Mmap(r.fd, 0, bs*bn, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
			return fmt.Errorf("mmap ring: %w", err)
		}
	}
	r.mem = mem
	if err := unix.Bind(r.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	return nil
}

// Frame is one captured frame; Data aliases the ring until the callback returns.
type Frame struct {
	Data     []byte
	Len      int // on the wire
	TimeNs   int64
	Outgoing bool // sent by this host on the interface
}

// Poll waits up to timeout for a filled block and calls fn for every frame in
// the ready blocks. It returns the number of frames.
func (r *Ring) Poll(timeout time.Duration, fn func(*Frame)) (int, error) {
	n := 0
	for {
		bs := r.geo.BlockSize
		b := r.mem[r.block*bs : (r.block+1)*bs]
		status := (*uint32)(unsafe.Pointer(&b[8]))
		if *status&unix.TP_STATUS_USER == 0 {
			if n > 0 {
				return n, nil
			}
			fds := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN | unix.POLLERR}}
			if _, err := unix.Poll(fds, int(timeout/time.Millisecond)); err != nil && !errors.Is(err, unix.EINTR) {
				return n, fmt.Errorf("poll: %w", err)
			}
			if *status&unix.TP_STATUS_USER == 0 {
				return n, nil
			}
		}
		num := binary.LittleEndian.Uint32(b[12:])
		off := binary.LittleEndian.Uint32(b[16:])
		var f Frame
		for i := uint32(0); i < num && int(off)+48 <= len(b); i++ {
			h := b[off:]
			next := binary.LittleEndian.Uint32(h[0:])
			sec := binary.LittleEndian.Uint32(h[4:])
			nsec := binary.LittleEndian.Uint32(h[8:])
			snap := binary.LittleEndian.Uint32(h[12:])
			wire := binary.LittleEndian.Uint32(h[16:])
			pstatus := binary.LittleEndian.Uint32(h[20:])
			mac := binary.LittleEndian.Uint16(h[24:])
			pkttype := h[48+10] // sockaddr_ll.sll_pkttype after the aligned header
			if int(mac)+int(snap) <= len(h) {
				data := h[mac : int(mac)+int(snap)]
				if pstatus&unix.TP_STATUS_VLAN_VALID != 0 && len(data) >= 12 {
					// The NIC (or veth) took the outer VLAN tag off: put it back.
					tpid := uint16(0x8100)
					if pstatus&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
						tpid = binary.LittleEndian.Uint16(h[32:])
					}
					tci := uint16(binary.LittleEndian.Uint32(h[28:]))
					r.scratch = append(r.scratch[:0], data[:12]...)
					r.scratch = binary.BigEndian.AppendUint16(r.scratch, tpid)
					r.scratch = binary.BigEndian.AppendUint16(r.scratch, tci)
					r.scratch = append(r.scratch, data[12:]...)
					data = r.scratch
				}
				f = Frame{Data: data, Len: int(wire), TimeNs: int64(sec)*1e9 + int64(nsec),
					Outgoing: pkttype == unix.PACKET_OUTGOING}
				fn(&f)
				n++
			}
			if next == 0 {
				break
			}
			off += next
		}
		r.read.Add(uint64(num)) // per block, not per frame: every frame the kernel wrote, decoded or not
		atomicStore(status, unix.TP_STATUS_KERNEL)
		r.block = (r.block + 1) % r.geo.Blocks
	}
}

// PollGroup reads every ring of a group on a goroutine of its own, calling
// fn (concurrently across members) with the member's index and each frame,
// until stop is closed; it then reads what the kernel had written into each
// ring by then (Drain, bounded by DrainBound) and returns. For tests and
// benchmarks: a Capture runs its own readers.
func PollGroup(rings []*Ring, stop <-chan struct{}, fn func(member int, f *Frame)) {
	var wg sync.WaitGroup
	for i, r := range rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			read := func(f *Frame) { fn(i, f) }
			for {
				select {
				case <-stop:
					r.Drain(time.Now().Add(DrainBound), read)
					return
				default:
				}
				r.Poll(20*time.Millisecond, read)
			}
		}()
	}
	wg.Wait()
}

// DrainBound bounds a drain of what a ring holds. The block holding the
// last frames is handed to the reader when it fills or when its retire
// timer (Retire_blk_tov, 10 ms) fires, so a drain takes tens of
// milliseconds; the bound is for a reader that cannot keep up.
const DrainBound = 10 * time.Second

// Written returns how many frames the kernel has written into the ring
// since it was opened. It reads the kernel's counters, keeping what Stats
// has not returned yet for its next call.
func (r *Ring) Written() (uint64, error) {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	if err := r.readCounters(); err != nil {
		return 0, err
	}
	return r.written.Load(), nil
}

// Read returns how many frames Poll has consumed since the ring was opened.
func (r *Ring) Read() uint64 { return r.read.Load() }

// Drain reads, on the caller's goroutine, every frame the kernel had
// written into the ring when it was called, calling fn for each, until
// deadline. Only for a ring nobody else polls. It reports whether the
// ring was drained.
func (r *Ring) Drain(deadline time.Time, fn func(*Frame)) bool {
	target, err := r.Written()
	if err != nil {
		return false
	}
	for r.read.Load() < target {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		if _, err := r.Poll(min(left, 20*time.Millisecond), fn); err != nil {
			return false
		}
	}
	return true
}

// Stats returns the kernel's packet and drop counts since the previous call.
func (r *Ring) Stats() (packets, drops uint32, err error) {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	if err := r.readCounters(); err != nil {
		return 0, 0, err
	}
	packets, drops = r.pending[0], r.pending[1]
	r.pending = [2]uint32{}
	return packets, drops, nil
}

// readCounters reads (and so resets) the kernel's counters, adding them to
// Written's sum and to what Stats returns next. Under statsMu.
func (r *Ring) readCounters() error {
	st, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return err
	}
	// The kernel counts a dropped frame in both (tp_packets += tp_drops).
	r.written.Add(uint64(st.Packets - st.Drops))
	r.pending[0] += st.Packets
	r.pending[1] += st.Drops
	return nil
}

// Close releases the ring and the socket.
func (r *Ring) Close() error {
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
	return unix.Close(r.fd)
}

// inNetns runs fn on a locked OS thread inside the namespace at path.
func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is left locked (and so discarded) if switching back fails.
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(path)
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", path, err)
			runtime.UnlockOSThread()
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering netns %s: %w", path, err)
			runtime.UnlockOSThread()
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leaving netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Send writes one raw frame on the ring's interface (tests, benchmarks).
func (r *Ring) Send(frame []byte) error {
	_, err := unix.Write(r.fd, frame)
	return err
}
