// Package kubeapi is a Kubernetes API server for tests, on loopback over
// TLS, speaking the real server's JSON for what the collector and
// `zerotrace doctor` ask: /version, the pods of a node, and
// SelfSubjectAccessReviews answered from the rules of a ClusterRole (the
// DaemonSet's deploy/kubernetes/rbac.yaml, or rules a test changes).
package kubeapi

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// Server is a running API server.
type Server struct {
	URL       string // https://127.0.0.1:port
	CAFile    string // PEM of its certificate
	TokenFile string // a token it accepts
	srv       *httptest.Server

	mu       sync.Mutex
	rules    []rbacv1.PolicyRule
	token    string
	requests []string
}

// Start serves until the test ends, accepting the token in TokenFile and
// allowing what rules allow.
func Start(t testing.TB, rules []rbacv1.PolicyRule) *Server {
	t.Helper()
	s := &Server{rules: rules, token: "zerotrace-test-token"}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	dir := t.TempDir()
	s.CAFile, s.TokenFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "token")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	if err := os.WriteFile(s.CAFile, ca, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.TokenFile, []byte(s.token+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// Close stops the server (it is then unreachable).
func (s *Server) Close() { s.srv.Close() }

// SetRules replaces what the server allows.
func (s *Server) SetRules(rules []rbacv1.PolicyRule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = rules
}

// Requests lists the method and path of every request so far.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// ClusterRoleRules reads the rules of the ClusterRole in a manifest file
// of several YAML documents.
func ClusterRoleRules(path string) ([]rbacv1.PolicyRule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var role rbacv1.ClusterRole
		if err := yaml.UnmarshalStrict([]byte(doc), &role); err == nil && role.Kind == "ClusterRole" {
			return role.Rules, nil
		}
	}
	return nil, fmt.Errorf("%s: no ClusterRole", path)
}

// status writes a Status object as the API server does for errors.
func status(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": msg, "reason": reason, "code": code})
	w.Write(b)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
	token := s.token
	s.mu.Unlock()
	if r.URL.Path == "/version" { // readable without credentials (system:public-info-viewer)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"major":"1","minor":"31","gitVersion":"v1.31.2","gitCommit":"5864a4677267e6adeae276ad85882a8714d69d9d",`+
			`"gitTreeState":"clean","buildDate":"2024-10-22T20:28:14Z","goVersion":"go1.22.8","compiler":"gc","platform":"linux/amd64"}`)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+token {
		status(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized")
		return
	}
	const user = "system:serviceaccount:zerotrace:zerotrace-collector"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/pods":
		if !s.allows("list", "", "pods", "") {
			status(w, http.StatusForbidden, "Forbidden",
				`pods is forbidden: User "`+user+`" cannot list resource "pods" in API group "" at the cluster scope`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"48213"},"items":[]}`)
	case r.Method == http.MethodPost && r.URL.Path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
		var review map[string]any
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			status(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
		spec, _ := review["spec"].(map[string]any)
		ra, _ := spec["resourceAttributes"].(map[string]any)
		str := func(k string) string { v, _ := ra[k].(string); return v }
		st := map[string]any{"allowed": false}
		if s.allows(str("verb"), str("group"), str("resource"), str("subresource")) {
			st = map[string]any{"allowed": true, "reason": `RBAC: allowed by ClusterRoleBinding "zerotrace-collector" of ClusterRole "zerotrace-collector" to ServiceAccount "zerotrace-collector/zerotrace"`}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		b, _ := json.Marshal(map[string]any{"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
			"metadata": map[string]any{"creationTimestamp": nil}, "spec": spec, "status": st})
		w.Write(b)
	default:
		status(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
	}
}

// allows evaluates the rules as RBAC does for one resource request.
func (s *Server) allows(verb, group, resource, sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := resource
	if sub != "" {
		res += "/" + sub
	}
	has := func(list []string, v string) bool { return slices.Contains(list, v) || slices.Contains(list, "*") }
	for _, r := range s.rules {
		if has(r.Verbs, verb) && has(r.APIGroups, group) && has(r.Resources, res) && len(r.ResourceNames) == 0 {
			return true
		}
	}
	return false
}
