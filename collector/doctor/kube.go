package doctor

import (
	"context"
	"fmt"
	"strings"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/discovery"
	authclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/zerotrace/zerotrace/collector/agent"
)

// access is one thing the collector asks the API server for, and what it
// costs when RBAC refuses it.
type access struct {
	verb, group, resource, sub string
	required                   bool // without it there are no workload names from the API at all
	cost                       string
}

func (a access) String() string {
	r := a.resource
	if a.group != "" {
		r = a.group + "/" + r
	}
	if a.sub != "" {
		r += "/" + a.sub
	}
	return a.verb + " " + r
}

// accesses are what the DaemonSet's ClusterRole must allow
// (deploy/kubernetes/rbac.yaml): the node's pods across namespaces, and
// the owners that name their workloads.
func accesses(cfg *agent.Config) []access {
	noPods := "no pod or workload names from Kubernetes: spans keep their process names (deploy/kubernetes/rbac.yaml grants it)"
	a := []access{
		{"list", "", "pods", "", true, noPods},
		{"watch", "", "pods", "", true, noPods},
		{"get", "apps", "replicasets", "", false, "pods of Deployments are named from their ReplicaSet's name, not asked (deploy/kubernetes/rbac.yaml grants it)"},
		{"get", "batch", "jobs", "", false, "pods of CronJobs are named after their Job, not the CronJob (deploy/kubernetes/rbac.yaml grants it)"},
	}
	if cfg.Kubernetes.KubeletURL != "" {
		a = append(a, access{"get", "", "nodes", "proxy", false,
			"no kubelet fallback while the API server is unreachable (kubernetes.kubelet_url needs get on nodes/proxy, which deploy/kubernetes/rbac.yaml does not grant)"})
	}
	return a
}

// kubernetesChecks: the API server answers (its version), accepts the
// collector's credentials (a list of the node's pods), and RBAC allows
// each access the collector needs (SelfSubjectAccessReview).
func kubernetesChecks(ctx context.Context, cfg *agent.Config, env func(string) string, timeout time.Duration) []Check {
	const api, rbac = "kubernetes API", "kubernetes RBAC"
	remote := func(c Check) Check { c.Remote = true; return c }
	if !cfg.KubernetesEnabled(env) {
		return []Check{unused(api, "not in a pod and no kubernetes.api_server (kubernetes.enabled: "+cfg.Kubernetes.Enabled+
			"): spans are named by process, and by the pods: mapping")}
	}
	noNames := "no pod or workload names from Kubernetes: spans keep their process names; the collector retries"
	rc, err := cfg.KubernetesREST()
	if err != nil {
		return []Check{remote(missing(api, err.Error(), "the collector does not start")), remote(unknown(rbac, "no client"))}
	}
	rc = rest.CopyConfig(rc)
	rc.Timeout = timeout
	rc.UserAgent = "zerotrace-doctor"
	rc.ContentType, rc.AcceptContentTypes = "application/json", "application/json" // every API server speaks it
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return []Check{remote(missing(api, err.Error(), noNames)), remote(unknown(rbac, "no client"))}
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return []Check{remote(missing(api, rc.Host+": "+err.Error(), noNames)), remote(unknown(rbac, "the API server did not answer"))}
	}
	where := fmt.Sprintf("%s answers (Kubernetes %s)", rc.Host, v.GitVersion)
	core, err := corev1client.NewForConfig(rc)
	if err != nil {
		return []Check{remote(missing(api, err.Error(), noNames)), remote(unknown(rbac, "no client"))}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sel := fields.OneTermEqualSelector("spec.nodeName", cfg.Node).String()
	_, err = core.Pods("").List(ctx, metav1.ListOptions{FieldSelector: sel, Limit: 1})
	switch {
	case apierrors.IsUnauthorized(err):
		return []Check{remote(missing(api, where+", but refuses the credentials: "+err.Error(), noNames+" (the service account's token)")),
			remote(unknown(rbac, "not asked: the credentials were refused"))}
	case err != nil && !apierrors.IsForbidden(err):
		return []Check{remote(missing(api, where+", but listing pods failed: "+err.Error(), noNames)), remote(unknown(rbac, "not asked"))}
	}
	out := []Check{remote(ok(api, where+" and accepts the credentials"))}
	return append(out, remote(rbacCheck(ctx, rc, accesses(cfg))))
}

// rbacCheck asks the API server, for each access, whether the collector's
// credentials may (SelfSubjectAccessReview).
func rbacCheck(ctx context.Context, rc *rest.Config, need []access) Check {
	const name = "kubernetes RBAC"
	ac, err := authclient.NewForConfig(rc)
	if err != nil {
		return unknown(name, err.Error())
	}
	var allowed, denied, costs []string
	required := false
	for _, a := range need {
		r, err := ac.SelfSubjectAccessReviews().Create(ctx, &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authv1.ResourceAttributes{Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.sub}}},
			metav1.CreateOptions{})
		if err != nil {
			return unknown(name, "cannot ask the API server what the collector may do (SelfSubjectAccessReview): "+err.Error())
		}
		if r.Status.Allowed {
			allowed = append(allowed, a.String())
			continue
		}
		d := a.String()
		if r.Status.EvaluationError != "" {
			d += " (" + r.Status.EvaluationError + ")"
		}
		denied = append(denied, d)
		costs = append(costs, a.cost)
		required = required || a.required
	}
	switch {
	case required:
		return missing(name, "denied: "+strings.Join(denied, ", ")+"; allowed: "+strings.Join(allowed, ", "),
			strings.Join(dedup(costs), "; "))
	case len(denied) > 0:
		return degraded(name, "denied: "+strings.Join(denied, ", ")+"; allowed: "+strings.Join(allowed, ", "),
			strings.Join(dedup(costs), "; "))
	}
	return ok(name, "allowed: "+strings.Join(allowed, ", "))
}
