package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Container is what a cgroup path tells of a process's container.
type Container struct {
	ID      string // 64 lower-case hex digits; "" outside a container
	Runtime string // "containerd", "cri-o", "docker", "podman", or "" (cgroupfs driver: not named)
	PodUID  string // the kubelet's pod UID with dashes, under kubepods only
}

// ErrUnknownLayout reports a cgroup path that belongs to a container runtime
// or the kubelet but in which no container id was found.
var ErrUnknownLayout = errors.New("unknown cgroup layout")

// maxFile bounds what Read takes from a cgroup file (a v1 host has a dozen
// short lines).
const maxFile = 64 << 10

// Read parses <procRoot>/<pid>/cgroup (procRoot "" is /proc).
func Read(procRoot string, pid uint32) (Container, error) {
	if procRoot == "" {
		procRoot = "/proc"
	}
	f, err := os.Open(filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10), "cgroup"))
	if err != nil {
		return Container{}, fmt.Errorf("reading cgroup of pid %d: %w", pid, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile))
	if err != nil {
		return Container{}, fmt.Errorf("reading cgroup of pid %d: %w", pid, err)
	}
	return Parse(b)
}

// Parse reads the contents of a /proc/<pid>/cgroup file: cgroup v2 ("0::/path"),
// v1 ("N:controllers:/path") or both (hybrid). The v2 line is preferred; among
// v1 lines the first that names a container wins. A process outside any
// container (a host service, the root cgroup, a user session) yields the zero
// Container and no error. A path that belongs to a runtime or the kubelet but
// names no container yields ErrUnknownLayout (with the pod UID if one was found).
func Parse(b []byte) (Container, error) {
	var best Container
	var unknown error
	for n := 1; len(b) > 0; n++ {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) == 0 {
			continue
		}
		id, rest, ok1 := bytes.Cut(line, []byte{':'})
		ctrl, path, ok2 := bytes.Cut(rest, []byte{':'})
		if !ok1 || !ok2 || len(id) == 0 || len(path) == 0 || path[0] != '/' {
			return Container{}, fmt.Errorf("cgroup line %d %q: want hierarchy:controllers:/path", n, truncate(line))
		}
		c, err := ParsePath(string(path))
		if err != nil && unknown == nil {
			unknown = err
		}
		v2 := string(id) == "0" && len(ctrl) == 0
		switch {
		case c.ID != "" && v2:
			return c, nil
		case c.ID != "" && best.ID == "":
			best = c
		case c.PodUID != "" && best.PodUID == "":
			best.PodUID = c.PodUID
		}
	}
	if best.ID != "" {
		return best, nil
	}
	return best, unknown
}

func truncate(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

// runtimes maps the prefix of a scope (systemd driver) or directory
// (cgroupfs driver) to the runtime that creates it.
var runtimes = []struct{ prefix, runtime string }{
	{"cri-containerd-", "containerd"},
	{"crio-conmon-", "cri-o"}, // CRI-O's monitor process of the container
	{"crio-", "cri-o"},
	{"docker-", "docker"},
	{"libpod-conmon-", "podman"},
	{"libpod-", "podman"},
	{"nerdctl-", "containerd"},
}

// ParsePath reads one cgroup path, e.g.
// "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope".
func ParsePath(path string) (Container, error) {
	var c Container
	suspect := false // the path belongs to a runtime or the kubelet
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, seg := range segs {
		if strings.HasSuffix(seg, ".service") || seg == "" {
			continue // a host daemon (containerd.service, docker.service) is no container
		}
		if strings.Contains(seg, "kubepods") || seg == "docker" || seg == "libpod_parent" || seg == "crio" {
			suspect = true
		}
		if uid, ok := podUID(seg); ok {
			c.PodUID, suspect = uid, true
			continue
		}
		name := strings.TrimSuffix(seg, ".scope")
		for _, r := range runtimes {
			if rest, ok := strings.CutPrefix(name, r.prefix); ok {
				suspect = true
				if isID(rest) {
					c.ID, c.Runtime = rest, r.runtime
				}
				break
			}
		}
		if isID(seg) && i > 0 { // the innermost id wins (kind: a pod's container inside a node's)
			c.ID, c.Runtime = seg, ""
			switch segs[i-1] {
			case "docker":
				c.Runtime = "docker"
			case "crio":
				c.Runtime = "cri-o"
			}
		}
	}
	if c.ID == "" && suspect {
		return c, fmt.Errorf("%w: no container id in %q", ErrUnknownLayout, path)
	}
	return c, nil
}

// podUID reads "pod<uid>" (cgroupfs driver) and "…-pod<uid_with_underscores>.slice"
// (systemd driver).
func podUID(seg string) (string, bool) {
	var s string
	if rest, ok := strings.CutSuffix(seg, ".slice"); ok {
		i := strings.LastIndex(rest, "-pod")
		if i < 0 || !strings.Contains(rest[:i], "kubepods") {
			return "", false
		}
		s = strings.ReplaceAll(rest[i+4:], "_", "-")
	} else if rest, ok := strings.CutPrefix(seg, "pod"); ok {
		s = rest
	} else {
		return "", false
	}
	if !isUID(s) {
		return "", false
	}
	return s, true
}

func isID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isUID checks the 8-4-4-4-12 hex form.
func isUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}
