//go:build linux

package main

// Profiles of `zerotrace collect` (--cpu-profile, --alloc-profile): for
// finding where the collector's time per span goes (docs/capture.md,
// "Where the collector's µs per span go"). They are the command's own
// flags, taken off the arguments before the collector's configuration reads
// them, because they configure no collector.

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
)

// profileFlags are the profile outputs named on the command line.
type profileFlags struct {
	cpu, alloc string
	cpuFile    *os.File
}

// takeProfileFlags removes --cpu-profile and --alloc-profile (FILE or =FILE)
// from args.
func takeProfileFlags(args []string) ([]string, profileFlags, error) {
	var p profileFlags
	var rest []string
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") || (name != "cpu-profile" && name != "alloc-profile") {
			rest = append(rest, args[i])
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, p, fmt.Errorf("flag --%s needs a file", name)
			}
			i++
			val = args[i]
		}
		if name == "cpu-profile" {
			p.cpu = val
		} else {
			p.alloc = val
		}
	}
	return rest, p, nil
}

// start begins the CPU profile, if one was asked for.
func (p *profileFlags) start() error {
	if p.cpu == "" {
		return nil
	}
	f, err := os.Create(p.cpu)
	if err != nil {
		return fmt.Errorf("creating CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("starting CPU profile: %w", err)
	}
	p.cpuFile = f
	return nil
}

// stop ends the CPU profile and writes the allocation profile (every
// allocation since the start, sampled as runtime.MemProfileRate says).
func (p *profileFlags) stop() error {
	if p.cpuFile != nil {
		pprof.StopCPUProfile()
		if err := p.cpuFile.Close(); err != nil {
			return fmt.Errorf("writing CPU profile: %w", err)
		}
	}
	if p.alloc == "" {
		return nil
	}
	runtime.GC() // the profile is as of the last GC
	f, err := os.Create(p.alloc)
	if err != nil {
		return fmt.Errorf("creating allocation profile: %w", err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		return fmt.Errorf("writing allocation profile: %w", err)
	}
	return nil
}
