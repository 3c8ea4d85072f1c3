package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	os.WriteFile(file, []byte(`
node: from-yaml
namespace: bookinfo
data_dir: /yaml/data
data_group: yaml-group
log_level: debug
memory_limit_mb: 300
ebpf:
  payload_size: 2048
  span_budget: 5000
  netns: [a, b]
store:
  seal_interval: 3s
repeated_keys:
  exchanges: 40
packet:
  block_size: 4194304
  blocks: 8
  fanout: 3
services:
  - process: ^python3
    cmdline: productpage
    service: productpage
`), 0o644)
	env := map[string]string{"ZEROTRACE_CONFIG": file, "ZEROTRACE_DATA_DIR": "/env/data", "ZEROTRACE_PAYLOAD_SIZE": "4096",
		"ZEROTRACE_DATA_GROUP": "env-group", "ZEROTRACE_MEMORY_LIMIT_MB": "250", "ZEROTRACE_PACKET_FANOUT": "4"}
	cfg, err := Load([]string{"--payload-size", "512", "--data-group", "grafana"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Node != "from-yaml" || cfg.DataDir != "/env/data" || cfg.DataGroup != "grafana" || cfg.EBPF.PayloadSize != 512 || cfg.LogLevel != "debug" ||
		cfg.Store.SealInterval != 3*time.Second || cfg.Namespace != "bookinfo" || strings.Join(cfg.EBPF.NetNS, ",") != "a,b" || cfg.Store.BatchInterval != time.Second ||
		cfg.Packet.BlockSize != 4<<20 || cfg.Packet.Blocks != 8 || cfg.EBPF.SpanBudget != 5000 || cfg.MemoryLimitMB != 250 ||
		cfg.Packet.Fanout != 4 || cfg.RepeatedKeys.Exchanges != 40 || cfg.RepeatedKeys.Window != time.Minute {
		t.Fatalf("precedence: %+v", cfg)
	}
	if cfg, err := Load([]string{"--memory-limit-mb", "0"}, func(k string) string { return env[k] }); err != nil || cfg.MemoryLimitMB != 0 {
		t.Errorf("--memory-limit-mb 0 over the environment: %v %d", err, cfg.MemoryLimitMB)
	}
	if cfg, err := Load([]string{"--packet-fanout", "2"}, func(k string) string { return env[k] }); err != nil || cfg.Packet.Fanout != 2 {
		t.Errorf("--packet-fanout 2 over the environment: %v %d", err, cfg.Packet.Fanout)
	}
	delete(env, "ZEROTRACE_PACKET_FANOUT")
	if cfg, err := Load(nil, func(k string) string { return env[k] }); err != nil || cfg.Packet.Fanout != 3 {
		t.Errorf("packet.fanout from YAML: %v %d", err, cfg.Packet.Fanout)
	}
	if s := cfg.ServiceOf("python3", "python3 /srv/productpage.py"); s != "productpage" {
		t.Errorf("service rule: %q", s)
	}
	if s := cfg.ServiceOf("python3", "python3 other.py"); s != "python3" {
		t.Errorf("default service: %q", s)
	}
	d := Defaults()
	if d.DataDir != "/var/lib/zerotrace" || !d.EBPF.Enabled || d.Packet.BlockSize != 1<<20 || d.Packet.Blocks != 16 || d.MemoryLimitMB != 200 || d.Packet.Fanout != 1 {
		t.Errorf("defaults %+v", d)
	}
	for name, args := range map[string][]string{
		"payload too big": {"--payload-size", "70000"},
		"bad node":        {"--node", "a/b"},
		"stray argument":  {"oops"},
		"bad level":       {"--log-level", "chatty"},
		"negative budget": {"--span-budget", "-5"},
		"negative memory": {"--memory-limit-mb", "-2"},
		"no fanout ring":  {"--packet-fanout", "0"},
		"fanout too big":  {"--packet-fanout", "65"},
	} {
		if _, err := Load(args, func(string) string { return "" }); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, yaml := range map[string]string{
		"block size not a power of two": "packet: {block_size: 1000000}\n",
		"block size too small":          "packet: {block_size: 4096}\n",
		"one block":                     "packet: {blocks: 1}\n",
		"no repeated exchange":          "repeated_keys: {exchanges: -1}\n",
		"a repeated-key window of 1 ms": "repeated_keys: {window: 1ms}\n",
	} {
		os.WriteFile(file, []byte(yaml), 0o644)
		want := "packet ring"
		if strings.HasPrefix(yaml, "repeated_keys") {
			want = "repeated_keys"
		}
		if _, err := Load(nil, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	os.WriteFile(file, []byte("nod: typo\n"), 0o644)
	if _, err := Load(nil, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "nod") {
		t.Errorf("unknown YAML key: %v", err)
	}
}

func TestConfigWorkloads(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte(`
kubernetes:
  enabled: "true"
  kubelet_url: https://${NODE_IP}:10250/pods
  proxy_containers: [istio-proxy]
  deleted_grace: 1m
pods:
  - {netns: zt-demo-productpage, interfaces: [v-productpage], pod: productpage, workload: productpage}
proxy_processes: ['^nginx']
`), 0o644)
	cfg, err := Load([]string{"--config", file}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kubernetes.Enabled != "true" || cfg.Kubernetes.DeletedGrace != time.Minute || len(cfg.Pods) != 1 ||
		cfg.Pods[0].Interfaces[0] != "v-productpage" || !cfg.IsProxyProcess("nginx") || cfg.IsProxyProcess("python3") {
		t.Fatalf("%+v", cfg)
	}
	for name, y := range map[string]string{
		"enabled typo":     "kubernetes: {enabled: yes-please}\n",
		"pod without name": "pods: [{netns: x}]\n",
		"pod without ns":   "pods: [{pod: x}]\n",
		"bad proxy regexp": "proxy_processes: ['(']\n",
	} {
		os.WriteFile(file, []byte(y), 0o644)
		if _, err := Load([]string{"--config", file}, func(string) string { return "" }); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
