//go:build linux

package doctor

import (
	"context"
	"time"

	"github.com/zerotrace/zerotrace/collector/agent"
)

// Options configure Run.
type Options struct {
	Config agent.Config        // the collector's configuration (agent.Load)
	Env    func(string) string // os.Getenv: credentials, KUBERNETES_SERVICE_HOST
	// ProcRoot and CgroupRoot are /proc and /sys/fs/cgroup unless set
	// (tests).
	ProcRoot, CgroupRoot string
	Timeout              time.Duration // per remote service (default 10 s)
}

// Run makes every check, in the order the collector would need them.
func Run(ctx context.Context, opt Options) Report {
	if opt.ProcRoot == "" {
		opt.ProcRoot = "/proc"
	}
	if opt.CgroupRoot == "" {
		opt.CgroupRoot = "/sys/fs/cgroup"
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	cfg := &opt.Config
	r := Report{Node: cfg.Node}
	r.add(kernelChecks()...)
	caps, err := effectiveCaps()
	if err != nil {
		r.add(unknown("capabilities", err.Error()))
	} else {
		r.add(capabilitiesCheck(cfg, caps), memlockCheck(caps))
	}
	r.add(featureChecks(cfg.EBPF.Enabled)...)
	r.add(programChecks(cfg.EBPF.Enabled)...)
	r.add(packetChecks(cfg)...)
	r.add(cgroupChecks(opt.ProcRoot, opt.CgroupRoot)...)
	r.add(dataDirCheck(cfg))
	r.add(objectStoreChecks(ctx, cfg, opt.Env, opt.Timeout)...)
	r.add(kubernetesChecks(ctx, cfg, opt.Env, opt.Timeout)...)
	return r
}
