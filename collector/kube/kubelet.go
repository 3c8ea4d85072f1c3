package kube

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// KubeletOptions configure PollKubelet.
type KubeletOptions struct {
	URL             string // e.g. https://<node-ip>:10250/pods
	TokenFile       string // bearer token (the service account's); "" sends none
	InsecureTLS     bool   // kubelet serving certificates are often self-signed
	Interval        time.Duration
	ProxyContainers []string
	Warner          *Warner
}

// maxKubeletBody bounds a /pods answer (a node's pods with full specs).
const maxKubeletBody = 64 << 20

// PollKubelet fills x from the kubelet's /pods while the API server's pods
// are not listed (x.Synced("api") false): the fallback when the API server is
// unreachable. Owners come from the pod alone (a ReplicaSet named
// <deployment>-<pod-template-hash> is the Deployment's). It returns when ctx
// is done.
func PollKubelet(ctx context.Context, x *Index, opt KubeletOptions) {
	if opt.Interval <= 0 {
		opt.Interval = 10 * time.Second
	}
	if opt.Warner == nil {
		opt.Warner = &Warner{}
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: opt.InsecureTLS}}} //nolint:gosec // configurable for self-signed kubelets
	own := &owners{warn: opt.Warner.Warn}
	t := time.NewTicker(opt.Interval)
	defer t.Stop()
	for {
		if !x.Synced("api") {
			if err := pollOnce(ctx, client, x, own, opt); err != nil {
				opt.Warner.Warn("kubelet", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func pollOnce(ctx context.Context, client *http.Client, x *Index, own *owners, opt KubeletOptions) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, opt.URL, nil)
	if err != nil {
		return fmt.Errorf("kubelet request: %w", err)
	}
	if opt.TokenFile != "" {
		tok, err := os.ReadFile(opt.TokenFile)
		if err != nil {
			return fmt.Errorf("kubelet token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("kubelet: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("kubelet %s: %s", opt.URL, resp.Status)
	}
	var list corev1.PodList
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxKubeletBody)).Decode(&list); err != nil {
		return fmt.Errorf("kubelet %s: decoding pods: %w", opt.URL, err)
	}
	if x.Synced("api") {
		return nil
	}
	seen := map[string]bool{}
	for i := range list.Items {
		p := &list.Items[i]
		if p.UID == "" {
			continue
		}
		seen[string(p.UID)] = true
		name, kind := own.resolve(p)
		x.put(string(p.UID), entryOf(p, name, kind, opt.ProxyContainers, "kubelet"))
	}
	for _, uid := range x.uids("kubelet") {
		if !seen[uid] {
			x.remove(uid)
		}
	}
	x.markSynced("kubelet")
	return nil
}
