// Package plugin is the Grafana backend data source: it reads the shards
// (pkg/store), assembles traces (pkg/trace) and answers QueryData (trace,
// search, serviceMap, metrics), CheckHealth and CallResource (namespaces,
// services, endpoints, protocols). docs/plugin.md describes the query model
// and the frames.
package plugin
