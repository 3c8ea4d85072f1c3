package agent

import (
	"fmt"

	"k8s.io/client-go/rest"
)

// KubernetesEnabled resolves kubernetes.enabled: "auto" is on in a pod
// (KUBERNETES_SERVICE_HOST set) or with an API server configured.
func (c *Config) KubernetesEnabled(env func(string) string) bool {
	switch c.Kubernetes.Enabled {
	case "true":
		return true
	case "false":
		return false
	}
	return c.Kubernetes.APIServer != "" || env("KUBERNETES_SERVICE_HOST") != ""
}

// KubernetesREST is the client configuration of the API server:
// kubernetes.api_server with its token and CA files, else the pod's
// in-cluster configuration.
func (c *Config) KubernetesREST() (*rest.Config, error) {
	kc := c.Kubernetes
	if kc.APIServer != "" {
		return &rest.Config{Host: kc.APIServer, BearerTokenFile: kc.TokenFile,
			TLSClientConfig: rest.TLSClientConfig{CAFile: kc.CAFile, Insecure: kc.InsecureTLS}}, nil
	}
	rc, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w (set kubernetes.enabled: false outside a cluster)", err)
	}
	return rc, nil
}
