// Package kubernetes holds the collector's Kubernetes manifests
// (kubectl apply -k deploy/kubernetes) and the test that decodes them
// strictly with the k8s.io/api types and checks their security properties.
package kubernetes
