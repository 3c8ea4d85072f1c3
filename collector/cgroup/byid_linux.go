//go:build linux

package cgroup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ByID finds a cgroup's path from its id: the cgroup v2 id the kernel gives
// BPF programs (bpf_get_current_cgroup_id), the inode number of the
// cgroup's directory. It opens the directory by a file handle on the
// cgroup2 mount (open_by_handle_at, which needs CAP_DAC_READ_SEARCH) and
// reads its path back from the descriptor: three system calls, whatever the
// number of cgroups, and a cache of the paths found. A cgroup removed since
// the id was taken is not found.
type ByID struct {
	// Mount is the cgroup2 mount; "" is /sys/fs/cgroup, or
	// /sys/fs/cgroup/unified on a host with v1 controllers too.
	Mount string

	once  sync.Once
	mnt   string
	fd    int
	err   error
	mu    sync.Mutex
	paths map[uint64]string
}

// fileIDKernfs is the kernel's FILEID_KERNFS handle type: the handle is the
// node's 64-bit id.
const fileIDKernfs = 0xfe

// pathsLimit bounds the cache (a node has hundreds of containers).
const pathsLimit = 4096

// ErrNoCgroup2 reports a host without a cgroup2 mount.
var ErrNoCgroup2 = errors.New("no cgroup2 mount")

// Path returns the path of cgroup id below the cgroup2 mount's root, as
// /proc/<pid>/cgroup's "0::" line writes it ("/" for the root).
func (r *ByID) Path(id uint64) (string, error) {
	r.once.Do(r.open)
	if r.err != nil {
		return "", r.err
	}
	r.mu.Lock()
	p, ok := r.paths[id]
	r.mu.Unlock()
	if ok {
		return p, nil
	}
	var h [8]byte
	binary.NativeEndian.PutUint64(h[:], id)
	fd, err := unix.OpenByHandleAt(r.fd, unix.NewFileHandle(fileIDKernfs, h[:]), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return "", fmt.Errorf("opening cgroup %d: %w", id, err)
	}
	full, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	unix.Close(fd)
	if err != nil {
		return "", fmt.Errorf("reading the path of cgroup %d: %w", id, err)
	}
	p, ok = strings.CutPrefix(full, r.mnt)
	if !ok || (p != "" && p[0] != '/') {
		return "", fmt.Errorf("cgroup %d at %s: outside %s", id, full, r.mnt)
	}
	if p == "" {
		p = "/"
	}
	r.mu.Lock()
	if r.paths == nil || len(r.paths) >= pathsLimit {
		r.paths = map[uint64]string{}
	}
	r.paths[id] = p
	r.mu.Unlock()
	return p, nil
}

// open opens the cgroup2 mount, kept open for the ByID's life.
func (r *ByID) open() {
	mounts := []string{r.Mount}
	if r.Mount == "" {
		mounts = []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}
	}
	for _, m := range mounts {
		var st unix.Statfs_t
		if unix.Statfs(m, &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
			continue
		}
		fd, err := unix.Open(m, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			r.err = fmt.Errorf("opening %s: %w", m, err)
			return
		}
		r.mnt, r.fd = strings.TrimSuffix(m, "/"), fd
		return
	}
	r.err = fmt.Errorf("looking in %s: %w", strings.Join(mounts, ", "), ErrNoCgroup2)
}
