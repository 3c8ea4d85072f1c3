package span

// ServiceName is how every surface names the service of a span (the trace
// view, OTLP export's service.name): the workload, "<workload> (proxy)" for
// a sidecar proxy, else the process, else the interface and node of a packet
// span.
func (s *Span) ServiceName() string {
	switch {
	case s.Service != "" && s.Flags.Has(FlagProxy):
		return s.Service + " (proxy)"
	case s.Service != "":
		return s.Service
	case s.ProcessName != "":
		return s.ProcessName
	case s.CaptureNIC != "":
		return s.CaptureNIC + "@" + s.Node
	}
	return s.Node
}

// OperationName is the name an SDK gave its span, else "METHOD resource"
// (the endpoint when known) of a captured exchange.
func (s *Span) OperationName() string {
	if s.Name != "" {
		return s.Name
	}
	res := s.Endpoint
	if res == "" {
		res = s.RequestResource
	}
	switch {
	case s.RequestType != "" && res != "":
		return s.RequestType + " " + res
	case res != "":
		return res
	case s.RequestType != "":
		return s.RequestType
	}
	return s.L7Protocol.String()
}

// workloadKinds: a Kubernetes workload kind and OpenTelemetry's resource
// attribute of its name.
var workloadKinds = []struct{ Kind, Key string }{{"Deployment", "k8s.deployment.name"}, {"StatefulSet", "k8s.statefulset.name"},
	{"DaemonSet", "k8s.daemonset.name"}, {"CronJob", "k8s.cronjob.name"}, {"Job", "k8s.job.name"}, {"ReplicaSet", "k8s.replicaset.name"}}

// WorkloadResourceKey is OpenTelemetry's resource attribute that names a
// workload of this kind ("k8s.deployment.name" …), "" for other kinds.
func WorkloadResourceKey(kind string) string {
	for _, w := range workloadKinds {
		if w.Kind == kind {
			return w.Key
		}
	}
	return ""
}

// WorkloadKinds lists the workload kinds with a resource attribute, with
// it, in the order a resource is read (a Deployment's name before its
// ReplicaSet's).
func WorkloadKinds() []struct{ Kind, Key string } { return workloadKinds }
